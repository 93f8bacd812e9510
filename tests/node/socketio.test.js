'use strict';
// Socket.IO 4 on wirehub: Engine.IO takes the WebSocket server class through
// its wsEngine option; socket.io-client connects over the websocket transport.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const WebSocket = require('../..');
const { withTimeout, httpListen } = require('./helpers');

test('Socket.IO server with wsEngine: wirehub, socket.io-client over websocket and polling-then-upgrade', async () => {
  const httpServer = http.createServer();
  const ioServer = new Server(httpServer, { wsEngine: WebSocket.WebSocketServer });
  ioServer.on('connection', (socket) => {
    socket.on('echo', (msg, ack) => ack({ got: msg, transport: socket.conn.transport.name }));
    socket.on('bin', (buf, ack) => ack(Buffer.from(buf).reverse()));
    socket.on('room', () => {
      socket.join('r1');
      ioServer.to('r1').emit('news', 'for r1');
    });
  });
  const port = await httpListen(httpServer);
  for (const transports of [['websocket'], ['polling', 'websocket']]) {
    const client = io(`http://127.0.0.1:${port}`, { transports, reconnection: false });
    await withTimeout(new Promise((resolve, reject) => {
      client.on('connect', resolve);
      client.on('connect_error', reject);
    }), 5000, 'socket.io connect');
    if (transports.length === 2) {
      await withTimeout(new Promise((resolve) => {
        if (client.io.engine.transport.name === 'websocket') resolve();
        else client.io.engine.once('upgrade', resolve);
      }), 5000, 'transport upgrade');
    }
    const reply = await withTimeout(client.emitWithAck('echo', { hello: 'world' }));
    assert.deepStrictEqual(reply, { got: { hello: 'world' }, transport: 'websocket' });
    const bin = await withTimeout(client.emitWithAck('bin', Buffer.from([1, 2, 3])));
    assert.deepStrictEqual([...Buffer.from(bin)], [3, 2, 1]);
    const news = withTimeout(new Promise((resolve) => client.once('news', resolve)));
    client.emit('room');
    assert.strictEqual(await news, 'for r1');
    client.close();
  }
  await withTimeout(new Promise((resolve) => ioServer.close(resolve)), 8000, 'io close');
});

// engine.io refuses some handshakes after handing the socket to the WebSocket
// server: allowRequest answers before the upgrade, generateId (sync or async)
// fails after it, and engine.io then writes an HTTP 400 to the upgraded
// socket and destroys it. With ws the client sees a broken stream at once;
// it must fail the same way here, never wait in "opening".
test('Socket.IO refusals (allowRequest, generateId throwing) reach the client as errors', async () => {
  const cases = [
    ['allowRequest', { allowRequest: (req, cb) => cb('not you', false) }, null],
    ['generateId', {}, () => {
      throw new Error('no id');
    }],
    ['async generateId', {}, async () => {
      throw new Error('no id');
    }]
  ];
  for (const [name, options, generateId] of cases) {
    const httpServer = http.createServer();
    const ioServer = new Server(httpServer, { wsEngine: WebSocket.WebSocketServer, ...options });
    if (generateId) ioServer.engine.generateId = generateId;
    const serverErrors = [];
    ioServer.engine.on('connection_error', (e) => serverErrors.push(e.code));
    let connected = 0;
    ioServer.on('connection', () => connected++);
    const port = await httpListen(httpServer);
    const client = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false });
    const err = await withTimeout(new Promise((resolve, reject) => {
      client.on('connect', () => reject(new Error(`${name}: connected`)));
      client.on('connect_error', resolve);
    }), 5000, `${name}: connect_error`);
    assert.ok(err instanceof Error, name);
    assert.strictEqual(err.message, 'websocket error', name);
    assert.strictEqual(serverErrors.length, 1, name);
    assert.strictEqual(connected, 0, name);
    client.close();
    await withTimeout(new Promise((resolve) => ioServer.close(resolve)), 8000, `${name}: io close`);
  }
});
