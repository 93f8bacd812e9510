'use strict';
// The Redis broker (wirehub extra, issue 13): new WebSocketServer({ port,
// broker: 'redis://...' }) carries wss.publish() to the subscribers of every
// server attached to the same Redis and prefix. Each suite runs Debian's
// redis-server on a free loopback port; a tiny RESP client (net.Socket)
// looks at Redis itself (PUBSUB NUMSUB) and plays a foreign publisher.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { once } = require('node:events');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const WebSocket = require('../..');
const { WebSocketServer } = WebSocket;
const { E } = require('../../node/lib/native');
const { withTimeout, waitFor, closeServer } = require('./helpers');

const root = path.resolve(__dirname, '../..');

let haveRedis = true;
try {
  execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
} catch {
  haveRedis = false;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls cond() every 10 ms until it is true; fails after ms.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// A RESP2 client: enough for PING, PUBLISH, PUBSUB NUMSUB, AUTH.
class Resp {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const r = new Resp();
      r.sock = net.connect(port, '127.0.0.1', () => resolve(r));
      r.sock.once('error', reject);
      r.buf = Buffer.alloc(0);
      r.waiting = [];
      r.sock.on('data', (d) => {
        r.buf = Buffer.concat([r.buf, d]);
        for (;;) {
          const got = Resp.parse(r.buf, 0);
          if (!got) break;
          r.buf = r.buf.subarray(got[1]);
          const w = r.waiting.shift();
          if (w) w(got[0]);
        }
      });
    });
  }

  // [value, next offset] or null when incomplete
  static parse(b, i) {
    const eol = b.indexOf('\r\n', i);
    if (eol === -1) return null;
    const t = String.fromCharCode(b[i]);
    const line = b.toString('latin1', i + 1, eol);
    if (t === '+') return [line, eol + 2];
    if (t === '-') return [new Error(line), eol + 2];
    if (t === ':') return [Number(line), eol + 2];
    if (t === '$') {
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      if (b.length < eol + 2 + n + 2) return null;
      return [b.subarray(eol + 2, eol + 2 + n), eol + 2 + n + 2];
    }
    if (t === '*') {
      const n = Number(line);
      const out = [];
      let at = eol + 2;
      for (let k = 0; k < n; k++) {
        const got = Resp.parse(b, at);
        if (!got) return null;
        out.push(got[0]);
        at = got[1];
      }
      return [out, at];
    }
    throw new Error(`RESP: unexpected ${t}`);
  }

  cmd(...args) {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(`$${b.length}\r\n`, b, '\r\n');
    }
    this.sock.write(Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))));
    return withTimeout(new Promise((resolve) => this.waiting.push(resolve)), 5000, `redis ${args[0]}`);
  }

  async numsub(channel) {
    const r = await this.cmd('PUBSUB', 'NUMSUB', channel);
    return r[1];
  }

  close() {
    this.sock.destroy();
  }
}

// One redis-server on a loopback port; stop() kills it (SIGKILL), start()
// brings it back on the same port.
class Redis {
  constructor(port, extra = []) {
    this.port = port;
    this.extra = extra;
    this.proc = null;
  }

  async start() {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extra],
      { stdio: 'ignore' }
    );
    const proc = this.proc;
    await until(
      () =>
        new Promise((resolve) => {
          if (proc.exitCode !== null) throw new Error('redis-server exited');
          const s = net.connect(this.port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        }),
      10000,
      'redis-server'
    );
  }

  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await withTimeout(gone, 5000, 'redis-server exit');
  }
}

async function brokerServer(url, options = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', broker: url, ...options });
  await waitFor(wss, 'listening', 8000);
  // every server-side connection subscribes to the topics its URL names
  wss.on('connection', (ws, req) => {
    const q = new URL(req.url, 'ws://x').searchParams.get('sub');
    if (q) for (const t of q.split(',')) ws.subscribe(t);
  });
  return wss;
}

