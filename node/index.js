'use strict';
// wirehub: the API of ws 8 on the wirehub native engine.
//   const WebSocket = require('wirehub');  // instead of require('ws')

const WebSocket = require('./lib/websocket');
const WebSocketServer = require('./lib/websocket-server');
const createWebSocketStream = require('./lib/stream');
const { addon } = require('./lib/native');
const { CloseCode } = require('./lib/errors');

WebSocket.createWebSocketStream = createWebSocketStream;
WebSocket.Server = WebSocketServer;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.WebSocket = WebSocket;
// ws exports its Receiver/Sender; wirehub frames in the engine and has none.
WebSocket.engineVersion = addon.version;
// wirehub extra (ws has none): named close codes, e.g. ws.close(CloseCode.POLICY).
WebSocket.CloseCode = CloseCode;

module.exports = WebSocket;
