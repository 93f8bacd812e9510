'use strict';
// WebSocketServer with the API of ws 8 (node_modules/ws/lib/websocket-server.js).
//
// Three ways in, one engine path:
//   { port }: the engine listens itself; every upgrade comes through its
//     upgrade hook (WH_EV_UPGRADE), unvalidated (WH_SERVER_RAW_UPGRADE), and
//     is checked and answered here as ws does, its request an
//     http.IncomingMessage.
//   { server } and noServer + handleUpgrade(): Node's http(s).Server parsed
//     the request; the same checks run, then its socket is handed to an
//     engine server created with WH_SERVER_NO_LISTEN (wh_server_adopt), with
//     the request re-serialized and the bytes Node already read. A plain TCP
//     socket is dup()ed and Node's handle closed (closing one of two
//     descriptors sends no FIN), the net.Socket object kept as the
//     connection's (see keepSocket()); a TLS socket has no descriptor
//     carrying plaintext, so it is bridged to the engine through a
//     socketpair (bridge.js, shared with the client).

const EventEmitter = require('events');
const crypto = require('crypto');
const http = require('http');
const net = require('net');
const os = require('os');
const { Duplex } = require('stream');

const { addon, conns, servers, SERVER, F, E, errName, limitOptions } = require('./native');
const WebSocket = require('./websocket');
const { engineError } = require('./errors');
const { bridge } = require('./bridge');
const { answerLocalEnd, nodeAddress, family } = require('./socket-info');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const keyRegex = /^[+/0-9A-Za-z]{22}==$/;
const tokenRegex = /^[!#$%&'*+\-.0-9A-Z^_`|a-z~]+$/;
const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;
const ADOPT_HEADER = 'x-wirehub-adopt';
const kAdopted = Symbol('wirehub-adopted');
const kCtx = Symbol('wirehub-upgrade');

let adoptSeq = 0;

function parseSubprotocols(header) {
  const protocols = new Set();
  for (const raw of header.split(',')) {
    const p = raw.trim();
    if (!p || !tokenRegex.test(p) || protocols.has(p)) throw new SyntaxError('Invalid Sec-WebSocket-Protocol header');
    protocols.add(p);
  }
  return protocols;
}

// The request of a connection the engine accepted itself (a server on its own
// port): an http.IncomingMessage as ws gives, filled from the engine's view
// of the request. Its socket, made on first use, is a net.Socket without a
// handle that answers remoteAddress, remotePort and remoteFamily.
class UpgradeRequest extends http.IncomingMessage {
  constructor(x, mapV4) {
    super(null);
    this.method = x[1];
    this.url = x[2];
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.httpVersion = '1.1';
    this.upgrade = true;
    this._addr = nodeAddress(x[4], mapV4);
    this._port = x[5];
    this._laddr = nodeAddress(x[6], mapV4);
    this._lport = x[7];
    const raw = [];
    const text = x[3];
    let i = 0;
    while (i < text.length) {
      let eol = text.indexOf('\r\n', i);
      if (eol === -1) eol = text.length;
      const colon = text.indexOf(':', i);
      if (colon > i && colon < eol) {
        // past the blanks after the colon first: trim() then has nothing to
        // cut and returns the same string instead of a second copy
        let v = colon + 1;
        while (v < eol && (text.charCodeAt(v) === 32 || text.charCodeAt(v) === 9)) v++;
        raw.push(text.slice(i, colon).trim(), text.slice(v, eol).trim());
      }
      i = eol + 2;
    }
    this._addHeaderLines(raw, raw.length);
    this.complete = true;
  }
  get socket() {
    if (this._sock === undefined) {
      this._sock = peerSocket(this._addr, this._port, this._laddr, this._lport);
      if (this._ws !== undefined) linkRequestSocket(this);
    }
    return this._sock;
  }
  set socket(v) {
    this._sock = v === null ? undefined : v;
  }
}

// As with ws, the request's socket is the connection's: once the connection
// exists, ending, destroying or writing to it acts on the connection, and
// it closes with it.
function linkRequestSocket(req) {
  const ws = req._ws;
  const ctx = { ws, dead: false, broken: false };
  routeSocket(req._sock, ctx);
  if (ws.readyState === WebSocket.CLOSED) req._sock.destroy();
  else if (ws._server) ws._server._sockets.set(ws, req._sock);
}

// The headers _check() reads, [upgrade, key, version, protocol, extensions],
// as req.headers would give them (lines of one name joined with ', ', the
// name compared lowercased), from the raw lines of a request the engine
// handed over; null for any other request. One array, reused: _check()
// takes its values out at once.
const UPGRADE_HEADERS = [
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions'
];
const upgradeValues = [undefined, undefined, undefined, undefined, undefined];

function upgradeHeaders(req) {
  if (!(req instanceof UpgradeRequest)) return null;
  const v = upgradeValues;
  v.fill(undefined);
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = upgradeHeaderIndex(raw[i]);
    if (k !== -1) v[k] = v[k] === undefined ? raw[i + 1] : `${v[k]}, ${raw[i + 1]}`;
  }
  return v;
}

function upgradeHeaderIndex(name) {
  for (let i = 0; i < name.length; i++) {
    // beyond ASCII, as Node does it (toLowerCase() may change the length)
    if (name.charCodeAt(i) > 127) return UPGRADE_HEADERS.indexOf(name.toLowerCase());
  }
  outer: for (let k = 0; k < UPGRADE_HEADERS.length; k++) {
    const want = UPGRADE_HEADERS[k];
    if (name.length !== want.length) continue;
    for (let i = 0; i < want.length; i++) {
      let c = name.charCodeAt(i);
      if (c >= 65 && c <= 90) c += 32;
      if (c !== want.charCodeAt(i)) continue outer;
    }
    return k;
  }
  return -1;
}

