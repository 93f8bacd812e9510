'use strict';
// What the client tests that speak to a hand-made server share: a raw
// server answering each upgrade as a test says, ws's accept value, and a
// trace of what a client emits.
const net = require('net');
const crypto = require('crypto');
const ws = require('ws');
const wirehub = require('../../node');
const { withTimeout } = require('./helpers');

const accept = (key) =>
  crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

// A server that answers the upgrade request with answer(key), then ends.
async function rawServer(answer) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let head = '';
    s.on('data', (d) => {
      head += d;
      if (!head.includes('\r\n\r\n')) return;
      const m = /\r\nSec-WebSocket-Key: *([^\r]*)\r\n/i.exec(head);
      s.end(answer(m ? m[1] : ''));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    }
  };
}

const ok101 = (key, extra = '') =>
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${accept(key)}\r\n${extra}\r\n`;

// The events a client sees up to its 'close', in order.
function trace(WebSocket, url, protocols, options, onUpgrade) {
  return withTimeout(
    new Promise((resolve) => {
      const client = new WebSocket(url, protocols, options);
      const events = [];
      client.on('upgrade', (res) => {
        events.push(['upgrade', client.readyState, res.statusCode]);
        if (onUpgrade) onUpgrade(client, res);
      });
      client.on('open', () => {
        events.push(['open']);
        client.terminate();
      });
      client.on('error', (err) => events.push(['error', err.message, err.code, client.readyState]));
      client.on('close', (code) => {
        events.push(['close', code]);
        resolve(events);
      });
    }),
    5000,
    'client close'
  );
}

const impls = [
  ['ws', ws],
  ['wirehub', wirehub]
];

module.exports = { accept, rawServer, ok101, trace, impls };
