'use strict';
// The ws 8 API, wirehub on both ends.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const net = require('net');
const wsPackage = require('ws'); // the original, run side by side where behaviour is compared
const WebSocket = require('../..');
const { WebSocketServer, createWebSocketStream } = WebSocket;
const { waitFor, withTimeout, listen, closeServer } = require('./helpers');

async function echoServer(options) {
  const s = await listen(WebSocketServer, options);
  s.wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return s;
}

test('exports the ws names: WebSocket, Server, WebSocketServer, createWebSocketStream, state constants', () => {
  assert.strictEqual(WebSocket.WebSocket, WebSocket);
  assert.strictEqual(WebSocket.Server, WebSocketServer);
  assert.strictEqual(typeof createWebSocketStream, 'function');
  assert.deepStrictEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
  assert.strictEqual(WebSocket.prototype.OPEN, 1);
});

test('the ESM entry has a default export and named WebSocketServer', async () => {
  const m = await import('wirehub');
  assert.strictEqual(m.default, WebSocket);
  assert.strictEqual(m.WebSocketServer, WebSocketServer);
  assert.strictEqual(m.createWebSocketStream, createWebSocketStream);
});

test('echo of text and binary: message(data, isBinary) with Buffers, url, readyState', async () => {
  const { wss, url } = await echoServer();
  wss.on('headers', (headers) => headers.push('X-Echo: yes'));
  const ws = new WebSocket(`${url}/echo?x=1`);
  const upgrade = waitFor(ws, 'upgrade');
  assert.strictEqual(ws.readyState, WebSocket.CONNECTING);
  assert.strictEqual(ws.url, `${url}/echo?x=1`);
  await waitFor(ws, 'open');
  const [res] = await upgrade;
  assert.strictEqual(res.statusCode, 101);
  assert.strictEqual(res.headers.upgrade, 'websocket');
  // The server's own 101 headers, as ws gives them: its accept key and what
  // its 'headers' listener added.
  assert.match(res.headers['sec-websocket-accept'], /^[A-Za-z0-9+/]{27}=$/);
  assert.strictEqual(res.headers['x-echo'], 'yes');
  assert.strictEqual(ws.readyState, WebSocket.OPEN);
  ws.send('héllo');
  let [data, isBinary] = await waitFor(ws, 'message');
  assert.ok(Buffer.isBuffer(data));
  assert.strictEqual(data.toString(), 'héllo');
  assert.strictEqual(isBinary, false);
  ws.send(new Uint8Array([1, 2, 3]));
  [data, isBinary] = await waitFor(ws, 'message');
  assert.deepStrictEqual([...data], [1, 2, 3]);
  assert.strictEqual(isBinary, true);
  ws.send(Buffer.from('as text'), { binary: false });
  [data, isBinary] = await waitFor(ws, 'message');
  assert.strictEqual(isBinary, false);
  ws.send(42);
  [data] = await waitFor(ws, 'message');
  assert.strictEqual(data.toString(), '42');
  ws.close();
  const [code] = await waitFor(ws, 'close');
  assert.strictEqual(code, 1005);
  assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  await closeServer(wss);
});

