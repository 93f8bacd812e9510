'use strict';
// new WebSocket('wss://...', options) when Node's TLS carries the
// connection: an `agent` (an HTTP CONNECT proxy), a `createConnection`
// returning tls.connect(...), or a tls.connect option only Node honours
// (pfx, passphrase, checkServerIdentity, secureContext). As in ws, the
// handshake goes through https.request; the engine then runs the
// connection through a socketpair bridged to Node's TLSSocket. Each case
// runs against ws and wirehub, with ws's server over Node's https.
const { describe, test, before, after } = require('node:test');
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const tls = require('tls');
const { execFileSync } = require('child_process');
const { HttpsProxyAgent } = require('https-proxy-agent');
const ws = require('ws');
const wirehub = require('../../node');
const { withTimeout } = require('./helpers');
const { impls } = require('./ws-client-helpers');

let dir;
const pem = {};

function openssl(...args) {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

function selfSigned(name, cn, san) {
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}-cert.pem`);
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', `/CN=${cn}`, ...(san ? ['-addext', `subjectAltName=${san}`] : []));
  pem[name] = { key: fs.readFileSync(key), cert: fs.readFileSync(cert), keyFile: key, certFile: cert };
}

// ws's server over https, echoing; `requestCert` asks each client for a
// certificate signed by (here: equal to) the client's.
async function wssServer({ requestCert = false, onConnection } = {}) {
  const server = https.createServer({
    key: pem.server.key,
    cert: pem.server.cert,
    ...(requestCert ? { requestCert: true, rejectUnauthorized: true, ca: [pem.client.cert] } : {})
  });
  const seen = [];
  const closes = [];
  const wss = new ws.WebSocketServer({ server, maxPayload: 0 });
  wss.on('connection', (sock, req) => {
    const peer = req.socket.getPeerCertificate();
    seen.push({ cn: peer && peer.subject ? peer.subject.CN : undefined, socket: req.socket, headers: req.headers });
    sock.on('close', (code, reason) => closes.push([code, String(reason)]));
    if (onConnection) onConnection(sock, req);
    else sock.on('message', (m, isBinary) => sock.send(m, { binary: isBinary }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    url: `wss://127.0.0.1:${port}/`,
    port,
    seen,
    closes,
    close: () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => server.close(() => r()));
        server.closeAllConnections();
      })
  };
}

// An HTTP CONNECT proxy on 127.0.0.1, recording each CONNECT's target.
async function connectProxy() {
  const connects = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on('connect', (req, client, head) => {
    connects.push(req.url);
    // Every target is on this machine's IPv4 loopback.
    const port = Number(req.url.split(':').pop());
    const up = net.connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(client).add(up);
    for (const [a, b] of [[client, up], [up, client]]) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    port: server.address().port,
    connects,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    }
  };
}

function outcome(client) {
  closeEvent(client).catch(() => {});
  return withTimeout(
    new Promise((resolve) => {
      client.once('open', () => resolve('open'));
      client.once('error', (e) => resolve(`error: ${e.message}`));
    }),
    5000,
    'open or error'
  );
}

const nextMessage = (client) =>
  withTimeout(new Promise((r) => client.once('message', (data, isBinary) => r([data, isBinary]))), 10000, 'message');

// The client's 'close' (code, reason), listened for from the start.
const closes = new WeakMap();
function closeEvent(client) {
  if (!closes.has(client)) {
    closes.set(client, new Promise((r) => client.once('close', (code, reason) => r([code, String(reason)]))));
  }
  return withTimeout(closes.get(client), 10000, 'close');
}

async function until(what, cond) {
  await withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
    })(),
    5000,
    what
  );
}

async function echoes(client, text) {
  client.send(text);
  const [data, isBinary] = await nextMessage(client);
  return [String(data), isBinary];
}

