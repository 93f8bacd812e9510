'use strict';
// WebSocket: the client and the server-side connection, with the API and the
// event semantics of ws 8 (node_modules/ws/lib/websocket.js), over the engine.

const EventEmitter = require('events');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { URL } = require('url');

const { addon, conns, F, E, limitOptions } = require('./native');
const { EventTarget, kListener, kForOnEventAttribute } = require('./event-target');
const { wsError, engineError, isValidStatusCode, toBuffer, kStatusCode } = require('./errors');
const { usesNodeHttp, connectViaNodeHttp } = require('./node-http-client');
const { engineRequest, requestHeaders, answered, abortRequest } = require('./engine-request');
const { SocketInfo, answerEnds } = require('./socket-info');

const readyStates = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const BINARY_TYPES = ['nodebuffer', 'arraybuffer', 'fragments', 'blob'];
const subprotocolRegex = /^[!#$%&'*+\-.0-9A-Z^_`|a-z~]+$/;
const kInternal = Symbol('wirehub-internal');
const EMPTY = Buffer.alloc(0);
const NOOP = () => {};

// wh_client_options.flags (capi/wirehub.h).
const CLIENT_SKIP_UTF8 = 0x1;
const CLIENT_NO_AUTO_PONG = 0x2;
// The permessage-deflate answer taken as ws takes it (PerMessageDeflate#
// acceptAsClient), not as RFC 7692 asks: the engine's default refuses a
// server window above the offered one, or none when one was offered.
const CLIENT_WS_DEFLATE_ANSWER = 0x4;
// A protocol violation closes with the code alone, as ws's receiver errors.
const CLIENT_BARE_CLOSE = 0x8;
// The frames the engine makes itself take generateMask's key (maskFor).
const CLIENT_HOST_MASK = 0x10;

// Request headers the engine always writes.
const ENGINE_HEADERS = new Set(['host', 'upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version']);

const hasBlob = typeof Blob !== 'undefined';

function headersToString(headers) {
  if (!headers) return '';
  let out = '';
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === undefined) continue;
    if (/[\r\n\0]/.test(name) || /[\r\n\0]/.test(String(v))) {
      throw new TypeError(`Invalid character in header content ["${name}"]`);
    }
    if (Array.isArray(v)) for (const one of v) out += `${name}: ${one}\r\n`;
    else out += `${name}: ${v}\r\n`;
  }
  return out;
}

function parseHeaderBlock(text) {
  const headers = {};
  const raw = [];
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    raw.push(name, value);
    const key = name.toLowerCase();
    if (key === 'set-cookie') (headers[key] || (headers[key] = [])).push(value);
    else headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  return { headers, raw };
}

let caDir = null;
const caFiles = new Map();
// The engine takes CA bundles by file; ws takes them as PEM text or Buffers.
function caFile(ca) {
  const pem = (Array.isArray(ca) ? ca : [ca]).map((c) => c.toString()).join('\n');
  let file = caFiles.get(pem);
  if (file) return file;
  if (!caDir) {
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirehub-ca-'));
    process.once('exit', () => fs.rmSync(caDir, { recursive: true, force: true }));
  }
  file = path.join(caDir, `ca-${caFiles.size}.pem`);
  fs.writeFileSync(file, pem, { mode: 0o600 });
  caFiles.set(pem, file);
  return file;
}

function deflateOptions(pmd, isServer) {
  if (!pmd) return undefined;
  const o = pmd === true ? {} : pmd;
  const bits = (v) => (typeof v === 'number' ? v : 0);
  const zlib = {
    level: (o.zlibDeflateOptions && o.zlibDeflateOptions.level) || 0,
    memLevel: (o.zlibDeflateOptions && o.zlibDeflateOptions.memLevel) || 0,
    // ws compresses from 1024 bytes by default, as does the engine
    threshold: typeof o.threshold === 'number' ? Math.max(o.threshold, 1) : 0
  };
  if (isServer) {
    // ws's options as ws's acceptAsServer reads them, for the engine's
    // WH_SERVER_WS_DEFLATE_ANSWER: 1 true, 0 left out, -1 false, a window
    // as its number. true and left out differ only for
    // serverNoContextTakeover (false refuses offers asking for it).
    const flag = (v) => (v === false ? -1 : v ? 1 : 0);
    const window = (v) => (typeof v === 'number' ? v : v === false ? -1 : 0);
    return {
      serverNoContextTakeover: flag(o.serverNoContextTakeover),
      clientNoContextTakeover: o.clientNoContextTakeover ? 1 : 0,
      serverMaxWindowBits: window(o.serverMaxWindowBits),
      clientMaxWindowBits: window(o.clientMaxWindowBits),
      ...zlib
    };
  }
  // A client offers as ws's PerMessageDeflate#offer: client_max_window_bits
  // without a value when the option is not given (or true), and not at all
  // when it is false (-1 for the engine).
  const clientBits = (v) => (v == null || v === true ? bits(v) : v ? bits(v) : -1);
  return {
    serverNoContextTakeover: o.serverNoContextTakeover ? 1 : 0,
    // ws refuses an answer with client_no_context_takeover only when the
    // option is false, not when it is left out (the engine's -1)
    clientNoContextTakeover: o.clientNoContextTakeover ? 1 : o.clientNoContextTakeover === false ? -1 : 0,
    serverMaxWindowBits: bits(o.serverMaxWindowBits),
    clientMaxWindowBits: clientBits(o.clientMaxWindowBits),
    ...zlib
  };
}

// The listener table of a WebSocket: EventEmitter's own, `{ __proto__: null }`,
// is a dictionary-mode object (184 bytes with one listener, a third of an idle
// server connection's JS); an object made by a constructor whose prototype
// has no properties is a fast-mode one with in-object slots (56 bytes), and
// has no inherited keys either. Node's EventEmitter used the same in its
// time (EventHandlers); it replaces it with its own when the last listener
// goes.
function Listeners() {}
Listeners.prototype = Object.create(null);

class WebSocket extends EventEmitter {
  constructor(address, protocols, options) {
    super();
    this._events = new Listeners();
    this._binaryType = BINARY_TYPES[0];
    this._readyState = CONNECTING;
    this._id = 0;
    this._server = null;
    this._req = null;
    this._onConnect = null;
    this._flags = 0; // the booleans (FLAGS below)
    this._rare = null; // the fields most connections never set (RARE below)

    if (address === kInternal) {
      this._isServer = true;
      return;
    }
    if (address === null) {
      // ws uses null for the server side; not constructible by users here
      this._isServer = true;
      return;
    }
    if (protocols === undefined) protocols = [];
    else if (!Array.isArray(protocols)) {
      if (typeof protocols === 'object' && protocols !== null) {
        options = protocols;
        protocols = [];
      } else {
        protocols = [protocols];
      }
    }
    initAsClient(this, address, protocols, options);
  }

