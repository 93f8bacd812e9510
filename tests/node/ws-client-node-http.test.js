'use strict';
// new WebSocket(address, protocols, options): the options ws passes to
// http.request (agent, createConnection, lookup, finishRequest). With them
// the opening handshake goes through Node's http, as in ws, and the upgraded
// socket is handed to the engine (wh_client_adopt). Each case runs against
// ws and wirehub, with ws's server on the other end.
const { describe, test } = require('node:test');
const assert = require('assert');
const http = require('http');
const net = require('net');
const { Duplex } = require('stream');
const ws = require('ws');
const { withTimeout } = require('./helpers');
const { impls } = require('./ws-client-helpers');

// ws's echo server, recording each upgrade request's headers.
async function echoServer() {
  const requests = [];
  const wss = new ws.WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (sock, req) => {
    requests.push(req.headers);
    sock.on('message', (m, isBinary) => sock.send(m, { binary: isBinary }));
  });
  await new Promise((r) => wss.once('listening', r));
  return { wss, requests, port: wss.address().port, close: () => new Promise((r) => wss.close(r)) };
}

// A TCP relay standing in for a proxy: every byte goes through it.
async function relay(targetPort) {
  const seen = { connections: 0, bytes: 0 };
  const sockets = new Set();
  const server = net.createServer((c) => {
    seen.connections++;
    const up = net.connect(targetPort, '127.0.0.1');
    sockets.add(c).add(up);
    c.on('data', (d) => {
      seen.bytes += d.length;
      up.write(d);
    });
    up.on('data', (d) => {
      seen.bytes += d.length;
      c.write(d);
    });
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    seen,
    port: server.address().port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    }
  };
}

async function echoOnce(client, text = 'through node http') {
  await withTimeout(new Promise((r, j) => {
    client.once('open', r);
    client.once('error', j);
  }), 5000, 'open');
  client.send(text);
  const [data] = await withTimeout(new Promise((r) => client.once('message', (...a) => r(a))), 5000, 'message');
  return String(data);
}

async function closed(client) {
  if (client.readyState === 3) return;
  await withTimeout(new Promise((r) => client.once('close', r)), 5000, 'close');
}

