'use strict';
// A client whose ws options ask for Node's own networking: `agent` (a
// proxy), `createConnection`, `lookup`, `finishRequest`, `family`,
// `localAddress`..., or for wss:// a tls.connect option only Node's TLS
// honours (`pfx`, `passphrase`, `checkServerIdentity`, `secureContext`...).
// As ws does, the opening handshake then goes through Node's http(s).request
// with those options, and the upgraded socket is handed to the engine
// (wh_client_adopt), which runs the connection from there: a plain TCP
// socket by its descriptor (dup()ed; Node's handle closed), a TLSSocket or a
// Duplex without a descriptor through a socketpair bridge (bridge.js), Node
// keeping the TLS session. Only the connections that use these options take
// this path: the others are dialled by the engine itself.

const crypto = require('crypto');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const util = require('util');

const { addon, E, conns } = require('./native');
const { bridge } = require('./bridge');
const { SocketInfo } = require('./socket-info');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// The options that make ws's request differ from a plain dial.
const NODE_NET_OPTIONS = ['agent', 'createConnection', 'lookup', 'finishRequest', 'family', 'localAddress', 'localPort'];

// tls.connect options ws passes on that the engine has no equivalent for
// (it verifies the host name itself and reads PEM certificates and
// unencrypted keys): with one of them a wss:// client goes through Node's
// TLS. Server-only options (dhparam, ticketKeys...) are left out: ws's
// client ignores them too.
const NODE_TLS_OPTIONS = [
  'pfx', 'passphrase', 'checkServerIdentity', 'secureContext', 'crl', 'sigalgs', 'ecdhCurve',
  'secureOptions', 'secureProtocol', 'session', 'ALPNProtocols', 'pskCallback', 'minDHSize',
  'privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine', 'enableTrace'
];

// The engine speaks TLS 1.2 and 1.3; a client that allows older ones gets
// Node's TLS, which offers what its OpenSSL permits, as ws does.
const OLD_TLS = new Set(['TLSv1', 'TLSv1.1']);

const given = (v) => v !== undefined && v !== null;
// The engine takes PEM text (strings or Buffers); tls.connect also takes
// { pem, passphrase } objects for `key`, `cert`'s and `ca`'s arrays.
const pemOnly = (v) => !given(v) || (Array.isArray(v) ? v : [v]).every((x) => typeof x === 'string' || Buffer.isBuffer(x));

function usesNodeHttp(opts, isSecure) {
  if (NODE_NET_OPTIONS.some((k) => given(opts[k]))) return true;
  if (!isSecure) return false;
  return NODE_TLS_OPTIONS.some((k) => given(opts[k])) || !pemOnly(opts.key) || !pemOnly(opts.cert) || !pemOnly(opts.ca) ||
    OLD_TLS.has(opts.minVersion);
}

// ws's own connectors, for the requests without a `createConnection`.
function netConnect(options) {
  options.path = options.socketPath;
  return net.connect(options);
}

function tlsConnect(options) {
  options.path = undefined;
  if (!options.servername && options.servername !== '') {
    options.servername = net.isIP(options.host) ? '' : options.host;
  }
  return tls.connect(options);
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
    createConnection: opts.createConnection || (isSecure ? tlsConnect : netConnect),
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
    // As ws's setSocket: the handshake's timeout is not the connection's.
    if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
    const fd = !socket.encrypted && socket._handle ? socket._handle.fd : -1;
    let own;
    if (typeof fd === 'number' && fd >= 0) {
      // Bytes Node read past the 101 but did not hand out yet follow `head`.
      if (socket.readableLength > 0) {
        const more = socket.read(socket.readableLength);
        if (more) head = Buffer.concat([head, more]);
      }
      own = addon.dup(fd);
      // Node closes its descriptor without a FIN: the engine holds its own.
      socket.destroy();
      if (own < 0) {
        const code = util.getSystemErrorName(own);
        const err = new Error(`dup ${code}`);
        err.code = code;
        err.errno = own;
        c.fail(err);
        return;
      }
    } else {
      // What Node already buffered goes through the bridge, behind `head`
      // (the engine reads `head` before its end of the pair).
      try {
        own = bridge(socket, c.nopts.closeTimeout);
      } catch (err) {
        socket.destroy();
        c.fail(err);
        return;
      }
      // The engine's peer is its end of the pair: ws._socket answers what
      // the socket Node kept says, as ws's own would.
      ws._socketInfo = new SocketInfo(ws, socket.remoteAddress, socket.remotePort, socket.remoteFamily,
        socket.localAddress, socket.localPort, socket.localFamily);
    }
    const id = addon.clientAdopt(own, c.nopts, serverProt || '', ext || '', head);
    if (id < 0) {
      // The engine closed its end; a bridged socket goes at once, as ws's.
      if (!socket.destroyed) socket.destroy();
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
