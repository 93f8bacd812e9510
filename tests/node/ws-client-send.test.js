'use strict';
// websocket.bufferedAmount and websocket.send() callbacks as ws 8 has them:
// bytes given to send(), ping() or pong() once the close has begun are
// counted and never sent; a Blob is read before it is sent and what is sent
// meanwhile waits behind it; callbacks of sends that never reach the socket
// get ws's errors. Each case runs against ws and wirehub.
const { describe, test } = require('node:test');
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { withTimeout, waitFor, listen, closeServer } = require('./helpers');
const { openServer, impls } = require('./ws-client-helpers');

// A ws server (of the same implementation) that records what it receives.
async function recordingServer(WebSocket) {
  const { wss, url } = await listen(WebSocket.WebSocketServer);
  const got = [];
  const closed = new Promise((resolve) =>
    wss.on('connection', (s) => {
      s.on('error', () => {});
      s.on('message', (m, isBinary) => got.push(isBinary ? `b:${m}` : `t:${m}`));
      s.on('close', (code) => resolve(code));
    })
  );
  return { wss, url, got, closed };
}

// A server that completes the handshake and then never reads.
const stalledServer = () => openServer((s) => s.pause());

describe('websocket.bufferedAmount', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: send(), ping() and pong() after close() add their payload; so does send() after 'close'`, async () => {
      const srv = await recordingServer(WebSocket);
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      client.close();
      const steps = [];
      let base = client.bufferedAmount;
      const errors = [];
      for (const [call, arg] of [['send', 'abcd'], ['ping', 'xy'], ['pong', 'z'], ['send', Buffer.alloc(10)]]) {
        client[call](arg, call === 'send' ? undefined : false, (err) => errors.push(err && err.message));
        steps.push(client.bufferedAmount - base);
        base = client.bufferedAmount;
      }
      assert.deepStrictEqual(steps, [4, 2, 1, 10]);
      await waitFor(client, 'close');
      const after = client.bufferedAmount;
      client.send('12345');
      assert.strictEqual(client.bufferedAmount - after, 5);
      assert.deepStrictEqual(errors, Array(4).fill('WebSocket is not open: readyState 2 (CLOSING)'));
      await closeServer(srv.wss);
    });

    test(`${name}: right after send() in a handler it counts only what the socket did not take`, async () => {
      const srv = await recordingServer(WebSocket);
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      const seen = await new Promise((resolve) => {
        client.on('open', () => {
          const out = [];
          client.send('x'.repeat(100));
          out.push(client.bufferedAmount);
          client.send(Buffer.alloc(100000));
          out.push(client.bufferedAmount);
          resolve(out);
        });
      });
      // The loopback socket takes both at once: nothing left, as in ws.
      assert.deepStrictEqual(seen, [0, 0]);
      await withTimeout((async () => { while (srv.got.length < 2) await new Promise((r) => setTimeout(r, 5)); })());
      client.close();
      await waitFor(client, 'close');
      await closeServer(srv.wss);
    });

    test(`${name}: a Blob counts from send() until it is read and written`, async () => {
      const srv = await recordingServer(WebSocket);
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      client.send(new Blob(['abcdef']));
      assert.ok(client.bufferedAmount >= 6, `${client.bufferedAmount}`);
      await withTimeout((async () => { while (srv.got.length < 1) await new Promise((r) => setTimeout(r, 5)); })());
      assert.deepStrictEqual(srv.got, ['b:abcdef']);
      client.close();
      await waitFor(client, 'close');
      await closeServer(srv.wss);
    });
  }
});

describe('websocket.send(data[, options][, callback])', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: what is sent after a Blob waits for it, close() included`, async () => {
      const srv = await recordingServer(WebSocket);
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      const done = [];
      client.send(new Blob(['one']), (err) => done.push(['blob', err]));
      client.send('two', (err) => done.push(['two', err]));
      client.send(new Blob(['three']), (err) => done.push(['blob2', err]));
      client.close(1000, 'bye');
      const [code] = await waitFor(client, 'close');
      assert.strictEqual(code, 1000);
      assert.strictEqual(await withTimeout(srv.closed), 1000);
      assert.deepStrictEqual(srv.got, ['b:one', 't:two', 'b:three']);
      assert.deepStrictEqual(done, [['blob', null], ['two', null], ['blob2', null]]);
      await closeServer(srv.wss);
    });

    test(`${name}: terminate() while a Blob is read fails it and what waits behind it`, async () => {
      const srv = await recordingServer(WebSocket);
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      const errors = new Promise((resolve) => {
        const got = [];
        const cb = (err) => {
          got.push(err && err.message);
          if (got.length === 2) resolve(got);
        };
        client.send(new Blob(['abc']), cb);
        client.send('later', cb);
      });
      client.terminate();
      assert.deepStrictEqual(await withTimeout(errors), Array(2).fill('The socket was closed while the blob was being read'));
      await waitFor(client, 'close');
      assert.strictEqual(client.bufferedAmount, 3 + 5);
      await closeServer(srv.wss);
    });

    test(`${name}: a Blob whose read fails: its callback and the waiting ones get the error, then 'error' and 'close'`, async () => {
      const srv = await recordingServer(WebSocket);
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wh-blob-')), 'f');
      fs.writeFileSync(file, 'abc');
      const blob = await fs.openAsBlob(file);
      fs.writeFileSync(file, 'changed'); // a file Blob whose file changed cannot be read
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      const events = [];
      client.send(blob, (err) => events.push(['cb', err && err.name, client.readyState]));
      client.send('after', (err) => events.push(['cb2', err && err.name]));
      client.on('error', (err) => events.push(['error', err.name, err.message, client.readyState]));
      const code = await withTimeout(new Promise((resolve) => client.on('close', resolve)));
      assert.strictEqual(code, 1006);
      assert.deepStrictEqual(events, [
        ['cb', 'NotReadableError', WebSocket.OPEN],
        ['cb2', 'NotReadableError'],
        ['error', 'NotReadableError', 'The blob could not be read', WebSocket.CLOSING]
      ]);
      assert.deepStrictEqual(srv.got, []);
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      await closeServer(srv.wss);
    });

    test(`${name}: with permessage-deflate, terminate() in the same tick fails the send as ws's compressor does`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer, { perMessageDeflate: true });
      wss.on('connection', (s) => s.on('error', () => {}));
      const client = new WebSocket(url);
      await waitFor(client, 'open');
      assert.strictEqual(client.extensions, 'permessage-deflate');
      const result = new Promise((resolve) => client.send('hello', resolve));
      const closed = waitFor(client, 'close');
      client.terminate();
      const err = await withTimeout(result);
      assert.strictEqual(err && err.message, 'The socket was closed while data was being compressed');
      await closed;
      await closeServer(wss);
    });

    test(`${name}: sends the socket never took fail with ERR_STREAM_DESTROYED on terminate()`, async () => {
      const srv = await stalledServer();
      const client = new WebSocket(srv.url, { perMessageDeflate: false });
      await waitFor(client, 'open');
      const big = Buffer.alloc(4 << 20);
      const results = [];
      const all = new Promise((resolve) => {
        for (let i = 0; i < 8; i++) {
          client.send(big, (err) => {
            results.push(err ? err.code : 'ok');
            if (results.length === 8) resolve();
          });
        }
      });
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(client.bufferedAmount > 16 << 20, `${client.bufferedAmount}`);
      const closed = waitFor(client, 'close');
      client.terminate();
      await withTimeout(all);
      await closed;
      assert.ok(results.includes('ERR_STREAM_DESTROYED'), results.join());
      assert.ok(results.every((r) => r === 'ok' || r === 'ERR_STREAM_DESTROYED'), results.join());
      srv.close();
    });
  }
});
