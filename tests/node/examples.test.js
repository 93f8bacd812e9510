'use strict';
// The examples start and answer as their comments say.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const WebSocket = require('../..');
const { waitFor, withTimeout } = require('./helpers');

function start(name) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'examples', 'node', name), '0'], {
    stdio: ['ignore', 'pipe', 'inherit']
  });
  const port = withTimeout(
    new Promise((resolve) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
    }),
    10000,
    `${name} start`
  );
  return { child, port };
}

for (const [name, urlPath, expect] of [
  ['echo.js', '/', 'hi'],
  ['chat.js', '/room1', '* someone joined room1'],
  ['express.js', '/ws', 'welcome']
]) {
  test(`examples/node/${name}`, async () => {
    const { child, port } = start(name);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${await port}${urlPath}`);
      if (name === 'echo.js') ws.on('open', () => ws.send('hi'));
      const [msg] = await waitFor(ws, 'message');
      assert.strictEqual(msg.toString(), expect);
      const closed = waitFor(ws, 'close');
      ws.close();
      await closed;
    } finally {
      child.kill('SIGKILL');
    }
  });
}
