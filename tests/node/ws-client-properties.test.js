'use strict';
// The client's properties as ws 8 has them: enumerable, configurable
// prototype accessors; protocol and extensions empty until 'open' (reading
// them early does not fix them), extensions as names only; ws._socket, the
// net.Socket that user code reads the two ends' addresses from.
const { describe, test } = require('node:test');
const assert = require('assert');
const os = require('os');
const ws = require('ws');
const wirehub = require('../../node');
const { waitFor, listen, closeServer } = require('./helpers');
const { impls } = require('./ws-client-helpers');

const hasIPv6 = Object.values(os.networkInterfaces())
  .flat()
  .some((a) => a.address === '::1');

const accessors = ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url'];

describe('WebSocket.prototype accessors', () => {
  test('are enumerable and configurable getters, as in ws', () => {
    for (const name of accessors) {
      const mine = Object.getOwnPropertyDescriptor(wirehub.prototype, name);
      const theirs = Object.getOwnPropertyDescriptor(ws.prototype, name);
      assert.strictEqual(typeof mine.get, 'function', name);
      assert.strictEqual(mine.enumerable, theirs.enumerable, name);
      assert.strictEqual(mine.configurable, theirs.configurable, name);
      assert.strictEqual(typeof mine.set, typeof theirs.set, name);
      assert.strictEqual(mine.enumerable, true, name);
    }
  });
});

describe('websocket.protocol and websocket.extensions', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: empty while CONNECTING (in 'upgrade' too), negotiated once open`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer, { perMessageDeflate: true, handleProtocols: () => 'chat' });
      wss.on('connection', (s) => s.on('error', () => {}));
      const client = new WebSocket(url, ['chat']);
      const seen = [[client.protocol, client.extensions]];
      client.on('upgrade', () => seen.push([client.protocol, client.extensions]));
      await waitFor(client, 'open');
      seen.push([client.protocol, client.extensions]);
      client.close();
      await waitFor(client, 'close');
      seen.push([client.protocol, client.extensions]);
      assert.deepStrictEqual(seen, [
        ['', ''],
        ['', ''],
        ['chat', 'permessage-deflate'],
        ['chat', 'permessage-deflate']
      ]);
      await closeServer(wss);
    });
  }
});

describe('websocket._socket (not documented; read by common user code)', () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: null before 'open'; then the peer's address and port, also after 'close'`, async () => {
      const { wss, url } = await listen(WebSocket.WebSocketServer);
      const port = wss.address().port;
      const server = new Promise((resolve) => wss.on('connection', (s) => resolve(s._socket)));
      const client = new WebSocket(url);
      assert.strictEqual(client._socket, null);
      await waitFor(client, 'open');
      assert.strictEqual(client._socket.remoteAddress, '127.0.0.1');
      assert.strictEqual(client._socket.remotePort, port);
      assert.strictEqual(client._socket.remoteFamily, 'IPv4');
      const peer = await server;
      assert.strictEqual(peer.remoteAddress, '127.0.0.1');
      assert.strictEqual(typeof peer.remotePort, 'number');
      client.close();
      await waitFor(client, 'close');
      assert.strictEqual(client._socket.remoteAddress, '127.0.0.1');
      await closeServer(wss);
    });

    // Each end's own address as Node's net.Socket answers it, and the two
    // families; Node forgets the local end when the socket is destroyed, so
    // after 'close' only the remote one is left.
    const ends = async (host) => {
      const wss = new WebSocket.WebSocketServer({ port: 0, host });
      await waitFor(wss, 'listening');
      const port = wss.address().port;
      const server = new Promise((resolve) => wss.on('connection', (s) => resolve(s)));
      const client = new WebSocket(`ws://${host.includes(':') ? `[${host}]` : host}:${port}`);
      await waitFor(client, 'open');
      const peer = await server;
      const seen = (k) => ({
        localAddress: k.localAddress,
        localPort: k.localPort,
        localFamily: k.localFamily,
        remoteAddress: k.remoteAddress,
        remotePort: k.remotePort,
        remoteFamily: k.remoteFamily
      });
      const open = { client: seen(client._socket), server: seen(peer._socket) };
      const peerClosed = waitFor(peer, 'close');
      client.close();
      await waitFor(client, 'close');
      await peerClosed;
      const closed = { client: seen(client._socket), server: seen(peer._socket) };
      await closeServer(wss);
      return { port, open, closed };
    };
    const expected = ({ port, open }, address, family) => {
      const clientPort = open.client.localPort;
      assert.strictEqual(typeof clientPort, 'number');
      assert.notStrictEqual(clientPort, port);
      const none = { localAddress: undefined, localPort: undefined, localFamily: undefined };
      const client = { remoteAddress: address, remotePort: port, remoteFamily: family };
      const server = { remoteAddress: address, remotePort: clientPort, remoteFamily: family };
      return {
        open: {
          client: { localAddress: address, localPort: clientPort, localFamily: family, ...client },
          server: { localAddress: address, localPort: port, localFamily: family, ...server }
        },
        closed: { client: { ...none, ...client }, server: { ...none, ...server } }
      };
    };

    test(`${name}: localAddress, localPort and localFamily of both ends over IPv4, gone after 'close'`, async () => {
      const r = await ends('127.0.0.1');
      assert.deepStrictEqual({ open: r.open, closed: r.closed }, expected(r, '127.0.0.1', 'IPv4'));
    });

    test(`${name}: the same over IPv6 (::1)`, { skip: !hasIPv6 && 'no IPv6 loopback' }, async () => {
      const r = await ends('::1');
      assert.deepStrictEqual({ open: r.open, closed: r.closed }, expected(r, '::1', 'IPv6'));
    });
  }
});

// A server's view of its connection's ends, in the request's socket and in
// ws._socket, as ws 8 shows them (Node's net.Socket): on its own port with
// the default host ('::', dual stack) an IPv4 peer's ends are IPv4-mapped
// IPv6; on '0.0.0.0' plain IPv4; through { server } Node's own socket. The
// local ones read undefined once the socket is gone.
describe('request.socket and websocket._socket on the server', () => {
  async function ends(WebSocket, how) {
    const out = [];
    let wss;
    let httpServer;
    if (how === 'server') {
      httpServer = require('http').createServer();
      await new Promise((r) => httpServer.listen(0, r));
      wss = new WebSocket.WebSocketServer({ server: httpServer });
    } else {
      wss = new WebSocket.WebSocketServer({ port: 0, host: how === 'default' ? undefined : how });
      await waitFor(wss, 'listening');
    }
    const port = (httpServer || wss).address().port;
    const side = (sock) => [sock.remoteAddress, sock.remoteFamily, sock.localAddress, sock.localFamily, sock.localPort === port];
    const closed = new Promise((resolve) =>
      wss.on('connection', (s, req) => {
        out.push(['request', ...side(req.socket)], ['_socket', ...side(s._socket)]);
        s.on('close', () => {
          out.push(['after close', s._socket.localAddress, req.socket.localAddress, s._socket.remoteAddress]);
          resolve();
        });
        s.close();
      })
    );
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    client.on('error', () => {});
    await closed;
    await closeServer(wss);
    if (httpServer) httpServer.close();
    return out;
  }

  for (const how of ['default', '0.0.0.0', 'server']) {
    test(`${how === 'server' ? '{ server }' : `host ${how}`}: wirehub shows what ws shows`, async () => {
      const want = await ends(ws, how);
      assert.deepStrictEqual(await ends(wirehub, how), want);
      if (how === 'default') assert.strictEqual(want[0][1], '::ffff:127.0.0.1');
    });
  }
});
