// The Socket.IO anchor of bench/cluster: one Socket.IO 4.8 node on
// @socket.io/redis-adapter 8.3, rooms as topics. The protocol is the one of
// node_server.c, in Socket.IO events (cluster_load.cpp speaks both):
//
//   "s" (room, ack)      join the room, then ack()
//   "p" (room, payload)  io.to(room).emit("m", payload): every member of the
//                        room on every node attached to the same Redis + key
//
//   node socketio_node.js --port P --redis redis://127.0.0.1:PORT/0 [--prefix KEY]
//
// WebSocket transport only (no long-polling, no compression: the defaults
// of perMessageDeflate and httpCompression matter only for polling here),
// listening on 127.0.0.1 until SIGTERM/SIGINT.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

function parseArgs(argv) {
  const opts = { port: 0, redis: null, prefix: 'socket.io' };
  for (let i = 2; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--port') opts.port = Number(v);
    else if (argv[i] === '--redis') opts.redis = v;
    else if (argv[i] === '--prefix') opts.prefix = v;
    else {
      console.error('usage: node socketio_node.js --port P [--redis URL] [--prefix KEY]');
      process.exit(2);
    }
    i++;
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv);
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false
  });

  let clients = [];
  if (opts.redis) {
    const pub = createClient({ url: opts.redis });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on('error', (err) => console.error('socketio_node: redis:', err.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub, { key: opts.prefix }));
    clients = [pub, sub];
  }

  io.on('connection', (socket) => {
    socket.on('s', (room, ack) => {
      socket.join(String(room));
      if (typeof ack === 'function') ack();
    });
    socket.on('p', (room, payload) => {
      io.to(String(room)).emit('m', payload);
    });
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, '127.0.0.1', resolve);
  });
  console.log(`listening on ws://127.0.0.1:${httpServer.address().port} (socket.io${opts.redis ? ', redis adapter' : ''})`);

  const stop = () => {
    io.close();
    for (const c of clients) c.disconnect().catch(() => {});
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('socketio_node:', err);
  process.exit(1);
});