// No Sec-WebSocket-Protocol header: never handed to user code (handleProtocols
// is called only when there are some), so one Set serves every request.
const NO_PROTOCOLS = new Set();

// A handshake that goes on past _check() (subprotocols, verifyClient,
// 'headers' listeners, handleUpgrade()): reject(code, message, headers)
// answers it with an error.
function upgradeContext(req, protocols, cb, reject) {
  return { rid: 0, req, cb, protocols, key: req.headers['sec-websocket-key'], reject };
}

// A request _check() refuses: answered (abortUpgrade), or, with a
// 'wsClientError' listener, handed to it as ws does, with the socket (a
// request the engine holds gets an EngineSocket, answered through it).
function refuseUpgrade(server, req, rid, socket, code, message, headers) {
  if (server.listenerCount('wsClientError')) {
    const err = new Error(message);
    Error.captureStackTrace(err, refuseUpgrade);
    server.emit('wsClientError', err, socket || new EngineSocket(rid, req), req);
  } else {
    abortUpgrade(server, rid, socket, code, message, headers);
  }
  return null;
}

function abortUpgrade(server, rid, socket, code, message, headers) {
  if (socket) abortHandshake(socket, code, message, headers);
  else server._respond(rid, code, message, headers);
}

function peerSocket(address, port, localAddress, localPort) {
  const socket = new net.Socket();
  socket._peername = { address, family: family(address), port };
  return localAddress ? answerLocalEnd(socket, localAddress, localPort) : socket;
}

// The socket 'wsClientError' gives for a request the engine holds: what the
// listener writes to it (an HTTP response, as to a socket with ws) is
// answered through the engine when it ends or destroys it.
class EngineSocket extends Duplex {
  constructor(rid, req) {
    super();
    this._rid = rid;
    this._chunks = [];
    this._answered = false;
    this._peername = req.socket._peername;
  }
  get remoteAddress() {
    return this._peername.address;
  }
  get remotePort() {
    return this._peername.port;
  }
  get remoteFamily() {
    return this._peername.family;
  }
  _read() {}
  _write(chunk, encoding, cb) {
    this._chunks.push(chunk);
    cb();
  }
  _final(cb) {
    this._answer();
    cb();
  }
  _destroy(err, cb) {
    this._answer();
    cb(err);
  }
  _answer() {
    if (this._answered) return;
    this._answered = true;
    const bytes = Buffer.concat(this._chunks);
    const end = bytes.indexOf('\r\n\r\n');
    const head = bytes.toString('latin1', 0, end === -1 ? bytes.length : end);
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*/.exec(head);
    if (!m) {
      addon.respond(this._rid, 400, null, '');
      return;
    }
    let headers = '';
    const body = end === -1 ? Buffer.alloc(0) : bytes.subarray(end + 4);
    let length = false;
    for (const line of head.slice(m[0].length).split('\r\n')) {
      const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
      if (!name) continue;
      // The engine writes a block with a Content-Length as it is; one that
      // is not the body's it would refuse: the body's is written instead.
      if (name === 'content-length') {
        headers += `Content-Length: ${body.length}\r\n`;
        length = true;
        continue;
      }
      if (name === 'connection' && !length) {
        headers += `${line}\r\n`;
        continue;
      }
      headers += `${line}\r\n`;
    }
    addon.respond(this._rid, Number(m[1]), headers || null, body);
  }
}

// Sec-WebSocket-Extensions, checked as ws checks it (lib/extension.js parse()
// and PerMessageDeflate's normalizeParams() and acceptAsServer() of ws 8,
// MIT License, Copyright (c) 2011 Einar Otto Stensrud, 2013 Arnout Kazemier,
// 2016 Luigi Pinca): a header ws refuses throws.
const tokenChars = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
  0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0
];

function pushOffer(dest, name, elem) {
  if (dest[name] === undefined) dest[name] = [elem];
  else dest[name].push(elem);
}

