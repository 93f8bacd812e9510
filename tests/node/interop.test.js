'use strict';
// Interop with the real ws package in both directions, with and without
// permessage-deflate.
const test = require('node:test');
const assert = require('node:assert');
const ws = require('ws');
const WebSocket = require('../..');
const { waitFor, withTimeout, listen, closeServer } = require('./helpers');

const payloads = [
  ['text', 'héllo wörld', false],
  ['binary', Buffer.from([0, 1, 2, 255]), true],
  ['large compressible text', 'abcdefgh'.repeat(20000), false],
  ['empty', '', false]
];

for (const compress of [false, true]) {
  const label = compress ? 'with permessage-deflate' : 'without compression';

  test(`ws client -> wirehub server, ${label}`, async () => {
    const { wss, url } = await listen(WebSocket.WebSocketServer, { perMessageDeflate: compress });
    wss.on('connection', (sock) => sock.on('message', (d, isBinary) => sock.send(d, { binary: isBinary })));
    const client = new ws.WebSocket(url, { perMessageDeflate: compress });
    await waitFor(client, 'open');
    if (compress) assert.match(client.extensions, /permessage-deflate/);
    else assert.strictEqual(client.extensions, '');
    for (const [, data, binary] of payloads) {
      client.send(data, { binary });
      const [back, isBinary] = await waitFor(client, 'message');
      assert.strictEqual(isBinary, binary);
      assert.ok(Buffer.from(back).equals(Buffer.from(data)));
    }
    const closed = waitFor(client, 'close');
    client.close(4100, 'ws says bye');
    const [code, reason] = await closed;
    assert.strictEqual(code, 4100);
    assert.strictEqual(typeof reason.length, 'number');
    await closeServer(wss);
  });

  test(`wirehub client -> ws server, ${label}`, async () => {
    const server = new ws.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: compress });
    await waitFor(server, 'listening');
    const closes = [];
    server.on('connection', (sock) => {
      sock.on('message', (d, isBinary) => sock.send(d, { binary: isBinary }));
      sock.on('close', (code, reason) => closes.push([code, reason.toString()]));
    });
    const client = new WebSocket(`ws://127.0.0.1:${server.address().port}/`, { perMessageDeflate: compress });
    await waitFor(client, 'open');
    if (compress) assert.match(client.extensions, /permessage-deflate/);
    else assert.strictEqual(client.extensions, '');
    for (const [, data, binary] of payloads) {
      client.send(data, { binary });
      const [back, isBinary] = await waitFor(client, 'message');
      assert.strictEqual(isBinary, binary);
      assert.ok(back.equals(Buffer.from(data)));
    }
    client.ping('p');
    const [pong] = await waitFor(client, 'pong');
    assert.strictEqual(pong.toString(), 'p');
    const closed = waitFor(client, 'close');
    client.close(1000, 'wirehub says bye');
    const [code] = await closed;
    assert.strictEqual(code, 1000);
    await withTimeout(
      (async () => {
        while (!closes.length) await new Promise((r) => setTimeout(r, 5));
      })()
    );
    assert.deepStrictEqual(closes[0], [1000, 'wirehub says bye']);
    await new Promise((resolve) => server.close(resolve));
  });
}

test('ws client gets ws error semantics from a wirehub server that refuses invalid UTF-8', async () => {
  const { wss, url } = await listen(WebSocket.WebSocketServer);
  const serverErr = new Promise((resolve) => wss.on('connection', (s) => s.on('error', resolve)));
  const client = new ws.WebSocket(url);
  await waitFor(client, 'open');
  const closed = waitFor(client, 'close');
  // A text frame with an invalid UTF-8 byte, sent raw through ws's socket.
  client._socket.write(Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0xff ^ 1]));
  const [code] = await closed;
  assert.strictEqual(code, 1007);
  const err = await withTimeout(serverErr);
  assert.strictEqual(err.code, 'WS_ERR_INVALID_UTF8');
  assert.strictEqual(err.message, 'Invalid WebSocket frame: invalid UTF-8 sequence');
  await closeServer(wss);
});

test('skipUTF8Validation delivers invalid UTF-8 text as is', async () => {
  const { wss, url } = await listen(WebSocket.WebSocketServer, { skipUTF8Validation: true });
  const got = new Promise((resolve) => wss.on('connection', (s) => s.on('message', (d, b) => resolve([d, b]))));
  const client = new ws.WebSocket(url);
  await waitFor(client, 'open');
  client._socket.write(Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0xff ^ 1]));
  const [d, isBinary] = await withTimeout(got);
  assert.strictEqual(isBinary, false);
  assert.deepStrictEqual([...d], [0xff]);
  client.terminate();
  await closeServer(wss);
});
