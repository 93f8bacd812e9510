'use strict';
// index.d.ts: a program using the ws-style API type-checks against it.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

test('index.d.ts type-checks a program that uses the whole API (tsc --noEmit --strict)', { timeout: 120000 }, () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [
    tsc, '--noEmit', '--strict', '--esModuleInterop', '--types', 'node', '--module', 'commonjs', '--target', 'es2020',
    path.join(__dirname, 'types', 'usage.ts')
  ], { encoding: 'utf8', cwd: path.join(__dirname, '..', '..') });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
});
