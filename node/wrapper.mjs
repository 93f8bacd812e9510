// ESM entry: import WebSocket, { WebSocketServer } from 'wirehub'
import WebSocket from './index.js';

export const createWebSocketStream = WebSocket.createWebSocketStream;
export const WebSocketServer = WebSocket.WebSocketServer;
export const Server = WebSocket.Server;
export const CloseCode = WebSocket.CloseCode;
export { WebSocket };
export default WebSocket;
