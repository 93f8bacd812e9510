'use strict';
// ws.md, the server's life: "Event: 'error'" (the listening server's
// errors), "server.address()" and "server.close([callback])". The same
// checks run against ws (the reference) and wirehub.
const { describe, it } = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const ws = require('ws');
const { withTimeout } = require('./helpers');
const { impls, makeServer } = require('./ws-server-helpers');

const listening = async (lib) => (await makeServer(lib, 'port')).wss;

function pick(err, keys) {
  const out = {};
  for (const k of keys) out[k] = err[k];
  return out;
}

describe("Event: 'error'", () => {
  for (const [name, lib] of impls) {
    it(`${name}: a port in use gives Node's EADDRINUSE error`, async () => {
      const first = await listening(lib);
      const port = first.address().port;
      const second = new lib.WebSocketServer({ port, host: '127.0.0.1' });
      const [err] = await withTimeout(once(second, 'error'));
      assert.deepStrictEqual(pick(err, ['message', 'code', 'errno', 'syscall', 'address', 'port']), {
        message: `listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
        code: 'EADDRINUSE',
        errno: -98,
        syscall: 'listen',
        address: '127.0.0.1',
        port
      });
      await withTimeout(new Promise((resolve) => first.close(resolve)));
    });

    it(`${name}: a host that does not resolve gives Node's ENOTFOUND error`, async () => {
      const wss = new lib.WebSocketServer({ port: 0, host: 'nonexistent.invalid' });
      const [err] = await withTimeout(once(wss, 'error'), 15000, 'error');
      assert.deepStrictEqual(pick(err, ['message', 'code', 'syscall', 'hostname']), {
        message: 'getaddrinfo ENOTFOUND nonexistent.invalid',
        code: 'ENOTFOUND',
        syscall: 'getaddrinfo',
        hostname: 'nonexistent.invalid'
      });
    });
  }
});

describe('server.address()', () => {
  for (const [name, lib] of impls) {
    it(`${name}: the bound address while listening, null once closed; noServer throws`, async () => {
      const wss = await listening(lib);
      const addr = wss.address();
      assert.deepStrictEqual(addr, { address: '127.0.0.1', family: 'IPv4', port: addr.port });
      assert.ok(addr.port > 0);
      await withTimeout(new Promise((resolve) => wss.close(resolve)));
      assert.strictEqual(wss.address(), null);
      const detached = new lib.WebSocketServer({ noServer: true });
      assert.throws(() => detached.address(), { message: 'The server is operating in "noServer" mode' });
    });
  }
});

describe('server.close([callback])', () => {
  for (const [name, lib] of impls) {
    it(`${name}: open connections are left alone; 'close' comes after the last one`, async () => {
      const wss = await listening(lib);
      const port = wss.address().port;
      const client = new ws.WebSocket(`ws://127.0.0.1:${port}`);
      const [[conn]] = await Promise.all([withTimeout(once(wss, 'connection')), withTimeout(once(client, 'open'))]);
      let closed = 0;
      wss.close(() => closed++);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.strictEqual(closed, 0);
      assert.strictEqual(conn.readyState, lib.WebSocket.OPEN);
      assert.strictEqual(wss.clients.size, 1);
      // the port is released at once
      const late = new ws.WebSocket(`ws://127.0.0.1:${port}`);
      const [err] = await withTimeout(once(late, 'error'));
      assert.strictEqual(err.code, 'ECONNREFUSED');
      conn.send('bye');
      const [msg] = await withTimeout(once(client, 'message'));
      assert.strictEqual(String(msg), 'bye');
      client.close();
      await withTimeout(once(conn, 'close'));
      await withTimeout(new Promise((resolve) => {
        const t = setInterval(() => closed && (clearInterval(t), resolve()), 10);
      }));
      assert.strictEqual(closed, 1);
      const [again] = await withTimeout(new Promise((resolve) => wss.close((e) => resolve([e]))));
      assert.ok(again instanceof Error);
      assert.strictEqual(again.message, 'The server is not running');
    });
  }
});
