'use strict';
// The client's properties as ws 8 has them: enumerable, configurable
// prototype accessors; protocol and extensions empty until 'open' (reading
// them early does not fix them), extensions as names only; ws._socket, the
// net.Socket that user code reads the peer's address from.
const { describe, test } = require('node:test');
const assert = require('assert');
const ws = require('ws');
const wirehub = require('../../node');
const { waitFor, listen, closeServer } = require('./helpers');
const { impls } = require('./ws-client-helpers');

const accessors = ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url'];

describe('WebSocket.prototype accessors', () => {
  test('are enumerable and configurable getters, as in ws', () => {
    for (const name of accessors) {
      const mine = Object.getOwnPropertyDescriptor(wirehub.prototype, name);
      const theirs = Object.getOwnPropertyDescriptor(ws.prototype, name);
      assert.strictEqual(typeof mine.get, 'function', name);
      assert.strictEqual(mine.enumerable, theirs.enumerable, name);
      assert.strictEqual(mine.configurable, theirs.configurable, name);
      assert.strictEqual(typeof mine.set, typeof theirs.set, name);
      assert.strictEqual(mine.enumerable, true, name);
    }
  });
});

describe('websocket.protocol and websocket.extensions', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: empty while CONNECTING (in 'upgrade' too), negotiated once open`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer, { perMessageDeflate: true, handleProtocols: () => 'chat' });
      wss.on('connection', (s) => s.on('error', () => {}));
      const client = new WebSocket(url, ['chat']);
      const seen = [[client.protocol, client.extensions]];
      client.on('upgrade', () => seen.push([client.protocol, client.extensions]));
      await waitFor(client, 'open');
      seen.push([client.protocol, client.extensions]);
      client.close();
      await waitFor(client, 'close');
      seen.push([client.protocol, client.extensions]);
      assert.deepStrictEqual(seen, [
        ['', ''],
        ['', ''],
        ['chat', 'permessage-deflate'],
        ['chat', 'permessage-deflate']
      ]);
      await closeServer(wss);
    });
  }
});

describe('websocket._socket (not documented; read by common user code)', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: null before 'open'; then the peer's address and port, also after 'close'`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer);
      const port = wss.address().port;
      const server = new Promise((resolve) => wss.on('connection', (s) => resolve(s._socket)));
      const client = new WebSocket(url);
      assert.strictEqual(client._socket, null);
      await waitFor(client, 'open');
      assert.strictEqual(client._socket.remoteAddress, '127.0.0.1');
      assert.strictEqual(client._socket.remotePort, port);
      assert.strictEqual(client._socket.remoteFamily, 'IPv4');
      const peer = await server;
      assert.strictEqual(peer.remoteAddress, '127.0.0.1');
      assert.strictEqual(typeof peer.remotePort, 'number');
      client.close();
      await waitFor(client, 'close');
      assert.strictEqual(client._socket.remoteAddress, '127.0.0.1');
      await closeServer(wss);
    });
  }
});
