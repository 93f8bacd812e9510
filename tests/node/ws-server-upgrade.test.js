'use strict';
// ws.md, "server.handleUpgrade(request, socket, head, callback)": the socket
// given to handleUpgrade() stays the connection's socket. The same checks run
// against ws (the reference) and wirehub; the client is always ws's.
const { describe, it } = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const ws = require('ws');
const wirehub = require('../..');
const { withTimeout } = require('./helpers');
const { impls, noServerSetup } = require('./ws-server-helpers');

function clientOutcome(client) {
  return withTimeout(new Promise((resolve) => {
    const seen = { open: false, errors: [] };
    client.on('open', () => (seen.open = true));
    client.on('error', (err) => seen.errors.push(err.message));
    client.on('close', (code) => resolve({ ...seen, code }));
  }), 5000, 'client close');
}

describe('server.handleUpgrade(request, socket, head, callback)', () => {
  for (const [name, lib] of impls) {
    it(`${name}: the socket stays the connection's (websocket._socket, request.socket, its addresses)`, async () => {
      let seen;
      const { close, url } = await noServerSetup(lib, {}, (wss, req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (conn, request) => {
          seen = {
            same: conn._socket === socket,
            reqSocket: request.socket === socket,
            request: request === req,
            remoteAddress: socket.remoteAddress,
            remotePort: socket.remotePort,
            localAddress: socket.localAddress,
            wsRemote: conn._socket.remoteAddress
          };
          conn.close();
        });
      });
      const client = new ws.WebSocket(url);
      const out = await clientOutcome(client);
      assert.strictEqual(out.code, 1005);
      assert.deepStrictEqual(seen, {
        same: true,
        reqSocket: true,
        request: true,
        remoteAddress: '127.0.0.1',
        remotePort: seen.remotePort,
        localAddress: '127.0.0.1',
        wsRemote: '127.0.0.1'
      });
      assert.ok(seen.remotePort > 0);
      await close();
    });

    for (const how of ['destroy', 'end']) {
      it(`${name}: socket.${how}() after the upgrade closes the connection (1006 both sides)`, async () => {
        let serverSide;
        const { close, url } = await noServerSetup(lib, {}, (wss, req, socket, head) => {
          wss.handleUpgrade(req, socket, head, (conn) => {
            serverSide = Promise.all([
              withTimeout(once(conn, 'close'), 5000, 'server ws close'),
              withTimeout(once(socket, 'close'), 5000, 'socket close')
            ]);
            socket[how]();
          });
        });
        const out = await clientOutcome(new ws.WebSocket(url));
        assert.strictEqual(out.code, 1006);
        assert.deepStrictEqual(out.errors, []);
        const [[code]] = await serverSide;
        assert.strictEqual(code, 1006);
        await close();
      });
    }

    it(`${name}: bytes written to the socket after the upgrade make the client fail (engine.io)`, async () => {
      const { close, url } = await noServerSetup(lib, {}, (wss, req, socket, head) => {
        wss.handleUpgrade(req, socket, head, () => {
          // what engine.io's abortUpgrade() does
          socket.on('error', () => {});
          if (socket.writable) socket.write('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
          socket.destroy();
        });
      });
      const out = await clientOutcome(new ws.WebSocket(url));
      assert.strictEqual(out.open, true);
      assert.strictEqual(out.errors.length, 1);
      assert.match(out.errors[0], /^Invalid WebSocket frame: /);
      await close();
    });

    it(`${name}: a second handleUpgrade() with the same socket throws ws's error`, async () => {
      let thrown;
      const { close, url } = await noServerSetup(lib, {}, (wss, req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (conn) => {
          try {
            wss.handleUpgrade(req, socket, head, () => {});
          } catch (err) {
            thrown = err;
          }
          conn.close(1000);
        });
      });
      const out = await clientOutcome(new ws.WebSocket(url));
      assert.strictEqual(out.code, 1000);
      assert.ok(thrown instanceof Error);
      assert.strictEqual(
        thrown.message,
        'server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration'
      );
      await close();
    });

    it(`${name}: a socket already ended or destroyed is not upgraded, and destroyed`, async () => {
      let called = false;
      const { close, url } = await noServerSetup(lib, {}, (wss, req, socket, head) => {
        socket.end();
        wss.handleUpgrade(req, socket, head, () => (called = true));
      });
      const out = await clientOutcome(new ws.WebSocket(url));
      assert.strictEqual(out.open, false);
      assert.strictEqual(called, false);
      await close();
    });
  }

  // wirehub only: a hook that throws after the socket went to the engine
  // (ws lets the exception out of handleUpgrade() and leaves the socket
  // hanging) is answered 500 by the engine; the kept socket closes with it,
  // so the http server can close.
  it('wirehub: a handshake the engine refuses after adoption closes the kept socket', async () => {
    let closed = false;
    const { wss, close, url } = await noServerSetup(
      wirehub,
      { handleProtocols: () => { throw new Error('refused'); } },
      (wss, req, socket, head) => {
        socket.on('close', () => (closed = true));
        wss.handleUpgrade(req, socket, head, () => assert.fail('connected'));
      }
    );
    const errors = [];
    wss.on('error', (err) => errors.push(err.message));
    const client = new ws.WebSocket(url, ['p']);
    client.on('error', () => {});
    const [, res] = await withTimeout(once(client, 'unexpected-response'));
    assert.strictEqual(res.statusCode, 500);
    client.terminate();
    await withTimeout(new Promise((resolve) => {
      const t = setInterval(() => closed && (clearInterval(t), resolve()), 10);
    }), 5000, 'kept socket close');
    assert.deepStrictEqual(errors, ['refused']);
    await close();
  });
});