  get binaryType() {
    return this._binaryType;
  }
  set binaryType(type) {
    if (!BINARY_TYPES.includes(type)) return;
    if (type === 'blob' && !hasBlob) return;
    this._binaryType = type;
  }
  get bufferedAmount() {
    // ws: what the socket and the sender still hold, plus what send(),
    // ping() and pong() were given after the close began (never sent).
    if (this._readyState === OPEN || this._readyState === CLOSING) {
      if (this._id && conns[this._id] === this) return addon.buffered(this._id) + this._bufferedAmount;
    }
    return this._bufferedAmount;
  }
  _connInfo() {
    // Only once open: before, the engine has nothing to say yet and the
    // answer must not stick.
    if (this._info === null && this._id && conns[this._id] === this && this._readyState !== CONNECTING) {
      this._info = addon.connInfo(this._id);
    }
    return this._info;
  }
  get extensions() {
    // ws: the names of the negotiated extensions, without their parameters,
    // each once (an answer may repeat permessage-deflate: ws uses the first)
    const i = this._connInfo();
    if (!i || !i[1]) return '';
    return [...new Set(i[1].split(',').map((e) => e.split(';')[0].trim()))].join();
  }
  get isPaused() {
    return this._paused;
  }
  get onclose() {
    return null;
  }
  get onerror() {
    return null;
  }
  get onopen() {
    return null;
  }
  get onmessage() {
    return null;
  }
  get protocol() {
    const i = this._connInfo();
    return i ? i[0] : '';
  }
  get readyState() {
    return this._readyState;
  }
  get url() {
    return this._url;
  }
  // engine.io and some libraries read the connection's addresses through
  // ws._socket (ws: null until open).
  get _socket() {
    const i = this._connInfo();
    if (!i) return null;
    if (this._socketInfo === undefined) this._socketInfo = SocketInfo.fromEngine(this, i);
    return this._socketInfo;
  }

  // ---------------------------------------------------------------- sending
  send(data, options, cb) {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    if (typeof data === 'number') data = data.toString();
    if (this._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (this._readyState !== OPEN) {
      sendAfterClose(this, data, cb);
      return;
    }
    let flags;
    if (options === undefined) {
      flags = typeof data === 'string' ? F.TEXT : F.BINARY;
    } else {
      const binary = options.binary === undefined ? typeof data !== 'string' : options.binary;
      flags = binary ? F.BINARY : F.TEXT;
      if (options.compress === false) flags |= F.NO_COMPRESS;
      if (options.fin === false) flags |= F.MORE;
    }
    if (this._compressAll) flags |= F.COMPRESS;
    if (data === undefined || data === null) data = EMPTY;
    const isBlob = hasBlob && data instanceof Blob;
    if (isBlob || this._sendQueue !== null) {
      // As ws's sender: a Blob is read first, and whatever is sent, pinged
      // or closed meanwhile waits behind it, in order. Its bytes count in
      // bufferedAmount until they reach the engine.
      if (!isBlob && typeof data !== 'string' && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
        throw new TypeError('The data argument must be a string, Buffer, ArrayBuffer or view');
      }
      const size = isBlob ? data.size : typeof data === 'string' ? Buffer.byteLength(data) : toBuffer(data).length;
      this._bufferedAmount += size;
      if (this._sendQueue !== null) {
        this._sendQueue.push([isBlob ? readBlob : sendQueued, data, flags, cb, size]);
      } else {
        this._sendQueue = [];
        readBlob(this, data, flags, cb, size);
      }
      return;
    }
    this._sendNow(data, flags, cb);
  }

  _sendNow(data, flags, cb) {
    const rc = this._isServer || !this._opts.generateMask
      ? addon.send(this._id, data, flags)
      : addon.send(this._id, data, flags, userMask(this));
    if (rc < 0) {
      if (rc === E.ECLOSED) {
        sendAfterClose(this, data, cb);
        return;
      }
      if (rc === E.EINVAL) throw new TypeError('The data argument must be a string, Buffer, ArrayBuffer or view');
      if (cb) process.nextTick(cb, engineError(rc));
      else this.emit('error', engineError(rc));
      return;
    }
    if (cb) {
      if (rc === 1) {
        // buffered above the high-water mark: done when it drains
        (this._drainCbs || (this._drainCbs = [])).push(cb);
      } else {
        process.nextTick(afterSend, this, cb);
      }
    }
  }

  ping(data, mask, cb) {
    this._control(false, data, mask, cb);
  }

  pong(data, mask, cb) {
    this._control(true, data, mask, cb);
  }

  _control(pong, data, mask, cb) {
    if (this._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (typeof data === 'function') {
      cb = data;
      data = mask = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
      mask = undefined;
    }
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN) {
      sendAfterClose(this, data, cb);
      return;
    }
    const buf = data === undefined ? EMPTY : toBuffer(data);
    if (buf.length > 125) {
      throw new RangeError('The data size must not be greater than 125 bytes');
    }
    if (this._sendQueue !== null) {
      this._bufferedAmount += buf.length;
      this._sendQueue.push([controlQueued, buf, pong, cb, buf.length]);
      return;
    }
    const rc = this._isServer || !this._opts.generateMask
      ? addon.ping(this._id, buf, pong)
      : addon.ping(this._id, buf, pong, userMask(this));
    if (rc < 0 && rc !== E.ECLOSED) {
      if (cb) process.nextTick(cb, engineError(rc));
      return;
    }
    if (rc === E.ECLOSED) {
      sendAfterClose(this, data, cb);
      return;
    }
    if (cb) process.nextTick(cb, null);
  }

  close(code, data) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      abortHandshake(this, 'WebSocket was closed before the connection was established');
      return;
    }
    if (this._readyState === CLOSING) return;
    let reason = EMPTY;
    if (code !== undefined) {
      if (typeof code !== 'number' || !isValidStatusCode(code)) {
        throw new TypeError('First argument must be a valid error code number');
      }
      if (data !== undefined && data.length) {
        if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
          throw new TypeError('Second argument must be a string or a Uint8Array');
        }
        reason = toBuffer(data);
        if (reason.length > 123) {
          throw new RangeError('The message must not be greater than 123 bytes');
        }
      }
    }
    this._readyState = CLOSING;
    this._closeFrameSent = true;
    if (this._sendQueue !== null) {
      this._sendQueue.push([closeQueued, code === undefined ? 0 : code, reason, null, 0]);
      return;
    }
    const rc = this._isServer || !this._opts.generateMask
      ? addon.close(this._id, code === undefined ? 0 : code, reason)
      : addon.close(this._id, code === undefined ? 0 : code, reason, userMask(this));
    if (rc < 0 && rc !== E.ECLOSED) {
      this.emit('error', engineError(rc));
    }
  }

  terminate() {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      abortHandshake(this, 'WebSocket was closed before the connection was established');
      return;
    }
    this._readyState = CLOSING;
    this._terminated = true;
    addon.terminate(this._id);
  }

  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = true;
    addon.pause(this._id, true);
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = false;
    addon.pause(this._id, false);
    const queued = this._pausedEvents;
    if (queued) {
      this._pausedEvents = null;
      // Events that were already on their way when pause() was called.
      process.nextTick(() => {
        for (const fn of queued) {
          if (this._paused) {
            (this._pausedEvents || (this._pausedEvents = [])).push(fn);
          } else fn();
        }
      });
    }
  }

  // -------------------------------------------------------- wirehub extras
  /** Subscribe this (server-side) connection to a topic of its server. */
  subscribe(topic) {
    const rc = addon.subscribe(this._id, String(topic), true);
    if (rc < 0 && rc !== E.ECLOSED) throw engineError(rc);
    return rc >= 0;
  }
  unsubscribe(topic) {
    const rc = addon.subscribe(this._id, String(topic), false);
    if (rc < 0 && rc !== E.ECLOSED) throw engineError(rc);
    return rc >= 0;
  }

  // ------------------------------------------------------- engine events
  _whOpen(responseHeaders, statusText) {
    if (!this._refd) {
      this._refd = true;
      addon.ref(1);
    }
    if (this._isServer) {
      this._readyState = OPEN;
      if (this._server) {
        if (this._server.options.perMessageDeflate) compressAllAsWs(this, this._server.options.perMessageDeflate);
        this._server._whConnOpen(this);
      }
      return;
    }
    if (this._readyState !== CONNECTING) return;
    // As ws: 'upgrade' comes while still CONNECTING, with the server's 101;
    // close() or terminate() there abort the handshake (no 'open'). A
    // handshake made through Node's http has emitted it already.
    if (this.listenerCount('upgrade') && !this._upgradeEmitted) {
      const { headers, raw } = parseHeaderBlock(responseHeaders || '');
      // ws's res.socket is the socket ws._socket then is: the same object
      const info = addon.connInfo(this._id);
      if (info && this._socketInfo === undefined) this._socketInfo = SocketInfo.fromEngine(this, info);
      const res = fakeResponse(101, headers, EMPTY, statusText, this._socketInfo);
      res.rawHeaders = raw;
      this.emit('upgrade', res);
      if (this._readyState !== CONNECTING) return;
    }
    this._req = null;
    this._readyState = OPEN;
    if (this._opts.perMessageDeflate) compressAllAsWs(this, this._opts.perMessageDeflate);
    this.emit('open');
  }

  _whMessage(buf, flags, deferred) {
    if (this._pausedEvents !== null || this._paused || (this._deferEvents && !deferred)) {
      const copy = Buffer.from(buf);
      if (this._pausedEvents !== null || this._paused) {
        (this._pausedEvents || (this._pausedEvents = [])).push(() => this._whMessage(copy, flags));
      } else {
        deferEvent(this, () => this._whMessage(copy, flags, true));
      }
      return;
    }
    const isBinary = (flags & F.BINARY) !== 0;
    const bt = this._binaryType;
    let data = buf;
    if (bt !== 'nodebuffer' && isBinary) {
      if (bt === 'arraybuffer') data = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
      else if (bt === 'fragments') data = [buf];
      else if (bt === 'blob') data = new Blob([buf]);
    }
    this.emit('message', data, isBinary);
  }

  _whPingPong(isPing, data, deferred) {
    if (this._paused) {
      (this._pausedEvents || (this._pausedEvents = [])).push(() => this._whPingPong(isPing, data));
      return;
    }
    if (this._deferEvents && !deferred) {
      deferEvent(this, () => this._whPingPong(isPing, data, true));
      return;
    }
    // With generateMask the engine leaves pings to JS, which answers as ws
    // does (before 'ping'), so that the pong's key is the user's too.
    if (isPing && !this._isServer && this._opts.generateMask && this._opts.autoPong) this.pong(data, true, NOOP);
    this.emit(isPing ? 'ping' : 'pong', data);
  }

  _whDrain() {
    const cbs = this._drainCbs;
    if (cbs) {
      this._drainCbs = null;
      for (const cb of cbs) cb(null);
    }
  }

  _whClose(code, reason, error, status, headers, statusText, deferred) {
    if (this._pausedEvents && this._pausedEvents.length) {
      // close comes after the messages that were held back by pause()
      const q = this._pausedEvents;
      this._pausedEvents = null;
      this._paused = false;
      for (const fn of q) fn();
    }
    const wasOpen = this._readyState === OPEN || this._readyState === CLOSING;
    if (wasOpen) this._connInfo();
    if (!deferred && this._deferred !== null && (this._deferred.length || this._deferredRunning)) {
      // allowSynchronousEvents: false: 'close' after the deferred events
      const copy = Buffer.from(reason);
      deferEvent(this, () => this._whClose(code, copy, error, status, headers, statusText, true));
      return;
    }
    if (this._refd) {
      this._refd = false;
      addon.ref(-1);
    }
    if (!this._isServer && !wasOpen && !this._closeEmitted) {
      clientHandshakeFailed(this, code, reason, error, status, headers, statusText);
      return;
    }
    this._readyState = CLOSED;
    this._terminated = true;
    if (this._drainCbs) {
      // Sends the engine still held. ws: messages waiting for the
      // compressor fail with its message, those in the socket's buffer with
      // the stream's.
      const cbs = this._drainCbs;
      this._drainCbs = null;
      const deflate = this._info !== null && this._info[1].includes('permessage-deflate');
      for (const cb of cbs) cb(deflate ? new Error('The socket was closed while data was being compressed') : streamDestroyed());
    }
    if (this._server) this._server._whConnClosed(this);
    if (this._closeEmitted) return;
    this._closeEmitted = true;
    const err = closeError(error, code, reason);
    if (err) this.emit('error', err);
    // ws reports the code of the close frame the peer sent (1005 if it had
    // none), else 1006. When its receiver fails the connection it reads
    // nothing more, not even the peer's answer to its close: 1006.
    if (err) code = 1006;
    if (error === 0 || code !== 1006) {
      this._closeFrameReceived = error === 0 || code !== 1006;
      this._closeFrameSent = true;
    }
    this._closeCode = code;
    this._closeMessage = reason;
    this.emit('close', code, reason);
  }
}

