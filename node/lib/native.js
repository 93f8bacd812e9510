'use strict';
// Loads the addon and runs the event pump: the engine's queue is drained in
// C++ on the main thread and each batch arrives here in one call (see
// bindings/node/wirehub_node.cc). Objects register under the small integer
// ids the addon uses for conns and servers.

const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');

function loadAddon() {
  const tried = [];
  const candidates = [];
  if (process.env.WIREHUB_NODE_ADDON) candidates.push(process.env.WIREHUB_NODE_ADDON);
  // A from-source build (npm run build) wins over the shipped prebuild.
  candidates.push(path.join(root, 'bindings', 'node', 'build', 'Release', 'wirehub.node'));
  const pdir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  try {
    for (const f of fs.readdirSync(pdir).sort()) {
      if (f.endsWith('.node')) candidates.push(path.join(pdir, f));
    }
  } catch {
    // no prebuild for this platform
  }
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      return require(file);
    } catch (err) {
      tried.push(`${file} (${err.message})`);
    }
  }
  throw new Error(
    `wirehub: no native addon for ${process.platform}-${process.arch} ` +
      `(build it with "npm run build"; see README). Tried:\n  ${tried.join('\n  ')}`
  );
}

const addon = loadAddon();

// Event types and flags of capi/wirehub.h.
const EV = {
  OPEN: 1,
  MESSAGE: 2,
  PING: 3,
  PONG: 4,
  CLOSE: 5,
  DRAIN: 6,
  UPGRADE: 7,
  HTTP: 8,
  SERVER_CLOSED: 9,
  ERROR: 10
};
const F = {
  TEXT: 0x1,
  BINARY: 0x2,
  COMPRESSED: 0x4,
  NO_COMPRESS: 0x8,
  COMPRESS: 0x10,
  MORE: 0x20
};
const SERVER = {
  UPGRADE_HOOK: 0x1,
  HTTP: 0x2,
  IPV6_ONLY: 0x4,
  REUSE_PORT: 0x8,
  NO_LISTEN: 0x10,
  SKIP_UTF8: 0x20,
  RAW_UPGRADE: 0x40,
  NO_AUTO_PONG: 0x80,
  BARE_CLOSE: 0x100,
  WS_DEFLATE_ANSWER: 0x200
};
const E = {
  EINVAL: -1,
  ENOMEM: -2,
  ECLOSED: -3,
  EDROPPED: -4,
  ESTATE: -5,
  EADDRINUSE: -6,
  ERESOLVE: -7,
  ECONNREFUSED: -8,
  ETIMEDOUT: -9,
  EHANDSHAKE: -10,
  ETLS: -11,
  EIO: -12,
  EPROTO: -13,
  EUTF8: -14,
  ETOOBIG: -15,
  ELIMIT: -16,
  EURL: -17,
  ENOTSUP: -18,
  EAGAIN: -19,
  ESHUTDOWN: -20,
  ECLOSECODE: -21,
  EPINGTIMEOUT: -22,
  ESTATUS: -23,
  EADDR: -24,
  EACCES: -25,
  ERESET: -26,
  EINTERNAL: -27,
  EIDLE: -28,
  EBUDGET: -29,
  EMFILE: -30,
  EBROKER: -31
};

const conns = []; // conn id -> WebSocket
const servers = []; // server id -> WebSocketServer

const FIELDS = addon.FIELDS;
const meta = new Int32Array(addon.BATCH * FIELDS);

const EMPTY = Buffer.alloc(0);

// An event's bytes, copied out of the batch's payload (a view would keep
// all of it): a close reason or a ping's data. Zero bytes (most closes)
// share one empty Buffer, as ws's receiver gives for an empty payload.
function eventBytes(payload, o) {
  const len = meta[o + 7];
  if (len === 0) return EMPTY;
  const off = meta[o + 6];
  const bytes = Buffer.allocUnsafe(len);
  payload.copy(bytes, 0, off, off + len);
  return bytes;
}

