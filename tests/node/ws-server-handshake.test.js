'use strict';
// ws.md, the server's handshake: what a refused upgrade is answered
// ('wsClientError' and its default answers), and the request the hooks and
// events get. Each check runs against ws (the reference) and wirehub, for a
// server on its own port and for noServer + handleUpgrade().
const { describe, it } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const { once } = require('node:events');
const ws = require('ws');
const { withTimeout } = require('./helpers');
const helpers = require('./ws-server-helpers');
const { impls, upgradeHeaders, makeServer } = helpers;

// Sends `text` and resolves with the answer: the status line of a 101, or
// everything until the server closed (its Date header removed).
const exchange = (port, text) => helpers.exchange(port, text, { at101: true });

// A request for /chat?room=1 as it goes on the wire.
const request = (method, headers) => helpers.request(method, headers, '/chat?room=1');

// ws's answer to a refused upgrade (lib/websocket-server.js abortHandshake)
function wsRefusal(code, message, extra = '') {
  return (
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\nConnection: close\r\nContent-Type: text/html\r\n` +
    `Content-Length: ${Buffer.byteLength(message)}\r\n${extra}\r\n${message}`
  );
}

// Same status line, headers and body, whatever the headers' order.
function sameAnswer(actual, expected) {
  const split = (t) => {
    const end = t.indexOf('\r\n\r\n');
    const [status, ...headers] = t.slice(0, end).split('\r\n');
    return { status, headers: headers.sort(), body: t.slice(end + 4) };
  };
  assert.deepStrictEqual(split(actual), split(expected));
}

const refusals = [
  ['a method other than GET', request('POST', upgradeHeaders({ 'Content-Length': '0' })), 405, 'Invalid HTTP method'],
  [
    'an Upgrade other than websocket',
    request('GET', upgradeHeaders({ Upgrade: 'h2c' })),
    400,
    'Invalid Upgrade header'
  ],
  [
    'no Sec-WebSocket-Key',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Key': undefined })),
    400,
    'Missing or invalid Sec-WebSocket-Key header'
  ],
  [
    'a key that is not 16 bytes of base64',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Key': 'c2hvcnQ=' })),
    400,
    'Missing or invalid Sec-WebSocket-Key header'
  ],
  [
    'version 12',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Version': '12' })),
    400,
    'Missing or invalid Sec-WebSocket-Version header',
    'Sec-WebSocket-Version: 13, 8\r\n'
  ],
  [
    'no version',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Version': undefined })),
    400,
    'Missing or invalid Sec-WebSocket-Version header',
    'Sec-WebSocket-Version: 13, 8\r\n'
  ],
  [
    'a malformed Sec-WebSocket-Protocol',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Protocol': 'a,,b' })),
    400,
    'Invalid Sec-WebSocket-Protocol header'
  ],
  [
    'a duplicated subprotocol',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Protocol': 'a, a' })),
    400,
    'Invalid Sec-WebSocket-Protocol header'
  ],
  [
    'an unknown permessage-deflate parameter',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Extensions': 'permessage-deflate; bogus' })),
    400,
    'Invalid or unacceptable Sec-WebSocket-Extensions header'
  ],
  [
    'server_max_window_bits=7',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=7' })),
    400,
    'Invalid or unacceptable Sec-WebSocket-Extensions header'
  ],
  [
    'a malformed extensions header',
    request('GET', upgradeHeaders({ 'Sec-WebSocket-Extensions': 'permessage-deflate;' })),
    400,
    'Invalid or unacceptable Sec-WebSocket-Extensions header'
  ]
];

describe("Event: 'wsClientError'", () => {
  for (const [name, lib] of impls) {
    for (const mode of ['port', 'noServer']) {
      it(`${name} (${mode}): refused upgrades get ws's answers`, async () => {
        const srv = await makeServer(lib, mode, { perMessageDeflate: true });
        for (const [what, text, code, message, extra] of refusals) {
          const answer = await exchange(srv.port, text);
          if (mode === 'noServer') assert.strictEqual(answer, wsRefusal(code, message, extra), what);
          else sameAnswer(answer, wsRefusal(code, message, extra));
        }
        await srv.close();
      });

      // The engine writes Connection and Content-Length before the host's
      // headers; ws writes Content-Type between them.
      const orderTodo = false;
      it(`${name} (${mode}): byte for byte`, { todo: orderTodo }, async () => {
        const srv = await makeServer(lib, mode, { perMessageDeflate: true });
        try {
          const [, text, code, message] = refusals[0];
          assert.strictEqual(await exchange(srv.port, text), wsRefusal(code, message));
        } finally {
          await srv.close();
        }
      });

      const plainTodo = false;
      it(`${name} (${mode}): a request without Upgrade gets 426 Upgrade Required`, { todo: plainTodo }, async () => {
        const srv = await makeServer(lib, mode);
        try {
          const answer = await exchange(srv.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
          assert.match(answer, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
          assert.match(answer, /\r\nContent-Type: text\/plain\r\n/);
          assert.ok(answer.endsWith('\r\n\r\nUpgrade Required'), JSON.stringify(answer));
        } finally {
          await srv.close();
        }
      });

      it(`${name} (${mode}): with a listener, the error and the socket go to it`, async () => {
        const srv = await makeServer(lib, mode);
        const seen = [];
        srv.wss.on('wsClientError', (err, socket, req) => {
          seen.push([err.message, req.method, typeof socket.write]);
          socket.end('HTTP/1.1 418 I\'m a Teapot\r\nX-Mine: 1\r\nContent-Length: 3\r\n\r\ntea');
        });
        const answer = await exchange(srv.port, request('GET', upgradeHeaders({ 'Sec-WebSocket-Version': '7' })));
        assert.match(answer, /^HTTP\/1\.1 418 /);
        assert.match(answer, /\r\nX-Mine: 1\r\n/);
        assert.ok(answer.endsWith('\r\n\r\ntea'));
        assert.deepStrictEqual(seen, [['Missing or invalid Sec-WebSocket-Version header', 'GET', 'function']]);
        await srv.close();
      });

      it(`${name} (${mode}): versions 8 and 13 are accepted, verifyClient sees both`, async () => {
        const versions = [];
        const origins = [];
        const srv = await makeServer(lib, mode, {
          verifyClient: (info) => {
            versions.push(info.req.headers['sec-websocket-version']);
            origins.push(info.origin);
            return true;
          }
        });
        srv.wss.on('connection', (conn) => conn.terminate());
        const v13 = request('GET', upgradeHeaders({ Origin: 'http://o13' }));
        const v8 = request(
          'GET',
          upgradeHeaders({ 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Origin': 'http://o8' })
        );
        assert.strictEqual(await exchange(srv.port, v13), 'HTTP/1.1 101 Switching Protocols');
        assert.strictEqual(await exchange(srv.port, v8), 'HTTP/1.1 101 Switching Protocols');
        assert.deepStrictEqual(versions, ['13', '8']);
        assert.deepStrictEqual(origins, ['http://o13', 'http://o8']);
        await srv.close();
      });
    }
  }
});