test('send callback, fragments with fin:false, big messages', async () => {
  const { wss, url } = await echoServer();
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  await new Promise((resolve, reject) => ws.send('a', (err) => (err ? reject(err) : resolve())));
  await waitFor(ws, 'message');
  ws.send('frag-', { fin: false });
  ws.send('ment', { fin: true });
  const [d] = await waitFor(ws, 'message');
  assert.strictEqual(d.toString(), 'frag-ment');
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  ws.send(big);
  const [back] = await waitFor(ws, 'message', 10000);
  assert.strictEqual(back.length, big.length);
  assert.ok(back.equals(big));
  ws.close(1000);
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('binaryType nodebuffer, arraybuffer and fragments', async () => {
  const { wss, url } = await echoServer();
  const ws = new WebSocket(url);
  assert.strictEqual(ws.binaryType, 'nodebuffer');
  await waitFor(ws, 'open');
  ws.binaryType = 'arraybuffer';
  ws.send(Buffer.from([9, 8]));
  let [d] = await waitFor(ws, 'message');
  assert.ok(d instanceof ArrayBuffer);
  assert.deepStrictEqual([...new Uint8Array(d)], [9, 8]);
  ws.binaryType = 'fragments';
  ws.send(Buffer.from([5]));
  [d] = await waitFor(ws, 'message');
  assert.ok(Array.isArray(d) && Buffer.isBuffer(d[0]));
  ws.binaryType = 'bogus';
  assert.strictEqual(ws.binaryType, 'fragments');
  ws.terminate();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('close(code, reason) reaches the peer; close event has code and reason Buffer', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const serverClose = new Promise((resolve) => {
    wss.on('connection', (ws) => ws.on('close', (code, reason) => resolve([code, reason])));
  });
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  const clientClose = waitFor(ws, 'close');
  ws.close(4001, 'done here');
  assert.strictEqual(ws.readyState, WebSocket.CLOSING);
  const [code, reason] = await withTimeout(serverClose);
  assert.strictEqual(code, 4001);
  assert.ok(Buffer.isBuffer(reason));
  assert.strictEqual(reason.toString(), 'done here');
  const [ccode] = await clientClose;
  assert.strictEqual(ccode, 4001);
  await closeServer(wss);
});

test('server-initiated close and terminate', async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('connection', (ws, req) => {
    if (req.url === '/close') ws.close(1001, 'going');
    else ws.terminate();
  });
  const a = new WebSocket(`${url}/close`);
  const [code, reason] = await waitFor(a, 'close');
  assert.strictEqual(code, 1001);
  assert.strictEqual(reason.toString(), 'going');
  const b = new WebSocket(`${url}/terminate`);
  const [code2] = await waitFor(b, 'close');
  assert.strictEqual(code2, 1006);
  await closeServer(wss);
});

test('ping and pong events with payloads', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const serverPing = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      ws.on('ping', (d) => resolve(d));
      ws.ping('from-server');
    });
  });
  const ws = new WebSocket(url);
  const [sp] = await waitFor(ws, 'ping');
  assert.strictEqual(sp.toString(), 'from-server');
  ws.ping('hi');
  const [pong] = await waitFor(ws, 'pong');
  assert.strictEqual(pong.toString(), 'hi');
  assert.strictEqual((await withTimeout(serverPing)).toString(), 'hi');
  ws.pong('unsolicited');
  assert.throws(() => ws.ping(Buffer.alloc(126)), { name: 'RangeError', message: 'The data size must not be greater than 125 bytes' });
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('subprotocols: offered, chosen by handleProtocols, readable as ws.protocol', async () => {
  const { wss, url } = await listen(WebSocketServer, {
    handleProtocols: (protocols, req) => {
      assert.ok(protocols instanceof Set);
      assert.ok(req.headers);
      return protocols.has('b') ? 'b' : false;
    }
  });
  const conn = waitFor(wss, 'connection');
  const ws = new WebSocket(url, ['a', 'b']);
  await waitFor(ws, 'open');
  assert.strictEqual(ws.protocol, 'b');
  const [sws] = await conn;
  assert.strictEqual(sws.protocol, 'b');
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('connection(ws, req): req has url, headers, socket address; client headers and origin options', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const conn = waitFor(wss, 'connection');
  const ws = new WebSocket(`${url}/p?q=2`, { headers: { 'X-Custom': 'yes' }, origin: 'http://example.test' });
  const opened = waitFor(ws, 'open');
  const [, req] = await conn;
  assert.strictEqual(req.url, '/p?q=2');
  assert.strictEqual(req.method, 'GET');
  assert.strictEqual(req.headers['x-custom'], 'yes');
  assert.strictEqual(req.headers.origin, 'http://example.test');
  assert.strictEqual(req.socket.remoteAddress, '127.0.0.1');
  await opened;
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('verifyClient (sync and async) refuses with a status the client sees in unexpected-response', async () => {
  const { wss, url } = await listen(WebSocketServer, {
    verifyClient: (info, cb) => {
      if (info.req.url === '/ok') cb(true);
      else cb(false, 403, 'Forbidden here', { 'X-Why': 'test' });
    }
  });
  const bad = new WebSocket(`${url}/no`);
  const [req, res] = await waitFor(bad, 'unexpected-response');
  assert.ok(req);
  assert.strictEqual(res.statusCode, 403);
  assert.strictEqual(res.headers['x-why'], 'test');
  // As ws: CONNECTING until the listener's owner aborts it.
  assert.strictEqual(bad.readyState, WebSocket.CONNECTING);
  bad.on('error', () => {});
  const closing = new Promise((r) => bad.once('close', r));
  bad.terminate();
  assert.strictEqual(await closing, 1006);
  const good = new WebSocket(`${url}/ok`);
  await waitFor(good, 'open');
  good.close();
  await waitFor(good, 'close');
  await closeServer(wss);

  const s2 = await listen(WebSocketServer, { verifyClient: () => false });
  const c = new WebSocket(s2.url);
  const closed = withTimeout(new Promise((resolve) => c.on('close', resolve)));
  const [err] = await waitFor(c, 'error');
  assert.strictEqual(err.message, 'Unexpected server response: 401');
  await closed;
  await closeServer(s2.wss);
});

test('the headers event can add response headers', async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('headers', (headers, req) => {
    assert.strictEqual(headers[0], 'HTTP/1.1 101 Switching Protocols');
    assert.ok(req.headers['sec-websocket-key']);
    headers.push('X-Added: 1');
  });
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('path option: other paths get 400', async () => {
  const { wss, url } = await listen(WebSocketServer, { path: '/only' });
  const ws = new WebSocket(`${url}/other`);
  ws.on('close', () => {});
  const [err] = await waitFor(ws, 'error');
  assert.strictEqual(err.message, 'Unexpected server response: 400');
  const ok = new WebSocket(`${url}/only?x`);
  await waitFor(ok, 'open');
  ok.close();
  await waitFor(ok, 'close');
  await closeServer(wss);
});

test('clients tracking, address(), close(cb) waits for connections and then reports not running', async () => {
  const { wss, url } = await listen(WebSocketServer);
  const addr = wss.address();
  assert.strictEqual(addr.address, '127.0.0.1');
  assert.strictEqual(addr.family, 'IPv4');
  assert.ok(addr.port > 0);
  const a = new WebSocket(url);
  const b = new WebSocket(url);
  await Promise.all([waitFor(a, 'open'), waitFor(b, 'open')]);
  await withTimeout(
    (async () => {
      while (wss.clients.size < 2) await new Promise((r) => setTimeout(r, 5));
    })()
  );
  assert.strictEqual(wss.clients.size, 2);
  let closed = false;
  wss.close(() => {
    closed = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.strictEqual(closed, false, 'ws 8 keeps open connections on close()');
  // ...but frees its port at once: a new server can take it meanwhile.
  const again = new WebSocketServer({ host: '127.0.0.1', port: addr.port });
  await waitFor(again, 'listening');
  for (const c of wss.clients) c.send('still open');
  const [echoed] = await waitFor(a, 'message');
  assert.strictEqual(echoed.toString(), 'still open');
  await new Promise((r) => again.close(r));
  a.close();
  b.close();
  await Promise.all([waitFor(a, 'close'), waitFor(b, 'close')]);
  await withTimeout(
    (async () => {
      while (!closed) await new Promise((r) => setTimeout(r, 5));
    })()
  );
  const err = await new Promise((resolve) => wss.close(resolve));
  assert.strictEqual(err.message, 'The server is not running');
});

// What a client gets for an upgrade that reaches a server after close(): its
// status (503) or its connection error code. Cases: a handshake whose async
// verifyClient answers after close(); a noServer server's handleUpgrade()
// called after close(); a port of its own, which close() releases.
async function upgradesAfterClose(wsModule) {
  const outcome = (client) =>
    withTimeout(
      new Promise((resolve) => {
        client.on('open', () => resolve('open'));
        client.on('unexpected-response', (req, res) => {
          res.resume();
          resolve(res.statusCode);
          client.terminate();
        });
        client.on('error', (err) => resolve(err.code || err.message));
      }),
      5000,
      'the upgrade answer'
    );
  const got = {};

  let release = null;
  const verifying = new wsModule.WebSocketServer({
    port: 0, host: '127.0.0.1', verifyClient: (info, cb) => (release = cb)
  });
  await waitFor(verifying, 'listening');
  const pending = outcome(new wsModule.WebSocket(`ws://127.0.0.1:${verifying.address().port}/`));
  await withTimeout((async () => { while (!release) await new Promise((r) => setTimeout(r, 5)); })());
  const closedCb = new Promise((resolve) => verifying.close(resolve));
  release(true);
  got.verifyAnsweredAfterClose = await pending;
  await withTimeout(closedCb, 5000, 'close callback');

  const noServer = new wsModule.WebSocketServer({ noServer: true });
  const http = require('http');
  const hs = http.createServer();
  hs.on('upgrade', (req, sock, head) => noServer.handleUpgrade(req, sock, head, (c) => noServer.emit('connection', c)));
  await new Promise((r) => hs.listen(0, '127.0.0.1', r));
  await new Promise((resolve) => noServer.close(resolve));
  got.handleUpgradeAfterClose = await outcome(new wsModule.WebSocket(`ws://127.0.0.1:${hs.address().port}/`));
  await new Promise((r) => hs.close(r));

  const own = new wsModule.WebSocketServer({ port: 0, host: '127.0.0.1' });
  await waitFor(own, 'listening');
  const port = own.address().port;
  await new Promise((resolve) => own.close(resolve));
  got.ownPortAfterClose = await outcome(new wsModule.WebSocket(`ws://127.0.0.1:${port}/`));
  return got;
}

test('an upgrade that reaches a closed server gets 503, and a closed port refuses, as with ws', async () => {
  const expected = { verifyAnsweredAfterClose: 503, handleUpgradeAfterClose: 503, ownPortAfterClose: 'ECONNREFUSED' };
  assert.deepStrictEqual(await upgradesAfterClose(wsPackage), expected, 'ws itself');
  assert.deepStrictEqual(await upgradesAfterClose(WebSocket), expected, 'wirehub');
});

test('clientTracking:false leaves clients undefined', async () => {
  const { wss } = await listen(WebSocketServer, { clientTracking: false });
  assert.strictEqual(wss.clients, undefined);
  await closeServer(wss);
});

test('pause() holds messages back and resume() delivers them in order', async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('connection', (ws) => {
    for (let i = 0; i < 5; i++) ws.send(`m${i}`);
  });
  const ws = new WebSocket(url);
  const got = [];
  ws.on('message', (d) => got.push(d.toString()));
  // paused from the open event on: nothing may be emitted until resume()
  ws.on('open', () => ws.pause());
  await waitFor(ws, 'open');
  assert.strictEqual(ws.isPaused, true);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepStrictEqual(got, []);
  ws.resume();
  await withTimeout(
    (async () => {
      while (got.length < 5) await new Promise((r) => setTimeout(r, 5));
    })()
  );
  assert.deepStrictEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('browser-style API: addEventListener and on* attributes', async () => {
  const { wss, url } = await echoServer();
  const ws = new WebSocket(url);
  const events = [];
  ws.onopen = (ev) => {
    events.push(ev.type);
    ws.send('x');
  };
  ws.addEventListener('message', (ev) => {
    events.push(`message:${ev.data}`);
    ws.close(1000, 'bye');
  });
  assert.strictEqual(typeof ws.onopen, 'function');
  const closeEv = await withTimeout(new Promise((resolve) => (ws.onclose = resolve)));
  assert.deepStrictEqual(events, ['open', 'message:x']);
  assert.strictEqual(closeEv.code, 1000);
  assert.strictEqual(closeEv.wasClean, true);
  const bad = new WebSocket('ws://127.0.0.1:1');
  const errEv = await withTimeout(new Promise((resolve) => (bad.onerror = resolve)));
  assert.strictEqual(errEv.type, 'error');
  assert.ok(errEv.error instanceof Error);
  await closeServer(wss);
});

// A WebSocket peer that answers the handshake and then reads nothing until
// resume() is called, so the client's sends pile up behind a full socket.
async function stalledPeer() {
  const sockets = [];
  const server = net.createServer((sock) => {
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.removeListener('data', onData);
      sock.pause();
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)[1];
      const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    };
    sock.on('data', onData);
    sock.on('error', () => {});
    sockets.push(sock);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${server.address().port}`,
    resume: () => sockets.forEach((s) => s.on('data', () => {}).resume()),
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise((r) => server.close(r));
    }
  };
}

// Sends 64 KiB messages to a peer that does not read until bufferedAmount
// passes 1 MiB (at most 64 MiB sent), then lets the peer read and waits for
// bufferedAmount to fall back to 0. Returns what it saw, for either client.
async function bufferedAmountCourse(WS) {
  const peer = await stalledPeer();
  const ws = new WS(peer.url);
  await waitFor(ws, 'open');
  const seen = { initial: ws.bufferedAmount, afterOne: 0, peak: 0, monotonic: true };
  const chunk = Buffer.alloc(64 * 1024, 7);
  let last = 0;
  for (let i = 0; i < 1024 && seen.peak <= 1024 * 1024; i++) {
    ws.send(chunk);
    const b = ws.bufferedAmount;
    if (i === 0) seen.afterOne = b;
    if (b < last) seen.monotonic = false;
    last = b;
    seen.peak = Math.max(seen.peak, b);
    // let the event loop write what the socket takes
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  peer.resume();
  await withTimeout(
    (async () => {
      while (ws.bufferedAmount !== 0) await new Promise((r) => setTimeout(r, 5));
    })(),
    10000,
    'bufferedAmount back to 0'
  );
  seen.drained = ws.bufferedAmount;
  ws.terminate();
  await peer.close();
  return seen;
}

test('bufferedAmount counts the bytes a non-reading peer has not taken, and falls to 0 once it reads (as ws)', async () => {
  for (const [name, WS] of [['wirehub', WebSocket], ['ws', wsPackage.WebSocket]]) {
    const seen = await bufferedAmountCourse(WS);
    assert.strictEqual(seen.initial, 0, `${name}: nothing buffered on open`);
    assert.ok(seen.peak > 1024 * 1024, `${name}: bufferedAmount must grow past 1 MiB while the peer does not read (peak ${seen.peak})`);
    assert.ok(seen.monotonic, `${name}: bufferedAmount only grows while the peer does not read`);
    assert.strictEqual(seen.drained, 0, `${name}: drained`);
  }
});

test('extensions with perMessageDeflate, compress option', async () => {
  const { wss, url } = await echoServer({ perMessageDeflate: true });
  const ws = new WebSocket(url, { perMessageDeflate: true });
  await waitFor(ws, 'open');
  assert.match(ws.extensions, /permessage-deflate/);
  const text = 'compress me '.repeat(500);
  ws.send(text, { compress: true });
  const [d] = await waitFor(ws, 'message');
  assert.strictEqual(d.toString(), text);
  ws.send(text, { compress: false });
  await waitFor(ws, 'message');
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('createWebSocketStream pipes both ways', async () => {
  const { wss, url } = await echoServer();
  const ws = new WebSocket(url);
  const duplex = createWebSocketStream(ws);
  duplex.write('streamed');
  const [chunk] = await waitFor(duplex, 'data');
  assert.strictEqual(chunk.toString(), 'streamed');
  duplex.end();
  await waitFor(ws, 'close');
  duplex.destroy();
  await closeServer(wss);
});

test('topics: subscribe and publish frame once for every subscriber', async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('connection', (ws, req) => {
    if (req.url === '/news') ws.subscribe('news');
    ws.send('ready');
  });
  const a = new WebSocket(`${url}/news`);
  const b = new WebSocket(`${url}/news`);
  const c = new WebSocket(`${url}/other`);
  await Promise.all([a, b, c].map((w) => waitFor(w, 'message')));
  const got = [waitFor(a, 'message'), waitFor(b, 'message')];
  let cGot = false;
  c.on('message', () => (cGot = true));
  assert.strictEqual(wss.publish('news', 'headline'), 2);
  const [[da], [db]] = await Promise.all(got);
  assert.strictEqual(da.toString(), 'headline');
  assert.strictEqual(db.toString(), 'headline');
  await new Promise((r) => setTimeout(r, 50));
  assert.strictEqual(cGot, false);
  for (const w of [a, b, c]) w.close();
  await Promise.all([a, b, c].map((w) => waitFor(w, 'close')));
  await closeServer(wss);
});

test('maxPayload: an oversize message closes with 1009 and WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', async () => {
  const { wss, url } = await listen(WebSocketServer, { maxPayload: 1024 });
  const serverErr = new Promise((resolve) => {
    wss.on('connection', (ws) => ws.on('error', resolve));
  });
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  ws.send(Buffer.alloc(4096));
  const [code] = await waitFor(ws, 'close');
  assert.strictEqual(code, 1009);
  const err = await withTimeout(serverErr);
  assert.strictEqual(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  assert.ok(err instanceof RangeError);
  assert.strictEqual(err.message, 'Max payload size exceeded');
  await closeServer(wss);
});

test('a listener that throws is an ordinary uncaught exception (not an abort), after the rest of the batch', () => {
  const { spawnSync } = require('node:child_process');
  const script = `
    const WebSocket = require(${JSON.stringify(require.resolve('../..'))});
    let calls = 0;
    process.on('uncaughtException', (err) => {
      console.log('caught ' + err.message);
      setTimeout(() => { console.log('calls ' + calls); process.exit(3); }, 200);
    });
    const wss = new WebSocket.Server({ port: 0, host: '127.0.0.1' }, () => {
      const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
      ws.on('open', () => { ws.send('1'); ws.send('2'); });
    });
    wss.on('connection', (ws) => ws.on('message', () => { calls++; if (calls === 1) throw new Error('listener bug'); }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.strictEqual(r.signal, null, r.stderr);
  assert.strictEqual(r.status, 3, r.stderr);
  assert.match(r.stdout, /caught listener bug/);
  assert.match(r.stdout, /calls 2/);
});

test('large messages arrive intact in any mix of sizes, and a kept message stays intact while traffic and GC go on', async () => {
  // Messages of 4 KiB and more reach JS as views of native slabs that are
  // reused once V8 has collected every view of them.
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const { wss, url } = await echoServer();
  const ws = new WebSocket(url, { maxPayload: 0 });
  await waitFor(ws, 'open');
  const pattern = (n, seed) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
    return b;
  };
  const sizes = [4096, 4095, 5000, 16384, 70000, 300 * 1024, 1, 16384, 4096 * 3];
  const got = [];
  ws.on('message', (d) => got.push(d));
  const rounds = 40;
  for (let r = 0; r < rounds; r++) for (let k = 0; k < sizes.length; k++) ws.send(pattern(sizes[k], r + k));
  const kept = await new Promise((resolve) => {
    const t = setInterval(() => {
      if (got.length === rounds * sizes.length) {
        clearInterval(t);
        resolve(got[0]);
      }
    }, 5);
  });
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sizes.length; k++) {
      const d = got[r * sizes.length + k];
      assert.ok(d.equals(pattern(sizes[k], r + k)), `message ${r}/${k} (${sizes[k]} bytes)`);
    }
  }
  got.length = 0;
  // Drop every view but one, collect, and reuse the slabs with new traffic.
  for (let i = 0; i < 3; i++) gc();
  await new Promise((r) => setImmediate(r));
  for (let r = 0; r < 100; r++) ws.send(pattern(16384, 1000 + r));
  await new Promise((resolve) => {
    const t = setInterval(() => {
      if (got.length === 100) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
  for (let r = 0; r < 100; r++) assert.ok(got[r].equals(pattern(16384, 1000 + r)));
  assert.ok(kept.equals(pattern(sizes[0], 0)), 'a message the application kept is never overwritten');
  ws.close(1000);
  await waitFor(ws, 'close');
  await closeServer(wss);
});
