'use strict';
// The handshake request of a client the engine connects, as the
// http.ClientRequest ws would have made (ws's initAsClient): same class,
// headers, method, path, host and life cycle, so 'redirect' and
// 'unexpected-response' listeners get what they get from ws. The engine
// writes the request and reads the answer itself; the request's socket is
// a stand-in that takes what Node writes and drops it.

const crypto = require('crypto');
const http = require('http');
const https = require('https');
const { Duplex } = require('stream');
const { deflateOffer } = require('./node-http-client');

const NOOP = () => {};

function standInSocket() {
  return new Duplex({
    read() {},
    write(chunk, encoding, callback) {
      callback();
    },
    // A real socket closes after the I/O turn, not on the next tick: ws's
    // error and 'close' come before the request's 'close'.
    destroy(err, callback) {
      setImmediate(callback, err);
    }
  });
}

// url: the ws:, wss: or ws+unix: URL; headers: the user's, with ws's
// additions (Authorization) applied; opts: ws's options. The key is the
// one the engine is to send (wh_client_options.key).
function engineRequest(url, isIpc, headers, opts, protocols) {
  const isSecure = url.protocol === 'wss:';
  const key = crypto.randomBytes(16).toString('base64');
  const h = {
    ...headers,
    'Sec-WebSocket-Version': opts.protocolVersion,
    'Sec-WebSocket-Key': key,
    Connection: 'Upgrade',
    Upgrade: 'websocket'
  };
  const offer = deflateOffer(opts.perMessageDeflate);
  if (offer) h['Sec-WebSocket-Extensions'] = offer;
  if (protocols.length) h['Sec-WebSocket-Protocol'] = protocols.join(',');
  // (protocolVersion 8, whose header is Sec-WebSocket-Origin, goes through
  // Node's http: node-http-client.js)
  if (opts.origin) h.Origin = opts.origin;
  const socket = standInSocket();
  const ro = {
    method: 'GET',
    headers: h,
    defaultPort: isSecure ? 443 : 80,
    createConnection: () => socket
  };
  if (isIpc) {
    const [socketPath, path] = (url.pathname + url.search).split(':');
    ro.socketPath = socketPath;
    ro.path = path;
  } else {
    ro.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    ro.port = url.port || ro.defaultPort;
    ro.path = url.pathname + url.search;
  }
  // Throws Node's errors for a header name or value it refuses, as ws's
  // request() does in the constructor.
  const req = (isSecure ? https : http).request(ro);
  // As ws's own listener once it has aborted the request: nothing a
  // stand-in socket does is the connection's error.
  req.on('error', NOOP);
  return { req, key };
}

// The request's headers as the engine is to send them ("Name: value" with
// the names as written), after a 'redirect' listener may have changed them.
function requestHeaders(req) {
  const out = {};
  for (const name of req.getRawHeaderNames()) {
    const value = req.getHeader(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

// The answer reached the engine: tie request and response together as
// Node's http client does (res.req, req.res), so destroying or aborting
// the request ends both without a "socket hang up" error.
function answered(req, res) {
  req.res = res;
  res.req = req;
  // Node's req.destroy() dumps its response, which here would end and close
  // it at once; as on a real socket it ends when the request has closed.
  res._dumped = true;
  req.once('close', () => {
    if (!res.destroyed) res.destroy();
  });
}

// ws's abortHandshake on a request: abort() (Node's 'abort', then
// 'close'), and the socket destroyed.
function abortRequest(req) {
  if (req.destroyed) return;
  req.abort();
  if (req.socket && !req.socket.destroyed) req.socket.destroy();
}

module.exports = { engineRequest, requestHeaders, answered, abortRequest };