function parseExtensions(header) {
  const offers = Object.create(null);
  let params = Object.create(null);
  let mustUnescape = false;
  let isEscaping = false;
  let inQuotes = false;
  let extensionName;
  let paramName;
  let start = -1;
  let code = -1;
  let end = -1;
  let i = 0;

  for (; i < header.length; i++) {
    code = header.charCodeAt(i);

    if (extensionName === undefined) {
      if (end === -1 && tokenChars[code] === 1) {
        if (start === -1) start = i;
      } else if (
        i !== 0 &&
        (code === 0x20 /* ' ' */ || code === 0x09) /* '\t' */
      ) {
        if (end === -1 && start !== -1) end = i;
      } else if (code === 0x3b /* ';' */ || code === 0x2c /* ',' */) {
        if (start === -1) {
          throw new SyntaxError(`Unexpected character at index ${i}`);
        }

        if (end === -1) end = i;
        const name = header.slice(start, end);
        if (code === 0x2c) {
          pushOffer(offers, name, params);
          params = Object.create(null);
        } else {
          extensionName = name;
        }

        start = end = -1;
      } else {
        throw new SyntaxError(`Unexpected character at index ${i}`);
      }
    } else if (paramName === undefined) {
      if (end === -1 && tokenChars[code] === 1) {
        if (start === -1) start = i;
      } else if (code === 0x20 || code === 0x09) {
        if (end === -1 && start !== -1) end = i;
      } else if (code === 0x3b || code === 0x2c) {
        if (start === -1) {
          throw new SyntaxError(`Unexpected character at index ${i}`);
        }

        if (end === -1) end = i;
        pushOffer(params, header.slice(start, end), true);
        if (code === 0x2c) {
          pushOffer(offers, extensionName, params);
          params = Object.create(null);
          extensionName = undefined;
        }

        start = end = -1;
      } else if (code === 0x3d /* '=' */ && start !== -1 && end === -1) {
        paramName = header.slice(start, i);
        start = end = -1;
      } else {
        throw new SyntaxError(`Unexpected character at index ${i}`);
      }
    } else {
      if (isEscaping) {
        if (tokenChars[code] !== 1) {
          throw new SyntaxError(`Unexpected character at index ${i}`);
        }
        if (start === -1) start = i;
        else if (!mustUnescape) mustUnescape = true;
        isEscaping = false;
      } else if (inQuotes) {
        if (tokenChars[code] === 1) {
          if (start === -1) start = i;
        } else if (code === 0x22 /* '"' */ && start !== -1) {
          inQuotes = false;
          end = i;
        } else if (code === 0x5c /* '\' */) {
          isEscaping = true;
        } else {
          throw new SyntaxError(`Unexpected character at index ${i}`);
        }
      } else if (code === 0x22 && header.charCodeAt(i - 1) === 0x3d) {
        inQuotes = true;
      } else if (end === -1 && tokenChars[code] === 1) {
        if (start === -1) start = i;
      } else if (start !== -1 && (code === 0x20 || code === 0x09)) {
        if (end === -1) end = i;
      } else if (code === 0x3b || code === 0x2c) {
        if (start === -1) {
          throw new SyntaxError(`Unexpected character at index ${i}`);
        }

        if (end === -1) end = i;
        let value = header.slice(start, end);
        if (mustUnescape) {
          value = value.replace(/\\/g, '');
          mustUnescape = false;
        }
        pushOffer(params, paramName, value);
        if (code === 0x2c) {
          pushOffer(offers, extensionName, params);
          params = Object.create(null);
          extensionName = undefined;
        }

        paramName = undefined;
        start = end = -1;
      } else {
        throw new SyntaxError(`Unexpected character at index ${i}`);
      }
    }
  }

  if (start === -1 || inQuotes || code === 0x20 || code === 0x09) {
    throw new SyntaxError('Unexpected end of input');
  }

  if (end === -1) end = i;
  const token = header.slice(start, end);
  if (extensionName === undefined) {
    pushOffer(offers, token, params);
  } else {
    if (paramName === undefined) {
      pushOffer(params, token, true);
    } else if (mustUnescape) {
      pushOffer(params, paramName, token.replace(/\\/g, ''));
    } else {
      pushOffer(params, paramName, token);
    }
    pushOffer(offers, extensionName, params);
  }

  return offers;
}

function checkDeflateOffers(opts, configurations) {
  for (const params of configurations) {
    for (const key of Object.keys(params)) {
      let value = params[key];
      if (value.length > 1) throw new Error(`Parameter "${key}" must have only a single value`);
      value = value[0];
      if (key === 'client_max_window_bits') {
        if (value !== true) {
          const num = +value;
          if (!Number.isInteger(num) || num < 8 || num > 15) {
            throw new TypeError(`Invalid value for parameter "${key}": ${value}`);
          }
          value = num;
        }
      } else if (key === 'server_max_window_bits') {
        const num = +value;
        if (!Number.isInteger(num) || num < 8 || num > 15) {
          throw new TypeError(`Invalid value for parameter "${key}": ${value}`);
        }
        value = num;
      } else if (key === 'client_no_context_takeover' || key === 'server_no_context_takeover') {
        if (value !== true) throw new TypeError(`Invalid value for parameter "${key}": ${value}`);
      } else {
        throw new Error(`Unknown parameter "${key}"`);
      }
      params[key] = value;
    }
  }
  const accepted = configurations.find(
    (params) =>
      !(
        (opts.serverNoContextTakeover === false && params.server_no_context_takeover) ||
        (params.server_max_window_bits &&
          (opts.serverMaxWindowBits === false ||
            (typeof opts.serverMaxWindowBits === 'number' &&
              opts.serverMaxWindowBits > params.server_max_window_bits))) ||
        (typeof opts.clientMaxWindowBits === 'number' && !params.client_max_window_bits)
      )
  );
  if (!accepted) throw new Error('None of the extension offers can be accepted');
}

