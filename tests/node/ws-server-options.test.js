'use strict';
// ws.md, "new WebSocketServer(options[, callback])": the server's options, run
// against ws (the reference) and wirehub with ws's client on the other end.
const { describe, it } = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const ws = require('ws');
const { withTimeout, listen: portServer, closeServer } = require('./helpers');
const { impls, noServerSetup, rawSocket } = require('./ws-server-helpers');

async function connected(wss, url, options) {
  const client = new ws.WebSocket(url, options);
  const [[conn]] = await Promise.all([
    withTimeout(once(wss, 'connection'), 5000, 'connection'),
    withTimeout(once(client, 'open'), 5000, 'open')
  ]);
  return { client, conn };
}

describe('new WebSocketServer(options[, callback])', () => {
  for (const [name, lib] of impls) {
    const { WebSocketServer, WebSocket } = lib;

    it(`${name}: the WebSocket option gives the class of the connections, built as ws builds it`, async () => {
      const built = [];
      class Custom extends WebSocket {
        constructor(...args) {
          super(...args);
          built.push(args);
        }
      }
      const { wss, url } = await portServer(WebSocketServer, { WebSocket: Custom });
      const { client, conn } = await connected(wss, url);
      assert.ok(conn instanceof Custom);
      assert.strictEqual(built.length, 1);
      assert.strictEqual(built[0][0], null);
      assert.strictEqual(built[0][1], undefined);
      assert.strictEqual(built[0][2], wss.options);
      assert.strictEqual(wss.options.WebSocket, Custom);
      assert.ok([...wss.clients][0] instanceof Custom);
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
    });

    it(`${name}: options.WebSocket defaults to the package's WebSocket`, async () => {
      const wss = new WebSocketServer({ noServer: true });
      assert.strictEqual(wss.options.WebSocket, WebSocket);
      assert.strictEqual(wss.options.closeTimeout, 30000);
      assert.strictEqual(wss.options.maxFragments, 131072);
      await closeServer(wss);
    });

    it(`${name}: clientTracking: false leaves no clients set`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { clientTracking: false });
      assert.strictEqual(wss.clients, undefined);
      const { client, conn } = await connected(wss, url);
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
    });

    it(`${name}: noServer and clientTracking: false emit 'close' in the next tick, connections open`, async () => {
      const { wss, httpServer, url } = await noServerSetup(lib, { clientTracking: false });
      const { client, conn } = await connected(wss, url);
      let closed = false;
      wss.close(() => (closed = true));
      await new Promise((resolve) => setImmediate(resolve));
      assert.strictEqual(closed, true);
      assert.strictEqual(conn.readyState, WebSocket.OPEN);
      conn.send('still open');
      const [msg] = await withTimeout(once(client, 'message'));
      assert.strictEqual(msg.toString(), 'still open');
      client.close();
      await withTimeout(once(conn, 'close'));
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    });

    it(`${name}: closeTimeout bounds the wait for the peer's close frame`, async () => {
      const { wss } = await portServer(WebSocketServer, { closeTimeout: 300 });
      // a raw upgrade that never answers a close frame
      const peer = rawSocket(wss.address().port);
      const [conn] = await withTimeout(once(wss, 'connection'));
      const t0 = Date.now();
      conn.close(1000);
      const [code] = await withTimeout(once(conn, 'close'), 5000, 'close after closeTimeout');
      const waited = Date.now() - t0;
      assert.strictEqual(code, 1006);
      assert.ok(waited >= 250 && waited < 3000, `waited ${waited} ms`);
      peer.destroy();
      await closeServer(wss);
    });

    it(`${name}: maxPayload refuses a larger message with 1009 and ws's error`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { maxPayload: 10 });
      const { client, conn } = await connected(wss, url);
      const serverError = withTimeout(once(conn, 'error'));
      client.send('x'.repeat(11));
      const [[err], [code]] = await Promise.all([serverError, withTimeout(once(client, 'close'))]);
      assert.ok(err instanceof RangeError);
      assert.strictEqual(err.message, 'Max payload size exceeded');
      assert.strictEqual(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      assert.strictEqual(code, 1009);
      await closeServer(wss);
    });

    for (const skip of [false, true]) {
      it(`${name}: skipUTF8Validation: ${skip}`, async () => {
        const { wss, url } = await portServer(WebSocketServer, { skipUTF8Validation: skip });
        const { client, conn } = await connected(wss, url);
        const events = [];
        conn.on('message', (data, isBinary) => events.push(['message', [...data], isBinary]));
        conn.on('error', (err) => events.push(['error', err.code]));
        client.send(Buffer.from([0x61, 0xff]), { binary: false });
        client.send('done');
        if (skip) {
          await withTimeout(new Promise((resolve) => conn.on('message', (d) => String(d) === 'done' && resolve())));
          assert.deepStrictEqual(events[0], ['message', [0x61, 0xff], false]);
          client.close();
        }
        const [code] = await withTimeout(once(client, 'close'));
        if (!skip) {
          assert.strictEqual(code, 1007);
          assert.deepStrictEqual(events, [['error', 'WS_ERR_INVALID_UTF8']]);
        }
        await closeServer(wss);
      });
    }

    // Sends a message of five non-empty fragments; resolves with the server
    // side's events and the client's close code and reason.
    async function fragmented(wss, url) {
      const { client, conn } = await connected(wss, url);
      const events = [];
      conn.on('error', (err) => events.push(['error', err.constructor.name, err.message, err.code]));
      conn.on('message', (m) => events.push(['message', m.length]));
      for (let i = 0; i < 4; i++) client.send('ab', { fin: false });
      client.send('ab', { fin: true });
      setTimeout(() => client.readyState === ws.WebSocket.OPEN && client.close(), 300);
      const [code, reason] = await withTimeout(once(client, 'close'));
      return { events, code, reason: String(reason) };
    }

    it(`${name}: maxFragments: a message of more fragments closes with 1008; 0 turns it off`, async () => {
      const limited = await portServer(WebSocketServer, { maxFragments: 3 });
      const out = await fragmented(limited.wss, limited.url);
      assert.strictEqual(out.code, 1008);
      assert.ok(!out.events.some((e) => e[0] === 'message'));
      await closeServer(limited.wss);
      const open = await portServer(WebSocketServer, { maxFragments: 0 });
      const out0 = await fragmented(open.wss, open.url);
      assert.deepStrictEqual(out0.events, [['message', 10]]);
      assert.strictEqual(out0.code, 1005);
      await closeServer(open.wss);
    });

    const fragTodo = false;
    it(`${name}: maxFragments: ws's error on the server, a close without reason`, { todo: fragTodo }, async () => {
      const { wss, url } = await portServer(WebSocketServer, { maxFragments: 3 });
      const out = await fragmented(wss, url);
      await closeServer(wss);
      assert.deepStrictEqual(out.events, [
        ['error', 'RangeError', 'Too many message fragments', 'WS_ERR_TOO_MANY_BUFFERED_PARTS']
      ]);
      assert.strictEqual(out.reason, '');
    });

    // ws's receiver holds each socket chunk until it has the bytes it needs
    // next (two header bytes, the extended length, the mask, the whole
    // payload) and fails the connection when a chunk arrives while
    // maxBufferedChunks are held. A masked frame sent one byte per segment:
    // with 8, 8 payload bytes pass (7 held when the last arrives), 9 fail.
    async function trickled(options, payload) {
      const { wss } = await portServer(WebSocketServer, options);
      const peer = rawSocket(wss.address().port);
      peer.setNoDelay(true);
      let got = Buffer.alloc(0);
      peer.on('data', (d) => (got = Buffer.concat([got, d])));
      const [conn] = await withTimeout(once(wss, 'connection'));
      const events = [];
      conn.on('error', (err) => events.push(['error', err.constructor.name, err.message, err.code]));
      conn.on('message', (m) => events.push(['message', m.length]));
      // (once() would reject on the 'error' that comes first)
      const closed = withTimeout(new Promise((resolve) => conn.on('close', (...a) => resolve(a))));
      const frame = Buffer.concat([Buffer.from([0x82, 0x80 | payload, 1, 2, 3, 4]), Buffer.alloc(payload, 0x61)]);
      for (const byte of frame) {
        if (peer.destroyed || events.length) break;
        peer.write(Buffer.from([byte]));
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      if (!events.some((e) => e[0] === 'error')) conn.terminate();
      const [code] = await closed;
      await new Promise((resolve) => setTimeout(resolve, 50));
      peer.destroy();
      await closeServer(wss);
      // the server's close frame, after the 101's head
      const body = got.subarray(got.indexOf('\r\n\r\n') + 4);
      const closeFrame = body.length >= 4 && body[0] === 0x88 ? [body.readUInt16BE(2), String(body.subarray(4, 2 + body[1]))] : null;
      return { events, code, closeFrame };
    }

    it(`${name}: maxBufferedChunks: a frame held in more chunks fails with 1008 and ws's error`, async () => {
      const out = await trickled({ maxBufferedChunks: 8 }, 9);
      assert.deepStrictEqual(out.events, [
        ['error', 'RangeError', 'Too many buffered chunks', 'WS_ERR_TOO_MANY_BUFFERED_PARTS']
      ]);
      assert.strictEqual(out.code, 1006);
      assert.deepStrictEqual(out.closeFrame, [1008, ''], 'the peer sees 1008 without a reason');
    });

    it(`${name}: maxBufferedChunks: up to the limit passes, 0 turns it off, 1048576 by default`, async () => {
      for (const [payload, maxBufferedChunks] of [[8, 8], [30, 0]]) {
        const out = await trickled({ maxBufferedChunks }, payload);
        assert.deepStrictEqual(out.events, [['message', payload]], `maxBufferedChunks ${maxBufferedChunks}`);
      }
      const wss = new WebSocketServer({ noServer: true });
      assert.strictEqual(wss.options.maxBufferedChunks, 1048576);
      await closeServer(wss);
    });

    it(`${name}: path: another path is refused with 400`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { path: '/only' });
      const client = new ws.WebSocket(`${url}/other?x=1`);
      const [, res] = await withTimeout(once(client, 'unexpected-response'));
      assert.strictEqual(res.statusCode, 400);
      client.on('error', () => {});
      client.terminate();
      const ok = new ws.WebSocket(`${url}/only?x=1`);
      await withTimeout(once(ok, 'open'));
      ok.close();
      await withTimeout(once(ok, 'close'));
      await closeServer(wss);
    });

    it(`${name}: backlog is taken`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { backlog: 3 });
      const { client, conn } = await connected(wss, url);
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
    });

    it(`${name}: autoPong: false leaves pings unanswered; ws.pong() still answers`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { autoPong: false });
      const { client, conn } = await connected(wss, url);
      let pongs = 0;
      client.on('pong', () => pongs++);
      const ping = withTimeout(once(conn, 'ping'));
      client.ping('x');
      const [payload] = await ping;
      assert.strictEqual(String(payload), 'x');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.strictEqual(pongs, 0);
      const pong = withTimeout(once(client, 'pong'));
      conn.pong('y');
      const [answer] = await pong;
      assert.strictEqual(String(answer), 'y');
      assert.strictEqual(pongs, 1);
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
    });

    it(`${name}: autoPong: true (the default) answers pings with their payload`, async () => {
      const { wss, url } = await portServer(WebSocketServer);
      const { client, conn } = await connected(wss, url);
      const pong = withTimeout(once(client, 'pong'));
      client.ping('z');
      const [answer] = await pong;
      assert.strictEqual(String(answer), 'z');
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
    });

    it(`${name}: allowSynchronousEvents: false emits one message per turn`, async () => {
      const { wss, url } = await portServer(WebSocketServer, { allowSynchronousEvents: false });
      const { client, conn } = await connected(wss, url);
      const order = [];
      const done = new Promise((resolve) => {
        conn.on('message', (m) => {
          order.push(`m${m}`);
          setImmediate(() => order.push(`i${m}`));
          if (String(m) === '3') setTimeout(resolve, 50);
        });
      });
      client.send('1');
      client.send('2');
      client.send('3');
      await withTimeout(done);
      client.close();
      await withTimeout(once(conn, 'close'));
      await closeServer(wss);
      assert.deepStrictEqual(order, ['m1', 'i1', 'm2', 'i2', 'm3', 'i3']);
    });
  }
});