// payload: one Buffer with the batch's payloads; blocks: views of the slabs
// holding its large messages (field 8 names one, 0 meaning payload).
function dispatch(n, payload, extras, blocks) {
  let xi = 0;
  let firstError = null;
  for (let i = 0; i < n; i++) {
    const o = i * FIELDS;
    const type = meta[o];
    const id = meta[o + 1];
    try {
      if (type === EV.MESSAGE) {
        const ws = conns[id];
        if (ws !== undefined) {
          const off = meta[o + 6];
          const b = meta[o + 8];
          ws._whMessage((b === 0 ? payload : blocks[b - 1]).subarray(off, off + meta[o + 7]), meta[o + 2]);
        }
        continue;
      }
      let x;
      if (extras !== undefined && xi < extras.length && extras[xi][extras[xi].length - 1] === i) {
        x = extras[xi++];
      }
      switch (type) {
        case EV.OPEN: {
          const ws = conns[id];
          if (ws !== undefined) ws._whOpen(x ? x[1] : null, x ? x[2] : undefined);
          break;
        }
        case EV.PING:
        case EV.PONG: {
          const ws = conns[id];
          if (ws !== undefined) ws._whPingPong(type === EV.PING, eventBytes(payload, o));
          break;
        }
        case EV.DRAIN: {
          const ws = conns[id];
          if (ws !== undefined) ws._whDrain();
          break;
        }
        case EV.CLOSE: {
          const ws = conns[id];
          if (ws !== undefined) {
            try {
              ws._whClose(meta[o + 3], eventBytes(payload, o), meta[o + 4], meta[o + 5], x ? x[1] : null, x ? x[2] : undefined);
            } finally {
              if (conns[id] === ws) conns[id] = undefined;
            }
          }
          break;
        }
        case EV.UPGRADE: {
          const srv = servers[id];
          if (srv !== undefined && x) srv._whUpgrade(x);
          else if (x) addon.respond(x[0], 503, null, 'Service Unavailable');
          break;
        }
        case EV.HTTP: {
          // a plain request to a server on its own port: ws's HTTP server
          // answers 426 (its request listener)
          const srv = servers[id];
          if (x) {
            const body = 'Upgrade Required';
            if (srv !== undefined) srv._whHttp(x, body);
            else addon.respond(x[0], 426, 'Content-Type: text/plain\r\nContent-Length: 16\r\n', body);
          }
          break;
        }
        case EV.SERVER_CLOSED: {
          const srv = servers[id];
          servers[id] = undefined;
          if (srv !== undefined) srv._whClosed();
          break;
        }
        case EV.ERROR: {
          const srv = servers[id];
          if (srv !== undefined) {
            const off = meta[o + 6];
            srv._whError(meta[o + 3], payload.toString('utf8', off, off + meta[o + 7]));
          }
          break;
        }
        default:
          break;
      }
    } catch (err) {
      // A listener threw: finish the batch (other connections' events must
      // not be lost), then rethrow as an uncaught exception, as ws would.
      if (firstError === null) firstError = { err };
    }
  }
  if (firstError !== null) {
    process.nextTick(() => {
      throw firstError.err;
    });
  }
}

addon.init(dispatch, meta);

function errName(code) {
  return addon.errName(code);
}

// The hardening limits (wirehub extras, not ws options), in the engine's
// terms: undefined keeps the engine's default (0), 0 turns the limit off
// (-1 to the engine, except idleTimeout, which is off by default and by 0),
// a positive value sets it. Anything else is a RangeError now, not a
// surprise later.
const LIMITS = {
  maxHandshakes: { max: 2 ** 31 - 1, off: -1 },
  idleTimeout: { max: 2 ** 31 - 1, off: 0 },
  messageTimeout: { max: 2 ** 31 - 1, off: -1 },
  maxMemory: { max: Number.MAX_SAFE_INTEGER, off: -1 }
};

function limitOptions(options, names) {
  const out = {};
  for (const name of names) {
    const v = options[name];
    if (v === undefined || v === null) continue;
    const { max, off } = LIMITS[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
      throw new RangeError(
        `The "${name}" option must be an integer between 0 (off) and ${max}, or undefined (the default); got ${v}`
      );
    }
    out[name] = v === 0 ? off : v;
  }
  return out;
}

module.exports = { addon, conns, servers, EV, F, SERVER, E, errName, root, limitOptions };