function abortHandshake(socket, code, message, headers) {
  message = message || http.STATUS_CODES[code];
  headers = {
    Connection: 'close',
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(message),
    ...headers
  };
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n` +
      Object.keys(headers)
        .map((h) => `${h}: ${headers[h]}`)
        .join('\r\n') +
      '\r\n\r\n' +
      message
  );
}

function socketOnError() {
  this.destroy();
}

function noop() {}

// The broker options (wirehub extras): checked here, so a wrong type is a
// TypeError/RangeError at construction; what only Redis can judge (the URL's
// host, the password) comes as an 'error' event (see _attachBroker()).
function brokerOptions(o) {
  if (o.broker == null) {
    for (const name of ['brokerPrefix', 'brokerCa', 'brokerInsecure', 'brokerConnectTimeout', 'brokerMaxPending']) {
      if (o[name] != null) throw new TypeError(`The "${name}" option needs the "broker" option`);
    }
    return null;
  }
  if (typeof o.broker !== 'string' || o.broker === '') {
    throw new TypeError('The "broker" option must be a redis:// or rediss:// URL string');
  }
  const out = { url: o.broker };
  if (o.brokerPrefix != null) {
    if (typeof o.brokerPrefix !== 'string') throw new TypeError('The "brokerPrefix" option must be a string');
    out.prefix = o.brokerPrefix;
  }
  if (o.brokerCa != null) {
    if (typeof o.brokerCa !== 'string') throw new TypeError('The "brokerCa" option must be a file path');
    out.caFile = o.brokerCa;
  }
  if (o.brokerInsecure) out.insecure = true;
  const ints = [
    ['brokerConnectTimeout', 'connectTimeout', 2 ** 31 - 1],
    ['brokerMaxPending', 'maxPending', Number.MAX_SAFE_INTEGER]
  ];
  for (const [name, key, max] of ints) {
    const v = o[name];
    if (v == null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
      throw new RangeError(`The "${name}" option must be an integer between 1 and ${max}; got ${v}`);
    }
    out[key] = v;
  }
  return out;
}

// The URL as an error message may show it: without its password.
function redactUrl(url) {
  // the userinfo ends at the authority's last '@' (redis://password@host
  // names a password alone)
  return url.replace(/^([a-z]+:\/\/)([^/]*)@/i, (m, scheme, info) => {
    const colon = info.indexOf(':');
    return `${scheme}${colon === -1 ? '' : info.slice(0, colon + 1)}***@`;
  });
}

// ws keeps the socket given to handleUpgrade() as the connection's: its user
// (engine.io refusing a handshake after the upgrade, say) may write to it,
// end or destroy it, and it closes when the connection is gone. The engine
// owns a dup() of the descriptor; Node's handle is closed (closing one of two
// descriptors sends no FIN) and the net.Socket object is kept without one,
// its remote and local addresses cached:
//   - end() or destroy() closes the wirehub connection (terminate);
//   - bytes written to it would, with ws, land raw in the WebSocket stream
//     and the peer fail the connection (engine.io writes an HTTP 400 there,
//     then destroys the socket). The engine takes no raw bytes, so the peer
//     gets what it must fail the same way: a text frame that is not UTF-8
//     (and, when the socket is then destroyed, a close after it).
function keepSocket(socket, handle, ctx) {
  void socket.remoteAddress;
  void socket.localAddress;
  socket._getsockname = keptSocketName;
  if (typeof handle.readStop === 'function') handle.readStop();
  socket._handle = null;
  handle.close();
  socket.removeListener('error', socketOnError);
  routeSocket(socket, ctx);
}

// end(), destroy() and writes of a socket without a handle act on the
// connection of ctx.ws (see keepSocket()).
function routeSocket(socket, ctx) {
  socket[kCtx] = ctx;
  socket._write = keptSocketWrite;
  socket._writev = keptSocketWritev;
  socket._final = keptSocketFinal;
  socket.on('error', noop);
  socket.once('close', keptSocketClosed);
}

const NOT_UTF8 = Buffer.from([0xff]);

// Node answers localAddress from the handle only (undefined once the socket
// is destroyed); remoteAddress has a cache.
function keptSocketName() {
  return (!this.destroyed && this._sockname) || {};
}

function keptSocketWrite(chunk, encoding, cb) {
  const ws = this[kCtx].ws;
  if (ws && ws.readyState === WebSocket.OPEN && conns[ws._id] === ws) {
    if (!this[kCtx].broken) addon.send(ws._id, NOT_UTF8, F.TEXT);
    this[kCtx].broken = true;
  } else {
    this[kCtx].dead = true;
  }
  cb();
}

function keptSocketWritev(chunks, cb) {
  keptSocketWrite.call(this, null, null, cb);
}

function keptSocketFinal(cb) {
  cb();
  process.nextTick(() => this.destroy());
}

function keptSocketClosed() {
  const ctx = this[kCtx];
  ctx.dead = true;
  const ws = ctx.ws;
  if (!ws) return;
  // after a write, the frame the peer must fail on goes out first
  if (ctx.broken && ws.readyState === WebSocket.OPEN) ws.close(1002);
  else if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CLOSING) ws.terminate();
  else if (ws.readyState === WebSocket.CONNECTING && ws._id && conns[ws._id] === ws) addon.terminate(ws._id);
}

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: 100 * 1024 * 1024,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      closeTimeout: 30000,
      maxBufferedChunks: 1024 * 1024,
      maxFragments: 128 * 1024,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
      WebSocket,
      ...options
    };
    if (
      (options.port == null && !options.server && !options.noServer) ||
      (options.port != null && (options.server || options.noServer)) ||
      (options.server && options.noServer)
    ) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (options.perMessageDeflate === true) options.perMessageDeflate = {};
    this._limits = limitOptions(options, ['maxHandshakes', 'idleTimeout', 'messageTimeout', 'maxMemory']);
    this._brokerOptions = brokerOptions(options);
    if (options.clientTracking) {
      this.clients = new Set();
      this._shouldEmitClose = false;
    }
    this.options = options;
    this._state = RUNNING;
    this._sid = 0;
    this._listening = false;
    this._live = 0; // connections opened and not closed yet (each with its _live flag)
    this._pending = new Map();
    this._sockets = new Map(); // adopted connection -> the socket it came on
    this._address = null;
    this._server = null;
    this._removeListeners = null;
    this._closeEmitted = false;
    this._closingEngine = false;
    this._broker = false; // attached (brokerStats() answers)
    this._brokerPending = false;
    this._emitConnection = (ws, req) => this.emit('connection', ws, req);

    if (options.port != null) {
      this._listen(callback);
    } else if (options.server) {
      this._server = options.server;
      const onListening = () => this.emit('listening');
      const onError = (err) => this.emit('error', err);
      const onUpgrade = (req, socket, head) => {
        this.handleUpgrade(req, socket, head, (ws, r) => this.emit('connection', ws, r));
      };
      this._server.on('listening', onListening);
      this._server.on('error', onError);
      this._server.on('upgrade', onUpgrade);
      this._removeListeners = () => {
        this._server.removeListener('listening', onListening);
        this._server.removeListener('error', onError);
        this._server.removeListener('upgrade', onUpgrade);
      };
    }
    if (this._brokerOptions && options.port == null) {
      // With an outside HTTP server the engine server is made now, not at
      // the first upgrade: a node with no connection yet still publishes to
      // the others.
      this._engineServer();
      this._attachBroker(null);
    }
  }

  // Attaches the Redis broker to the engine server, on a worker thread (see
  // SetBroker in bindings/node/wirehub_node.cc): the server's port is bound
  // already, and 'listening' (with { port }) waits for Redis to answer. A
  // broker that cannot be reached at start fails the server as a port in
  // use does: 'error' with the engine's code (WH_EURL, WH_ECONNREFUSED,
  // WH_ERESOLVE, WH_ETIMEDOUT, WH_EACCES for a refused password, WH_ETLS,
  // WH_EBROKER), the port released, no 'listening' and no 'close'.
  _attachBroker(onAttached) {
    const bo = this._brokerOptions;
    this._brokerPending = true;
    const rc = addon.setBroker(this._sid, bo, (code) => {
      this._brokerPending = false;
      if (code >= 0) {
        this._broker = true;
        if (this._state === RUNNING && onAttached) onAttached();
      } else if (this._state === RUNNING) {
        this._brokerFailed(code);
      }
      this._maybeFinishClose();
    });
    if (rc < 0) {
      this._brokerPending = false;
      process.nextTick(() => this._brokerFailed(rc));
    }
  }

  _brokerFailed(code) {
    const url = redactUrl(this._brokerOptions.url);
    const [name, text] = errName(code);
    const err = new Error(`broker ${url}: ${text}`);
    err.code = name;
    err.errno = code;
    err.syscall = 'broker';
    err.address = url;
    // As after a failed listen: not running, and 'close' only for close().
    this._state = CLOSED;
    this._closeEmitted = true;
    if (this._sid) {
      addon.serverUnlisten(this._sid);
      if (addon.serverClose(this._sid, 1000) >= 0) this._closingEngine = true;
    }
    this.emit('error', err);
  }

  _engineOptions(extraFlags) {
    const o = this.options;
    return {
      flags:
        SERVER.UPGRADE_HOOK |
        SERVER.RAW_UPGRADE |
        (o.skipUTF8Validation ? SERVER.SKIP_UTF8 : 0) |
        (o.autoPong ? 0 : SERVER.NO_AUTO_PONG) |
        SERVER.BARE_CLOSE |  // ws's receiver errors close with the code alone
        // ws's acceptAsServer picks the offer and words the answer
        // (deflate holds ws's options, see WebSocket.deflateOptions)
        SERVER.WS_DEFLATE_ANSWER |
        extraFlags,
      maxPayload: o.maxPayload > 0 ? o.maxPayload : Number.MAX_SAFE_INTEGER,
      deflate: WebSocket.deflateOptions(o.perMessageDeflate, true),
      backlog: o.backlog || 0,
      handshakeTimeout: o.handshakeTimeout || 0,
      // ws: coerced to int32, 0 (or less) turns it off; the engine's 0 is
      // ws's default (131072) and -1 is off
      maxFragments: (o.maxFragments | 0) > 0 ? o.maxFragments | 0 : -1,
      // the same for maxBufferedChunks (ws's default 1048576 is the engine's 0)
      maxBufferedChunks: (o.maxBufferedChunks | 0) > 0 ? o.maxBufferedChunks | 0 : -1,
      // ws's default is 30000 (the engine's, 5000)
      closeTimeout: o.closeTimeout >= 0 ? Math.max(1, Math.min(o.closeTimeout, 2 ** 31 - 1)) : 30000,
      ...this._limits
    };
  }

  _listen(callback) {
    const o = this.options;
    if (callback) this.once('listening', callback);
    // WH_SERVER_HTTP: a plain request gets ws's 426 from here (_whHttp).
    const base = this._engineOptions(SERVER.HTTP);
    let host = o.host;
    let r;
    if (host == null) {
      // Node's default: dual-stack "::", or 0.0.0.0 without IPv6
      r = addon.listen({ ...base, host: '::', port: Number(o.port) });
      host = '::';
      if (typeof r === 'number' && r === E.EADDR) {
        r = addon.listen({ ...base, host: '0.0.0.0', port: Number(o.port) });
        host = '0.0.0.0';
      }
    } else {
      r = addon.listen({ ...base, host: String(host), port: Number(o.port) });
    }
    if (typeof r === 'number') {
      const [name, text] = addon.errName(r);
      const code = r === E.EADDRINUSE ? 'EADDRINUSE' : r === E.EACCES ? 'EACCES' : r === E.EMFILE ? 'EMFILE' : name;
      let err;
      if (r === E.ERESOLVE) {
        // Node's lookup error, as ws's HTTP server reports it
        err = new Error(`getaddrinfo ENOTFOUND ${host}`);
        err.code = 'ENOTFOUND';
        err.errno = -3008;
        err.syscall = 'getaddrinfo';
        err.hostname = String(host);
      } else {
        err = new Error(`listen ${code}: ${text} ${host}:${o.port}`);
        err.code = code;
        // Node's errno for the code (libuv's: minus the system's), as ws's gives
        err.errno = os.constants.errno[code] ? -os.constants.errno[code] : r;
        err.syscall = 'listen';
        err.address = host;
        err.port = Number(o.port);
      }
      this._state = CLOSED;
      process.nextTick(() => this.emit('error', err));
      return;
    }
    this._sid = r[0];
    servers[this._sid] = this;
    this._listening = true;
    addon.ref(1);
    this._address = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: r[1] };
    // Node's dual-stack socket (on '::', its default) shows IPv4 ends as
    // IPv4-mapped IPv6 ('::ffff:127.0.0.1', 'IPv6'), ws's request and
    // socket with it; the engine shows them as IPv4.
    this._mapV4 = host === '::';
    if (this._brokerOptions) this._attachBroker(() => this.emit('listening'));
    else process.nextTick(() => this.emit('listening'));
  }

  _engineServer() {
    if (this._sid) return this._sid;
    const r = addon.listen({ ...this._engineOptions(SERVER.NO_LISTEN), host: '127.0.0.1', port: 0 });
    if (typeof r === 'number') throw engineError(r);
    this._sid = r[0];
    servers[this._sid] = this;
    return this._sid;
  }

  address() {
    if (this.options.noServer) {
      throw new Error('The server is operating in "noServer" mode');
    }
    if (this._server) return this._server.address();
    return this._state === RUNNING ? this._address : null;
  }

  close(cb) {
    if (this._state === CLOSED) {
      if (cb) {
        this.once('close', () => {
          cb(new Error('The server is not running'));
        });
      }
      process.nextTick(() => this.emit('close'));
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === CLOSING) return;
    this._state = CLOSING;
    if (this._removeListeners) {
      this._removeListeners();
      this._removeListeners = null;
      this._server = null;
    }
    // ws 8 leaves open connections alone and emits 'close' once they are
    // gone; the engine server closes its connections when closed, so it is
    // closed only then. Its port is released now, as ws's internal HTTP
    // server releases it (upgrades handed over meanwhile get 503).
    if (this._sid) addon.serverUnlisten(this._sid);
    if ((this.options.noServer || this.options.server) && !this.clients) {
      // ws: with an outside HTTP server and no client tracking, 'close'
      // comes in the next tick, whatever is still open
      process.nextTick(() => {
        this._state = CLOSED;
        this._emitCloseOnce();
      });
    }
    this._maybeFinishClose();
  }

  _maybeFinishClose() {
    if (this._state === RUNNING || this._live || this._closingEngine) return;
    // the engine server lives until its broker call is back (see SetBroker)
    if (this._brokerPending) return;
    this._closingEngine = true;
    // 'close' then follows WH_EV_SERVER_CLOSED
    if (this._sid && addon.serverClose(this._sid, 1000) >= 0) return;
    process.nextTick(() => {
      this._state = CLOSED;
      this._emitCloseOnce();
    });
  }

  _emitCloseOnce() {
    if (this._closeEmitted) return;
    this._closeEmitted = true;
    this.emit('close');
  }

  shouldHandle(req) {
    if (this.options.path) {
      const index = req.url.indexOf('?');
      const pathname = index !== -1 ? req.url.slice(0, index) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- upgrades
  handleUpgrade(req, socket, head, cb) {
    socket.on('error', socketOnError);
    const protocols = this._check(req, 0, socket);
    if (protocols === null) return;
    const ctx = upgradeContext(req, protocols, cb, (code, message, headers) =>
      abortHandshake(socket, code, message, headers)
    );
    this._verify(ctx, () => this._adopt(ctx, socket, head));
  }

  // ws's checks of an upgrade request, in ws's order and words, for both
  // ways in (a server on its own port, whose engine hands every upgrade over
  // unvalidated, as request rid, and handleUpgrade(), with the socket).
  // Returns the subprotocols asked for (a Set), or null when the request was
  // refused. A request that passes without subprotocols costs no object
  // here (the engine's path runs once per handshake).
  _check(req, rid, socket) {
    // A request the engine handed over has its values read from its raw
    // lines (its headers object is made only if someone asks for it); a
    // shouldHandle() of the user's may change req.headers before ws reads
    // the last two, so they are read from there after it.
    const h = upgradeHeaders(req);
    const own = h !== null && this.shouldHandle === WebSocketServer.prototype.shouldHandle;
    const key = h !== null ? h[1] : req.headers['sec-websocket-key'];
    const upgrade = h !== null ? h[0] : req.headers.upgrade;
    const version = +(h !== null ? h[2] : req.headers['sec-websocket-version']);
    const sp = own ? h[3] : undefined;
    const se = own ? h[4] : undefined;
    if (req.method !== 'GET') return refuseUpgrade(this, req, rid, socket, 405, 'Invalid HTTP method');
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      return refuseUpgrade(this, req, rid, socket, 400, 'Invalid Upgrade header');
    }
    if (key === undefined || !keyRegex.test(key)) {
      return refuseUpgrade(this, req, rid, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    }
    if (version !== 13 && version !== 8) {
      return refuseUpgrade(this, req, rid, socket, 400, 'Missing or invalid Sec-WebSocket-Version header', {
        'Sec-WebSocket-Version': '13, 8'
      });
    }
    let handled;
    try {
      handled = this.shouldHandle(req);
    } catch (err) {
      abortUpgrade(this, rid, socket, 500);
      this.emit('error', err);
      return null;
    }
    if (!handled) {
      abortUpgrade(this, rid, socket, 400);
      return null;
    }
    let protocols = NO_PROTOCOLS;
    const protocol = own ? sp : req.headers['sec-websocket-protocol'];
    if (protocol !== undefined) {
      try {
        protocols = parseSubprotocols(protocol);
      } catch {
        return refuseUpgrade(this, req, rid, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
      }
    }
    const pmd = this.options.perMessageDeflate;
    const extensions = own ? se : pmd ? req.headers['sec-websocket-extensions'] : undefined;
    if (pmd && extensions !== undefined) {
      try {
        const offers = parseExtensions(extensions);
        if (offers['permessage-deflate']) checkDeflateOffers(pmd, offers['permessage-deflate']);
      } catch {
        return refuseUpgrade(this, req, rid, socket, 400, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
      }
    }
    return protocols;
  }

  _verify(ctx, next) {
    const verifyClient = this.options.verifyClient;
    if (!verifyClient) return next();
    const req = ctx.req;
    const version = +req.headers['sec-websocket-version'];
    const info = {
      origin: req.headers[`${version === 8 ? 'sec-websocket-origin' : 'origin'}`],
      secure: !!(req.socket && (req.socket.authorized || req.socket.encrypted)),
      req
    };
    let answered = false;
    try {
      if (verifyClient.length === 2) {
        verifyClient(info, (verified, code, message, headers) => {
          if (answered) return;
          answered = true;
          if (!verified) return ctx.reject(code || 401, message, headers);
          next();
        });
        return;
      }
      const verified = verifyClient(info);
      answered = true;
      if (!verified) return ctx.reject(401);
    } catch (err) {
      // Fail closed: verifyClient threw before it decided.
      if (!answered) {
        answered = true;
        this._hookFailed(ctx, err);
        return;
      }
      throw err;
    }
    next();
  }

  // A hook (verifyClient, handleProtocols, a 'headers' listener,
  // shouldHandle) threw while deciding a handshake: the client is refused
  // with 500, never admitted, and the error goes to the server's 'error'
  // listeners (without one it is thrown, as ws would).
  _hookFailed(ctx, err) {
    ctx.reject(500);
    this.emit('error', err);
  }

  _adopt(ctx, socket, head) {
    // ws's completeUpgrade(): a client that already sent its FIN is dropped
    if (!socket.readable || !socket.writable) return socket.destroy();
    if (socket[kAdopted]) {
      throw new Error(
        'server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration'
      );
    }
    if (this._state > RUNNING) return abortHandshake(socket, 503);
    const req = ctx.req;
    let sid;
    try {
      sid = this._engineServer();
    } catch (err) {
      abortHandshake(socket, 500);
      this.emit('error', err);
      return;
    }
    const token = String(++adoptSeq);
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    const rh = req.rawHeaders;
    for (let i = 0; i + 1 < rh.length; i += 2) {
      if (rh[i].toLowerCase() === ADOPT_HEADER) continue;
      text += `${rh[i]}: ${rh[i + 1]}\r\n`;
    }
    text += `X-Wirehub-Adopt: ${token}\r\n\r\n`;
    const parts = [Buffer.from(text, 'latin1')];
    if (head && head.length) parts.push(head);
    const remoteAddress = socket.remoteAddress || '';
    const remotePort = socket.remotePort || 0;
    const handle = socket._handle;
    let fd = -1;
    if (!socket.encrypted && handle && typeof handle.fd === 'number' && handle.fd >= 0) {
      // Bytes Node read past the request but did not hand out yet.
      if (socket.readableLength > 0) {
        const more = socket.read(socket.readableLength);
        if (more) parts.push(more);
      }
      fd = addon.dup(handle.fd);
      if (fd < 0) {
        abortHandshake(socket, 500);
        return;
      }
      keepSocket(socket, handle, ctx);
      ctx.kept = true;
    } else {
      socket.removeListener('error', socketOnError);
      try {
        fd = bridge(socket, this.options.closeTimeout);
      } catch (err) {
        abortHandshake(socket, 500);
        this.emit('error', err);
        return;
      }
    }
    socket[kAdopted] = true;
    ctx.socket = socket;
    ctx.reject = (code, message, headers) => {
      this._respond(ctx.rid, code, message, headers);
      this._dropAdopted(ctx);
    };
    this._pending.set(token, ctx);
    const rc = addon.adopt(sid, fd, Buffer.concat(parts), remoteAddress, remotePort);
    if (rc < 0) {
      this._pending.delete(token);
      this._dropAdopted(ctx);
      if (rc !== E.ESHUTDOWN) this.emit('error', engineError(rc));
      return;
    }
    // An adopted socket that fails the engine's own checks never produces an
    // upgrade event; its pending entry is dropped after the handshake timeout.
    const t = setTimeout(() => {
      if (this._pending.delete(token)) this._dropAdopted(ctx);
    }, (this.options.handshakeTimeout || 10000) + 1000);
    t.unref();
    ctx.timer = t;
  }

  // The engine ended an adopted connection before it opened: the socket kept
  // for it (see keepSocket()) closes too. A bridged TLS socket closes with
  // its bridge, once the engine's answer went through.
  _dropAdopted(ctx) {
    if (ctx.kept && !ctx.ws && ctx.socket) ctx.socket.destroy();
  }

  _respond(rid, code, message, headers) {
    message = message || http.STATUS_CODES[code] || '';
    // ws's abortHandshake, header for header: with its own Content-Length
    // the engine writes the block as it is.
    headers = {
      Connection: 'close',
      'Content-Type': 'text/html',
      'Content-Length': Buffer.byteLength(message),
      ...headers
    };
    addon.respond(rid, code, WebSocket.headersToString(headers), message);
  }

  // WH_EV_HTTP: what ws's own http.Server answers to a request that is not
  // an upgrade (Node's 426 with a text/plain body).
  _whHttp(x, body) {
    addon.respond(x[0], 426, `Content-Length: ${body.length}\r\nContent-Type: text/plain\r\n`, body);
  }

  // WH_EV_UPGRADE: x = [requestId, method, target, headers, address, port, index]
  _whUpgrade(x) {
    const rid = x[0];
    if (this.options.port == null) {
      // an adopted connection: its request was checked on the Node side
      const m = /(?:^|\r\n)x-wirehub-adopt:\s*(\d+)/i.exec(x[3]);
      const ctx = m && this._pending.get(m[1]);
      if (!ctx) {
        this._respond(rid, 400);
        return;
      }
      this._pending.delete(m[1]);
      clearTimeout(ctx.timer);
      ctx.rid = rid;
      this._accept(ctx);
      return;
    }
    if (this._state > RUNNING) {
      this._respond(rid, 503);
      return;
    }
    const req = new UpgradeRequest(x, this._mapV4);
    const protocols = this._check(req, rid, null);
    if (protocols === null) return;
    if (!protocols.size && !this.options.verifyClient && !this.listenerCount('headers')) {
      // the common case, without a per-upgrade context
      this._acceptPlain(rid, req);
      return;
    }
    const ctx = upgradeContext(req, protocols, this._emitConnection, (code, message, headers) =>
      this._respond(rid, code, message, headers)
    );
    ctx.rid = rid;
    this._verify(ctx, () => this._accept(ctx));
  }

  _acceptPlain(rid, req) {
    if (this._state > RUNNING) return this._respond(rid, 503);
    const cid = addon.accept(rid, null, null);
    if (cid < 0) return;
    const ws = new this.options.WebSocket(null, undefined, this.options);
    ws._id = cid;
    ws._server = this;
    ws._req = req;
    ws._onConnect = this._emitConnection;
    // allowSynchronousEvents: false, read by the connection's events
    if (this.options.allowSynchronousEvents === false) ws._deferEvents = true;
    conns[cid] = ws;
    req._ws = ws;
    if (req._sock !== undefined) linkRequestSocket(req);
  }

  _accept(ctx) {
    if (this._state > RUNNING) return ctx.reject(503);
    const req = ctx.req;
    const headers = [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${crypto.createHash('sha1').update(ctx.key + GUID).digest('base64')}`
    ];
    let protocol = null;
    let base;
    try {
      if (ctx.protocols.size) {
        protocol = this.options.handleProtocols
          ? this.options.handleProtocols(ctx.protocols, req)
          : ctx.protocols.values().next().value;
        if (protocol) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
        else protocol = null;
      }
      base = headers.length;
      this.emit('headers', headers, req);
    } catch (err) {
      this._hookFailed(ctx, err);
      return;
    }
    let extra = '';
    for (let i = base; i < headers.length; i++) {
      const line = String(headers[i]);
      if (/[\r\n]/.test(line) || !line.includes(':')) continue;
      extra += `${line}\r\n`;
    }
    const cid = addon.accept(ctx.rid, protocol, extra || null);
    if (cid < 0) {
      // the connection went away meanwhile
      this._dropAdopted(ctx);
      return;
    }
    const ws = new this.options.WebSocket(null, undefined, this.options);
    ws._id = cid;
    ws._server = this;
    ws._req = req;
    ws._onConnect = ctx.cb;
    if (this.options.allowSynchronousEvents === false) ws._deferEvents = true;
    conns[cid] = ws;
    if (req instanceof UpgradeRequest) {
      req._ws = ws;
      if (req._sock !== undefined) linkRequestSocket(req);
    } else if (ctx.socket) {
      // ws._socket is the socket handed to handleUpgrade(), as in ws
      Object.defineProperty(ws, '_socket', { value: ctx.socket, writable: true, configurable: true });
      this._sockets.set(ws, ctx.socket);
      ctx.ws = ws;
      // the socket keeps ctx: keep only what its routing reads
      ctx.req = ctx.cb = ctx.reject = ctx.protocols = ctx.socket = null;
      if (ctx.dead) addon.terminate(cid);
    }
  }

  _whConnOpen(ws) {
    ws._live = true;
    if (this._mapV4) ws._mapV4 = true;
    this._live++;
    if (this.clients) this.clients.add(ws);
    const cb = ws._onConnect;
    const req = ws._req;
    ws._onConnect = null;
    ws._req = null;
    cb.call(this, ws, req);
  }

  _whConnClosed(ws) {
    if (this._sockets.size) {
      const socket = this._sockets.get(ws);
      if (socket !== undefined) {
        this._sockets.delete(ws);
        socket.destroy();
      }
    }
    if (!ws._live) return;
    ws._live = false;
    this._live--;
    if (this.clients) this.clients.delete(ws);
    if (this._state !== RUNNING && !this._live) process.nextTick(() => this._maybeFinishClose());
  }

  _whClosed() {
    this._sid = 0;
    if (this._listening) {
      this._listening = false;
      addon.ref(-1);
    }
    this._state = CLOSED;
    this._emitCloseOnce();
  }

  _whError(code, message) {
    const err = engineError(code, message);
    if (this.listenerCount('error')) this.emit('error', err);
    else process.emitWarning(`wirehub server: ${err.message}`, 'WirehubWarning');
  }

  // -------------------------------------------------------- wirehub extras
  /**
   * Send to every connection subscribed to `topic` (ws.subscribe): framed
   * (and compressed) once for all. Returns the number of receivers.
   */
  publish(topic, data, options) {
    if (!this._sid) return 0;
    const binary = options && options.binary !== undefined ? options.binary : typeof data !== 'string';
    let flags = binary ? F.BINARY : F.TEXT;
    if (options && options.compress === false) flags |= F.NO_COMPRESS;
    const except = options && options.except ? options.except._id : undefined;
    const rc = addon.publish(this._sid, String(topic), typeof data === 'number' ? String(data) : data, flags, except);
    if (rc < 0) {
      if (rc === E.ESHUTDOWN || rc === E.ESTATE) return 0;
      throw engineError(rc);
    }
    return rc;
  }

  /**
   * The broker's counters (with the "broker" option), or null: no broker,
   * not attached yet, or the server is closed.
   */
  brokerStats() {
    if (!this._broker || !this._sid) return null;
    const r = addon.brokerStats(this._sid);
    if (typeof r === 'number') return null;
    return {
      connected: r[0] === 1,
      channels: r[1],
      published: r[2],
      received: r[3],
      dropped: r[4],
      malformed: r[5],
      reconnects: r[6]
    };
  }

  /** Send to every open connection of this server, framed once. */
  broadcast(data, options) {
    if (!this._sid) return 0;
    const binary = options && options.binary !== undefined ? options.binary : typeof data !== 'string';
    let flags = binary ? F.BINARY : F.TEXT;
    if (options && options.compress === false) flags |= F.NO_COMPRESS;
    const except = options && options.except ? options.except._id : undefined;
    const rc = addon.broadcast(this._sid, typeof data === 'number' ? String(data) : data, flags, except);
    if (rc < 0) {
      if (rc === E.ESHUTDOWN || rc === E.ESTATE) return 0;
      throw engineError(rc);
    }
    return rc;
  }
}

module.exports = WebSocketServer;
