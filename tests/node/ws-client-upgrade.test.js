'use strict';
// The client's 'upgrade' and 'unexpected-response' events as ws 8 emits
// them: 'upgrade' comes while CONNECTING, with the server's 101, before ws
// checks the answer; close() or terminate() there abort the handshake.
const { describe, test } = require('node:test');
const assert = require('assert');
const http = require('http');
const net = require('net');
const ws = require('ws');
const { withTimeout, listen, closeServer } = require('./helpers');
const { rawServer, trace, impls } = require('./ws-client-helpers');

const badAccept = () => 'HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n';

describe("Event: 'upgrade'", () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: a 101 ws refuses: 'upgrade' first, then the error`, async () => {
      const srv = await rawServer(badAccept);
      const events = await trace(WebSocket, srv.url);
      srv.close();
      assert.deepStrictEqual(events, [
        ['upgrade', WebSocket.CONNECTING, 101],
        ['error', 'Invalid Sec-WebSocket-Accept header', undefined, WebSocket.CLOSING],
        ['close', 1006]
      ]);
    });

    test(`${name}: comes while CONNECTING with the server's 101 headers, before 'open'`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer);
      wss.on('headers', (headers) => headers.push('Set-Cookie: a=1'));
      let seen;
      const events = await trace(WebSocket, url, [], {}, (client, res) => {
        seen = {
          cookie: res.headers['set-cookie'],
          accept: typeof res.headers['sec-websocket-accept'],
          node: res instanceof http.IncomingMessage
        };
        assert.throws(() => client.send('x'), { message: 'WebSocket is not open: readyState 0 (CONNECTING)' });
      });
      assert.deepStrictEqual(seen, { cookie: ['a=1'], accept: 'string', node: true });
      assert.deepStrictEqual(events.slice(0, 2), [['upgrade', WebSocket.CONNECTING, 101], ['open']]);
      await closeServer(wss);
    });

    test(`${name}: the response's statusMessage is the server's own text`, async () => {
      const { accept } = require('./ws-client-helpers');
      for (const [line, want] of [['101 Switching Protocols', 'Switching Protocols'], ['101 Go Ahead', 'Go Ahead'], ['101 ', '']]) {
        const srv = await rawServer(
          (key) => `HTTP/1.1 ${line}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`
        );
        let text;
        await trace(WebSocket, srv.url, [], {}, (client, res) => {
          text = res.statusMessage;
        });
        srv.close();
        assert.strictEqual(text, want, line);
      }
    });

    for (const how of ['close', 'terminate']) {
      test(`${name}: ${how}() in 'upgrade' aborts the handshake: no 'open'`, async () => {
        const { wss, url } = await listen(WebSocket.WebSocketServer);
        const serverSide = new Promise((resolve) =>
          wss.on('connection', (s) => {
            s.on('error', () => {});
            s.on('close', (code) => resolve(code));
          })
        );
        const events = await trace(WebSocket, url, [], {}, (client) => {
          client[how]();
          assert.strictEqual(client.readyState, WebSocket.CLOSING);
        });
        assert.deepStrictEqual(events, [
          ['upgrade', WebSocket.CONNECTING, 101],
          ['error', 'WebSocket was closed before the connection was established', undefined, WebSocket.CLOSING],
          ['close', 1006]
        ]);
        assert.strictEqual(await withTimeout(serverSide), 1006);
        await closeServer(wss);
      });

      test(`${name}: ${how}() in 'upgrade' of a 101 ws refuses: only the abort error`, async () => {
        const srv = await rawServer(badAccept);
        const events = await trace(WebSocket, srv.url, [], {}, (client) => client[how]());
        srv.close();
        assert.deepStrictEqual(events, [
          ['upgrade', WebSocket.CONNECTING, 101],
          ['error', 'WebSocket was closed before the connection was established', undefined, WebSocket.CLOSING],
          ['close', 1006]
        ]);
      });
    }
  }
});

