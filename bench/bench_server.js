'use strict';
// The Node benchmark server (bench/servers.txt: node=...), written with the
// ws API as a ws user would, on wirehub:
//   node bench/bench_server.js echo|broadcast PORT
// echo: every message goes back to its sender with the same type.
// broadcast: every message to every open connection, sender included, through
// wirehub's topic publish (framed once for all subscribers), the idiomatic
// fast path; BENCH_BROADCAST=clients loops over wss.clients as plain ws code
// would.
const WebSocket = require('..');

const [mode, portArg] = process.argv.slice(2);
if ((mode !== 'echo' && mode !== 'broadcast') || !/^\d+$/.test(portArg || '')) {
  console.error('usage: node bench/bench_server.js echo|broadcast PORT');
  process.exit(2);
}
const loopClients = process.env.BENCH_BROADCAST === 'clients';


function serve() {
  const wss = new WebSocket.WebSocketServer({ port: Number(portArg), host: '127.0.0.1', backlog: 4096 });
  wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port} (${mode})`));
  wss.on('error', (err) => {
    console.error(`bench_server: ${err.message}`);
    process.exit(1);
  });

  if (mode === 'echo') {
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  } else if (loopClients) {
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        for (const client of wss.clients) client.send(data, { binary: isBinary });
      });
    });
  } else {
    wss.on('connection', (ws) => {
      ws.subscribe('all');
      ws.on('message', (data, isBinary) => wss.publish('all', data, { binary: isBinary }));
    });
  }
}

// Warm-up before the real port opens: the first connections of a fresh
// process pay one-time costs (JIT-compiled handlers, V8 heap and code space
// reservations, ~4.5 MB here) that are not per-connection memory; wsbench's
// memory-5k takes its baseline right after the port opens, so without this
// those costs would be spread over its 5000 connections. BENCH_WARMUP=0
// skips it.
function warmup(next) {
  let started = false;
  const done = () => {
    if (started) return;
    started = true;
    clearTimeout(guard);
    next();
  };
  const guard = setTimeout(done, 5000); // never keep the bench from starting
  const n = 300;
  const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
    const url = `ws://127.0.0.1:${wss.address().port}/`;
    let left = n;
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.on('open', () => ws.send('warm'));
      ws.on('message', () => ws.close());
      ws.on('error', () => {});
      ws.on('close', () => {
        if (--left === 0) wss.close(() => setTimeout(done, 50));
      });
    }
  });
  wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

if (process.env.BENCH_WARMUP === '0') serve();
else warmup(serve);
