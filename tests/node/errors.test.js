'use strict';
// Bad input gets the errors and events ws gives: thrown where ws throws,
// 'error' + 'close' where ws emits them; never a crash.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const http = require('node:http');
const WebSocket = require('../..');
const { WebSocketServer } = WebSocket;
const { waitFor, withTimeout, listen, closeServer } = require('./helpers');

function errorAndClose(ws) {
  return withTimeout(
    new Promise((resolve) => {
      let err;
      ws.on('error', (e) => (err = e));
      ws.on('close', (code) => resolve([err, code]));
    })
  );
}

test('invalid URLs and options throw like ws', () => {
  assert.throws(() => new WebSocket('not a url'), { name: 'SyntaxError', message: 'Invalid URL: not a url' });
  assert.throws(() => new WebSocket('ftp://127.0.0.1/'), {
    name: 'SyntaxError',
    message: 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"'
  });
  assert.throws(() => new WebSocket('ws://127.0.0.1/#frag'), { name: 'SyntaxError', message: 'The URL contains a fragment identifier' });
  assert.throws(() => new WebSocket('ws://127.0.0.1/', ['a', 'a']), {
    name: 'SyntaxError',
    message: 'An invalid or duplicated subprotocol was specified'
  });
  assert.throws(() => new WebSocket('ws://127.0.0.1/', { protocolVersion: 7 }), { name: 'RangeError' });
  assert.throws(() => new WebSocketServer({}), { name: 'TypeError' });
  assert.throws(() => new WebSocketServer({ port: 0, noServer: true }), { name: 'TypeError' });
});

test('http: URLs are accepted and rewritten to ws:', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const ws = new WebSocket(url.replace('ws:', 'http:'));
  assert.ok(ws.url.startsWith('ws://'));
  await waitFor(ws, 'open');
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('connection refused: error with code ECONNREFUSED, then close 1006', async () => {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const [err, code] = await errorAndClose(ws);
  assert.strictEqual(err.code, 'ECONNREFUSED');
  assert.strictEqual(code, 1006);
  assert.strictEqual(ws.readyState, WebSocket.CLOSED);
});

test('handshake failure reports the response status; redirects are followed only when asked', async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end('nope');
  });
  server.on('upgrade', (req, socket) => {
    if (req.url === '/moved') {
      socket.end('HTTP/1.1 302 Found\r\nLocation: /missing\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `ws://127.0.0.1:${server.address().port}`;
  const [err, code] = await errorAndClose(new WebSocket(`${base}/x`));
  assert.strictEqual(err.message, 'Unexpected server response: 404');
  assert.strictEqual(code, 1006);
  const [err2] = await errorAndClose(new WebSocket(`${base}/moved`));
  assert.strictEqual(err2.message, 'Unexpected server response: 302');
  const follow = new WebSocket(`${base}/moved`, { followRedirects: true });
  const redirected = new Promise((resolve) => follow.on('redirect', (url) => resolve(url)));
  const [err3] = await errorAndClose(follow);
  assert.strictEqual(await redirected, `${base}/missing`);
  assert.strictEqual(err3.message, 'Unexpected server response: 404');
  const loop = new WebSocket(`${base}/moved`, { followRedirects: true, maxRedirects: 0 });
  const [err4] = await errorAndClose(loop);
  assert.strictEqual(err4.message, 'Maximum redirects exceeded');
  await new Promise((r) => server.close(r));
});

test('handshakeTimeout: a server that never answers gives "Opening handshake has timed out"', async () => {
  const sockets = [];
  const srv = net.createServer((s) => sockets.push(s));
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const ws = new WebSocket(`ws://127.0.0.1:${srv.address().port}/`, { handshakeTimeout: 200 });
  const [err, code] = await errorAndClose(ws);
  assert.strictEqual(err.message, 'Opening handshake has timed out');
  assert.strictEqual(code, 1006);
  for (const s of sockets) s.destroy();
  await new Promise((r) => srv.close(r));
});

test('send/ping while connecting throw; after close they call back with an error and count bufferedAmount', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const ws = new WebSocket(url);
  assert.throws(() => ws.send('x'), { message: 'WebSocket is not open: readyState 0 (CONNECTING)' });
  assert.throws(() => ws.ping(), { message: 'WebSocket is not open: readyState 0 (CONNECTING)' });
  await waitFor(ws, 'open');
  ws.close();
  const err = await new Promise((resolve) => ws.send('late', resolve));
  assert.strictEqual(err.message, 'WebSocket is not open: readyState 2 (CLOSING)');
  await waitFor(ws, 'close');
  const err2 = await new Promise((resolve) => ws.send('later', resolve));
  assert.strictEqual(err2.message, 'WebSocket is not open: readyState 3 (CLOSED)');
  assert.ok(ws.bufferedAmount >= 'later'.length);
  ws.send('no callback: no throw');
  await closeServer(wss);
});

test('invalid close codes and reasons throw like ws', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  for (const code of [999, 1004, 1005, 1006, 1016, 2999, 5000, '1000']) {
    assert.throws(() => ws.close(code), { name: 'TypeError', message: 'First argument must be a valid error code number' });
  }
  assert.throws(() => ws.close(1000, 'x'.repeat(124)), {
    name: 'RangeError',
    message: 'The message must not be greater than 123 bytes'
  });
  assert.strictEqual(ws.readyState, WebSocket.OPEN);
  ws.close(1000);
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('close() while connecting aborts with ws\'s message', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const ws = new WebSocket(url);
  ws.close();
  const [err, code] = await errorAndClose(ws);
  assert.strictEqual(err.message, 'WebSocket was closed before the connection was established');
  assert.strictEqual(code, 1006);
  await closeServer(wss);
});

test('listening on a port in use emits EADDRINUSE', async () => {
  const { wss } = await listen(WebSocketServer);
  const other = new WebSocketServer({ port: wss.address().port, host: '127.0.0.1' });
  const [err] = await waitFor(other, 'error');
  assert.strictEqual(err.code, 'EADDRINUSE');
  await closeServer(wss);
});

test('a peer that sends garbage frames is closed with 1002 and a WS_ERR_ code', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const serverErr = new Promise((resolve) => wss.on('connection', (s) => s.on('error', resolve)));
  const sock = net.connect(Number(new URL(url).port), '127.0.0.1');
  await waitFor(sock, 'connect');
  sock.write(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  );
  await waitFor(sock, 'data');
  sock.write(Buffer.from([0x83, 0x80, 0, 0, 0, 0])); // reserved opcode 3
  const err = await withTimeout(serverErr);
  assert.match(err.code, /^WS_ERR_/);
  assert.strictEqual(err instanceof Error, true);
  sock.destroy();
  await closeServer(wss);
});

test('a client that gets a message above maxPayload fails with 1009 and reports 1006, as ws', async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('connection', (s) => s.send(Buffer.alloc(2048)));
  const ws = new WebSocket(url, { maxPayload: 1000 });
  const [err, code] = await errorAndClose(ws);
  assert.strictEqual(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  // It sends 1009; like ws's receiver it reads nothing after the error, so
  // the close it reports is 1006.
  assert.strictEqual(code, 1006);
  await closeServer(wss);
});