// A client of wss subscribed to `topics`, with every message it gets.
async function subscriber(wss, topics) {
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/?sub=${topics.join(',')}`);
  ws.got = [];
  ws.on('message', (data, isBinary) => ws.got.push({ data: isBinary ? data : data.toString(), isBinary }));
  await waitFor(ws, 'open');
  return ws;
}

async function closeAll(servers, clients = []) {
  for (const ws of clients) ws.terminate();
  for (const wss of servers) await closeServer(wss);
}

describe('broker', { skip: !haveRedis && 'redis-server is not installed' }, () => {
  let redis;
  let url;
  let probe;

  before(async () => {
    redis = new Redis(await freePort());
    await redis.start();
    url = `redis://127.0.0.1:${redis.port}/0`;
    probe = await Resp.connect(redis.port);
  });

  after(async () => {
    if (probe) probe.close();
    await redis.stop();
  });

  test('a publish reaches subscribers on another server, and on its own', { timeout: 30000 }, async () => {
    const a = await brokerServer(url, { brokerPrefix: 'x1:' });
    const b = await brokerServer(url, { brokerPrefix: 'x1:' });
    const onA = await subscriber(a, ['news']);
    const onB = await subscriber(b, ['news']);
    await until(async () => (await probe.numsub('x1:news')) === 2, 5000, 'both nodes subscribed');
    assert.strictEqual(a.publish('news', 'hello'), 1, 'local receivers');
    await until(() => onA.got.length === 1 && onB.got.length === 1, 5000, 'deliveries');
    assert.deepStrictEqual(onA.got, [{ data: 'hello', isBinary: false }]);
    assert.deepStrictEqual(onB.got, [{ data: 'hello', isBinary: false }]);
    // the publisher's own subscriber got it once, directly, not again from Redis
    await sleep(100);
    assert.strictEqual(onA.got.length, 1);
    const sa = a.brokerStats();
    const sb = b.brokerStats();
    assert.strictEqual(sa.connected, true);
    assert.strictEqual(sa.channels, 1);
    assert.strictEqual(sa.published, 1);
    assert.strictEqual(sb.received, 1);
    assert.strictEqual(sb.dropped, 0);
    assert.deepStrictEqual(Object.keys(sa).sort(), [
      'channels', 'connected', 'dropped', 'malformed', 'published', 'received', 'reconnects'
    ]);
    // 'listening' means attached and connected: a publish right then
    // reaches the other nodes, none is dropped
    const d = await brokerServer(url, { brokerPrefix: 'x1:' });
    d.publish('news', 'at once');
    await until(() => onA.got.length === 2 && onB.got.length === 2, 5000, 'publish at listening');
    assert.strictEqual(d.brokerStats().dropped, 0);
    await closeServer(d);
    onA.got.length = 0;
    onB.got.length = 0;
    // another prefix is another application: nothing crosses
    const c = await brokerServer(url, { brokerPrefix: 'x2:' });
    const onC = await subscriber(c, ['news']);
    await until(async () => (await probe.numsub('x2:news')) === 1, 5000, 'x2 subscribed');
    b.publish('news', 'second');
    await until(() => onA.got.length === 1, 5000, 'second');
    await sleep(100);
    assert.strictEqual(onC.got.length, 0);
    // without a broker a server has no stats
    assert.strictEqual(a.brokerStats() !== null, true);
    const plain = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await waitFor(plain, 'listening');
    assert.strictEqual(plain.brokerStats(), null);
    await closeAll([a, b, c, plain], [onA, onB, onC]);
    assert.strictEqual(a.brokerStats(), null, 'closed');
  });

  test('a node subscribes to a topic on Redis only while it has subscribers (PUBSUB NUMSUB)', { timeout: 30000 }, async () => {
    const a = await brokerServer(url, { brokerPrefix: 'i:' });
    const b = await brokerServer(url, { brokerPrefix: 'i:' });
    assert.strictEqual(await probe.numsub('i:t'), 0);
    const c1 = await subscriber(a, ['t']);
    await until(async () => (await probe.numsub('i:t')) === 1, 5000, 'a subscribed');
    assert.strictEqual(a.brokerStats().channels, 1);
    assert.strictEqual(b.brokerStats().channels, 0);
    // a second local subscriber on the same node adds no Redis subscription
    const c2 = await subscriber(a, ['t']);
    await sleep(100);
    assert.strictEqual(await probe.numsub('i:t'), 1);
    // b without subscribers of t receives nothing for it
    a.publish('t', 'only a');
    await until(() => c1.got.length === 1 && c2.got.length === 1, 5000, 'local');
    assert.strictEqual(b.brokerStats().received, 0);
    const c3 = await subscriber(b, ['t']);
    await until(async () => (await probe.numsub('i:t')) === 2, 5000, 'b subscribed');
    c1.close();
    c2.close();
    await until(async () => (await probe.numsub('i:t')) === 1, 5000, 'a unsubscribed after its last left');
    assert.strictEqual(a.brokerStats().channels, 0);
    // a still publishes to b, without a subscription of its own
    a.publish('t', 'to b');
    await until(() => c3.got.length === 1, 5000, 'b delivery');
    await closeAll([a, b], [c3]);
    await until(async () => (await probe.numsub('i:t')) === 0, 5000, 'all gone');
  });

  test('a few thousand messages arrive in order, text and binary kept', { timeout: 60000 }, async () => {
    const a = await brokerServer(url, { brokerPrefix: 'o:' });
    const b = await brokerServer(url, { brokerPrefix: 'o:' });
    const onB = await subscriber(b, ['seq']);
    await until(async () => (await probe.numsub('o:seq')) === 1, 5000, 'subscribed');
    const N = 3000;
    for (let i = 0; i < N; i++) {
      if (i % 2) a.publish('seq', Buffer.from(`b${i}`));
      else a.publish('seq', `t${i}`);
    }
    // one string that is not ASCII and one empty binary message
    a.publish('seq', 'né ✓');
    a.publish('seq', Buffer.alloc(0));
    await until(() => onB.got.length === N + 2, 30000, `${N + 2} messages (got ${onB.got.length})`);
    for (let i = 0; i < N; i++) {
      const m = onB.got[i];
      if (i % 2) {
        assert.strictEqual(m.isBinary, true, `#${i}`);
        assert.ok(Buffer.isBuffer(m.data));
        assert.strictEqual(m.data.toString(), `b${i}`);
      } else {
        assert.deepStrictEqual(m, { data: `t${i}`, isBinary: false }, `#${i}`);
      }
    }
    assert.deepStrictEqual(onB.got[N], { data: 'né ✓', isBinary: false });
    assert.strictEqual(onB.got[N + 1].isBinary, true);
    assert.strictEqual(onB.got[N + 1].data.length, 0);
    // published counts what Redis acknowledged, which may come after b got it
    await until(() => a.brokerStats().published === N + 2, 5000, 'every publish acknowledged');
    assert.strictEqual(b.brokerStats().received, N + 2);
    await closeAll([a, b], [onB]);
  });

  test('another process is another node: both ways', { timeout: 30000 }, async () => {
    const script = `
      const { WebSocketServer } = require(${JSON.stringify(path.join(root, 'node/index.js'))});
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', broker: process.argv[1], brokerPrefix: 'p:' });
      wss.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
      wss.on('listening', () => console.log('port ' + wss.address().port));
      wss.on('connection', (ws) => {
        ws.subscribe('to-child');
        ws.on('message', (d, isBinary) => wss.publish('to-parent', d, { binary: isBinary }));
      });
      process.stdin.on('end', () => process.exit(0));
      process.stdin.resume();
    `;
    const child = spawn(process.execPath, ['-e', script, url], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      const port = await until(() => {
        const m = /^port (\d+)$/m.exec(out);
        if (/^error/m.test(out)) throw new Error(out);
        return m && Number(m[1]);
      }, 10000, 'child listening');
      const a = await brokerServer(url, { brokerPrefix: 'p:' });
      const here = await subscriber(a, ['to-parent']);
      const there = new WebSocket(`ws://127.0.0.1:${port}/`);
      there.got = [];
      there.on('message', (data, isBinary) => there.got.push({ data: isBinary ? data : data.toString(), isBinary }));
      await waitFor(there, 'open');
      await until(async () => (await probe.numsub('p:to-child')) === 1, 5000, 'child subscribed');
      await until(async () => (await probe.numsub('p:to-parent')) === 1, 5000, 'parent subscribed');
      assert.strictEqual(a.publish('to-child', 'from parent'), 0, 'no local receivers');
      await until(() => there.got.length === 1, 5000, 'child delivery');
      assert.deepStrictEqual(there.got[0], { data: 'from parent', isBinary: false });
      there.send(Buffer.from([1, 2, 3]));
      await until(() => here.got.length === 1, 5000, 'parent delivery');
      assert.strictEqual(here.got[0].isBinary, true);
      assert.deepStrictEqual([...here.got[0].data], [1, 2, 3]);
      assert.strictEqual(a.brokerStats().received, 1);
      there.terminate();
      await closeAll([a], [here]);
    } finally {
      child.stdin.end();
      if (child.exitCode === null) {
        await withTimeout(once(child, 'exit'), 5000, 'child exit').catch(() => child.kill('SIGKILL'));
      }
    }
  });

  test('a foreign publisher\'s garbage is dropped and counted', { timeout: 30000 }, async () => {
    const b = await brokerServer(url, { brokerPrefix: 'g:' });
    const a = await brokerServer(url, { brokerPrefix: 'g:' });
    const onB = await subscriber(b, ['g']);
    await until(async () => (await probe.numsub('g:g')) === 1, 5000, 'subscribed');
    await probe.cmd('PUBLISH', 'g:g', 'not a wirehub message');
    await probe.cmd('PUBLISH', 'g:g', '');
    // wirehub's header, kind text, but not UTF-8
    await probe.cmd('PUBLISH', 'g:g', Buffer.concat([Buffer.from('WH\x01\x01', 'latin1'), Buffer.alloc(8, 7), Buffer.from([0xff, 0xfe])]));
    // an unknown version
    await probe.cmd('PUBLISH', 'g:g', Buffer.concat([Buffer.from('WH\x09\x01', 'latin1'), Buffer.alloc(8, 7), Buffer.from('v9')]));
    a.publish('g', 'real');
    await until(() => onB.got.length === 1, 5000, 'the real message');
    assert.deepStrictEqual(onB.got, [{ data: 'real', isBinary: false }]);
    const s = b.brokerStats();
    assert.strictEqual(s.malformed, 4);
    assert.strictEqual(s.received, 1);
    assert.strictEqual(onB.readyState, WebSocket.OPEN);
    await closeAll([a, b], [onB]);
  });

  test('Redis killed and restarted mid-stream: local delivery goes on, drops are counted, the node comes back', { timeout: 60000 }, async () => {
    const a = await brokerServer(url, { brokerPrefix: 'r:', brokerConnectTimeout: 1000 });
    const b = await brokerServer(url, { brokerPrefix: 'r:', brokerConnectTimeout: 1000 });
    const local = await subscriber(a, ['s']);
    const remote = await subscriber(b, ['s']);
    await until(async () => (await probe.numsub('r:s')) === 2, 5000, 'subscribed');
    let seq = 0;
    const tick = setInterval(() => a.publish('s', String(seq++)), 5);
    try {
      await until(() => remote.got.length >= 50, 5000, 'stream flowing');
      probe.close();
      probe = null;
      await redis.stop();
      await until(() => !a.brokerStats().connected && !b.brokerStats().connected, 10000, 'loss noticed');
      const before = seq;
      await until(() => seq > before + 50, 5000, 'publishing while Redis is down');
      await until(() => a.brokerStats().dropped > 0, 5000, 'drops counted');
      await redis.start();
      probe = await Resp.connect(redis.port);
      await until(() => a.brokerStats().connected && b.brokerStats().connected, 15000, 'reconnected');
      await until(async () => (await probe.numsub('r:s')) === 2, 5000, 'resubscribed');
      const resumed = seq;
      await until(() => remote.got.some((m) => Number(m.data) > resumed), 5000, 'remote delivery resumed');
    } finally {
      clearInterval(tick);
    }
    const last = seq - 1;
    await until(() => local.got.length === seq, 5000, 'every local delivery');
    // locally: every message, in order, whatever Redis did
    assert.ok(local.got.every((m, i) => m.data === String(i)));
    // remotely: in order, with the outage's messages missing
    const nums = remote.got.map((m) => Number(m.data));
    await until(() => Number(remote.got[remote.got.length - 1].data) === last, 5000, 'the last remote message');
    for (let i = 1; i < nums.length; i++) assert.ok(nums[i] > nums[i - 1], `remote order at ${i}`);
    assert.ok(nums.length < seq, 'some were lost while Redis was down');
    const sa = a.brokerStats();
    const sb = b.brokerStats();
    assert.ok(sa.dropped > 0, JSON.stringify(sa));
    assert.ok(sa.reconnects >= 1 && sb.reconnects >= 1, JSON.stringify([sa, sb]));
    assert.strictEqual(sa.channels, 1);
    for (const ws of [local, remote]) ws.terminate();
    await closeServer(a);
    await closeServer(b);
  });

  // The redis-server restarted here is a child of this process: it used to
  // inherit the client's socket, so the server never saw the client go.
  test('a server closes after its broker reconnected', { timeout: 30000 }, async () => {
    const a = await brokerServer(url, { brokerPrefix: 'c:', brokerConnectTimeout: 1000 });
    const ws = await subscriber(a, ['t']);
    probe.close();
    probe = null;
    await redis.stop();
    await until(() => !a.brokerStats().connected, 10000, 'loss noticed');
    await redis.start();
    probe = await Resp.connect(redis.port);
    await until(() => a.brokerStats().connected, 15000, 'reconnected');
    ws.close();
    await waitFor(ws, 'close', 5000);
    await until(() => a.clients.size === 0, 5000, 'the server side of the connection closed');
    await closeServer(a);
  });

  test('the broker options are checked at construction', () => {
    assert.throws(() => new WebSocketServer({ port: 0, broker: 5 }), TypeError);
    assert.throws(() => new WebSocketServer({ port: 0, broker: '' }), TypeError);
    assert.throws(() => new WebSocketServer({ port: 0, brokerPrefix: 'a:' }), TypeError);
    assert.throws(() => new WebSocketServer({ port: 0, broker: url, brokerPrefix: 1 }), TypeError);
    assert.throws(() => new WebSocketServer({ port: 0, broker: url, brokerConnectTimeout: -1 }), RangeError);
    assert.throws(() => new WebSocketServer({ port: 0, broker: url, brokerMaxPending: 1.5 }), RangeError);
  });

  test('with noServer, a node without connections still publishes to the others', { timeout: 30000 }, async () => {
    const a = new WebSocketServer({ noServer: true, broker: url, brokerPrefix: 'n:' });
    a.on('error', (e) => assert.fail(e));
    const b = await brokerServer(url, { brokerPrefix: 'n:' });
    const onB = await subscriber(b, ['t']);
    await until(() => a.brokerStats(), 5000, 'a attached');
    await until(async () => (await probe.numsub('n:t')) === 1, 5000, 'subscribed');
    assert.strictEqual(a.publish('t', 'from noServer'), 0);
    await until(() => onB.got.length === 1, 5000, 'delivery');
    assert.strictEqual(onB.got[0].data, 'from noServer');
    await closeAll([a, b], [onB]);
  });
});

