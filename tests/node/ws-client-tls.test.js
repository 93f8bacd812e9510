'use strict';
// new WebSocket('wss://...', options): the tls.connect options ws passes on.
// A client certificate for a server that asks for one (cert, key), the
// protocol versions (minVersion, maxVersion) and ciphers; each case runs
// against ws and wirehub, with ws's server over Node's https.
const { describe, test, before, after } = require('node:test');
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const { execFileSync } = require('child_process');
const ws = require('ws');
const { withTimeout } = require('./helpers');
const { impls } = require('./ws-client-helpers');

let dir;
const pem = {};

function selfSigned(name, cn, san) {
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}-cert.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', `/CN=${cn}`, ...(san ? ['-addext', `subjectAltName=${san}`] : [])
  ], { stdio: 'ignore' });
  pem[name] = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

// A wss server that asks every client for a certificate signed by (here:
// equal to) the client's, and reports what each handshake negotiated.
async function mutualServer() {
  const server = https.createServer({
    key: pem.server.key,
    cert: pem.server.cert,
    requestCert: true,
    rejectUnauthorized: true,
    ca: [pem.client.cert]
  });
  const seen = [];
  const wss = new ws.WebSocketServer({ server });
  wss.on('connection', (sock, req) => {
    seen.push({ protocol: req.socket.getProtocol(), cn: req.socket.getPeerCertificate().subject.CN });
    sock.on('message', (m) => sock.send(m));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `wss://127.0.0.1:${server.address().port}/`,
    seen,
    close: () => new Promise((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => server.close(() => r()));
      server.closeAllConnections();
    })
  };
}

function outcome(client) {
  return withTimeout(
    new Promise((resolve) => {
      client.once('open', () => resolve('open'));
      client.once('error', (e) => resolve(`error: ${e.code || e.message}`));
    }),
    5000,
    'open or error'
  );
}

async function closed(client) {
  if (client.readyState === 3) return;
  await withTimeout(new Promise((r) => client.once('close', r)), 5000, 'close');
}

describe('new WebSocket(wss://..., { cert, key, minVersion, maxVersion, ciphers })', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirehub-mtls-'));
    selfSigned('server', '127.0.0.1', 'IP:127.0.0.1');
    selfSigned('client', 'a client');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [name, lib] of impls) {
    test(`${name}: cert and key answer a server that asks for a client certificate`, async () => {
      const srv = await mutualServer();
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert, cert: pem.client.cert, key: pem.client.key });
      assert.strictEqual(await outcome(client), 'open');
      client.send('mutual');
      const [m] = await withTimeout(new Promise((r) => client.once('message', (...a) => r(a))), 5000, 'message');
      assert.strictEqual(String(m), 'mutual');
      assert.strictEqual(srv.seen[0].cn, 'a client');
      client.close();
      await closed(client);
      await srv.close();
    });

    test(`${name}: without a client certificate that server refuses the handshake`, async () => {
      const srv = await mutualServer();
      const client = new lib.WebSocket(srv.url, { ca: pem.server.cert });
      assert.match(await outcome(client), /^error: /);
      await closed(client);
      assert.strictEqual(srv.seen.length, 0);
      await srv.close();
    });

    test(`${name}: maxVersion TLSv1.2 is what the server negotiates`, async () => {
      const srv = await mutualServer();
      const client = new lib.WebSocket(srv.url, {
        ca: pem.server.cert,
        cert: pem.client.cert,
        key: pem.client.key,
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-RSA-AES128-GCM-SHA256'
      });
      assert.strictEqual(await outcome(client), 'open');
      assert.strictEqual(srv.seen[0].protocol, 'TLSv1.2');
      client.close();
      await closed(client);
      await srv.close();
    });
  }
});
