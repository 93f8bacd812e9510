'use strict';
// Issue 11 in the Node package: a hook that throws while deciding a handshake
// refuses the client with 500 (never admits it) and the server's 'error'
// listeners hear of it; the hardening limits (wirehub extras beyond ws:
// maxHandshakes, idleTimeout, messageTimeout, maxMemory) reach the engine,
// and invalid values throw a RangeError at construction. Loopback only;
// every wait is bounded.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const WebSocket = require('../..');
const { WebSocketServer } = WebSocket;
const { waitFor, withTimeout, listen, closeServer, httpListen } = require('./helpers');

// The client sees the refusal: 'unexpected-response' with 500, never 'open'.
async function refusedWith500(url, options) {
  const ws = new WebSocket(url, options);
  let opened = false;
  ws.on('open', () => (opened = true));
  ws.on('error', () => {});
  const [, res] = await waitFor(ws, 'unexpected-response');
  const status = res.statusCode;
  res.resume();
  // As ws: the listener aborts; 'error' then 'close' follow.
  const closed = new Promise((r) => ws.once('close', r));
  ws.terminate();
  await withTimeout(closed, 5000, 'close');
  assert.strictEqual(opened, false);
  return status;
}

// The raw answer to an upgrade request, read to the server's close.
function rawUpgrade(port) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () =>
        s.write(
          'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
        )
      );
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    }),
    5000,
    'the server to close the refused socket'
  );
}

const throwing = {
  'a sync verifyClient': { verifyClient: () => { throw new Error('hook bug'); } },
  'an async verifyClient before its callback': { verifyClient: (info, cb) => { throw new Error('hook bug'); } },
  handleProtocols: { handleProtocols: () => { throw new Error('hook bug'); } }
};

for (const [name, options] of Object.entries(throwing)) {
  test(`${name} that throws refuses the client with 500 and emits 'error' on the server`, async () => {
    const { wss, url } = await listen(WebSocketServer, options);
    const errors = [];
    wss.on('error', (err) => errors.push(err));
    let connections = 0;
    wss.on('connection', () => connections++);
    assert.strictEqual(await refusedWith500(url, ['chat']), 500);
    assert.strictEqual(errors.length, 1);
    assert.strictEqual(errors[0].message, 'hook bug');
    if (!options.handleProtocols) {
      const raw = await rawUpgrade(wss.address().port);
      assert.match(raw, /^HTTP\/1\.1 500 /);
      assert.doesNotMatch(raw, / 101 /);
    }
    assert.strictEqual(connections, 0);
    await closeServer(wss);
  });
}

test("a 'headers' listener that throws refuses the client with 500", async () => {
  const { wss, url } = await listen(WebSocketServer);
  wss.on('headers', () => {
    throw new Error('headers bug');
  });
  const errors = [];
  wss.on('error', (err) => errors.push(err.message));
  assert.strictEqual(await refusedWith500(url), 500);
  assert.deepStrictEqual(errors, ['headers bug']);
  await closeServer(wss);
});

test('a throwing verifyClient without an error listener still refuses, and the error is thrown as in ws', async () => {
  const { wss, url } = await listen(WebSocketServer, {
    verifyClient: () => {
      throw new Error('unhandled hook bug');
    }
  });
  // ws lets it escape as an uncaught exception; catch it here for the test.
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const uncaught = new Promise((resolve) => process.once('uncaughtException', resolve));
  try {
    assert.strictEqual(await refusedWith500(url), 500);
    const err = await withTimeout(uncaught, 5000, 'the uncaught exception');
    assert.strictEqual(err.message, 'unhandled hook bug');
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const l of listeners) process.on('uncaughtException', l);
  }
  await closeServer(wss);
});

test('handleUpgrade (noServer) refuses with 500 when verifyClient throws', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, verifyClient: () => { throw new Error('attached hook bug'); } });
  const errors = [];
  wss.on('error', (err) => errors.push(err.message));
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, () => assert.fail('admitted')));
  const port = await httpListen(server);
  assert.strictEqual(await refusedWith500(`ws://127.0.0.1:${port}/`), 500);
  assert.deepStrictEqual(errors, ['attached hook bug']);
  await closeServer(wss);
  await new Promise((r) => server.close(r));
});

// Needs the engine's idle timeout (issue 11).
test('idleTimeout closes a connection the peer leaves silent with 1001', async () => {
  const { wss, url } = await listen(WebSocketServer, { idleTimeout: 300 });
  const ws = new WebSocket(url);
  await waitFor(ws, 'open');
  const t0 = Date.now();
  const [code] = await waitFor(ws, 'close', 5000);
  assert.strictEqual(code, 1001);
  assert.ok(Date.now() - t0 >= 250, `closed after ${Date.now() - t0} ms`);
  await closeServer(wss);
});

// Needs the engine's idle timeout (issue 11).
test("a client's idleTimeout closes its side with 1001 when the server says nothing", async () => {
  const { wss, url } = await listen(WebSocketServer);
  const ws = new WebSocket(url, { idleTimeout: 300 });
  ws.on('error', () => {});
  await waitFor(ws, 'open');
  const [code] = await waitFor(ws, 'close', 5000);
  assert.strictEqual(code, 1001);
  await closeServer(wss);
});

