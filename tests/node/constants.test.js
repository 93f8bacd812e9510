'use strict';
// wirehub's extras next to the ws API: the named close codes (the engine's
// WH_CLOSE_*), how the engine's newer errors surface, that a URL or option
// cannot inject lines into the upgrade request, and that the addon exports
// N-API's entry points only.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const WebSocket = require('../..');
const { engineError } = require('../../node/lib/errors');
const { E, SERVER } = require('../../node/lib/native');
const { withTimeout } = require('./helpers');

const root = path.resolve(__dirname, '../..');

test('CloseCode holds exactly the header\'s WH_CLOSE_* values, frozen', async () => {
  const header = fs.readFileSync(path.join(root, 'capi/wirehub.h'), 'utf8');
  const defined = {};
  for (const m of header.matchAll(/^#define WH_CLOSE_(\w+) (\d+)/gm)) defined[m[1]] = Number(m[2]);
  assert.strictEqual(Object.keys(defined).length, 14);
  assert.deepStrictEqual({ ...WebSocket.CloseCode }, defined);
  assert.ok(Object.isFrozen(WebSocket.CloseCode));
  assert.strictEqual(WebSocket.CloseCode.POLICY, 1008);
  const esm = await import('../../node/wrapper.mjs');
  assert.strictEqual(esm.CloseCode, WebSocket.CloseCode);
});

test('the engine\'s error codes match the header, and EMFILE is Node\'s EMFILE', () => {
  const header = fs.readFileSync(path.join(root, 'capi/wirehub.h'), 'utf8');
  for (const m of header.matchAll(/^\s*X\((E\w+), (-\d+),/gm)) assert.strictEqual(E[m[1]], Number(m[2]), m[1]);
  const emfile = engineError(E.EMFILE);
  assert.strictEqual(emfile.code, 'EMFILE');
  assert.strictEqual(emfile.errno, -24);
  assert.strictEqual(engineError(E.EIDLE).code, 'WH_EIDLE');
  assert.strictEqual(engineError(E.EBUDGET).code, 'WH_EBUDGET');
});

test('the server flags the package sets are the header\'s WH_SERVER_*', () => {
  const header = fs.readFileSync(path.join(root, 'capi/wirehub.h'), 'utf8');
  const defined = {};
  for (const m of header.matchAll(/^#define WH_SERVER_(\w+) (0x[0-9a-f]+)/gm)) defined[m[1]] = Number(m[2]);
  assert.strictEqual(defined.WS_DEFLATE_ANSWER, 0x200);
  assert.deepStrictEqual({ ...SERVER }, defined);
});

test('a server in a process out of descriptors fails with EMFILE', () => {
  // A child with a low descriptor limit that uses up what is left first.
  const script = `
    const fs = require('fs');
    const { WebSocketServer } = require(${JSON.stringify(path.join(root, 'node/index.js'))});
    const held = [];
    try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
    let wss;
    try { wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }); } catch (e) { console.log('thrown', e.code); process.exit(0); }
    wss.on('error', (e) => { console.log('error', e.code); process.exit(0); });
    wss.on('listening', () => { console.log('listening'); process.exit(0); });
  `;
  const r = spawnSync('prlimit', ['--nofile=64', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.match(r.stdout, /^(thrown|error) EMFILE$/m, r.stdout + r.stderr);
});

test('CR/LF in a URL or an option never reaches the request', async () => {
  const heads = [];
  const server = net.createServer((s) => {
    let head = '';
    s.on('data', (d) => {
      head += d;
      if (head.includes('\r\n\r\n')) {
        heads.push(head);
        s.destroy();
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  try {
    // Node's URL parser drops CR, LF and tab (WHATWG), as it does for ws.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/a\r\nX-Injected: 1`);
    await withTimeout(new Promise((resolve) => ws.on('close', resolve).on('error', () => {})), 5000, 'close');
    assert.strictEqual(heads.length, 1);
    const lines = heads[0].split('\r\n');
    assert.strictEqual(lines[0], 'GET /aX-Injected:%201 HTTP/1.1');
    assert.ok(!lines.some((l) => /^X-Injected/i.test(l)), heads[0]);
    assert.throws(() => new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { 'X-A': '1\r\nX-Injected: 1' } }), TypeError);
    assert.throws(() => new WebSocket(`ws://127.0.0.1:${port}/`, { origin: 'http://a.test\r\nX-Injected: 1' }));
    assert.throws(() => new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { 'X-A': '1\x00' } }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.strictEqual(heads.length, 1, 'a refused option sends nothing');
  } finally {
    server.close();
  }
});

test('the addon exports N-API\'s entry points only', () => {
  const addon = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'wirehub.node');
  const out = execFileSync(path.join(root, 'tests/install/check_symbols.sh'),
    [addon, 'napi_register_module_v1|node_api_module_get_api_version_v1', 'napi_register_module_v1'],
    { encoding: 'utf8' });
  assert.match(out, /all matching/);
});