describe("Event: 'unexpected-response'", () => {
  // ws keeps the socket CONNECTING after the event until the listener aborts
  // it; close() or terminate() then give ws's error and 'close'.
  async function abortFromListener(WebSocket) {
    const srv = await rawServer(() => 'HTTP/1.1 401 Unauthorized\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello');
    const client = new WebSocket(srv.url);
    const events = [];
    client.on('error', (err) => events.push(['error', err.message, client.readyState]));
    const closed = new Promise((resolve) => client.on('close', resolve));
    const [, res] = await withTimeout(
      new Promise((resolve) =>
        client.on('unexpected-response', (req, r) => {
          events.push(['unexpected-response', r.statusCode, r.headers['x-a'], client.readyState,
            r instanceof http.IncomingMessage, r.statusMessage, r.httpVersion]);
          resolve([req, r]);
        })
      )
    );
    let body = '';
    for await (const chunk of res) body += chunk;
    events.push(['body', body, client.readyState]);
    client.close();
    events.push(['close() returned', client.readyState]);
    events.push(['close', await withTimeout(closed)]);
    srv.close();
    return events;
  }

  for (const [name, WebSocket] of impls) {
    for (const how of ['close', 'terminate']) {
      test(`${name}: CONNECTING in the listener; ${how}() there aborts with ws's error`, async () => {
        const srv = await rawServer(() => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        const client = new WebSocket(srv.url);
        const events = [];
        client.on('unexpected-response', (req, res) => {
          events.push(['unexpected-response', res.statusCode, client.readyState, typeof req.getHeader]);
          client[how]();
          events.push([`${how}() returned`, client.readyState]);
        });
        client.on('open', () => events.push(['open']));
        client.on('error', (err) => events.push(['error', err.message, client.readyState]));
        const code = await withTimeout(new Promise((resolve) => client.on('close', resolve)));
        events.push(['close', code]);
        srv.close();
        assert.deepStrictEqual(events, [
          ['unexpected-response', 403, WebSocket.CONNECTING, 'function'],
          [`${how}() returned`, WebSocket.CLOSING],
          ['error', 'WebSocket was closed before the connection was established', WebSocket.CLOSING],
          ['close', 1006]
        ]);
      });
    }
  }

  // A server that answers 403 with a body and keeps the socket open; `keys`
  // gets each request's Sec-WebSocket-Key.
  async function refusingServer(keys) {
    const sockets = new Set();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      let head = '';
      s.on('data', (d) => {
        head += d;
        if (!head.includes('\r\n\r\n')) return;
        keys.push(/\r\nSec-WebSocket-Key: *([^\r]*)/i.exec(head)[1]);
        head = '';
        s.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno');
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `ws://127.0.0.1:${server.address().port}/p?q=1`,
      close() {
        for (const s of sockets) s.destroy();
        server.close();
      }
    };
  }

  for (const [name, WebSocket] of impls) {
    test(`${name}: the request is the http.ClientRequest that was sent, tied to the response`, async () => {
      const keys = [];
      const srv = await refusingServer(keys);
      const client = new WebSocket(srv.url, { headers: { 'X-T': 'v' } });
      client.on('error', () => {});
      const [req, res] = await withTimeout(
        new Promise((resolve) => client.on('unexpected-response', (q, r) => resolve([q, r])))
      );
      const seen = {
        node: req instanceof http.ClientRequest,
        method: req.method,
        path: req.path,
        host: req.host,
        protocol: req.protocol,
        custom: req.getHeader('x-t'),
        version: req.getHeader('sec-websocket-version'),
        upgrade: [req.getHeader('connection'), req.getHeader('upgrade')],
        offer: req.getHeader('sec-websocket-extensions'),
        sent: [req.headersSent, req.writableEnded, req.finished, req.destroyed],
        tied: [res.req === req, req.res === res],
        errorListeners: req.listenerCount('error')
      };
      assert.deepStrictEqual(seen, {
        node: true,
        method: 'GET',
        path: '/p?q=1',
        host: '127.0.0.1',
        protocol: 'http:',
        custom: 'v',
        version: 13,
        upgrade: ['Upgrade', 'websocket'],
        offer: 'permessage-deflate; client_max_window_bits',
        sent: [true, true, true, false],
        tied: [true, true],
        errorListeners: 1
      });
      assert.deepStrictEqual(keys, [req.getHeader('sec-websocket-key')], 'the key on the wire is the request\'s');
      client.terminate();
      srv.close();
    });

    for (const how of ['destroy', 'abort', 'terminate']) {
      test(`${name}: ${how}() from the listener: the events in ws's order`, async () => {
        const srv = await refusingServer([]);
        const client = new WebSocket(srv.url);
        const events = [];
        client.on('error', (err) => events.push(`ws error: ${err.message}`));
        client.on('close', (code) => events.push(`ws close ${code}`));
        client.on('unexpected-response', (req, res) => {
          req.on('close', () => events.push('req close'));
          req.on('error', (err) => events.push(`req error: ${err.message}`));
          res.on('close', () => events.push('res close'));
          if (how === 'terminate') client.terminate();
          else req[how]();
          events.push(`${how}() returned: ${client.readyState}, destroyed ${req.destroyed}`);
        });
        await withTimeout(
          new Promise((resolve) => {
            const poll = setInterval(() => {
              if (events.includes('res close')) {
                clearInterval(poll);
                resolve();
              }
            }, 5);
          })
        );
        await new Promise((r) => setTimeout(r, 50));  // nothing more comes
        srv.close();
        client.terminate();
        const closeEvents = events.filter((e) => e.startsWith('ws close'));
        if (how === 'terminate') {
          assert.deepStrictEqual(events, [
            'terminate() returned: 2, destroyed true',
            'ws error: WebSocket was closed before the connection was established',
            'ws close 1006',
            'req close',
            'res close'
          ]);
        } else {
          // the socket stays CONNECTING: only the request and response end
          assert.deepStrictEqual(events.slice(0, 3), [`${how}() returned: 0, destroyed true`, 'req close', 'res close']);
          assert.ok(closeEvents.length <= 1);
        }
      });
    }

    test(`${name}: the response's statusMessage is the server's own text`, async () => {
      for (const [line, want] of [['403 Go Away', 'Go Away'], ['403 ', ''], ['499 Client Closed Request', 'Client Closed Request']]) {
        const srv = await rawServer(() => `HTTP/1.1 ${line}\r\nContent-Length: 0\r\n\r\n`);
        const client = new WebSocket(srv.url);
        client.on('error', () => {});
        const res = await withTimeout(
          new Promise((resolve) => client.on('unexpected-response', (req, r) => resolve(r)))
        );
        client.terminate();
        srv.close();
        assert.deepStrictEqual([res.statusCode, res.statusMessage], [Number(line.slice(0, 3)), want], line);
      }
    });

    test(`${name}: CONNECTING until the listener aborts, then the abort error`, async () => {
      assert.deepStrictEqual(await abortFromListener(WebSocket), [
        ['unexpected-response', 401, '1', ws.CONNECTING, true, 'Unauthorized', '1.1'],
        ['body', 'hello', ws.CONNECTING],
        ['close() returned', ws.CLOSING],
        ['error', 'WebSocket was closed before the connection was established', ws.CLOSING],
        ['close', 1006]
      ]);
    });
  }
});


// The response's socket in 'upgrade' and 'unexpected-response' is, with
// ws, the net.Socket the answer came on: it answers both ends' addresses
// while the listener runs, and after a 101 it is ws._socket.
describe("The socket of the 'upgrade' and 'unexpected-response' responses", () => {
  const ends = (s) => [s.remoteAddress, typeof s.remotePort, s.remoteFamily, s.localAddress, typeof s.localPort, s.localFamily];
  for (const [name, WebSocket] of impls) {
    test(`${name}: a 101's is the connection's socket`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer);
      const client = new WebSocket(url);
      let seen;
      client.on('upgrade', (res) => (seen = res.socket));
      await withTimeout(new Promise((resolve) => client.on('open', resolve)));
      assert.deepStrictEqual(ends(seen), ['127.0.0.1', 'number', 'IPv4', '127.0.0.1', 'number', 'IPv4']);
      assert.strictEqual(seen, client._socket);
      assert.strictEqual(seen.remotePort, Number(new URL(url).port));
      client.terminate();
      await closeServer(wss);
    });

    test(`${name}: a refusal's is the request's, with both ends`, async () => {
      const srv = await rawServer(() => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      const client = new WebSocket(srv.url);
      client.on('error', () => {});
      const [req, res] = await withTimeout(
        new Promise((resolve) => client.on('unexpected-response', (q, r) => resolve([q, r])))
      );
      assert.deepStrictEqual(ends(res.socket), ['127.0.0.1', 'number', 'IPv4', '127.0.0.1', 'number', 'IPv4']);
      assert.strictEqual(res.socket, req.socket);
      client.terminate();
      srv.close();
    });

    test(`${name}: a 101 that fails the checks: both ends in the listener`, async () => {
      const srv = await rawServer(badAccept);
      const client = new WebSocket(srv.url);
      client.on('error', () => {});
      let seen;
      client.on('upgrade', (res) => (seen = ends(res.socket)));
      await withTimeout(new Promise((resolve) => client.on('close', resolve)));
      srv.close();
      assert.deepStrictEqual(seen, ['127.0.0.1', 'number', 'IPv4', '127.0.0.1', 'number', 'IPv4']);
    });
  }
});
