'use strict';
// Issue 11's memory bar in the Node package: what an idle server connection
// keeps on the JS heap after a full GC. Here 590-660 bytes a connection before
// its listener table, its WebSocket's fields and the server's Set of live
// connections were made smaller, 330-370 since (Node 20). The clients are
// raw sockets in a child process, so that only the server's side is on this
// heap. Loopback only; every wait is bounded.
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const v8 = require('node:v8');
const vm = require('node:vm');
const WebSocket = require('../..');
const { WebSocketServer } = WebSocket;
const { withTimeout, listen, closeServer } = require('./helpers');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

// n raw WebSocket clients in a child process: resolves once every one got
// its 101; the child exits (and the sockets close) when its stdin ends.
const CLIENTS = `
const net = require('net');
const [port, n] = process.argv.slice(1).map(Number);
const req = 'GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n';
let open = 0;
// in waves of 200, within the server's backlog and maxHandshakes
function wave() {
  const end = Math.min(open + 200, n);
  for (let i = open; i < end; i++) {
    const s = net.connect(port, '127.0.0.1', () => s.write(req));
    s.once('data', (d) => {
      if (!d.toString('latin1').startsWith('HTTP/1.1 101')) return;
      if (++open === n) console.log('open');
      else if (open === end) wave();
    });
    s.on('error', () => {});
  }
}
wave();
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

function openClients(port, n) {
  const child = spawn(process.execPath, ['-e', CLIENTS, String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const opened = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => d.toString().includes('open') && resolve());
    child.on('exit', (code) => reject(new Error(`the clients exited (${code})`)));
  });
  return { child, opened: withTimeout(opened, 20000, `${n} clients to open`) };
}

function heapAfterGc() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test('an idle server connection keeps less than 450 bytes of JS heap', async (t) => {
  const { wss } = await listen(WebSocketServer);
  const port = wss.address().port;
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  // warm-up: compiled code, maps and the tables' first growth
  const warm = openClients(port, 200);
  await warm.opened;
  warm.child.stdin.end();
  await withTimeout(
    new Promise((resolve) => {
      const t = setInterval(() => wss.clients.size === 0 && (clearInterval(t), resolve()), 20);
    }),
    10000,
    'the warm-up clients to close'
  );
  const n = 1500;
  const before = heapAfterGc();
  const held = openClients(port, n);
  try {
    await held.opened;
    await withTimeout(
      new Promise((resolve) => {
        const t = setInterval(() => connections >= 200 + n && (clearInterval(t), resolve()), 10);
      }),
      10000,
      "every 'connection'"
    );
    const perConnection = (heapAfterGc() - before) / n;
    t.diagnostic(`${perConnection.toFixed(0)} bytes per idle connection`);
    assert.strictEqual(wss.clients.size, n);
    assert.ok(perConnection < 450, `${perConnection.toFixed(0)} bytes of JS heap per idle connection`);
  } finally {
    held.child.stdin.end();
    for (const ws of wss.clients) ws.terminate();
    await closeServer(wss);
  }
});