// ws makes its accessors enumerable (they stay configurable).
for (const property of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
  Object.defineProperty(WebSocket.prototype, property, { enumerable: true });
}

for (const [i, name] of readyStates.entries()) {
  const desc = { enumerable: true, value: i };
  Object.defineProperty(WebSocket.prototype, name, desc);
  Object.defineProperty(WebSocket, name, desc);
}

for (const method of ['open', 'error', 'close', 'message']) {
  Object.defineProperty(WebSocket.prototype, `on${method}`, {
    enumerable: true,
    get() {
      for (const listener of this.listeners(method)) {
        if (listener[kForOnEventAttribute]) return listener[kListener];
      }
      return null;
    },
    set(handler) {
      for (const listener of this.listeners(method)) {
        if (listener[kForOnEventAttribute]) {
          this.removeListener(method, listener);
          break;
        }
      }
      if (typeof handler !== 'function') return;
      this.addEventListener(method, handler, { [kForOnEventAttribute]: true });
    }
  });
}

WebSocket.prototype.addEventListener = EventTarget.addEventListener;
WebSocket.prototype.removeEventListener = EventTarget.removeEventListener;

// Errors ws reports when the connection fails while open (its receiver's
// errors); a reset or a timeout closes with 1006 and no 'error', as in ws.
function closeError(error, code, reason) {
  switch (error) {
    case E.ETOOBIG:
      // the engine's reason for a length ws's receiver refuses before any
      // limit (a JavaScript number cannot hold it)
      if (reason.toString() === 'payload length > 2^53 - 1') {
        return wsError(
          RangeError,
          'Unsupported WebSocket frame: payload length > 2^53 - 1',
          'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
          1009
        );
      }
      return wsError(RangeError, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009);
    case E.EUTF8:
      return wsError(Error, 'Invalid WebSocket frame: invalid UTF-8 sequence', 'WS_ERR_INVALID_UTF8', 1007);
    case E.ELIMIT:
      // ws's receiver limits (the engine's maxBufferedChunks, maxFragments):
      // 1008 on the wire without a reason; the engine tells them apart in
      // the reason it reports
      if (reason.toString() === 'too many buffered chunks') {
        return wsError(RangeError, 'Too many buffered chunks', 'WS_ERR_TOO_MANY_BUFFERED_PARTS', 1008);
      }
      if (code === 1008 || reason.toString() === 'Too many message fragments') {
        return wsError(RangeError, 'Too many message fragments', 'WS_ERR_TOO_MANY_BUFFERED_PARTS', 1008);
      }
      return null;
    case E.ECLOSECODE:
      return wsError(RangeError, 'Invalid WebSocket frame: invalid status code', 'WS_ERR_INVALID_CLOSE_CODE', 1002);
    case E.EPROTO: {
      // a message that did not inflate: ws passes zlib's error on (its
      // message, code and errno) and closes with 1007
      if (code === 1007) return zlibError(reason.toString());
      const text = reason.length ? reason.toString() : 'protocol error';
      return protocolError(text);
    }
    default:
      return null;
  }
}

