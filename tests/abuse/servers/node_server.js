'use strict';
// The Node server of the abuse suite: wirehub's ws-compatible
// WebSocketServer with ws's default options (maxPayload 100 MiB, no
// permessage-deflate), written as a ws user would:
//   node node_server.js [--port P] [--deflate] [--hook] [--message-timeout-ms MS]
// Every message goes back to its sender, except one whose payload starts with
// "broadcast:", which is published to every connection (sender included) on
// the topic "all" (framed once by the engine). --hook adds a verifyClient
// that refuses the path /refuse with 403; --deflate turns perMessageDeflate
// on; --message-timeout-ms is passed as the option messageTimeout (ignored by
// a wirehub that does not know it). Prints "listening on ws://127.0.0.1:PORT".
const path = require('path');
const WebSocket = require(process.env.WIREHUB_NODE_PACKAGE || path.join(__dirname, '..', '..', '..', 'node'));

const args = process.argv.slice(2);
const opts = { port: 0, host: '127.0.0.1' };
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') opts.port = Number(args[++i]);
  else if (args[i] === '--deflate') opts.perMessageDeflate = true;
  else if (args[i] === '--hook') {
    opts.verifyClient = (info, cb) => (info.req.url === '/refuse' ? cb(false, 403, 'refused') : cb(true));
  } else if (args[i] === '--message-timeout-ms') opts.messageTimeout = Number(args[++i]);
  else {
    console.error(`node_server: unknown argument ${args[i]}`);
    process.exit(2);
  }
}

const BROADCAST = Buffer.from('broadcast:');
const wss = new WebSocket.WebSocketServer(opts);
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('error', (err) => {
  console.error(`node_server: ${err.message}`);
  process.exit(1);
});
wss.on('connection', (ws) => {
  ws.subscribe('all');
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    if (buf.length >= BROADCAST.length && buf.subarray(0, BROADCAST.length).equals(BROADCAST)) {
      wss.publish('all', buf, { binary: isBinary });
    } else {
      ws.send(buf, { binary: isBinary });
    }
  });
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
