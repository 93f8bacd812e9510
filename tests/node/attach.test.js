'use strict';
// Sharing a port with Node's http/https servers: { server } and noServer +
// handleUpgrade hand the upgraded socket (and the bytes Node already read)
// to the native engine.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const { execFileSync } = require('node:child_process');
const ws = require('ws');
const WebSocket = require('../..');
const { WebSocketServer } = WebSocket;
const { waitFor, withTimeout, httpListen, closeServer } = require('./helpers');

function echo(wss) {
  wss.on('connection', (sock, req) => {
    sock.send(`hello ${req.url}`);
    sock.on('message', (d, isBinary) => sock.send(d, { binary: isBinary }));
  });
}

async function roundTrip(Client, url, opts) {
  const c = new Client(url, opts);
  const [first] = await waitFor(c, 'message');
  c.send('ping-through');
  const [back] = await waitFor(c, 'message');
  const closed = waitFor(c, 'close');
  c.close();
  await closed;
  return [first.toString(), back.toString()];
}

test('{ server }: an http.Server keeps serving HTTP and its upgrades go to wirehub', async () => {
  const server = http.createServer((req, res) => res.end('plain http'));
  const wss = new WebSocketServer({ server });
  echo(wss);
  const port = await httpListen(server);
  assert.strictEqual(wss.address().port, port);
  const body = await new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/`, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  assert.strictEqual(body, 'plain http');
  assert.deepStrictEqual(await roundTrip(WebSocket, `ws://127.0.0.1:${port}/a`), ['hello /a', 'ping-through']);
  assert.deepStrictEqual(await roundTrip(ws.WebSocket, `ws://127.0.0.1:${port}/b`), ['hello /b', 'ping-through']);
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

test('noServer + handleUpgrade, with verifyClient, handleProtocols and frames sent right after the request', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({
    noServer: true,
    verifyClient: ({ req }) => req.headers['x-allow'] === 'yes',
    handleProtocols: (set) => (set.has('chat') ? 'chat' : false)
  });
  assert.throws(() => wss.address(), { message: 'The server is operating in "noServer" mode' });
  server.on('upgrade', (req, socket, head) => {
    if (!wss.shouldHandle(req)) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (sock, r) => wss.emit('connection', sock, r));
  });
  echo(wss);
  const port = await httpListen(server);
  const refused = new WebSocket(`ws://127.0.0.1:${port}/x`);
  refused.on('close', () => {});
  const [err] = await waitFor(refused, 'error');
  assert.strictEqual(err.message, 'Unexpected server response: 401');

  const c = new ws.WebSocket(`ws://127.0.0.1:${port}/y`, ['chat'], { headers: { 'X-Allow': 'yes' } });
  const got = [];
  const all = new Promise((resolve) =>
    c.on('message', (d) => {
      got.push(d.toString());
      if (got.length === 21) resolve();
    })
  );
  // the messages go out right at open, racing the hand-over to the engine
  c.on('open', () => {
    for (let i = 0; i < 20; i++) c.send(`m${i}`);
  });
  await waitFor(c, 'open');
  assert.strictEqual(c.protocol, 'chat');
  await withTimeout(all);
  assert.strictEqual(got.shift(), 'hello /y');
  assert.deepStrictEqual(got, Array.from({ length: 20 }, (_, i) => `m${i}`));
  const closed = waitFor(c, 'close');
  c.close();
  await closed;
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

test('handleUpgrade answers bad upgrade requests like ws (400/405) or emits wsClientError', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, () => {}));
  const port = await httpListen(server);
  const status = (headers, method = 'GET') =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, headers: { Connection: 'Upgrade', Upgrade: 'websocket', ...headers } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
  assert.strictEqual(await status({ 'Sec-WebSocket-Version': '13' }), 400); // no key
  assert.strictEqual(await status({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '99' }), 400);
  assert.strictEqual(await status({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' }, 'POST'), 405);
  const clientError = waitFor(wss, 'wsClientError');
  const p = status({ 'Sec-WebSocket-Version': '13' }).catch(() => 0);
  const [err, socket] = await clientError;
  assert.strictEqual(err.message, 'Missing or invalid Sec-WebSocket-Key header');
  socket.destroy();
  await p;
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

test('an Express app shares its port with new WebSocket.Server({ server })', async () => {
  const express = require('express');
  const app = express();
  app.get('/health', (req, res) => res.json({ ok: true }));
  const server = http.createServer(app);
  const wss = new WebSocket.Server({ server, path: '/ws' });
  echo(wss);
  const port = await httpListen(server);
  const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
  assert.deepStrictEqual(health, { ok: true });
  assert.deepStrictEqual(await roundTrip(WebSocket, `ws://127.0.0.1:${port}/ws`), ['hello /ws', 'ping-through']);
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

function selfSigned() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirehub-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'
  ], { stdio: 'ignore' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), dir };
}

test('{ server } with an https.Server: wss:// through the TLS bridge; client ca and rejectUnauthorized options', async () => {
  const { key, cert, dir } = selfSigned();
  const server = https.createServer({ key, cert });
  const wss = new WebSocketServer({ server });
  echo(wss);
  const port = await httpListen(server);
  const url = `wss://127.0.0.1:${port}/tls`;
  assert.deepStrictEqual(await roundTrip(ws.WebSocket, url, { ca: cert }), ['hello /tls', 'ping-through']);
  assert.deepStrictEqual(await roundTrip(WebSocket, url, { ca: cert }), ['hello /tls', 'ping-through']);
  assert.deepStrictEqual(await roundTrip(WebSocket, url, { rejectUnauthorized: false }), ['hello /tls', 'ping-through']);
  // Without ca, a self-signed server certificate is refused with Node's TLS
  // error, the one ws gives in the same case (and no connection opens).
  for (const [name, WS] of [['ws', ws.WebSocket], ['wirehub', WebSocket]]) {
    const untrusted = new WS(url);
    let opened = false;
    untrusted.on('open', () => (opened = true));
    const errors = [];
    untrusted.on('error', (e) => errors.push(e));
    // (not events.once: it would reject on the 'error' that comes first)
    await withTimeout(new Promise((resolve) => untrusted.on('close', resolve)), 5000, 'close');
    assert.strictEqual(errors.length, 1, `${name}: one error, then close: ${errors.map((e) => e.message)}`);
    const [err] = errors;
    assert.ok(err instanceof Error, name);
    assert.strictEqual(err.code, 'DEPTH_ZERO_SELF_SIGNED_CERT', `${name}: ${err.code} ${err.message}`);
    assert.strictEqual(err.message, 'self-signed certificate', name);
    assert.strictEqual(opened, false, `${name}: no open after a refused certificate`);
  }
  await closeServer(wss);
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('ws+unix: a client reaches a server on a UNIX socket, as with ws (path after the colon)', async () => {
  const sock = path.join(os.tmpdir(), `wirehub-node-${process.pid}.sock`);
  fs.rmSync(sock, { force: true });
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (conn, req) => conn.send(req.url));
  await new Promise((resolve) => server.listen(sock, resolve));
  try {
    const client = new WebSocket(`ws+unix://${sock}:/room?x=1`);
    const [data] = await waitFor(client, 'message');
    assert.strictEqual(data.toString(), '/room?x=1');
    client.close();
    await waitFor(client, 'close');
  } finally {
    await closeServer(wss);
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(sock, { force: true });
  }
  // Nothing at the path: the same error as ws (through Node's net).
  const missing = new WebSocket(`ws+unix://${sock}:/`);
  const [err] = await waitFor(missing, 'error');
  assert.strictEqual(err.code, 'ENOENT');
  assert.strictEqual(err.message, `connect ENOENT ${sock}`);
  assert.throws(() => new WebSocket('ws+unix:'), { name: 'SyntaxError', message: "The URL's pathname is empty" });
});