describe("new WebSocket('wss://...', options): through Node's TLS", () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirehub-nodetls-'));
    selfSigned('server', '127.0.0.1', 'IP:127.0.0.1,DNS:localhost');
    selfSigned('client', 'a client');
    // The client's certificate and key in a PKCS#12 file, and its key
    // encrypted in PEM, both under a passphrase.
    const pfx = path.join(dir, 'client.pfx');
    openssl('pkcs12', '-export', '-in', pem.client.certFile, '-inkey', pem.client.keyFile, '-out', pfx,
      '-passout', 'pass:open sesame');
    pem.client.pfx = fs.readFileSync(pfx);
    const enc = path.join(dir, 'client-key-enc.pem');
    openssl('pkey', '-in', pem.client.keyFile, '-aes256', '-passout', 'pass:open sesame', '-out', enc);
    pem.client.encryptedKey = fs.readFileSync(enc);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [name, lib] of impls) {
    test(`${name}: an HTTP CONNECT proxy (https-proxy-agent) carries the connection both ways`, async () => {
      const srv = await wssServer({
        onConnection: (sock) => {
          sock.send('welcome');
          sock.on('message', (m) => sock.send(`echo ${m}`));
        }
      });
      const proxy = await connectProxy();
      const client = new lib.WebSocket(`wss://localhost:${srv.port}/`, {
        agent: new HttpsProxyAgent(proxy.url),
        ca: pem.server.cert
      });
      const first = nextMessage(client);
      assert.strictEqual(await outcome(client), 'open');
      assert.strictEqual(String((await first)[0]), 'welcome');
      assert.deepStrictEqual(await echoes(client, 'through the proxy'), ['echo through the proxy', false]);
      assert.deepStrictEqual(proxy.connects, [`localhost:${srv.port}`]);
      // The socket's peer is the proxy; its own end, the one dialled to it
      // (Node's, kept where the engine runs behind a bridge), until 'close'.
      const { remoteAddress, remotePort, localAddress, localPort, localFamily } = client._socket;
      assert.deepStrictEqual({ remoteAddress, remotePort }, { remoteAddress: '127.0.0.1', remotePort: proxy.port });
      assert.deepStrictEqual({ localAddress, localFamily }, { localAddress: '127.0.0.1', localFamily: 'IPv4' });
      assert.strictEqual(typeof localPort, 'number');
      assert.notStrictEqual(localPort, proxy.port);
      client.close(4001, 'done here');
      assert.deepStrictEqual(await closeEvent(client), [4001, 'done here']);
      assert.deepStrictEqual(
        [client._socket.localAddress, client._socket.localPort, client._socket.localFamily, client._socket.remotePort],
        [undefined, undefined, undefined, proxy.port]
      );
      await until('server close', () => srv.closes.length);
      assert.deepStrictEqual(srv.closes, [[4001, 'done here']]);
      proxy.close();
      await srv.close();
    });

    test(`${name}: createConnection returning tls.connect(...) is used`, async () => {
      const srv = await wssServer();
      const calls = [];
      const client = new lib.WebSocket(srv.url, {
        createConnection: (options) => {
          calls.push([options.host, Number(options.port)]);
          return tls.connect({ host: options.host, port: options.port, ca: pem.server.cert });
        }
      });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await echoes(client, 'over my own tls'), ['over my own tls', false]);
      assert.deepStrictEqual(calls, [['127.0.0.1', srv.port]]);
      client.close();
      assert.deepStrictEqual(await closeEvent(client), [1005, '']);
      await srv.close();
    });

    test(`${name}: pfx and passphrase answer a server that asks for a client certificate`, async () => {
      const srv = await wssServer({ requestCert: true });
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, pfx: pem.client.pfx, passphrase: 'open sesame' });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await echoes(client, 'pkcs12'), ['pkcs12', false]);
      assert.strictEqual(srv.seen[0].cn, 'a client');
      client.close();
      await closeEvent(client);
      await srv.close();
    });

    test(`${name}: an encrypted key with its passphrase`, async () => {
      const srv = await wssServer({ requestCert: true });
      const client = new lib.WebSocket(srv.url, {
        ca: pem.server.cert,
        cert: pem.client.cert,
        key: pem.client.encryptedKey,
        passphrase: 'open sesame'
      });
      assert.strictEqual(await outcome(client), 'open');
      assert.strictEqual(srv.seen[0].cn, 'a client');
      client.close();
      await closeEvent(client);
      await srv.close();
    });

    test(`${name}: checkServerIdentity refusing fails the handshake with its error`, async () => {
      const srv = await wssServer();
      const asked = [];
      const client = new lib.WebSocket(srv.url, {
        ca: pem.server.cert,
        checkServerIdentity: (host, cert) => {
          asked.push([host, cert.subject.CN]);
          return new Error('not the server I expected');
        }
      });
      const events = [];
      client.on('open', () => events.push('open'));
      assert.strictEqual(await outcome(client), 'error: not the server I expected');
      assert.deepStrictEqual(await closeEvent(client), [1006, '']);
      assert.deepStrictEqual(events, []);
      assert.deepStrictEqual(asked, [['127.0.0.1', '127.0.0.1']]);
      assert.strictEqual(srv.seen.length, 0);
      await srv.close();
    });

    test(`${name}: checkServerIdentity accepting lets the connection open`, async () => {
      const srv = await wssServer();
      let asked = 0;
      // A host name the certificate does not name: only the callback decides.
      const client = new lib.WebSocket(srv.url, {
        ca: pem.server.cert,
        servername: 'elsewhere.test',
        checkServerIdentity: () => {
          asked++;
          return undefined;
        }
      });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await echoes(client, 'trusted'), ['trusted', false]);
      assert.strictEqual(asked, 1);
      client.close();
      await closeEvent(client);
      await srv.close();
    });

    test(`${name}: secureContext carries the trust anchors`, async () => {
      const srv = await wssServer();
      const client = new lib.WebSocket(srv.url, { secureContext: tls.createSecureContext({ ca: pem.server.cert }) });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await echoes(client, 'context'), ['context', false]);
      client.close();
      await closeEvent(client);
      const refused = new lib.WebSocket(srv.url, { secureContext: tls.createSecureContext({}) });
      assert.strictEqual(await outcome(refused), 'error: self-signed certificate');
      assert.deepStrictEqual(await closeEvent(refused), [1006, '']);
      await srv.close();
    });

    test(`${name}: the server closing cleanly ends the TLS socket`, async () => {
      const srv = await wssServer({ onConnection: (sock) => sock.close(4002, 'server says bye') });
      const client = new lib.WebSocket(srv.url, { secureContext: tls.createSecureContext({ ca: pem.server.cert }) });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await closeEvent(client), [4002, 'server says bye']);
      const socket = srv.seen[0].socket;
      if (!socket.destroyed) await withTimeout(new Promise((r) => socket.once('close', r)), 5000, 'server socket close');
      await until('server close', () => srv.closes.length);
      assert.deepStrictEqual(srv.closes, [[4002, 'server says bye']]);
      await srv.close();
    });

    test(`${name}: the server dropping the connection mid-stream is 1006 on both sides`, async () => {
      const chunk = Buffer.alloc(64 * 1024, 7);
      const srv = await wssServer({
        onConnection: (sock, req) => {
          // A stream that goes on until the client asks for the drop
          // (at most 1000 messages, 256 KiB in flight).
          let sent = 0;
          const pump = () => {
            if (sock.readyState !== 1 || sent >= 1000) return;
            if (sock.bufferedAmount < 256 * 1024) {
              sock.send(chunk);
              sent++;
            }
            setImmediate(pump);
          };
          pump();
          sock.on('message', () => req.socket.destroy());
        }
      });
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, checkServerIdentity: () => undefined });
      const errors = [];
      let received = 0;
      client.on('error', (e) => errors.push(e.message));
      client.on('message', () => {
        if (received++ === 0) client.send('drop it');
      });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await closeEvent(client), [1006, '']);
      assert.ok(received >= 1 && received < 1000, `${received} of the messages arrived`);
      assert.deepStrictEqual(errors, []);
      await until('server close', () => srv.closes.length);
      assert.deepStrictEqual(srv.closes, [[1006, '']]);
      await srv.close();
    });

    test(`${name}: the client's terminate() drops the TLS connection: 1006 at the server`, async () => {
      const srv = await wssServer();
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, checkServerIdentity: () => undefined });
      assert.strictEqual(await outcome(client), 'open');
      assert.deepStrictEqual(await echoes(client, 'then gone'), ['then gone', false]);
      client.terminate();
      assert.deepStrictEqual(await closeEvent(client), [1006, '']);
      await until('server close', () => srv.closes.length);
      assert.deepStrictEqual(srv.closes, [[1006, '']]);
      await srv.close();
    });

    test(`${name}: protocolVersion 8 sends version 8 and Sec-WebSocket-Origin`, async () => {
      const srv = await wssServer();
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, protocolVersion: 8, origin: 'https://o.test' });
      assert.strictEqual(await outcome(client), 'open');
      assert.strictEqual(srv.seen[0].headers['sec-websocket-version'], '8');
      assert.strictEqual(srv.seen[0].headers['sec-websocket-origin'], 'https://o.test');
      assert.strictEqual(srv.seen[0].headers.origin, undefined);
      client.close();
      await closeEvent(client);
      await srv.close();
    });

    test(`${name}: large messages both ways keep every byte`, async () => {
      const down = crypto.randomBytes(3 * 1024 * 1024);
      const up = crypto.randomBytes(5 * 1024 * 1024 + 17);
      const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
      const received = [];
      const srv = await wssServer({
        onConnection: (sock) => {
          sock.send(down);
          sock.on('message', (m) => {
            received.push(m.length);
            sock.send(sha(m));
          });
        }
      });
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, checkServerIdentity: () => undefined });
      const first = nextMessage(client);
      assert.strictEqual(await outcome(client), 'open');
      const [data, isBinary] = await first;
      assert.strictEqual(isBinary, true);
      assert.strictEqual(sha(data), sha(down));
      client.send(up);
      client.send(up);
      const [digest1] = await nextMessage(client);
      const [digest2] = await nextMessage(client);
      assert.deepStrictEqual([String(digest1), String(digest2)], [sha(up), sha(up)]);
      assert.deepStrictEqual(received, [up.length, up.length]);
      client.close(1000);
      assert.deepStrictEqual(await closeEvent(client), [1000, '']);
      await srv.close();
    });
  }

  // How many TLS sessions Node's tls.connect makes for wirehub clients with
  // these options (the engine's own TLS makes none); each client opens,
  // then closes.
  async function nodeTlsSessionsOf(url, optionsList) {
    const connect = tls.connect;
    let requests = 0;
    tls.connect = (...args) => {
      requests++;
      return connect(...args);
    };
    try {
      for (const options of optionsList) {
        const client = new wirehub.WebSocket(url, options);
        assert.strictEqual(await outcome(client), 'open');
        client.close();
        await closeEvent(client);
      }
    } finally {
      tls.connect = connect;
    }
    return requests;
  }

  // wirehub only: the options the engine honours keep its own dial, with
  // no Node request (and no bridge) in the way.
  test('wirehub: ca, cert, key, servername, rejectUnauthorized, versions and ciphers stay on the engine', async () => {
    const srv = await wssServer({ requestCert: true });
    const requests = await nodeTlsSessionsOf(srv.url, [{
      ca: pem.server.cert,
      cert: pem.client.cert,
      key: pem.client.key,
      servername: '127.0.0.1',
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256'
    }]);
    assert.strictEqual(requests, 0);
    await srv.close();
  });

  // wirehub only: a minimum below the engine's TLS 1.2 goes to Node's TLS,
  // which then negotiates what ws would (1.3 with this server).
  test('wirehub: minVersion TLSv1 or TLSv1.1 goes through Node\'s TLS', async () => {
    const srv = await wssServer({});
    const requests = await nodeTlsSessionsOf(srv.url, [
      { ca: pem.server.cert, minVersion: 'TLSv1' },
      { ca: pem.server.cert, minVersion: 'TLSv1.1' }
    ]);
    assert.strictEqual(requests, 2);
    await srv.close();
  });
});
