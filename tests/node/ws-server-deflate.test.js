'use strict';
// ws.md, "new WebSocketServer(options[, callback])", perMessageDeflate: the
// answer to a client's permessage-deflate offers. A ws 8 server and a
// wirehub server with the same options get the same request side by side and
// must answer it byte for byte alike (ws's PerMessageDeflate#acceptAsServer
// and extension.format; the engine's WH_SERVER_WS_DEFLATE_ANSWER). Then a ws
// client and a wirehub client exchange compressed messages with each
// configuration, through a tap that reads the frames' RSV1 bits.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const net = require('node:net');
const { once } = require('node:events');
const { withTimeout } = require('./helpers');
const { impls, makeServer, rawSocket, request, upgradeHeaders } = require('./ws-server-helpers');

const [[, ws], [, wirehub]] = impls;

// Everything the server writes back to an upgrade request offering
// `offers`: a 101's head (then the connection is dropped) or the whole
// refusal.
function answer(port, offers) {
  return withTimeout(
    new Promise((resolve) => {
      const socket = rawSocket(port, request('GET', upgradeHeaders({ 'Sec-WebSocket-Extensions': offers })));
      let got = '';
      socket.on('data', (d) => {
        got += d.toString('latin1');
        if (got.startsWith('HTTP/1.1 101 ') && got.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('close', () => resolve(got));
    }),
    5000,
    `answer to ${offers}`
  );
}

const extensionsOf = (head) => (/\r\nSec-WebSocket-Extensions: ([^\r]*)\r\n/.exec(head) || [])[1];

// A ws server and a wirehub server with the same options, for a describe().
function sideBySide(mode = 'port') {
  const servers = new Map();
  return {
    async open(options) {
      const key = JSON.stringify(options);
      if (!servers.has(key)) {
        servers.set(key, [
          await makeServer(ws, mode, { perMessageDeflate: options }),
          await makeServer(wirehub, mode, { perMessageDeflate: options })
        ]);
      }
      return servers.get(key);
    },
    async close() {
      for (const pair of servers.values()) for (const s of pair) await s.close();
      servers.clear();
    }
  };
}

// Asserts both answer `offers` alike; returns the answer's
// Sec-WebSocket-Extensions (undefined for none or a refusal).
async function sameAnswer(pair, options, offers) {
  const [a, b] = await pair.open(options);
  const expected = await answer(a.port, offers);
  const got = await answer(b.port, offers);
  assert.strictEqual(got, expected, `perMessageDeflate ${JSON.stringify(options)}, offer ${offers}`);
  return extensionsOf(expected);
}

function describeAnswers(title, cases, mode = 'port') {
  describe(title, () => {
    const pair = sideBySide(mode);
    after(() => pair.close());
    for (const [options, offers, expected] of cases) {
      it(`${JSON.stringify(options)}: ${offers}`, async () => {
        assert.strictEqual(await sameAnswer(pair, options, offers), expected);
      });
    }
  });
}

describeAnswers("the offer's parameters keep their order, the server's own follow", [
  [
    true,
    'permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; server_max_window_bits=9',
    'permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9'
  ],
  [
    { serverNoContextTakeover: true },
    'permessage-deflate; server_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=10; server_no_context_takeover'
  ],
  [
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 },
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; client_max_window_bits=11; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12'
  ],
  [
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 },
    'permessage-deflate; server_max_window_bits=13; client_no_context_takeover; client_max_window_bits=9',
    'permessage-deflate; server_max_window_bits=12; client_no_context_takeover; client_max_window_bits=11; server_no_context_takeover'
  ]
]);

describeAnswers('defaults: what was offered comes back, nothing more', [
  [true, 'permessage-deflate', 'permessage-deflate'],
  [true, 'permessage-deflate; client_max_window_bits', 'permessage-deflate'],
  [true, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate; client_max_window_bits=10'],
  [true, 'permessage-deflate; server_max_window_bits=8', 'permessage-deflate; server_max_window_bits=8'],
  [true, 'permessage-deflate; server_no_context_takeover', 'permessage-deflate; server_no_context_takeover'],
  [true, 'permessage-deflate; client_no_context_takeover', 'permessage-deflate; client_no_context_takeover'],
  [{}, 'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9', 'permessage-deflate; client_max_window_bits=9'],
  [true, 'PerMessage-Deflate', undefined],
  [true, 'x-foo; bar="b\\az", permessage-deflate', 'permessage-deflate']
]);

describeAnswers('serverMaxWindowBits: an offer of a smaller window is refused, the next one taken', [
  [{ serverMaxWindowBits: 12 }, 'permessage-deflate; server_max_window_bits=9, permessage-deflate', 'permessage-deflate; server_max_window_bits=12'],
  [{ serverMaxWindowBits: 12 }, 'permessage-deflate; server_max_window_bits=13', 'permessage-deflate; server_max_window_bits=12'],
  [{ serverMaxWindowBits: 12 }, 'permessage-deflate', 'permessage-deflate; server_max_window_bits=12'],
  [{ serverMaxWindowBits: 12 }, 'permessage-deflate; server_max_window_bits=9', undefined],
  [{ serverMaxWindowBits: false }, 'permessage-deflate; server_max_window_bits=15, permessage-deflate', 'permessage-deflate'],
  [{ serverMaxWindowBits: false }, 'permessage-deflate; server_max_window_bits=15', undefined],
  [{ serverMaxWindowBits: true }, 'permessage-deflate; server_max_window_bits=9', 'permessage-deflate; server_max_window_bits=9']
]);

describeAnswers('clientMaxWindowBits: a number is answered as it is, false leaves it out', [
  [{ clientMaxWindowBits: 11 }, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate; client_max_window_bits=11'],
  [{ clientMaxWindowBits: 11 }, 'permessage-deflate; client_max_window_bits', 'permessage-deflate; client_max_window_bits=11'],
  [{ clientMaxWindowBits: 11 }, 'permessage-deflate, permessage-deflate; client_max_window_bits=14', 'permessage-deflate; client_max_window_bits=11'],
  [{ clientMaxWindowBits: 11 }, 'permessage-deflate', undefined],
  [{ clientMaxWindowBits: false }, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate'],
  [{ clientMaxWindowBits: true }, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate; client_max_window_bits=10']
]);

describeAnswers('serverNoContextTakeover: false refuses an offer asking for it; clientNoContextTakeover: true is added', [
  [{ serverNoContextTakeover: false }, 'permessage-deflate; server_no_context_takeover', undefined],
  [
    { serverNoContextTakeover: false },
    'permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits',
    'permessage-deflate'
  ],
  [{ clientNoContextTakeover: true }, 'permessage-deflate; server_max_window_bits=10', 'permessage-deflate; server_max_window_bits=10; client_no_context_takeover'],
  [{ clientNoContextTakeover: false }, 'permessage-deflate; client_no_context_takeover', 'permessage-deflate; client_no_context_takeover']
]);

describeAnswers('window values are read as ws reads them (+value) and answered as numbers', [
  [true, 'permessage-deflate; server_max_window_bits=09', 'permessage-deflate; server_max_window_bits=9'],
  [true, 'permessage-deflate; server_max_window_bits=0xa; client_max_window_bits=1e1', 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=10'],
  [true, 'permessage-deflate; server_max_window_bits="1\\1"', 'permessage-deflate; server_max_window_bits=11'],
  [true, 'permessage-deflate; client_max_window_bits=9.0; server_max_window_bits=+13', 'permessage-deflate; client_max_window_bits=9; server_max_window_bits=13']
]);

describeAnswers('a header ws refuses gets its 400 from both', [
  [true, 'permessage-deflate; server_max_window_bits', undefined],
  [true, 'permessage-deflate; foo, permessage-deflate', undefined],
  [true, 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', undefined],
  [true, 'permessage-deflate; Server_No_Context_Takeover', undefined],
  [true, 'permessage-deflate; client_max_window_bits=16', undefined],
  [true, 'permessage-deflate; server_max_window_bits = 10', undefined],
  [true, 'permessage-deflate,', undefined]
]);

// Through an http server's 'upgrade' and handleUpgrade(): the engine gets
// the connection adopted, with the same flag.
describeAnswers(
  'noServer + handleUpgrade() answer alike',
  [
    [true, 'permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; server_max_window_bits=9', 'permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9'],
    [{ serverNoContextTakeover: true }, 'permessage-deflate; server_max_window_bits=10', 'permessage-deflate; server_max_window_bits=10; server_no_context_takeover'],
    [{ serverMaxWindowBits: 12 }, 'permessage-deflate; server_max_window_bits=9, permessage-deflate', 'permessage-deflate; server_max_window_bits=12'],
    [{ clientMaxWindowBits: 11 }, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate; client_max_window_bits=11'],
    [{ clientMaxWindowBits: false }, 'permessage-deflate; client_max_window_bits=10', 'permessage-deflate']
  ],
  'noServer'
);

describe('every combination of the options answers every offer alike', () => {
  const pair = sideBySide();
  after(() => pair.close());
  const offers = [
    'permessage-deflate',
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; client_max_window_bits=10; server_no_context_takeover',
    'permessage-deflate; server_max_window_bits=10; client_no_context_takeover',
    'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8',
    'permessage-deflate; server_no_context_takeover; server_max_window_bits=13, permessage-deflate; client_max_window_bits',
    'permessage-deflate; client_max_window_bits=12; server_max_window_bits=15; client_no_context_takeover; server_no_context_takeover',
    'x-foo, permessage-deflate; server_max_window_bits=11, permessage-deflate'
  ];
  for (const serverNoContextTakeover of [undefined, true, false]) {
    for (const clientNoContextTakeover of [undefined, true]) {
      for (const serverMaxWindowBits of [undefined, false, 9, 12]) {
        for (const clientMaxWindowBits of [undefined, false, 8, 11]) {
          const options = { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits };
          for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
          it(JSON.stringify(options), async () => {
            for (const offer of offers) await sameAnswer(pair, options, offer);
            await pair.close(); // two servers at a time
          });
        }
      }
    }
  }
});

// ---------------------------------------------------------------- traffic

// A TCP relay to `port` that reads both directions' frames: for each, its
// opcode and RSV1 bit. `down.head` is the server's handshake answer.
async function tap(port) {
  const taps = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    const t = { up: scanner(), down: scanner() };
    taps.push(t);
    client.on('data', (d) => {
      t.up.feed(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      t.down.feed(d);
      client.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await withTimeout(once(server, 'listening'));
  return {
    port: server.address().port,
    taps,
    close: () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    }
  };
}

function scanner() {
  let buf = Buffer.alloc(0);
  let inHead = true;
  const s = {
    head: '',
    frames: [],
    feed(chunk) {
      buf = Buffer.concat([buf, chunk]);
      if (inHead) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.head = buf.subarray(0, end + 4).toString('latin1');
        buf = buf.subarray(end + 4);
        inHead = false;
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          at = 10;
        }
        if (buf[1] & 0x80) at += 4;
        if (buf.length < at + len) return;
        s.frames.push({ opcode: buf[0] & 0x0f, rsv1: (buf[0] & 0x40) !== 0, length: len });
        buf = buf.subarray(at + len);
      }
    }
  };
  return s;
}

// Small and 64 KiB: words in a random order, which compress to well under
// a third in any window from 9 bits up (about 14.5 KB at 9, 9.5 KB at 15).
const SMALL = Buffer.from('permessage-deflate, small and compressed. '.repeat(3));
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'wirehub', 'socket', 'frame', 'deflate',
  'window', 'bits', 'server', 'client', '{"id":', 'null,', 'true,', 'false'];
const LARGE = (() => {
  const pick = crypto.randomBytes(20000);
  let text = '';
  for (let i = 0; text.length < 64 * 1024; i++) text += `${WORDS[pick[i] & 15]} `;
  return Buffer.from(text).subarray(0, 64 * 1024);
})();

async function echoServer(lib, options) {
  const s = await makeServer(lib, 'port', { perMessageDeflate: options });
  s.wss.on('connection', (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }));
  });
  return s;
}

// A client of `clientLib` through a tap to `server`: sends SMALL and LARGE,
// reads their echoes; returns the answer and the frames each way.
async function exchange(clientLib, server, clientOptions) {
  const t = await tap(server.port);
  const client = new clientLib.WebSocket(`ws://127.0.0.1:${t.port}`, { perMessageDeflate: clientOptions });
  try {
    await withTimeout(once(client, 'open'), 5000, 'open');
    const got = [];
    const done = new Promise((resolve) => {
      client.on('message', (data) => {
        got.push(Buffer.from(data));
        if (got.length === 2) resolve();
      });
    });
    client.send(SMALL);
    client.send(LARGE);
    await withTimeout(done, 5000, 'echoes');
    assert.ok(got[0].equals(SMALL), 'small echo');
    assert.ok(got[1].equals(LARGE), 'large echo');
    client.close();
    await withTimeout(once(client, 'close'), 5000, 'close');
    const [only] = t.taps;
    const data = (frames) => frames.filter((f) => f.opcode === 1 || f.opcode === 2);
    return { extensions: extensionsOf(only.down.head), up: data(only.up.frames), down: data(only.down.frames) };
  } finally {
    client.terminate();
    t.close();
  }
}

// Server options, the client options that connect to them, and the answer.
const configurations = [
  [true, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9 },
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9'],
  [{ serverNoContextTakeover: true }, { serverMaxWindowBits: 10 },
    'permessage-deflate; server_max_window_bits=10; server_no_context_takeover'],
  [{ serverMaxWindowBits: 12 }, {}, 'permessage-deflate; server_max_window_bits=12'],
  [{ clientMaxWindowBits: 11 }, {}, 'permessage-deflate; client_max_window_bits=11'],
  [{ clientMaxWindowBits: false }, { clientMaxWindowBits: 10 }, 'permessage-deflate'],
  [{ clientNoContextTakeover: true, serverMaxWindowBits: 8 }, {},
    'permessage-deflate; client_no_context_takeover; server_max_window_bits=8'],
  [{ serverNoContextTakeover: false, serverMaxWindowBits: false, clientMaxWindowBits: 15 }, {},
    'permessage-deflate; client_max_window_bits=15'],
  [{ zlibDeflateOptions: { level: 9 }, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }, { serverMaxWindowBits: 15 },
    'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9']
];

describe('ws and wirehub clients exchange compressed messages with each configuration', () => {
  for (const [serverOptions, clientOptions, expected] of configurations) {
    describe(`server ${JSON.stringify(serverOptions)}, client ${JSON.stringify(clientOptions)}`, () => {
      const servers = [];
      before(async () => {
        // threshold 0: the small message is compressed too, by both ends
        const options = serverOptions === true ? { threshold: 0 } : { ...serverOptions, threshold: 0 };
        servers.push(await echoServer(ws, options), await echoServer(wirehub, options));
      });
      after(async () => {
        for (const s of servers) await s.close();
      });
      for (const [clientName, clientLib] of impls) {
        it(`${clientName} client: answered ${expected}, both messages compressed both ways, as with ws's server`, async () => {
          const results = [];
          for (const server of servers) results.push(await exchange(clientLib, server, { ...clientOptions, threshold: 0 }));
          const [reference, got] = results;
          assert.strictEqual(reference.extensions, expected);
          assert.strictEqual(got.extensions, expected);
          for (const dir of ['up', 'down']) {
            assert.strictEqual(got[dir].length, 2, `${dir}: two frames`);
            assert.deepStrictEqual(got[dir].map((f) => f.rsv1), [true, true], `${dir}: compressed`);
            assert.deepStrictEqual(got[dir].map((f) => f.rsv1), reference[dir].map((f) => f.rsv1));
            assert.ok(got[dir][1].length < LARGE.length / 3, `${dir}: 64 KiB in ${got[dir][1].length} bytes`);
          }
        });
      }
    });
  }
});

// ws.md, perMessageDeflate.threshold. ws's sender compresses every message
// while its side keeps its compression context, whatever its size; the
// threshold counts only once the answer has that side's
// no_context_takeover. A raw peer records each data frame's RSV1 bit.
describe('which messages are compressed: threshold as ws applies it', () => {
  const SENDS = [['', {}], ['a', {}], ['x'.repeat(40), {}], ['y'.repeat(2000), {}], ['', { compress: false }]];
  const rsv1Of = (bytes, masked) => {
    const bits = [];
    let b = bytes;
    while (b.length >= 2) {
      const len = b[1] & 0x7f; // every message here is < 126 bytes or exactly 2000
      const ext = len === 126 ? 2 : 0;
      const size = ext ? b.readUInt16BE(2) : len;
      const total = 2 + ext + (masked ? 4 : 0) + size;
      if (b.length < total) break;
      if ((b[0] & 0x0f) === 1) bits.push((b[0] & 0x40) ? 1 : 0);
      b = b.subarray(total);
    }
    return bits;
  };

  // client role: a raw server answers `answer`, then reads the frames
  async function clientSends(lib, options, answerExt) {
    const frames = [];
    const server = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      let open = false;
      s.on('error', () => {});
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (!open) {
          const text = buf.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return;
          const key = /Sec-WebSocket-Key: *([^\r]*)/i.exec(text)[1];
          const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: ${answerExt}\r\n\r\n`);
          open = true;
          buf = buf.subarray(end + 4);
        }
        frames.length = 0;
        frames.push(...rsv1Of(buf, true));
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const client = new lib.WebSocket(`ws://127.0.0.1:${server.address().port}/`, { perMessageDeflate: options });
    await withTimeout(once(client, 'open'));
    for (const [data, opts] of SENDS) client.send(data, opts);
    await withTimeout(new Promise((resolve) => {
      const poll = setInterval(() => {
        if (frames.length === SENDS.length) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    }));
    client.terminate();
    server.close();
    return [...frames];
  }

  // server role: a raw client offers `offer`, the server sends on 'connection'
  async function serverSends(lib, options, offer) {
    const wss = new lib.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: options });
    await withTimeout(once(wss, 'listening'));
    wss.on('connection', (c) => {
      for (const [data, opts] of SENDS) c.send(data, opts);
    });
    const socket = rawSocket(wss.address().port, request('GET', upgradeHeaders({ 'Sec-WebSocket-Extensions': offer })));
    let buf = Buffer.alloc(0);
    const frames = await withTimeout(new Promise((resolve) => {
      socket.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const bits = rsv1Of(buf.subarray(end + 4), false);
        if (bits.length === SENDS.length) resolve(bits);
      });
    }));
    socket.destroy();
    wss.close();
    return frames;
  }

  const cases = [
    [true, 'permessage-deflate', 'permessage-deflate'],
    [{ threshold: 0 }, 'permessage-deflate', 'permessage-deflate'],
    [{ threshold: 10 }, 'permessage-deflate; client_no_context_takeover', 'permessage-deflate; server_no_context_takeover'],
    [{ threshold: 0 }, 'permessage-deflate; client_no_context_takeover', 'permessage-deflate; server_no_context_takeover'],
    [true, 'permessage-deflate; client_no_context_takeover', 'permessage-deflate; server_no_context_takeover'],
    [{ threshold: 10 }, 'permessage-deflate; server_no_context_takeover', 'permessage-deflate; client_no_context_takeover']
  ];
  for (const [options, answerExt, offer] of cases) {
    it(`client ${JSON.stringify(options)}, answered '${answerExt}': as ws`, async () => {
      const want = await clientSends(ws, options, answerExt);
      assert.deepStrictEqual(await clientSends(wirehub, options, answerExt), want);
    });
    it(`server ${JSON.stringify(options)}, offered '${offer}': as ws`, async () => {
      const want = await serverSends(ws, options, offer);
      assert.deepStrictEqual(await serverSends(wirehub, options, offer), want);
    });
  }
});