test('the limits accept valid values (0 = off) and the server still serves', async () => {
  for (const limits of [
    { maxHandshakes: 8, idleTimeout: 30000, messageTimeout: 5000, maxMemory: 64 * 1024 * 1024 },
    { maxHandshakes: 0, idleTimeout: 0, messageTimeout: 0, maxMemory: 0 }
  ]) {
    const { wss, url } = await listen(WebSocketServer, limits);
    wss.on('connection', (s) => s.on('message', (d, isBinary) => s.send(d, { binary: isBinary })));
    const ws = new WebSocket(url, { idleTimeout: limits.idleTimeout, messageTimeout: limits.messageTimeout });
    await waitFor(ws, 'open');
    ws.send('hi');
    const [data] = await waitFor(ws, 'message');
    assert.strictEqual(data.toString(), 'hi');
    ws.close();
    await waitFor(ws, 'close');
    await closeServer(wss);
  }
});

test('invalid limits throw a RangeError naming the option', () => {
  for (const [name, value] of [
    ['maxHandshakes', -1],
    ['maxHandshakes', 1.5],
    ['idleTimeout', -300],
    ['messageTimeout', Infinity],
    ['maxMemory', -1],
    ['maxMemory', '1GB']
  ]) {
    assert.throws(() => new WebSocketServer({ port: 0, host: '127.0.0.1', [name]: value }), (err) => {
      assert.ok(err instanceof RangeError, `${name}=${value}: ${err}`);
      assert.match(err.message, new RegExp(`"${name}"`));
      return true;
    });
  }
  for (const [name, value] of [['idleTimeout', -1], ['messageTimeout', NaN]]) {
    assert.throws(() => new WebSocket('ws://127.0.0.1:9/', { [name]: value }), { name: 'RangeError' });
  }
});

// ws has no reader queue: 'message' is emitted at once. The one queue a peer
// could grow while the application waits is a paused socket's events that
// were already on their way; pause() stops the engine reading, so it holds
// at most one engine turn, and the rest stays with the sender.
test('a paused client holds a bounded number of events and the sender backs up', async () => {
  const total = 10000; // 40 MB: far more than loopback's socket buffers hold
  const payload = 'z'.repeat(4000);
  const { wss, url } = await listen(WebSocketServer, { perMessageDeflate: false });
  let sent = 0;
  wss.on('connection', (s) => {
    const pump = () => {
      while (sent < total && s.readyState === WebSocket.OPEN) {
        if (s.bufferedAmount > 1 << 20) return setTimeout(pump, 5);
        s.send(`${String(sent).padStart(5, '0')}${payload}`);
        sent++;
      }
    };
    pump();
  });
  const ws = new WebSocket(url);
  const got = [];
  ws.on('message', (d) => got.push(d.toString('latin1', 0, 5)));
  // Paused from inside the first message's listener: the rest of that
  // batch is already on its way and is held, not emitted.
  ws.once('message', () => ws.pause());
  await waitFor(ws, 'open');
  await new Promise((r) => setTimeout(r, 1000));
  const held = ws._pausedEvents ? ws._pausedEvents.length : 0;
  const sentWhilePaused = sent;
  assert.ok(held < total / 4, `${held} events held by a paused socket`);
  assert.ok(sentWhilePaused < total, 'the sender was not held back');
  ws.resume();
  await withTimeout(
    new Promise((resolve) => {
      const t = setInterval(() => got.length === total && (clearInterval(t), resolve()), 10);
    }),
    20000,
    'every message after resume()'
  );
  assert.deepStrictEqual(got, Array.from({ length: total }, (_, i) => String(i).padStart(5, '0')));
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

// Sockets that never send a request: which are still open after 300 ms.
async function handshakesLeftOpen(port, n) {
  const socks = await Promise.all(
    Array.from({ length: n }, () =>
      withTimeout(new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
      }), 5000, 'connect')
    )
  );
  const closed = socks.map((s) => {
    let ended = false;
    s.on('end', () => (ended = true));
    s.on('close', () => (ended = true));
    s.on('error', () => (ended = true));
    s.resume();
    return () => ended;
  });
  await new Promise((r) => setTimeout(r, 300));
  const states = closed.map((isClosed) => (isClosed() ? 'closed' : 'open'));
  for (const s of socks) s.destroy();
  return states;
}

test('maxHandshakes closes sockets past the cap at once', async () => {
  const { wss, url } = await listen(WebSocketServer, { maxHandshakes: 2 });
  assert.deepStrictEqual(await handshakesLeftOpen(wss.address().port, 3), ['open', 'open', 'closed']);
  const ws = new WebSocket(url); // finished handshakes free their slots
  await waitFor(ws, 'open');
  ws.close();
  await waitFor(ws, 'close');
  await closeServer(wss);
});

test('messageTimeout closes an unfinished message with 1008', async () => {
  const { wss } = await listen(WebSocketServer, { messageTimeout: 300 });
  const closed = new Promise((resolve) => wss.on('connection', (s) => s.on('close', (code) => resolve(code))));
  const sock = net.connect(wss.address().port, '127.0.0.1');
  sock.write(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  );
  let buf = Buffer.alloc(0);
  const answer = withTimeout(
    new Promise((resolve) =>
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end >= 0 && buf.length > end + 4) resolve(buf.subarray(end + 4));
      })
    ),
    5000,
    'a close frame'
  );
  await withTimeout(new Promise((resolve) => sock.once('data', resolve)), 5000, 'the 101');
  const t0 = Date.now();
  sock.write(Buffer.from([0x81, 0x80 | 10, 1, 2, 3, 4, 0x61, 0x62, 0x63])); // 3 of 10 payload bytes
  const frame = await answer;
  assert.strictEqual(frame[0], 0x88);
  assert.strictEqual(frame.readUInt16BE(2), 1008);
  assert.ok(Date.now() - t0 >= 250, `closed after ${Date.now() - t0} ms`);
  assert.strictEqual(await withTimeout(closed), 1008);
  sock.destroy();
  await closeServer(wss);
});
