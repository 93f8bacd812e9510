// Compiled (not run) by types.test.js: the declarations cover the ws-style API.
import WebSocket = require('../../..');
import * as http from 'http';

const wss = new WebSocket.Server({ port: 0, host: '127.0.0.1', maxPayload: 1024, perMessageDeflate: { threshold: 512 } });
const wss2 = new WebSocket.WebSocketServer({ noServer: true, verifyClient: (info, cb) => cb(info.secure, 401) });
const server = http.createServer();
const wss3 = new WebSocket.Server({ server, path: '/ws', handleProtocols: (set) => (set.has('a') ? 'a' : false) });
wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
  ws.subscribe('room');
  ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => ws.send(data, { binary: isBinary, compress: false }));
  ws.on('close', (code: number, reason: Buffer) => void [code, reason]);
  const n: number = wss.publish('room', 'hi', { binary: false });
  void [req.url, n];
});
wss.on('headers', (headers: string[]) => headers.push('X-A: 1'));
server.on('upgrade', (req, socket, head) => wss2.handleUpgrade(req, socket, head, (ws) => wss2.emit('connection', ws, req)));
const c = new WebSocket('ws://127.0.0.1:1', ['a'], { handshakeTimeout: 100, rejectUnauthorized: false, headers: { a: 'b' } });
c.binaryType = 'arraybuffer';
c.onmessage = (ev) => void ev.data;
c.addEventListener('close', (ev) => void [ev.code, ev.reason, ev.wasClean]);
c.on('unexpected-response', (req, res) => void [req, res.statusCode]);
const state: number = c.readyState === WebSocket.OPEN ? c.bufferedAmount : 0;
const duplex = WebSocket.createWebSocketStream(c, { encoding: 'utf8' });
const wss4 = new WebSocket.Server({
  port: 0, broker: 'redis://127.0.0.1:6379/0', brokerPrefix: 'app:', brokerConnectTimeout: 2000, brokerMaxPending: 1 << 20
});
wss4.on('error', (err) => void (err as WebSocket.BrokerError).code);
const stats: WebSocket.BrokerStats | null = wss4.brokerStats();
if (stats) void [stats.connected, stats.channels, stats.published, stats.received, stats.dropped, stats.malformed, stats.reconnects];
wss3.close(() => {});
void [state, duplex, wss.clients.size, WebSocket.engineVersion];
