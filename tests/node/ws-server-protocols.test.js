'use strict';
// ws.md, "new WebSocketServer(options[, callback])" (handleProtocols) and
// "Event: 'headers'": what the 101 carries. Run against ws (the reference)
// and wirehub, for a server on its own port and for noServer.
const { describe, it } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const ws = require('ws');
const { withTimeout } = require('./helpers');
const { impls, makeServer } = require('./ws-server-helpers');

// Connects with ws's client; resolves with the 101's headers, the agreed
// protocol and the client's error, if any, once it closed.
function handshake(url, protocols) {
  return withTimeout(new Promise((resolve) => {
    const client = new ws.WebSocket(url, protocols);
    const out = { headers: null, protocol: null, error: null };
    client.on('upgrade', (res) => (out.headers = res.headers));
    client.on('open', () => {
      out.protocol = client.protocol;
      client.close();
    });
    client.on('error', (err) => (out.error = err.message));
    client.on('close', () => resolve(out));
  }), 5000, 'handshake');
}

describe('new WebSocketServer(options[, callback]): handleProtocols', () => {
  for (const [name, lib] of impls) {
    for (const mode of ['port', 'noServer']) {
      it(`${name} (${mode}): without it the first offered protocol is chosen`, async () => {
        const srv = await makeServer(lib, mode);
        const out = await handshake(srv.url, ['b', 'a']);
        assert.strictEqual(out.protocol, 'b');
        assert.strictEqual(out.headers['sec-websocket-protocol'], 'b');
        await srv.close();
      });

      it(`${name} (${mode}): it gets the offered Set and the request; false sends no protocol`, async () => {
        const calls = [];
        const srv = await makeServer(lib, mode, {
          handleProtocols: (protocols, req) => {
            calls.push([[...protocols], req instanceof http.IncomingMessage]);
            return protocols.has('pick') ? 'pick' : false;
          }
        });
        const picked = await handshake(srv.url, ['x', 'pick']);
        assert.strictEqual(picked.protocol, 'pick');
        const none = await handshake(srv.url, ['x']);
        assert.strictEqual(none.headers['sec-websocket-protocol'], undefined);
        assert.strictEqual(none.error, 'Server sent no subprotocol');
        // not called when nothing is offered
        await handshake(srv.url);
        assert.deepStrictEqual(calls, [[['x', 'pick'], true], [['x'], true]]);
        await srv.close();
      });

      it(`${name} (${mode}): a protocol the client did not offer is sent; the client fails`, async () => {
        const srv = await makeServer(lib, mode, { handleProtocols: () => 'other' });
        const out = await handshake(srv.url, ['mine']);
        assert.strictEqual(out.error, 'Server sent an invalid subprotocol');
        assert.strictEqual(out.headers['sec-websocket-protocol'], 'other');
        await srv.close();
      });
    }
  }
});

describe("Event: 'headers'", () => {
  for (const [name, lib] of impls) {
    for (const mode of ['port', 'noServer']) {
      it(`${name} (${mode}): lines pushed by a listener are sent with the 101`, async () => {
        const srv = await makeServer(lib, mode);
        let seen;
        srv.wss.on('headers', (headers, req) => {
          seen = [headers.slice(0, 3), /^Sec-WebSocket-Accept: /.test(headers[3]), req instanceof http.IncomingMessage];
          headers.push('Set-Cookie: a=1', 'Set-Cookie: b=2', 'X-Server: test');
        });
        const out = await handshake(srv.url);
        assert.deepStrictEqual(seen, [
          ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade'],
          true,
          true
        ]);
        assert.deepStrictEqual(out.headers['set-cookie'], ['a=1', 'b=2']);
        assert.strictEqual(out.headers['x-server'], 'test');
        await srv.close();
      });
    }
  }
});
