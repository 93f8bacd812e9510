'use strict';
// A client whose ws options ask for Node's own networking: `agent` (a
// proxy), `createConnection`, `lookup`, `finishRequest`, `family`,
// `localAddress`... As ws does, the opening handshake then goes through
// Node's http.request with those options; the upgraded socket is handed to
// the engine (wh_client_adopt), which runs the connection from there. Only
// the connections that use these options take this path: the others are
// dialled by the engine itself.
//
// The engine takes a socket's descriptor, not its TLS session: a wss://
// handshake through Node's TLS cannot be handed over, and fails with a
// clear error (ENOTSUP) instead of a hang.

const crypto = require('crypto');
const http = require('http');
const https = require('https');

const { addon, E, conns } = require('./native');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// The options that make ws's request differ from a plain dial.
const NODE_NET_OPTIONS = ['agent', 'createConnection', 'lookup', 'finishRequest', 'family', 'localAddress', 'localPort'];

function usesNodeHttp(opts) {
  return NODE_NET_OPTIONS.some((k) => opts[k] !== undefined && opts[k] !== null);
}

// ws's permessage-deflate offer (PerMessageDeflate#offer + extension.format).
function deflateOffer(pmd) {
  if (!pmd) return null;
  const o = pmd === true ? {} : pmd;
  const params = ['permessage-deflate'];
  if (o.serverNoContextTakeover) params.push('server_no_context_takeover');
  if (o.clientNoContextTakeover) params.push('client_no_context_takeover');
  const param = (name, v) => (v === true ? name : `${name}=${v}`);
  if (o.serverMaxWindowBits) params.push(param('server_max_window_bits', o.serverMaxWindowBits));
  if (o.clientMaxWindowBits) params.push(param('client_max_window_bits', o.clientMaxWindowBits));
  else if (o.clientMaxWindowBits == null) params.push('client_max_window_bits');
  return params.join('; ');
}

// Opens `ws` through Node's http. `c` carries what initAsClient computed:
//   url (URL), opts (ws's options), headers (the user's, without the
//   handshake's own), protocols, nopts (the engine's options),
//   fail(err): error + close, abort(message): ws's abortHandshake,
//   unexpected(req, res): ws's 'unexpected-response' path.
function connectViaNodeHttp(ws, c) {
  const { url, opts, protocols } = c;
  const isSecure = url.protocol === 'wss:';
  const key = crypto.randomBytes(16).toString('base64');
  const offer = deflateOffer(opts.perMessageDeflate);
  const headers = {
    ...c.headers,
    'Sec-WebSocket-Version': String(opts.protocolVersion),
    'Sec-WebSocket-Key': key,
    Connection: 'Upgrade',
    Upgrade: 'websocket'
  };
  if (offer) headers['Sec-WebSocket-Extensions'] = offer;
  if (protocols.length) headers['Sec-WebSocket-Protocol'] = protocols.join(',');
  if (opts.origin) {
    if (opts.protocolVersion < 13) headers['Sec-WebSocket-Origin'] = opts.origin;
    else headers.Origin = opts.origin;
  }
  const reqOpts = {
    ...opts,
    headers,
    defaultPort: isSecure ? 443 : 80,
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port || (isSecure ? 443 : 80),
    path: url.pathname + url.search,
    timeout: opts.handshakeTimeout > 0 ? opts.handshakeTimeout : undefined
  };
  delete reqOpts.perMessageDeflate;
  delete reqOpts.followRedirects;
  delete reqOpts.finishRequest;
  const req = (isSecure ? https : http).request(reqOpts);
  ws._req = req;
  ws._httpReq = req;  // what abortHandshake destroys
  if (opts.handshakeTimeout > 0) {
    req.on('timeout', () => {
      c.abort('Opening handshake has timed out');
      req.destroy();
    });
  }
  req.on('error', (err) => {
    if (ws._req !== req || ws._httpReq !== req) return;
    ws._req = null;
    ws._httpReq = null;
    c.fail(err);
  });
  req.on('response', (res) => {
    if (ws._req !== req) return;
    c.unexpected(req, res);
  });
  req.on('upgrade', (res, socket, head) => {
    ws._httpReq = null;
    ws._upgradeEmitted = true;
    ws.emit('upgrade', res);
    // The listener may have closed it (ws's "closed before established").
    if (ws.readyState !== 0) {
      socket.destroy();
      return;
    }
    ws._req = null;
    const refuse = (message) => {
      socket.destroy();
      c.abort(message);
    };
    const upgrade = res.headers.upgrade;
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return refuse('Invalid Upgrade header');
    const digest = crypto.createHash('sha1').update(key + GUID).digest('base64');
    if (res.headers['sec-websocket-accept'] !== digest) return refuse('Invalid Sec-WebSocket-Accept header');
    const serverProt = res.headers['sec-websocket-protocol'];
    let protError;
    if (serverProt !== undefined) {
      if (!protocols.length) protError = 'Server sent a subprotocol but none was requested';
      else if (!protocols.includes(serverProt)) protError = 'Server sent an invalid subprotocol';
    } else if (protocols.length) {
      protError = 'Server sent no subprotocol';
    }
    if (protError) return refuse(protError);
    const ext = res.headers['sec-websocket-extensions'];
    if (ext !== undefined && !offer) {
      return refuse('Server sent a Sec-WebSocket-Extensions header but no extension was requested');
    }
    if (socket.encrypted) {
      socket.destroy();
      const err = new Error('wirehub: a wss:// handshake made through Node\'s TLS (agent, createConnection) cannot be handed to the engine');
      err.code = 'ENOTSUP';
      c.fail(err);
      return;
    }
    const fd = socket._handle && socket._handle.fd;
    const own = typeof fd === 'number' && fd >= 0 ? addon.dup(fd) : -1;
    // Node closes its descriptor without a FIN: the engine holds its own.
    socket.destroy();
    if (own < 0) {
      const err = new Error('wirehub: the upgraded socket has no descriptor to hand to the engine');
      err.code = 'ENOTSUP';
      c.fail(err);
      return;
    }
    const id = addon.clientAdopt(own, c.nopts, serverProt || '', ext || '', head);
    if (id < 0) {
      if (id === E.EHANDSHAKE) c.abort('Invalid Sec-WebSocket-Extensions header');
      else c.fail(c.engineError(id));
      return;
    }
    ws._id = id;  // its WH_EV_OPEN opens it ('upgrade' was emitted above)
    conns[id] = ws;
    if (!ws._refd) {
      ws._refd = true;
      addon.ref(1);
    }
  });
  if (opts.finishRequest) opts.finishRequest(req, ws);
  else req.end();
}

module.exports = { usesNodeHttp, connectViaNodeHttp, deflateOffer };
