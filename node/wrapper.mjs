// ESM entry: import WebSocket, { WebSocketServer } from 'wirehub'
import WebSocket from './index.js';

export const createWebSocketStream = WebSocket.createWebSocketStream;
export const WebSocketServer = WebSocket.WebSocketServer;
export const Server = WebSocket.Server;
export { WebSocket };
export default WebSocket;
