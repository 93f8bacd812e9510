'use strict';
// ws.md, "new WebSocketServer(options[, callback])", its verifyClient part:
// refusals, the info object, and a client that half-closes while an async
// verifyClient decides. Run against ws (the reference) and wirehub, for a
// server on its own port and for noServer + handleUpgrade().
const { describe, it } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { impls, upgradeHeaders, request, makeServer, exchange } = require('./ws-server-helpers');

const UPGRADE = request('GET', upgradeHeaders({ Origin: 'http://example.test' }), '/v');

// Writes the upgrade, optionally half-closes after `endAfter` ms; resolves
// with what came back once the server closed the connection.
function rawUpgrade(port, endAfter) {
  const how = endAfter !== undefined ? { endAfter } : { destroyAfter: 1500 };
  return exchange(port, UPGRADE, { ...how, what: 'server closing' });
}

describe('new WebSocketServer(options[, callback]): verifyClient', () => {
  for (const [name, lib] of impls) {
    for (const mode of ['port', 'noServer']) {
      it(`${name} (${mode}): info has origin, secure and req`, async () => {
        let info;
        let remoteAddress;
        const srv = await makeServer(lib, mode, {
          verifyClient: (i) => {
            info = i;
            remoteAddress = i.req.socket.remoteAddress;
            return false;
          }
        });
        const answer = await rawUpgrade(srv.port, 1000);
        assert.match(answer, /^HTTP\/1\.1 401 Unauthorized\r\n/);
        assert.ok(answer.endsWith('\r\n\r\nUnauthorized'));
        assert.deepStrictEqual(Object.keys(info).sort(), ['origin', 'req', 'secure']);
        assert.strictEqual(info.origin, 'http://example.test');
        assert.strictEqual(info.secure, false);
        assert.ok(info.req instanceof http.IncomingMessage);
        assert.strictEqual(info.req.url, '/v');
        assert.strictEqual(remoteAddress, '127.0.0.1');
        await srv.close();
      });

      it(`${name} (${mode}): an async refusal carries its code, message and headers`, async () => {
        const srv = await makeServer(lib, mode, {
          verifyClient: (i, cb) => setTimeout(() => cb(false, 403, 'Not you', { 'Retry-After': 120 }), 20)
        });
        const answer = await rawUpgrade(srv.port, 1000);
        assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
        assert.match(answer, /\r\nRetry-After: 120\r\n/);
        assert.ok(answer.endsWith('\r\n\r\nNot you'));
        await srv.close();
      });

      // ws: completeUpgrade() destroys a socket that is no longer readable or
      // writable, when verifyClient has decided: nothing is written, there is
      // no 'connection' and no 'wsClientError'. (The engine keeps reading
      // while the host decides, and drops the accepted client it saw end.)
      const what = 'a client half-closed during an async verifyClient is dropped, unanswered';
      it(`${name} (${mode}): ${what}`, async () => {
        const seen = [];
        let decided = 0;
        const srv = await makeServer(lib, mode, {
          verifyClient: (i, cb) => setTimeout(() => {
            decided = Date.now();
            cb(true);
          }, 300)
        });
        srv.wss.on('connection', (conn) => {
          seen.push('connection');
          conn.terminate();
        });
        srv.wss.on('wsClientError', (err) => seen.push(`wsClientError: ${err.message}`));
        try {
          const answer = await rawUpgrade(srv.port, 50);
          const closed = Date.now();
          assert.strictEqual(answer, '');
          assert.deepStrictEqual(seen, []);
          assert.ok(decided > 0 && closed >= decided, 'dropped once verifyClient has decided');
        } finally {
          await srv.close();
        }
      });
    }
  }
});