describe('new WebSocket(address, protocols, options): http.request options', () => {
  for (const [name, lib] of impls) {
    test(`${name}: an agent carries the handshake, the connection then echoes`, async () => {
      const srv = await echoServer();
      const prox = await relay(srv.port);
      // An agent that dials the relay instead of the target: what a proxy agent does.
      class RelayAgent extends http.Agent {
        createConnection(options, cb) {
          return net.connect(prox.port, '127.0.0.1', cb);
        }
      }
      const client = new lib.WebSocket(`ws://127.0.0.1:${srv.port}/chat`, { agent: new RelayAgent() });
      assert.strictEqual(await echoOnce(client), 'through node http');
      assert.strictEqual(prox.seen.connections, 1);
      assert.ok(prox.seen.bytes > 200, 'the handshake and the frames went through the relay');
      // The agent's socket is the connection's (wirehub: handed to the engine).
      const k = client._socket;
      assert.deepStrictEqual([k.remoteAddress, k.remotePort, k.remoteFamily], ['127.0.0.1', prox.port, 'IPv4']);
      assert.deepStrictEqual([k.localAddress, k.localFamily], ['127.0.0.1', 'IPv4']);
      assert.strictEqual(typeof k.localPort, 'number');
      client.close();
      await closed(client);
      assert.deepStrictEqual([k.localAddress, k.localPort, k.localFamily], [undefined, undefined, undefined]);
      prox.close();
      await srv.close();
    });

    test(`${name}: createConnection and lookup are called`, async () => {
      const srv = await echoServer();
      let created = 0;
      let looked = 0;
      const client = new lib.WebSocket(`ws://localhost:${srv.port}/`, {
        createConnection: (options) => {
          created++;
          return net.connect(options);
        },
        lookup: (host, options, cb) => {
          looked++;
          if (options && options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
          else cb(null, '127.0.0.1', 4);
        }
      });
      assert.strictEqual(await echoOnce(client), 'through node http');
      assert.strictEqual(created, 1);
      assert.ok(looked >= 1, 'lookup was used to resolve localhost');
      client.close();
      await closed(client);
      await srv.close();
    });

    test(`${name}: createConnection returning a Duplex without a descriptor`, async () => {
      const srv = await echoServer();
      // A tunnel of the user's: a stream over a TCP socket, with no handle
      // of its own (the engine gets it through a socketpair bridge).
      const tunnel = () => {
        const s = net.connect(srv.port, '127.0.0.1');
        const d = new Duplex({
          read() {
            s.resume();
          },
          write(chunk, encoding, cb) {
            s.write(chunk, cb);
          },
          final(cb) {
            s.end();
            cb();
          },
          destroy(err, cb) {
            s.destroy();
            cb(err);
          }
        });
        s.on('data', (b) => {
          if (!d.push(b)) s.pause();
        });
        s.on('end', () => d.push(null));
        s.on('error', (err) => d.destroy(err));
        return d;
      };
      const client = new lib.WebSocket(`ws://127.0.0.1:${srv.port}/`, { createConnection: tunnel });
      assert.strictEqual(await echoOnce(client), 'through node http');
      const serverClosed = new Promise((r) => [...srv.wss.clients][0].once('close', (code, reason) => r([code, String(reason)])));
      client.close(4000, 'tunnel done');
      await closed(client);
      assert.deepStrictEqual(await withTimeout(serverClosed, 5000, 'server close'), [4000, 'tunnel done']);
      await srv.close();
    });

    test(`${name}: finishRequest gets the ClientRequest and sends it`, async () => {
      const srv = await echoServer();
      let seen;
      let owner;
      const client = new lib.WebSocket(`ws://127.0.0.1:${srv.port}/`, {
        finishRequest: (req, socketOwner) => {
          owner = socketOwner;
          seen = { isClientRequest: req instanceof http.ClientRequest, owner: socketOwner instanceof lib.WebSocket };
          req.setHeader('X-Late', 'set at the last minute');
          req.end();
        }
      });
      assert.strictEqual(await echoOnce(client), 'through node http');
      assert.deepStrictEqual(seen, { isClientRequest: true, owner: true });
      assert.strictEqual(owner, client);
      assert.strictEqual(srv.requests[0]['x-late'], 'set at the last minute');
      client.close();
      await closed(client);
      await srv.close();
    });

    test(`${name}: protocolVersion 8 sends version 8 and Sec-WebSocket-Origin`, async () => {
      const srv = await echoServer();
      const client = new lib.WebSocket(`ws://127.0.0.1:${srv.port}/`, { protocolVersion: 8, origin: 'http://o.test' });
      assert.strictEqual(await echoOnce(client), 'through node http');
      assert.strictEqual(srv.requests[0]['sec-websocket-version'], '8');
      assert.strictEqual(srv.requests[0]['sec-websocket-origin'], 'http://o.test');
      assert.strictEqual(srv.requests[0].origin, undefined);
      client.close();
      await closed(client);
      await srv.close();
    });

    test(`${name}: 'upgrade' gets Node's IncomingMessage`, async () => {
      const srv = await echoServer();
      const client = new lib.WebSocket(`ws://127.0.0.1:${srv.port}/`, { agent: new http.Agent() });
      const opened = new Promise((r) => client.once('open', r));
      const [res, state] = await withTimeout(
        new Promise((r) => client.once('upgrade', (x) => r([x, client.readyState]))),
        5000,
        'upgrade'
      );
      assert.ok(res instanceof http.IncomingMessage);
      assert.strictEqual(res.statusCode, 101);
      assert.strictEqual(state, 0, "'upgrade' comes while CONNECTING");
      await withTimeout(opened, 5000, 'open');
      client.close();
      await closed(client);
      await srv.close();
    });

    test(`${name}: 'unexpected-response' gets Node's objects and waits for the listener to abort`, async () => {
      const server = http.createServer((req, res) => {
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        res.end('no');
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const client = new lib.WebSocket(`ws://127.0.0.1:${server.address().port}/`, { agent: new http.Agent() });
      const errors = [];
      client.on('error', (e) => errors.push(e.message));
      const [req, res] = await withTimeout(
        new Promise((r) => client.once('unexpected-response', (...a) => r(a))),
        5000,
        'unexpected-response'
      );
      assert.ok(req instanceof http.ClientRequest);
      assert.ok(res instanceof http.IncomingMessage);
      assert.strictEqual(res.statusCode, 403);
      await new Promise((r) => setTimeout(r, 50));
      assert.strictEqual(client.readyState, 0, 'still CONNECTING until the listener aborts');
      client.terminate();
      await closed(client);
      assert.deepStrictEqual(errors, ['WebSocket was closed before the connection was established']);
      server.close();
    });

    test(`${name}: without a listener an unexpected status is an error`, async () => {
      const server = http.createServer((req, res) => {
        res.writeHead(500);
        res.end();
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const client = new lib.WebSocket(`ws://127.0.0.1:${server.address().port}/`, { agent: new http.Agent() });
      const err = await withTimeout(new Promise((r) => client.once('error', r)), 5000, 'error');
      assert.strictEqual(err.message, 'Unexpected server response: 500');
      await closed(client);
      server.close();
    });
  }
});
