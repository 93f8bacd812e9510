// Types of wirehub's Node.js package: the API of ws 8, plus topics.
/// <reference types="node" />

import { EventEmitter } from 'events';
import { Agent, ClientRequest, ClientRequestArgs, IncomingMessage, OutgoingHttpHeaders, Server as HTTPServer } from 'http';
import { Server as HTTPSServer } from 'https';
import { Duplex, DuplexOptions } from 'stream';
import { SecureContextOptions } from 'tls';
import { URL } from 'url';
import { ZlibOptions } from 'zlib';

declare class WebSocket extends EventEmitter {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';
  readonly bufferedAmount: number;
  readonly extensions: string;
  readonly isPaused: boolean;
  readonly protocol: string;
  readonly readyState: 0 | 1 | 2 | 3;
  readonly url: string;

  onopen: ((event: WebSocket.Event) => void) | null;
  onerror: ((event: WebSocket.ErrorEvent) => void) | null;
  onclose: ((event: WebSocket.CloseEvent) => void) | null;
  onmessage: ((event: WebSocket.MessageEvent) => void) | null;

  constructor(address: string | URL, options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions | ClientRequestArgs);

  close(code?: number, data?: string | Buffer): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  ping(data?: any, mask?: boolean, cb?: (err: Error | null) => void): void;
  pong(data?: any, mask?: boolean, cb?: (err: Error | null) => void): void;
  send(data: WebSocket.Data | number | ArrayBufferView | Blob, cb?: (err?: Error | null) => void): void;
  send(
    data: WebSocket.Data | number | ArrayBufferView | Blob,
    options: { mask?: boolean; binary?: boolean; compress?: boolean; fin?: boolean },
    cb?: (err?: Error | null) => void
  ): void;

  /** wirehub: subscribe a server-side connection to a topic of its server. */
  subscribe(topic: string): boolean;
  /** wirehub: leave a topic. */
  unsubscribe(topic: string): boolean;

  addEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener: ((event: WebSocket.WebSocketEventMap[K]) => void) | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void },
    options?: WebSocket.EventListenerOptions
  ): void;
  removeEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener: ((event: WebSocket.WebSocketEventMap[K]) => void) | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void }
  ): void;

  on(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (this: WebSocket, err: Error) => void): this;
  on(event: 'upgrade', listener: (this: WebSocket, request: IncomingMessage) => void): this;
  on(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  on(event: 'open', listener: (this: WebSocket) => void): this;
  on(event: 'ping' | 'pong', listener: (this: WebSocket, data: Buffer) => void): this;
  on(event: 'redirect', listener: (this: WebSocket, url: string, request: ClientRequest) => void): this;
  on(event: 'unexpected-response', listener: (this: WebSocket, request: ClientRequest, response: IncomingMessage) => void): this;
  on(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;

  once(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (this: WebSocket, err: Error) => void): this;
  once(event: 'upgrade', listener: (this: WebSocket, request: IncomingMessage) => void): this;
  once(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  once(event: 'open', listener: (this: WebSocket) => void): this;
  once(event: 'ping' | 'pong', listener: (this: WebSocket, data: Buffer) => void): this;
  once(event: 'redirect', listener: (this: WebSocket, url: string, request: ClientRequest) => void): this;
  once(event: 'unexpected-response', listener: (this: WebSocket, request: ClientRequest, response: IncomingMessage) => void): this;
  once(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;

  off(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
}

declare const WebSocketAlias: typeof WebSocket;
interface WebSocketAlias extends WebSocket {}

declare namespace WebSocket {
  type Data = string | Buffer | ArrayBuffer | Buffer[];
  type RawData = Buffer | ArrayBuffer | Buffer[];

  type VerifyClientCallbackSync<Request extends IncomingMessage = IncomingMessage> = (info: {
    origin: string;
    secure: boolean;
    req: Request;
  }) => boolean;
  type VerifyClientCallbackAsync<Request extends IncomingMessage = IncomingMessage> = (
    info: { origin: string; secure: boolean; req: Request },
    callback: (res: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void
  ) => void;

  interface ClientOptions extends SecureContextOptions {
    protocol?: string;
    followRedirects?: boolean;
    /** Fills the 4-byte masking key of each frame the client sends (messages, ping, pong, close). */
    generateMask?(mask: Buffer): void;
    handshakeTimeout?: number;
    maxRedirects?: number;
    perMessageDeflate?: boolean | PerMessageDeflateOptions;
    localAddress?: string;
    protocolVersion?: number;
    headers?: { [key: string]: string };
    origin?: string;
    agent?: Agent;
    host?: string;
    family?: number;
    checkServerIdentity?(servername: string, cert: any): boolean;
    rejectUnauthorized?: boolean;
    servername?: string;
    allowSynchronousEvents?: boolean;
    autoPong?: boolean;
    maxPayload?: number;
    skipUTF8Validation?: boolean;
    /** ms to wait for the server's close frame after close(); default 30000. */
    closeTimeout?: number;
    /** The most non-empty fragments of one message; default 131072, 0: no limit. */
    maxFragments?: number;
    /** Socket chunks held for a frame not yet whole, counted as ws's receiver counts them; default 1048576, 0: no limit. */
    maxBufferedChunks?: number;
    /** wirehub (not in ws): close with 1001 when nothing arrived from the server for this many ms. Default 0: off. */
    idleTimeout?: number;
    /** wirehub (not in ws): a message that has begun must be complete within this many ms, else close with 1008. Default 60000; 0: off. */
    messageTimeout?: number;
  }

  interface PerMessageDeflateOptions {
    serverNoContextTakeover?: boolean;
    clientNoContextTakeover?: boolean;
    serverMaxWindowBits?: number;
    clientMaxWindowBits?: number;
    zlibDeflateOptions?: { flush?: number; finishFlush?: number; chunkSize?: number; windowBits?: number; level?: number; memLevel?: number; strategy?: number; dictionary?: Buffer | Buffer[] | DataView; info?: boolean };
    zlibInflateOptions?: ZlibOptions;
    threshold?: number;
    concurrencyLimit?: number;
  }

  interface Event {
    type: string;
    target: WebSocket;
  }
  interface ErrorEvent {
    error: any;
    message: string;
    type: string;
    target: WebSocket;
  }
  interface CloseEvent {
    wasClean: boolean;
    code: number;
    reason: string;
    type: string;
    target: WebSocket;
  }
  interface MessageEvent {
    data: Data;
    type: string;
    target: WebSocket;
  }
  interface WebSocketEventMap {
    open: Event;
    error: ErrorEvent;
    close: CloseEvent;
    message: MessageEvent;
  }
  interface EventListenerOptions {
    once?: boolean;
  }

  interface ServerOptions<U extends typeof WebSocket = typeof WebSocket, V extends typeof IncomingMessage = typeof IncomingMessage> {
    host?: string;
    port?: number;
    backlog?: number;
    server?: HTTPServer<V> | HTTPSServer<V>;
    verifyClient?: VerifyClientCallbackAsync<InstanceType<V>> | VerifyClientCallbackSync<InstanceType<V>>;
    handleProtocols?: (protocols: Set<string>, request: InstanceType<V>) => string | false;
    path?: string;
    noServer?: boolean;
    allowSynchronousEvents?: boolean;
    autoPong?: boolean;
    clientTracking?: boolean;
    perMessageDeflate?: boolean | PerMessageDeflateOptions;
    maxPayload?: number;
    /** The most non-empty fragments of one message; default 131072, 0: no limit. */
    maxFragments?: number;
    /** Socket chunks held for a frame not yet whole, counted as ws's receiver counts them; default 1048576, 0: no limit. */
    maxBufferedChunks?: number;
    skipUTF8Validation?: boolean;
    /** wirehub: the engine's handshake timeout in ms (default 10000). */
    handshakeTimeout?: number;
    WebSocket?: U;
    /** wirehub (not in ws): sockets still in their handshake (TLS, upgrade, verifyClient deciding); one past it is closed at once. Default 1024; 0: no cap. */
    maxHandshakes?: number;
    /** wirehub (not in ws): close a connection with 1001 when nothing arrived from the peer for this many ms. Default 0: off. */
    idleTimeout?: number;
    /** wirehub (not in ws): a message that has begun must be complete within this many ms, else close with 1008. Default 60000; 0: off. */
    messageTimeout?: number;
    /** wirehub (not in ws): server-wide budget in bytes for data held for peers; input past it closes that connection with 1008. Default 1 GiB; 0: no budget. */
    maxMemory?: number;
    /**
     * wirehub (not in ws): scale-out through Redis, `redis://[[user]:password@]host[:port][/db]`
     * or `rediss://` (TLS). `publish()` then also reaches the subscribers of the topic on every
     * server attached to the same Redis with the same `brokerPrefix`. With `port`, `'listening'`
     * waits for Redis to answer; a Redis that cannot be reached at start (or a wrong URL, a refused
     * password) fails the server as a port in use does: an `'error'` event with a `BrokerError`,
     * the port released, no `'listening'`. Checked on a worker thread: the JS thread is not held.
     */
    broker?: string;
    /** wirehub: the Redis channel prefix, so applications can share one Redis. Default `"wirehub:"`. */
    brokerPrefix?: string;
    /** wirehub: `rediss://`: a PEM file of the CAs to trust (default: the system's). */
    brokerCa?: string;
    /** wirehub: `rediss://`: do not verify Redis's certificate. */
    brokerInsecure?: boolean;
    /** wirehub: ms for the check at start and for each reconnect attempt. Default 5000. */
    brokerConnectTimeout?: number;
    /** wirehub: bytes of publishes handed to Redis but not yet written; past it a publish for other nodes is dropped (and counted). Default 8 MiB. */
    brokerMaxPending?: number;
  }

  /**
   * wirehub: the `'error'` of a server whose broker failed at start. `code` is the engine's:
   * `WH_EURL` (malformed URL), `WH_ECONNREFUSED`, `WH_ERESOLVE`, `WH_ETIMEDOUT` (unreachable),
   * `WH_EACCES` (password refused), `WH_ETLS`, `WH_EBROKER` (anything else); `errno` its
   * negative `WH_E*` value; `address` the URL without its password.
   */
  interface BrokerError extends Error {
    code: 'WH_EURL' | 'WH_ECONNREFUSED' | 'WH_ERESOLVE' | 'WH_ETIMEDOUT' | 'WH_EACCES' | 'WH_ETLS' | 'WH_EBROKER' | string;
    errno: number;
    syscall: 'broker';
    address: string;
  }

  /** wirehub: `wss.brokerStats()`. Counters since the broker was attached. */
  interface BrokerStats {
    /** the connection to Redis is up */
    connected: boolean;
    /** Redis channels this node is subscribed to now (topics with local subscribers) */
    channels: number;
    /** messages written to Redis for other nodes */
    published: number;
    /** messages from other nodes delivered to local subscribers */
    received: number;
    /** publishes for other nodes that could not be sent (Redis down, brokerMaxPending) */
    dropped: number;
    /** messages on our channels dropped as unreadable (another publisher's, bad UTF-8, too big) */
    malformed: number;
    /** times the connection to Redis came back after a loss */
    reconnects: number;
  }

  interface AddressInfo {
    address: string;
    family: string;
    port: number;
  }

  interface PublishOptions {
    binary?: boolean;
    compress?: boolean;
    /** a connection to skip */
    except?: WebSocket;
  }

  class Server<T extends typeof WebSocket = typeof WebSocket, U extends typeof IncomingMessage = typeof IncomingMessage> extends EventEmitter {
    options: ServerOptions<T, U>;
    path: string;
    clients: Set<InstanceType<T>>;

    constructor(options?: ServerOptions<T, U>, callback?: () => void);

    address(): AddressInfo | string | null;
    close(cb?: (err?: Error) => void): void;
    handleUpgrade(
      request: InstanceType<U>,
      socket: Duplex,
      upgradeHead: Buffer,
      callback: (client: InstanceType<T>, request: InstanceType<U>) => void
    ): void;
    shouldHandle(request: InstanceType<U>): boolean | Promise<boolean>;

    /** wirehub: send to every connection subscribed to `topic`, framed once (with a broker, also to the other nodes' subscribers). Returns the local receiver count. */
    publish(topic: string, data: string | Buffer | ArrayBuffer | ArrayBufferView, options?: PublishOptions): number;
    /** wirehub: the broker's counters; null without the `broker` option, before it is attached, or once closed. */
    brokerStats(): BrokerStats | null;
    /** wirehub: send to every open connection of this server, framed once. */
    broadcast(data: string | Buffer | ArrayBuffer | ArrayBufferView, options?: PublishOptions): number;

    on(event: 'connection', cb: (this: Server<T>, socket: InstanceType<T>, request: InstanceType<U>) => void): this;
    on(event: 'error', cb: (this: Server<T>, error: Error) => void): this;
    on(event: 'headers', cb: (this: Server<T>, headers: string[], request: InstanceType<U>) => void): this;
    on(event: 'close' | 'listening', cb: (this: Server<T>) => void): this;
    on(event: 'wsClientError', cb: (this: Server<T>, error: Error, socket: Duplex, request: InstanceType<U>) => void): this;
    on(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;

    once(event: 'connection', cb: (this: Server<T>, socket: InstanceType<T>, request: InstanceType<U>) => void): this;
    once(event: 'error', cb: (this: Server<T>, error: Error) => void): this;
    once(event: 'headers', cb: (this: Server<T>, headers: string[], request: InstanceType<U>) => void): this;
    once(event: 'close' | 'listening', cb: (this: Server<T>) => void): this;
    once(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;

    off(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;
    addListener(event: string | symbol, listener: (...args: any[]) => void): this;
    removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  const WebSocketServer: typeof Server;
  interface WebSocketServer extends Server {}
  const WebSocket: typeof WebSocketAlias;
  interface WebSocket extends WebSocketAlias {}

  function createWebSocketStream(websocket: WebSocket, options?: DuplexOptions): Duplex;

  /** wirehub: the native engine's version ("0.1.0"). */
  const engineVersion: string;

  /**
   * wirehub extra (ws has none): RFC 6455 close codes, the engine's
   * `WH_CLOSE_*`. `NO_STATUS` and `ABNORMAL` are only ever reported.
   */
  const CloseCode: {
    readonly NORMAL: 1000;
    readonly GOING_AWAY: 1001;
    readonly PROTOCOL_ERROR: 1002;
    readonly UNSUPPORTED_DATA: 1003;
    readonly NO_STATUS: 1005;
    readonly ABNORMAL: 1006;
    readonly INVALID_DATA: 1007;
    readonly POLICY: 1008;
    readonly TOO_BIG: 1009;
    readonly MANDATORY_EXTENSION: 1010;
    readonly INTERNAL_ERROR: 1011;
    readonly SERVICE_RESTART: 1012;
    readonly TRY_AGAIN_LATER: 1013;
    readonly BAD_GATEWAY: 1014;
  };
}

export = WebSocket;
