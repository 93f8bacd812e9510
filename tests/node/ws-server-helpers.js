'use strict';
// What the server tests (ws-server-*.test.js) share: a server of ws or of
// wirehub on its own port or behind an http server (noServer +
// handleUpgrade()), upgrade requests written by hand, and raw connections
// that send them and read what comes back.
const http = require('node:http');
const net = require('node:net');
const { once } = require('node:events');
const { withTimeout, closeServer, httpListen } = require('./helpers');
// ws and wirehub, side by side (the client tests' list)
const { impls } = require('./ws-client-helpers');

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

// The headers of a valid upgrade request; `extra` adds or replaces headers,
// and removes those it gives as undefined.
const upgradeHeaders = (extra = {}) => ({
  Host: '127.0.0.1',
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': KEY,
  'Sec-WebSocket-Version': '13',
  ...extra
});

// A request as it goes on the wire.
function request(method, headers, target = '/') {
  let text = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

const UPGRADE = request('GET', upgradeHeaders());

// ws.handleUpgrade() as ws's own server calls it.
function emitConnection(wss, req, socket, head) {
  wss.handleUpgrade(req, socket, head, (conn) => wss.emit('connection', conn, req));
}

// A server of `lib` behind an http server whose upgrades go to
// onUpgrade(wss, req, socket, head); plain requests get ws's 426, as ws's
// own HTTP server answers them.
async function noServerSetup(lib, options = {}, onUpgrade = emitConnection) {
  const httpServer = http.createServer((req, res) => {
    const body = http.STATUS_CODES[426];
    res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
    res.end(body);
  });
  const wss = new lib.WebSocketServer({ noServer: true, ...options });
  httpServer.on('upgrade', (req, socket, head) => onUpgrade(wss, req, socket, head));
  const port = await httpListen(httpServer);
  return {
    wss,
    httpServer,
    port,
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      await closeServer(wss);
      httpServer.closeAllConnections();
      await withTimeout(new Promise((resolve) => httpServer.close(() => resolve())), 5000, 'http close');
    }
  };
}

// A server of `lib` in `mode`: 'port' (its own port) or 'noServer' (as
// noServerSetup() makes it).
async function makeServer(lib, mode, options = {}) {
  if (mode !== 'port') return noServerSetup(lib, options);
  const wss = new lib.WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await withTimeout(once(wss, 'listening'));
  const port = wss.address().port;
  return { wss, port, url: `ws://127.0.0.1:${port}`, close: () => closeServer(wss) };
}

// A raw connection to `port` that has written `text` (by default a valid
// upgrade request); its errors are ignored.
function rawSocket(port, text = UPGRADE) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(text);
  return socket;
}

// Writes `text` and resolves with what came back once the server closed the
// connection, its Date header removed. With `at101`, resolves instead with
// the status line of a 101 once the 101's head is in. With `endAfter` it
// half-closes after that many ms; with `destroyAfter` it drops the
// connection after that many ms.
function exchange(port, text, { at101 = false, endAfter, destroyAfter, what = 'answer' } = {}) {
  return withTimeout(new Promise((resolve) => {
    const socket = rawSocket(port, text);
    let got = '';
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (at101 && got.startsWith('HTTP/1.1 101 ') && got.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    socket.on('close', () => resolve(got.replace(/Date: [^\r]*\r\n/, '')));
    if (endAfter !== undefined) setTimeout(() => socket.end(), endAfter);
    if (destroyAfter !== undefined) setTimeout(() => socket.destroy(), destroyAfter);
  }), 5000, what);
}

module.exports = {
  impls,
  KEY,
  upgradeHeaders,
  request,
  UPGRADE,
  noServerSetup,
  makeServer,
  rawSocket,
  exchange
};
