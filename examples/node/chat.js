'use strict';
// Chat rooms with topics: ws.subscribe(room) and wss.publish(room, text)
// frame each message once for every member, in the native engine.
//   node examples/node/chat.js [port]      then connect to ws://127.0.0.1:8080/<room>
const WebSocket = require('../..'); // in an app: require('wirehub')

const wss = new WebSocket.WebSocketServer({ port: Number(process.argv[2] || 8080), host: '127.0.0.1' });
wss.on('listening', () => console.log(`chat on ws://127.0.0.1:${wss.address().port}/<room>`));
wss.on('connection', (ws, req) => {
  const room = decodeURIComponent(req.url.slice(1).split('?')[0]) || 'lobby';
  ws.subscribe(room);
  wss.publish(room, `* someone joined ${room}`);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'text only');
    wss.publish(room, data.toString());
  });
});
process.on('SIGINT', () => wss.close(() => process.exit(0)));