// zlib's error as Node's zlib reports it, from the message the engine got
// from zlib (or, for a stream cut inside a block and for memory, Node's words).
function zlibError(message) {
  const err = new Error(message);
  const [code, errno] =
    message === 'unexpected end of file' ? ['Z_BUF_ERROR', -5] : message === 'out of memory' ? ['Z_MEM_ERROR', -4] : ['Z_DATA_ERROR', -3];
  err.errno = errno;
  err.code = code;
  err[kStatusCode] = 1007;
  return err;
}

// Maps the engine's close reasons for protocol errors to ws's codes.
function protocolError(text) {
  // The engine names each violation in ws's receiver's words.
  const exact = [
    [/^RSV2 and RSV3 must be clear$/, 'WS_ERR_UNEXPECTED_RSV_2_3'],
    [/^RSV1 must be clear$/, 'WS_ERR_UNEXPECTED_RSV_1'],
    [/^MASK must be set$/, 'WS_ERR_EXPECTED_MASK'],
    [/^MASK must be clear$/, 'WS_ERR_UNEXPECTED_MASK'],
    [/^FIN must be set$/, 'WS_ERR_EXPECTED_FIN'],
    [/^invalid opcode \d+$/, 'WS_ERR_INVALID_OPCODE'],
    [/^invalid payload length \d+$/, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
    [/^invalid status code \d+$/, 'WS_ERR_INVALID_CLOSE_CODE']
  ];
  for (const [re, code] of exact) {
    if (re.test(text)) return wsError(RangeError, `Invalid WebSocket frame: ${text}`, code, 1002);
  }
  return wsError(RangeError, `Invalid WebSocket frame: ${text}`, 'WS_ERR_INVALID_OPCODE', 1002);
}

function sendAfterClose(ws, data, cb) {
  if (data) {
    const length = hasBlob && data instanceof Blob ? data.size : toBuffer(data).length;
    ws._bufferedAmount += length;
  }
  if (cb) {
    const err = new Error(`WebSocket is not open: readyState ${ws.readyState} (${readyStates[ws.readyState]})`);
    process.nextTick(cb, err);
  }
}

// The callback of a send the engine took. ws compresses before it writes:
// a terminate() in the same tick fails a compressed connection's send.
function afterSend(ws, cb) {
  if (ws._terminated && ws._readyState !== OPEN) {
    const i = ws._connInfo();
    if (i !== null && i[1].includes('permessage-deflate')) {
      cb(new Error('The socket was closed while data was being compressed'));
      return;
    }
  }
  cb(null);
}

// Node's ERR_STREAM_DESTROYED, which ws passes to the callbacks of writes
// the socket had not done when it was destroyed.
function streamDestroyed() {
  const err = new Error('Cannot call write after a stream was destroyed');
  err.code = 'ERR_STREAM_DESTROYED';
  return err;
}

// The send queue of a WebSocket while a Blob is read (ws's sender states).
function readBlob(ws, blob, flags, cb, size) {
  blob.arrayBuffer().then(
    (ab) => {
      if (ws._terminated || ws._readyState === CLOSED) {
        // ws: the bytes stay counted; every waiting callback gets the error
        failQueue(ws, new Error('The socket was closed while the blob was being read'), cb);
        return;
      }
      ws._bufferedAmount -= size;
      ws._sendNow(Buffer.from(ab), flags, cb);
      runQueue(ws);
    },
    (err) => {
      // ws (sender onError): the callbacks get the read error, then the
      // socket is ended and 'error' is emitted with it.
      failQueue(ws, err, cb, true);
      if (ws._readyState === CLOSED) return;
      ws._readyState = CLOSING;
      ws._terminated = true;
      if (ws._id) addon.terminate(ws._id);
      ws.emit('error', err);
    }
  );
}

function failQueue(ws, err, cb, sync) {
  const queue = ws._sendQueue || [];
  ws._sendQueue = null;
  const call = () => {
    if (cb) cb(err);
    for (const item of queue) if (item[3]) item[3](err);
  };
  if (sync) call();
  else process.nextTick(call);
}

function runQueue(ws) {
  const queue = ws._sendQueue;
  ws._sendQueue = null;
  while (queue.length) {
    const [fn, a, b, cb, size] = queue.shift();
    if (fn === readBlob) {
      ws._sendQueue = queue;
      readBlob(ws, a, b, cb, size);
      return;
    }
    ws._bufferedAmount -= size;
    fn(ws, a, b, cb);
  }
}

// ws's generateMask (a client option): called for each frame JS sends,
// data or control, with the connection's own 4-byte Buffer, which keys the
// frame (wh_conn_set_mask). Only then: other clients and servers pay nothing.
const kMaskBuffer = Symbol('mask-buffer');
// The key of a frame the engine makes on its own for `id` (the answer to
// the server's close, a close after a protocol error): ws calls
// generateMask for those as well. Registered with the first such client.
let maskSourceSet = false;
function maskFor(id) {
  const ws = conns[id];
  return ws !== undefined && !ws._isServer && ws._opts.generateMask ? userMask(ws) : undefined;
}

function userMask(ws) {
  const o = ws._opts;
  const mask = o[kMaskBuffer] || (o[kMaskBuffer] = Buffer.alloc(4));
  o.generateMask(mask);
  return mask;
}

function sendQueued(ws, data, flags, cb) {
  ws._sendNow(data, flags, cb);
}

function controlQueued(ws, buf, pong, cb) {
  const rc = ws._isServer || !ws._opts.generateMask
    ? addon.ping(ws._id, buf, pong)
    : addon.ping(ws._id, buf, pong, userMask(ws));
  if (rc === E.ECLOSED) sendAfterClose(ws, buf, cb);
  else if (cb) process.nextTick(cb, rc < 0 ? engineError(rc) : null);
}

function closeQueued(ws, code, reason) {
  const rc = ws._isServer || !ws._opts.generateMask
    ? addon.close(ws._id, code, reason)
    : addon.close(ws._id, code, reason, userMask(ws));
  if (rc < 0 && rc !== E.ECLOSED) ws.emit('error', engineError(rc));
}

// allowSynchronousEvents: false: as ws's receiver, every 'message', 'ping'
// and 'pong' gets a macrotask of its own (setImmediate), in order.
function deferEvent(ws, fn) {
  if (ws._deferred === null) ws._deferred = [];
  ws._deferred.push(fn);
  if (ws._deferred.length === 1 && !ws._deferredRunning) setImmediate(runDeferred, ws);
}

function runDeferred(ws) {
  const fn = ws._deferred.shift();
  ws._deferredRunning = true;
  try {
    fn();
  } finally {
    ws._deferredRunning = false;
    // the next one after what the listener scheduled, as in ws
    if (ws._deferred.length) setImmediate(runDeferred, ws);
  }
}

// ws's sender compresses every message, whatever its size, while its side
// keeps its compression context; `threshold` applies only once the
// answer says it does not (server_no_context_takeover for a server,
// client_no_context_takeover for a client). The engine applies its
// threshold always: WH_COMPRESS on each send says "whatever the size"
// (also for a threshold of 0 or less, which the engine cannot take).
function compressAllAsWs(ws, pmd) {
  const i = ws._connInfo();
  if (!i || !i[1]) return;
  const own = ws._isServer ? 'server_no_context_takeover' : 'client_no_context_takeover';
  // an answer that repeats permessage-deflate: ws uses the first
  const params = i[1].split(',')[0].split(';').map((p) => p.trim().toLowerCase());
  if (params[0] !== 'permessage-deflate') return;
  if (!params.includes(own) || (typeof pmd.threshold === 'number' && pmd.threshold <= 0)) ws._compressAll = true;
}

function emitErrorAndClose(ws, err) {
  if (ws._closeEmitted) return;
  ws._readyState = CLOSING;
  ws.emit('error', err);
  ws._closeEmitted = true;
  ws._readyState = CLOSED;
  ws.emit('close', ws._closeCode, ws._closeMessage);
}

function abortHandshake(ws, message) {
  ws._readyState = CLOSING;
  const err = new Error(message);
  Error.captureStackTrace(err, abortHandshake);
  if (ws._id) addon.terminate(ws._id);
  if (ws._httpReq) {
    // A handshake through Node's http (node-http-client.js): as ws, abort it.
    ws._httpReq.destroy();
    ws._httpReq = null;
  } else if (ws._req instanceof http.ClientRequest) {
    abortRequest(ws._req);  // the engine's handshake (engine-request.js)
  }
  process.nextTick(emitErrorAndClose, ws, err);
}

// ws's 'upgrade' and 'unexpected-response' listeners get Node's
// http.IncomingMessage; on the engine's path the engine read the answer, so
// its status, headers and body are poured into one with no Node socket to
// read from (`socket` answers readable: false).
const NO_SOCKET = Object.freeze({ readable: false, readableHighWaterMark: 16384, destroyed: true });
function fakeResponse(status, headers, body, statusText, socket) {
  const res = new http.IncomingMessage(socket || NO_SOCKET);
  res.statusCode = status;
  // the server's own words, as Node's parser gives them
  res.statusMessage = statusText === undefined ? http.STATUS_CODES[status] || '' : statusText;
  res.httpVersionMajor = 1;
  res.httpVersionMinor = 1;
  res.httpVersion = '1.1';
  res.headers = headers;
  res.complete = true;
  if (body && body.length) res.push(body);
  res.push(null);
  return res;
}

// The engine's checks of a 101 answer, in ws's words (ws checks the same
// things in the same order: Upgrade, Sec-WebSocket-Accept, subprotocol,
// extensions); ws emits 'upgrade' before any of them.
const AFTER_101 = new Set([
  'Invalid Upgrade header',
  'Invalid Sec-WebSocket-Accept header',
  'Server sent an invalid subprotocol',
  'Server sent no subprotocol',
  'Server indicated an extension that was not requested'
]);

// Node's http parser errors (llhttp), as ws passes them on, for the engine's
// (Boost.Beast) reasons for refusing a response head.
const PARSE_ERRORS = {
  'bad version': ['HPE_INVALID_CONSTANT', 'Expected HTTP/, RTSP/ or ICE/'],
  'bad status': ['HPE_INVALID_STATUS', 'Invalid status code'],
  'bad reason': ['HPE_CR_EXPECTED', 'Missing expected CR after response line'],
  'bad field': ['HPE_INVALID_HEADER_TOKEN', 'Invalid header token'],
  'bad value': ['HPE_INVALID_HEADER_TOKEN', 'Invalid header value char'],
  'bad line ending': ['HPE_LF_EXPECTED', 'Missing expected LF after header value'],
  'bad obs-fold': ['HPE_INVALID_HEADER_TOKEN', 'Invalid header value char'],
  'header limit exceeded': ['HPE_HEADER_OVERFLOW', 'Header overflow']
};

// The engine's handshake failure `text`, as the error ws would give.
function handshakeError(ws, text) {
  if (text.startsWith('Invalid HTTP response: ')) {
    const why = text.slice('Invalid HTTP response: '.length);
    const [code, message] = PARSE_ERRORS[why] || ['HPE_INVALID_CONSTANT', why];
    const err = new Error(`Parse Error: ${message}`);
    err.code = code;
    return err;
  }
  if (text === 'Connection closed during the handshake') {
    const err = new Error('socket hang up');
    err.code = 'ECONNRESET';
    return err;
  }
  let message = text;
  if (text.startsWith('Server indicated an extension that was not requested')) {
    if (!ws._opts.perMessageDeflate) {
      message = 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
    } else if (text === 'Server indicated an extension that was not requested' || text.includes(': unrequested extension ')) {
      message = 'Server indicated an extension that was not requested';
    } else {
      // a permessage-deflate answer that is malformed or not acceptable
      message = 'Invalid Sec-WebSocket-Extensions header';
    }
  } else if (text === 'Server sent an invalid subprotocol' && ws._protocols.length === 0) {
    message = 'Server sent a subprotocol but none was requested';
  }
  return new Error(message || 'Invalid WebSocket handshake response');
}

function clientHandshakeFailed(ws, code, reason, error, status, headerText, statusText) {
  if (ws._readyState === CLOSED) return;
  // The ends of the socket the answer came on (the handle is valid during
  // its CLOSE event), for the response's socket.
  const info = ws._id ? addon.connInfo(ws._id) : null;
  // The engine's connection is gone: its id may name another one soon.
  ws._id = 0;
  const text = reason && reason.length ? reason.toString() : '';
  // Node's http client takes a 101 without "Connection: upgrade", or with
  // no Upgrade header at all, for an ordinary response: ws then reports it
  // as unexpected.
  const noUpgrade =
    text === 'Invalid Upgrade header' && headerText && !/^upgrade:/im.test(headerText);
  if (error === E.EHANDSHAKE && (text === 'Invalid Connection header' || noUpgrade)) {
    error = E.ESTATUS;
    status = 101;
    reason = EMPTY;
  }
  if (error === E.ESTATUS && status) {
    const { headers, raw } = parseHeaderBlock(headerText || '');
    const opts = ws._opts;
    if (status >= 300 && status < 400 && opts.followRedirects && headers.location) {
      if (ws._req instanceof http.ClientRequest) abortRequest(ws._req);  // as ws's req.abort()
      followRedirect(ws, headers.location);
      return;
    }
    if (ws.listenerCount('unexpected-response')) {
      // As ws: CONNECTING in the listener and after it, until the user
      // aborts (close() or terminate(): ws's error, then 'close' 1006).
      const req = fakeRequest(ws);
      // ws's res.socket is req.socket, the one the answer came on
      const socket = req instanceof http.ClientRequest && req.socket ? req.socket : null;
      if (socket && info) answerEnds(socket, info);
      const res = fakeResponse(status, headers, reason, statusText, socket);
      res.rawHeaders = raw;
      if (req instanceof http.ClientRequest) answered(req, res);
      ws.emit('unexpected-response', req, res);
      return;
    }
    emitErrorAndClose(ws, new Error(`Unexpected server response: ${status}`));
    return;
  }
  if (error === E.EHANDSHAKE && AFTER_101.has(text.replace(/^(Server indicated an extension that was not requested).*/, '$1'))) {
    // ws has emitted 'upgrade' with the 101 before it checks it; the engine
    // gives its headers when it has them.
    const { headers, raw } = parseHeaderBlock(headerText || '');
    // the socket of the refused 101: alive in the listener, then destroyed
    const socket = info ? answerEnds({ readable: false, destroyed: false }, info) : null;
    const res = fakeResponse(101, headers, EMPTY, statusText, socket);
    res.rawHeaders = raw;
    ws.emit('upgrade', res);
    if (socket) socket.destroyed = true;
    // The listener may have closed it (ws's "closed before established").
    if (ws._readyState !== CONNECTING) return;
    ws._readyState = CLOSING;
    process.nextTick(emitErrorAndClose, ws, handshakeError(ws, text));
    return;
  }
  emitErrorAndClose(ws, connectError(ws, error, reason));
}

// What ws's 'redirect', 'upgrade' and 'unexpected-response' listeners get
// as the request: the handshake request's header API of http.ClientRequest
// (getHeader(), setHeader(), removeHeader(), ...). Until the request is sent
// (in 'redirect'), changing its headers changes what is sent.
class ClientRequestLike extends EventEmitter {
  constructor(url, isIpc, headers) {
    super();
    this.method = 'GET';
    this.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
    this.host = isIpc ? 'localhost' : url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.path = isIpc ? (url.pathname + url.search).split(':')[1] || '/' : url.pathname + url.search;
    this.aborted = false;
    this.destroyed = false;
    this.reusedSocket = false;
    this.maxHeadersCount = null;
    this._map = new Map(); // lowercased name -> [name, value]
    if (headers) for (const name of Object.keys(headers)) this.setHeader(name, headers[name]);
  }
  setHeader(name, value) {
    // Node's own checks, so the errors are those ws's request() throws
    http.validateHeaderName(name);
    http.validateHeaderValue(name, value);
    this._map.set(String(name).toLowerCase(), [String(name), value]);
    return this;
  }
  getHeader(name) {
    const e = this._map.get(String(name).toLowerCase());
    return e === undefined ? undefined : e[1];
  }
  hasHeader(name) {
    return this._map.has(String(name).toLowerCase());
  }
  removeHeader(name) {
    this._map.delete(String(name).toLowerCase());
  }
  _remove(name) {
    this._map.delete(name);
  }
  getHeaderNames() {
    return [...this._map.keys()];
  }
  getRawHeaderNames() {
    return [...this._map.values()].map((e) => e[0]);
  }
  getHeaders() {
    const out = Object.create(null);
    for (const [key, [, value]] of this._map) out[key] = value;
    return out;
  }
  _headerObject() {
    const out = {};
    for (const [name, value] of this._map.values()) out[name] = value;
    return out;
  }
  abort() {
    this.aborted = true;
    this.destroyed = true;
  }
  destroy() {
    this.destroyed = true;
    return this;
  }
}

function fakeRequest(ws) {
  if (ws._req) return ws._req;
  return new ClientRequestLike(new URL(ws._url), false, null);
}

function connectError(ws, error, reason) {
  const u = new URL(ws._url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port || (u.protocol === 'wss:' ? 443 : 80);
  const text = reason && reason.length ? reason.toString() : '';
  let err;
  switch (error) {
    case E.ECONNREFUSED:
      if (ws._socketPath) {
        // Node's errors for a UNIX socket: ENOENT when nothing is there.
        const code = fs.existsSync(ws._socketPath) ? 'ECONNREFUSED' : 'ENOENT';
        err = new Error(`connect ${code} ${ws._socketPath}`);
        err.code = code;
        err.errno = code === 'ENOENT' ? -2 : -111;
        err.syscall = 'connect';
        err.address = ws._socketPath;
        return err;
      }
      err = new Error(`connect ECONNREFUSED ${host}:${port}`);
      err.code = 'ECONNREFUSED';
      err.errno = -111;
      err.syscall = 'connect';
      err.address = host;
      err.port = Number(port);
      return err;
    case E.ERESOLVE:
      err = new Error(`getaddrinfo ENOTFOUND ${host}`);
      err.code = 'ENOTFOUND';
      err.syscall = 'getaddrinfo';
      err.hostname = host;
      return err;
    case E.ETIMEDOUT:
      return new Error('Opening handshake has timed out');
    case E.ERESET:
      err = new Error('socket hang up');
      err.code = 'ECONNRESET';
      return err;
    case E.ETLS: {
      // The engine names the failed certificate check by OpenSSL's number:
      // Node's tls gives that check's own code and OpenSSL's text, as ws does.
      const m = /^certificate verify failed: (.*) \(X509 (\d+)\)$/.exec(text || '');
      if (m && X509_CODES[m[2]]) {
        err = new Error(m[1]);
        err.code = X509_CODES[m[2]];
        return err;
      }
      err = new Error(text || 'TLS handshake failed');
      err.code = /certificate|verify/i.test(text) ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'ERR_TLS_HANDSHAKE';
      return err;
    }
    case E.EHANDSHAKE:
      return handshakeError(ws, text);
    case E.ETOOBIG:
    case E.EUTF8:
    case E.EPROTO:
      return closeError(error, 1006, reason) || engineError(error);
    default:
      if (error === 0) return new Error('socket hang up');
      return engineError(error, text);
  }
}

// OpenSSL's X509_V_ERR_* numbers and the codes Node's tls gives them
// (node's crypto X509 error table).
const X509_CODES = {
  2: 'UNABLE_TO_GET_ISSUER_CERT',
  3: 'UNABLE_TO_GET_CRL',
  4: 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  5: 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  6: 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  7: 'CERT_SIGNATURE_FAILURE',
  8: 'CRL_SIGNATURE_FAILURE',
  9: 'CERT_NOT_YET_VALID',
  10: 'CERT_HAS_EXPIRED',
  11: 'CRL_NOT_YET_VALID',
  12: 'CRL_HAS_EXPIRED',
  13: 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  14: 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  15: 'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  16: 'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  17: 'OUT_OF_MEM',
  18: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  19: 'SELF_SIGNED_CERT_IN_CHAIN',
  20: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  21: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  22: 'CERT_CHAIN_TOO_LONG',
  23: 'CERT_REVOKED',
  24: 'INVALID_CA',
  25: 'PATH_LENGTH_EXCEEDED',
  26: 'INVALID_PURPOSE',
  27: 'CERT_UNTRUSTED',
  28: 'CERT_REJECTED',
  62: 'ERR_TLS_CERT_ALTNAME_INVALID'
};

function initAsClient(ws, address, protocols, options) {
  const opts = {
    allowSynchronousEvents: true,
    autoPong: true,
    protocolVersion: 13,
    maxPayload: 100 * 1024 * 1024,
    skipUTF8Validation: false,
    perMessageDeflate: true,
    followRedirects: false,
    maxRedirects: 10,
    closeTimeout: 30000,
    maxBufferedChunks: 1024 * 1024,
    maxFragments: 128 * 1024,
    ...options
  };
  ws._opts = opts;
  ws._protocols = protocols;
  ws._deferEvents = !opts.allowSynchronousEvents;
  if (ws._redirects === undefined) ws._redirects = 0;
  if (opts.protocolVersion !== 8 && opts.protocolVersion !== 13) {
    throw new RangeError(`Unsupported protocol version: ${opts.protocolVersion} (supported versions: 8, 13)`);
  }
  let parsedUrl;
  if (address instanceof URL) parsedUrl = address;
  else {
    try {
      parsedUrl = new URL(address);
    } catch {
      throw new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (parsedUrl.protocol === 'http:' || parsedUrl.protocol === 'https:') {
    parsedUrl = new URL(parsedUrl);
    parsedUrl.protocol = parsedUrl.protocol === 'http:' ? 'ws:' : 'wss:';
  }
  ws._url = parsedUrl.href;
  const isSecure = parsedUrl.protocol === 'wss:';
  const isIpcUrl = parsedUrl.protocol === 'ws+unix:';
  let invalid;
  if (parsedUrl.protocol !== 'ws:' && !isSecure && !isIpcUrl) {
    invalid = 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"';
  } else if (isIpcUrl && !parsedUrl.pathname) invalid = "The URL's pathname is empty";
  else if (parsedUrl.hash) invalid = 'The URL contains a fragment identifier';
  if (invalid) {
    const err = new SyntaxError(invalid);
    if (ws._redirects === 0) throw err;
    emitErrorAndClose(ws, err);
    return;
  }
  const protocolSet = new Set();
  for (const p of protocols) {
    if (typeof p !== 'string' || !subprotocolRegex.test(p) || protocolSet.has(p)) {
      throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    }
    protocolSet.add(p);
  }
  if (isIpcUrl) {
    // As ws: the socket's path, then after a ':' the request path.
    ws._socketPath = (parsedUrl.pathname + parsedUrl.search).split(':')[0];
  }
  // As ws (and Node's http.request): the userinfo of the URL, as written
  // (not percent-decoded), else the `auth` option; an Authorization header
  // given in `headers` wins over both.
  let auth = opts.auth;
  if (parsedUrl.username || parsedUrl.password) auth = `${parsedUrl.username}:${parsedUrl.password}`;
  // The user's headers and ws's additions to them (Authorization, and what
  // a redirect drops), before the request is made of them.
  const staged = new ClientRequestLike(parsedUrl, isIpcUrl, opts.headers);
  if (opts.followRedirects) {
    if (ws._redirects === 0) {
      ws._originalIpc = isIpcUrl;
      ws._originalSecure = isSecure;
      ws._originalHostOrSocketPath = isIpcUrl ? ws._socketPath : parsedUrl.host;
      // ws keeps a copy of the options with the header names lowercased for
      // the requests that follow redirects.
      const userHeaders = options && options.headers;
      options = { ...options, headers: {} };
      if (userHeaders) {
        for (const [key, value] of Object.entries(userHeaders)) options.headers[key.toLowerCase()] = value;
      }
      ws._redirectOptions = options;
    } else if (ws.listenerCount('redirect') === 0) {
      // No 'redirect' listener: as ws (and curl 7.77), a redirect to another
      // host, or from wss: to ws:, drops the credentials; another host also
      // drops a Host header. With a listener, nothing is removed.
      const isSameHost = isIpcUrl
        ? ws._originalIpc
          ? ws._socketPath === ws._originalHostOrSocketPath
          : false
        : ws._originalIpc
          ? false
          : parsedUrl.host === ws._originalHostOrSocketPath;
      if (!isSameHost || (ws._originalSecure && !isSecure)) {
        staged._remove('authorization');
        staged._remove('cookie');
        if (!isSameHost) staged._remove('host');
        auth = undefined;
      }
    }
    // ws: the first Authorization wins over the userinfo of later URLs.
    if (auth && !options.headers.authorization) {
      options.headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    }
  }
  if (auth && !staged.hasHeader('authorization')) {
    staged.setHeader('Authorization', `Basic ${Buffer.from(auth).toString('base64')}`);
  }
  // ws's agent, createConnection, lookup, finishRequest, a TLS option only
  // Node's tls.connect honours, or protocolVersion 8 (the engine's own
  // request says 13): the handshake goes through Node's http(s), the
  // upgraded socket to the engine.
  const viaNode = !isIpcUrl && (usesNodeHttp(opts, isSecure) || opts.protocolVersion === 8);
  let req = staged;
  let key;
  if (!viaNode) ({ req, key } = engineRequest(parsedUrl, isIpcUrl, staged._headerObject(), opts, protocols));
  ws._req = req;
  if (opts.followRedirects && ws._redirects) {
    // As ws: emitted with the request about to be sent, whose headers the
    // listener may read and remove (getHeader()/removeHeader()).
    ws.emit('redirect', ws._url, req);
    // ws sends it anyway and aborts it at once: nothing is connected here.
    if (ws._readyState !== CONNECTING) return;
  }
  // The engine writes Host, Upgrade, Connection, the key and the version
  // itself, and the subprotocol, extension and Origin headers when it offers
  // them: ws's own values replace the user's there too.
  const headers = viaNode ? req._headerObject() : requestHeaders(req);
  // Node's http fills in Host as the engine writes it; one the user set (or
  // changed in 'redirect') is sent instead, as ws sends it.
  const ownHost = isIpcUrl ? 'localhost' : parsedUrl.host;
  for (const name of Object.keys(headers)) {
    const key = name.toLowerCase();
    if (key === 'host' && (viaNode || String(headers[name]) !== ownHost)) continue;
    if (
      ENGINE_HEADERS.has(key) ||
      (key === 'sec-websocket-protocol' && protocols.length) ||
      (key === 'sec-websocket-extensions' && opts.perMessageDeflate) ||
      (key === 'origin' && opts.origin)
    ) {
      delete headers[name];
    }
  }
  const nopts = {
    protocols: protocols.join(','),
    headers: headersToString(headers),
    // ws coerces it to a 32-bit signed integer; 0 or less: no limit
    maxPayload: (opts.maxPayload | 0) > 0 ? opts.maxPayload | 0 : Number.MAX_SAFE_INTEGER,
    handshakeTimeout: opts.handshakeTimeout > 0 ? opts.handshakeTimeout : 0,
    // WH_CLIENT_SKIP_UTF8, WH_CLIENT_NO_AUTO_PONG, WH_CLIENT_WS_DEFLATE_ANSWER, WH_CLIENT_BARE_CLOSE (capi/wirehub.h)
    flags: (opts.skipUTF8Validation ? CLIENT_SKIP_UTF8 : 0) | (opts.autoPong && !opts.generateMask ? 0 : CLIENT_NO_AUTO_PONG) |
      CLIENT_WS_DEFLATE_ANSWER | CLIENT_BARE_CLOSE | (opts.generateMask ? CLIENT_HOST_MASK : 0),
    // ws: a 32-bit signed integer, 0 or less: no limit (the engine's -1)
    maxFragments: (opts.maxFragments | 0) > 0 ? opts.maxFragments | 0 : -1,
    maxBufferedChunks: (opts.maxBufferedChunks | 0) > 0 ? opts.maxBufferedChunks | 0 : -1,
    // ws waits 30 s for the server's close frame (the engine's default: 5 s)
    closeTimeout: Math.max(1, Math.min(Number(opts.closeTimeout) || 0, 2 ** 31 - 1)),
    deflate: deflateOptions(opts.perMessageDeflate, false),
    ...limitOptions(opts, ['idleTimeout', 'messageTimeout'])
  };
  if (opts.origin) nopts.origin = String(opts.origin);
  if (key) nopts.key = key;
  if (isSecure && !viaNode) {
    if (opts.rejectUnauthorized === false) nopts.insecure = 1;
    if (opts.ca) nopts.caFile = caFile(opts.ca);
    if (opts.servername) nopts.servername = opts.servername;
    // tls.connect's client certificate, versions and ciphers, as ws passes
    // them on (PEM strings or Buffers; the engine reads files).
    if (opts.cert) nopts.certFile = caFile(opts.cert);
    if (opts.key) nopts.keyFile = caFile(opts.key);
    // The engine speaks TLS 1.2 and 1.3: an older minimum is raised to 1.2.
    const tlsVersions = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };
    for (const [opt, field] of [['minVersion', 'tlsMin'], ['maxVersion', 'tlsMax']]) {
      if (opts[opt] === undefined) continue;
      if (opt === 'minVersion' && (opts[opt] === 'TLSv1' || opts[opt] === 'TLSv1.1')) continue;
      if (!tlsVersions[opts[opt]]) {
        const err = new TypeError(`The value "${opts[opt]}" is invalid for option "${opt}"`);
        err.code = 'ERR_TLS_INVALID_PROTOCOL_VERSION';
        throw err;
      }
      nopts[field] = tlsVersions[opts[opt]];
    }
    if (opts.ciphers) nopts.ciphers = String(opts.ciphers);
  }
  let target;
  if (isIpcUrl) {
    // As ws: the socket's path, then after a ':' the request path.
    const [socketPath, path] = (parsedUrl.pathname + parsedUrl.search).split(':');
    target = `ws+unix://${socketPath}:${path || '/'}`;
  } else {
    // The engine does not take the userinfo part.
    const clean = new URL(parsedUrl.href);
    clean.username = '';
    clean.password = '';
    target = clean.href;
  }
  if (opts.generateMask && !maskSourceSet) {
    addon.setMaskSource(maskFor);
    maskSourceSet = true;
  }
  if (viaNode) {
    connectViaNodeHttp(ws, {
      url: parsedUrl,
      opts,
      headers,
      protocols,
      nopts,
      engineError,
      fail: (err) => emitErrorAndClose(ws, err),
      abort: (message) => abortHandshake(ws, message),
      unexpected: (req, res) => unexpectedViaNodeHttp(ws, req, res)
    });
    return;
  }
  // Sent, as far as Node knows (headersSent, finished): the engine sends it.
  req.end();
  const id = addon.connect(target, nopts);
  if (id < 0) {
    const err = id === E.EURL ? new SyntaxError(`Invalid URL: ${address}`) : engineError(id);
    if (ws._redirects === 0) throw err;
    emitErrorAndClose(ws, err);
    return;
  }
  ws._id = id;
  conns[id] = ws;
  ws._refd = true;
  addon.ref(1);
}

// The next request of a redirect (ws: counted against maxRedirects, the
// location resolved against the current URL, the options of the first).
function followRedirect(ws, location) {
  if (++ws._redirects > ws._opts.maxRedirects) {
    emitErrorAndClose(ws, new Error('Maximum redirects exceeded'));
    return;
  }
  let target;
  try {
    target = new URL(location, ws._url);
  } catch {
    emitErrorAndClose(ws, new SyntaxError(`Invalid URL: ${location}`));
    return;
  }
  try {
    initAsClient(ws, target, ws._protocols, ws._redirectOptions);
  } catch (err) {
    emitErrorAndClose(ws, err);
  }
}

// A non-101 answer to a handshake made through Node's http, as ws handles
// it: a redirect to follow, 'unexpected-response' (the socket stays
// CONNECTING until the listener aborts it), or an error.
function unexpectedViaNodeHttp(ws, req, res) {
  const opts = ws._opts;
  const status = res.statusCode;
  if (opts.followRedirects && status >= 300 && status < 400 && res.headers.location) {
    res.resume();
    req.destroy();
    ws._httpReq = null;
    followRedirect(ws, res.headers.location);
    return;
  }
  if (ws.listenerCount('unexpected-response')) {
    ws.emit('unexpected-response', req, res);
    return;
  }
  abortHandshake(ws, `Unexpected server response: ${status}`);
}

WebSocket.kInternal = kInternal;
WebSocket.parseHeaderBlock = parseHeaderBlock;
WebSocket.headersToString = headersToString;
WebSocket.deflateOptions = deflateOptions;

// A connection's booleans, one bit each of _flags, and the fields most
// connections keep at their default, in an array (_rare) made by the first
// set to anything else: 16 fields fewer on every WebSocket (128 bytes of an
// idle server connection's 280; its map keeps the ICs monomorphic, where
// fields added on the prototype's defaults would fork it). `this._paused`
// and the rest read and write as before.
const FLAGS = [
  '_closeFrameReceived',
  '_closeFrameSent',
  '_paused',
  '_isServer',
  '_closeEmitted',
  '_refd',
  '_terminated',
  '_deferEvents', // allowSynchronousEvents: false
  '_deferredRunning',
  '_live', // counted by its server (WebSocketServer._live)
  '_compressAll', // every message compressed, whatever its size (compressAllAsWs)
  '_mapV4' // its server listens on '::': IPv4 ends shown IPv4-mapped, as Node does
];
for (let i = 0; i < FLAGS.length; i++) {
  const bit = 1 << i;
  Object.defineProperty(WebSocket.prototype, FLAGS[i], {
    configurable: true,
    get() {
      return (this._flags & bit) !== 0;
    },
    set(v) {
      this._flags = v ? this._flags | bit : this._flags & ~bit;
    }
  });
}
const RARE = [
  ['_closeCode', 1006],
  ['_closeMessage', EMPTY],
  ['_info', null], // connInfo(): [protocol, extensions, remote and local address, port], on demand
  ['_pausedEvents', null],
  ['_bufferedAmount', 0],
  ['_drainCbs', null],
  ['_url', undefined],
  ['_sendQueue', null], // while a Blob is read: [fn, a, b, cb, size] to run after it
  ['_deferred', null]
];
const RARE_DEFAULTS = RARE.map((e) => e[1]);
for (let i = 0; i < RARE.length; i++) {
  const dflt = RARE[i][1];
  Object.defineProperty(WebSocket.prototype, RARE[i][0], {
    configurable: true,
    get() {
      const r = this._rare;
      return r === null ? dflt : r[i];
    },
    set(v) {
      let r = this._rare;
      if (r === null) {
        if (v === dflt) return;
        r = this._rare = RARE_DEFAULTS.slice();
      }
      r[i] = v;
    }
  });
}

module.exports = WebSocket;
