'use strict';
// The package as users get it: `npm pack` carries the prebuilt addon whatever
// was run before (its prepack script, scripts/prebuild-node.sh, builds the
// addon if missing or stale and copies it to prebuilds/), and in a fresh
// directory `npm install ./wirehub-x.y.z.tgz` needs no install script, no
// approval and no network; require() and import then work.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..', '..');
const pkg = require(path.join(root, 'package.json'));
const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'wirehub.node');

// prepack may have to rebuild the addon (a stale one: the engine changed).
test('npm pack with no prebuilds/ + npm install into a fresh directory: require, import, echo', { timeout: 600000 }, () => {
  // What a user has after `npm run build`: no prebuilds/ at all. Only
  // `npm pack` runs; its prepack step must put the addon in.
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wirehub-install-'));
  try {
    const env = { ...process.env };
    delete env.WIREHUB_NODE_ADDON;
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: root,
      env: { WIREHUB_JOBS: '1', ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe']
    });
    assert.ok(fs.existsSync(prebuild), `npm pack left no ${prebuild}`);
    const info = JSON.parse(out.slice(out.indexOf('[')))[0];
    const files = info.files.map((f) => f.path);
    assert.ok(files.includes(`prebuilds/${process.platform}-${process.arch}/wirehub.node`), files.join(', '));
    assert.ok(files.includes('node/index.js') && files.includes('node/index.d.ts') && files.includes('node/wrapper.mjs'));
    assert.ok(!files.some((f) => f.startsWith('node_modules/') || f.startsWith('tests/')), 'no test or dependency files');
    const tgz = path.join(tmp, info.filename);
    assert.strictEqual(info.filename, `wirehub-${pkg.version}.tgz`);

    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tgz], { cwd: app, env, stdio: 'pipe' });
    assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'wirehub', 'bindings')), 'no source build in the install');

    const script = `
      const WebSocket = require('wirehub');
      const wss = new WebSocket.Server({ port: 0, host: '127.0.0.1' }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => ws.send('echo me'));
        ws.on('message', (d) => { console.log('got ' + d); ws.close(); });
        ws.on('close', () => wss.close());
      });
      wss.on('connection', (s) => s.on('message', (d, b) => s.send(d, { binary: b })));
    `;
    const res = execFileSync(process.execPath, ['-e', script], { cwd: app, env, encoding: 'utf8', timeout: 15000 });
    assert.strictEqual(res.trim(), 'got echo me');
    const esm = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import WebSocket, { WebSocketServer } from 'wirehub'; console.log(typeof WebSocket, typeof WebSocketServer);"],
      { cwd: app, env, encoding: 'utf8', timeout: 15000 }
    );
    assert.strictEqual(esm.trim(), 'function function');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