describe('broker errors at start', { skip: !haveRedis && 'redis-server is not installed' }, () => {
  let redis;

  before(async () => {
    redis = new Redis(await freePort(), ['--requirepass', 's3cret']);
    await redis.start();
  });

  after(async () => {
    await redis.stop();
  });

  // A server whose broker fails: 'error' with the code, no 'listening', the
  // port released, and close() then reports that it is not running.
  async function failing(broker, extra = {}) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', broker, ...extra });
    let listening = false;
    wss.on('listening', () => {
      listening = true;
    });
    const port = wss.address().port;
    const [err] = await waitFor(wss, 'error', 10000);
    await sleep(50);
    assert.strictEqual(listening, false);
    assert.strictEqual(wss.address(), null);
    assert.strictEqual(wss.brokerStats(), null);
    // the port is free again
    await new Promise((resolve, reject) => {
      const s = net.createServer().once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(resolve));
    });
    const closeErr = await withTimeout(new Promise((resolve) => wss.close(resolve)), 5000, 'close');
    assert.match(String(closeErr), /not running/);
    return err;
  }

  test('a wrong URL is WH_EURL', { timeout: 20000 }, async () => {
    for (const u of ['http://127.0.0.1:6379', 'redis://127.0.0.1:notaport', 'redis://127.0.0.1:6379/x']) {
      const err = await failing(u);
      assert.ok(err instanceof Error);
      assert.strictEqual(err.code, 'WH_EURL', u);
      assert.strictEqual(err.errno, E.EURL);
      assert.strictEqual(err.syscall, 'broker');
    }
  });

  test('a refused password is WH_EACCES, the right one works, the message hides it', { timeout: 20000 }, async () => {
    let err = await failing(`redis://:wrong@127.0.0.1:${redis.port}`);
    assert.strictEqual(err.code, 'WH_EACCES');
    assert.strictEqual(err.errno, E.EACCES);
    assert.ok(!err.message.includes('wrong'), err.message);
    assert.match(err.message, /^broker redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: /);
    err = await failing(`redis://127.0.0.1:${redis.port}`);
    assert.ok(['WH_EACCES', 'WH_EBROKER'].includes(err.code), err.code);
    const wss = await brokerServer(`redis://:s3cret@127.0.0.1:${redis.port}/1`);
    assert.strictEqual(wss.brokerStats().connected, true);
    await closeServer(wss);
  });

  test('an unreachable Redis is WH_ECONNREFUSED, within the connect timeout', { timeout: 20000 }, async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await failing(`redis://127.0.0.1:${port}`, { brokerConnectTimeout: 2000 });
    assert.strictEqual(err.code, 'WH_ECONNREFUSED');
    assert.strictEqual(err.errno, E.ECONNREFUSED);
    assert.ok(Date.now() - t0 < 5000);
  });

  // Runs fn(wss) with a server whose broker is still connecting: its Redis
  // is a listener that accepts and never answers, so the check waits for the
  // whole brokerConnectTimeout.
  async function whileBrokerConnects(brokerConnectTimeout, fn) {
    const silent = net.createServer(() => {});
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const wss = new WebSocketServer({
        port: 0,
        host: '127.0.0.1',
        broker: `redis://127.0.0.1:${silent.address().port}`,
        brokerConnectTimeout
      });
      await fn(wss);
    } finally {
      silent.close();
    }
  }

  test('the JS thread is not held while the broker connects', { timeout: 20000 }, async () => {
    // The check waits on a worker thread: timers keep running meanwhile.
    await whileBrokerConnects(1000, async (wss) => {
      let ticks = 0;
      const iv = setInterval(() => ticks++, 10);
      const t0 = Date.now();
      const [err] = await waitFor(wss, 'error', 10000);
      clearInterval(iv);
      assert.strictEqual(err.code, 'WH_ETIMEDOUT');
      assert.ok(Date.now() - t0 >= 900);
      assert.ok(ticks >= 30, `timers ran meanwhile (${ticks})`);
    });
  });

  test('close() while the broker connects', { timeout: 20000 }, async () => {
    await whileBrokerConnects(500, async (wss) => {
      const errors = [];
      wss.on('error', (e) => errors.push(e));
      await sleep(20);
      await closeServer(wss);
      assert.deepStrictEqual(errors, []);
    });
  });
});
