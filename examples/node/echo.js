'use strict';
// Echo server, written exactly as with ws: only the require differs.
//   node examples/node/echo.js [port]      then: ws://127.0.0.1:8080/
const WebSocket = require('../..'); // in an app: require('wirehub')

const wss = new WebSocket.Server({ port: Number(process.argv[2] || 8080), host: '127.0.0.1' });
wss.on('listening', () => console.log(`echo server on ws://127.0.0.1:${wss.address().port}/`));
wss.on('connection', (ws, req) => {
  console.log(`connection from ${req.socket.remoteAddress}`);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.on('SIGINT', () => wss.close(() => process.exit(0)));