describe("Event: 'connection'", () => {
  for (const [name, lib] of impls) {
    for (const mode of ['port', 'noServer']) {
      it(`${name} (${mode}): request is an http.IncomingMessage, the same in every hook`, async () => {
        const reqs = {};
        const srv = await makeServer(lib, mode, {
          verifyClient: (info) => {
            reqs.verifyClient = info.req;
            return true;
          },
          handleProtocols: (protocols, req) => {
            reqs.handleProtocols = req;
            return protocols.values().next().value;
          }
        });
        srv.wss.on('headers', (headers, req) => (reqs.headers = req));
        const client = new ws.WebSocket(`ws://127.0.0.1:${srv.port}/chat?room=1`, ['p1', 'p2'], {
          headers: { 'X-Custom': 'yes', Cookie: 'a=1' }
        });
        const [[conn, req]] = await Promise.all([
          withTimeout(once(srv.wss, 'connection')),
          withTimeout(once(client, 'open'))
        ]);
        assert.ok(req instanceof http.IncomingMessage);
        assert.strictEqual(reqs.verifyClient, req);
        assert.strictEqual(reqs.handleProtocols, req);
        assert.strictEqual(reqs.headers, req);
        assert.strictEqual(req.method, 'GET');
        assert.strictEqual(req.url, '/chat?room=1');
        assert.strictEqual(req.httpVersion, '1.1');
        assert.strictEqual(req.headers['x-custom'], 'yes');
        assert.strictEqual(req.headers.cookie, 'a=1');
        assert.strictEqual(req.headers['sec-websocket-protocol'], 'p1,p2');
        assert.ok(req.rawHeaders.includes('X-Custom'));
        assert.ok(req.socket instanceof net.Socket);
        assert.strictEqual(req.socket.remoteAddress, '127.0.0.1');
        assert.strictEqual(req.socket.remoteFamily, 'IPv4');
        assert.strictEqual(req.socket.remotePort, client._socket.localPort);
        assert.strictEqual(conn._socket.remoteAddress, '127.0.0.1');
        assert.strictEqual(conn.protocol, 'p1');
        client.close();
        await withTimeout(once(conn, 'close'));
        await srv.close();
      });

      for (const how of ['destroy', 'end', 'write']) {
        it(`${name} (${mode}): request.socket.${how}() acts on the connection`, async () => {
          const srv = await makeServer(lib, mode);
          let serverSide;
          srv.wss.on('connection', (conn, req) => {
            const socket = req.socket;
            serverSide = Promise.all([withTimeout(once(conn, 'close')), withTimeout(once(socket, 'close'))]);
            if (how === 'write') {
              socket.write('HTTP/1.1 400 Bad Request\r\n\r\n');
              socket.destroy();
            } else {
              socket[how]();
            }
          });
          const client = new ws.WebSocket(`ws://127.0.0.1:${srv.port}`);
          const errors = [];
          client.on('error', (err) => errors.push(err.message));
          // (events.once would reject on the client's 'error')
          const code = await withTimeout(new Promise((resolve) => client.on('close', resolve)));
          assert.strictEqual(code, 1006);
          if (how === 'write') {
            assert.strictEqual(errors.length, 1);
            assert.match(errors[0], /^Invalid WebSocket frame: /);
          } else {
            assert.deepStrictEqual(errors, []);
          }
          await serverSide;
          await srv.close();
        });
      }
    }
  }
});
