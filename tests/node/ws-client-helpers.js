'use strict';
// What the client tests (ws-client-*.test.js) share: ws and wirehub side by
// side, raw servers answering each upgrade as a test says, ws's accept value,
// and a trace of what a client emits.
const net = require('net');
const crypto = require('crypto');
const ws = require('ws');
const wirehub = require('../../node');
const { withTimeout } = require('./helpers');

const accept = (key) =>
  crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

// A TCP server on 127.0.0.1 that hands each connection to onSocket(socket)
// and destroys those still open when closed.
async function tcpServer(onSocket) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onSocket(s);
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

// Calls onHead(key, socket) once the upgrade request's head is in.
function readHead(s, onHead) {
  let head = '';
  const onData = (d) => {
    head += d;
    if (!head.includes('\r\n\r\n')) return;
    s.removeListener('data', onData);
    const m = /\r\nSec-WebSocket-Key: *([^\r]*)\r\n/i.exec(head);
    onHead(m ? m[1] : '', s);
  };
  s.on('data', onData);
}

// A server that answers the upgrade request with answer(key), then ends.
const rawServer = (answer) => tcpServer((s) => readHead(s, (key) => s.end(answer(key))));

// A server that completes the handshake with a plain 101, then hands the
// socket to afterOpen(socket).
const openServer = (afterOpen) =>
  tcpServer((s) =>
    readHead(s, (key) => {
      s.write(ok101(key));
      afterOpen(s);
    })
  );

const ok101 = (key, extra = '') =>
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${accept(key)}\r\n${extra}\r\n`;

// A server that answers with Sec-WebSocket-Extensions: `extensions`, then
// writes `frames` (if any) and hands what the client sends next to onData.
// Resolves with { url, close() }.
function deflateServer(extensions, onData, frames) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    let head = '';
    const onHead = (d) => {
      head += d;
      if (!head.includes('\r\n\r\n')) return;
      s.removeListener('data', onHead);
      s.on('data', onData);
      const key = /\r\nSec-WebSocket-Key: *([^\r]*)\r\n/i.exec(head)[1];
      s.write(ok101(key, `Sec-WebSocket-Extensions: ${extensions}\r\n`));
      if (frames) s.write(frames);
    };
    s.on('data', onHead);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `ws://127.0.0.1:${server.address().port}/`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    }
  })));
}

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

module.exports = { accept, rawServer, openServer, ok101, deflateServer, trace, impls };
