'use strict';
// An Express app and a WebSocket endpoint on one port: the upgrade requests
// of the http.Server are handed to the native engine.
//   node examples/node/express.js [port]   then GET / or ws://127.0.0.1:8080/ws
const http = require('http');
const express = require('express');
const WebSocket = require('../..'); // in an app: require('wirehub')

const app = express();
app.get('/', (req, res) => res.send('HTTP and WebSocket on one port; connect to /ws'));
const server = http.createServer(app);
const wss = new WebSocket.Server({ server, path: '/ws' });
wss.on('connection', (ws) => {
  ws.send('welcome');
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.listen(Number(process.argv[2] || 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGINT', () => wss.close(() => server.close(() => process.exit(0))));
