'use strict';
// The client's opening handshake as ws 8 reports it: the errors for a bad
// 101 answer (lib/websocket.js initAsClient, the 'upgrade' handler) and
// Node's http parser errors for a malformed answer. Each case runs against
// ws and wirehub and compares what the application sees.
const { describe, test } = require('node:test');
const assert = require('assert');
const dns = require('dns');
const net = require('net');
const zlib = require('zlib');
const ws = require('ws');
const wirehub = require('../../node');
const { withTimeout } = require('./helpers');
const { accept, rawServer, ok101, deflateServer, trace, impls } = require('./ws-client-helpers');

// [name, protocols, options, answer, the error ws gives]
const after101 = [
  ['an extension that was not offered', [], {}, (k) => ok101(k, 'Sec-WebSocket-Extensions: foo\r\n'),
    'Server indicated an extension that was not requested'],
  ['permessage-deflate and another extension', [], {}, (k) => ok101(k, 'Sec-WebSocket-Extensions: permessage-deflate, foo\r\n'),
    'Server indicated an extension that was not requested'],
  ['extensions when none were offered', [], { perMessageDeflate: false },
    (k) => ok101(k, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'),
    'Server sent a Sec-WebSocket-Extensions header but no extension was requested'],
  ['a malformed Sec-WebSocket-Extensions', [], {}, (k) => ok101(k, 'Sec-WebSocket-Extensions: permessage-deflate; =\r\n'),
    'Invalid Sec-WebSocket-Extensions header'],
  ['an unacceptable permessage-deflate parameter', [], {},
    (k) => ok101(k, 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20\r\n'),
    'Invalid Sec-WebSocket-Extensions header'],
  ['a subprotocol when none was offered', [], {}, (k) => ok101(k, 'Sec-WebSocket-Protocol: chat\r\n'),
    'Server sent a subprotocol but none was requested'],
  ['a subprotocol that was not offered', ['a'], {}, (k) => ok101(k, 'Sec-WebSocket-Protocol: b\r\n'),
    'Server sent an invalid subprotocol'],
  ['two subprotocols', ['a', 'b'], {}, (k) => ok101(k, 'Sec-WebSocket-Protocol: a, b\r\n'),
    'Server sent an invalid subprotocol'],
  ['no subprotocol when some were offered', ['a'], {}, (k) => ok101(k), 'Server sent no subprotocol'],
  ['a wrong Sec-WebSocket-Accept', [], {},
    () => 'HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n',
    'Invalid Sec-WebSocket-Accept header'],
  ['no Sec-WebSocket-Accept', [], {}, () => 'HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'Invalid Sec-WebSocket-Accept header'],
  ['a wrong Upgrade header', [], {},
    (k) => `HTTP/1.1 101 S\r\nUpgrade: foo\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`,
    'Invalid Upgrade header']
];

describe('new WebSocket(): errors for a 101 answer ws refuses', () => {
  for (const [what, protocols, options, answer, message] of after101) {
    for (const [name, WebSocket] of impls) {
      test(`${name}: ${what}: 'upgrade', then "${message}"`, async () => {
        const srv = await rawServer(answer);
        const events = await trace(WebSocket, srv.url, protocols, options);
        srv.close();
        assert.deepStrictEqual(events.filter((e) => e[0] !== 'upgrade'), [
          ['error', message, undefined, WebSocket.CLOSING],
          ['close', 1006]
        ]);
      });
    }
  }

  for (const [name, WebSocket] of impls) {
    test(`${name}: a 101 without "Connection: upgrade" is an unexpected response`, async () => {
      const srv = await rawServer((k) => `HTTP/1.1 101 S\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`);
      const events = await trace(WebSocket, srv.url);
      srv.close();
      assert.deepStrictEqual(events, [['error', 'Unexpected server response: 101', undefined, WebSocket.CLOSING], ['close', 1006]]);
    });
  }
});

// Answers Node's http parser refuses: ws passes its error on (message and
// HPE_* code), at once. The expected error is ws's, seen on this Node.
const malformed = [
  ['a status line with no number', () => 'HTTP/1.1 abc\r\n\r\n'],
  ['something other than HTTP', () => 'hello there\r\n\r\n'],
  ['a header name with a space', () => 'HTTP/1.1 101 S\r\nUp grade: websocket\r\n\r\n'],
  ['a control character in a header value', () => 'HTTP/1.1 101 S\r\nUpgrade: we\x01bsocket\r\n\r\n'],
  ['a CR without LF', () => 'HTTP/1.1 101 S\r\nUpgrade: websocket\rX: y\r\n\r\n'],
  ['bare LF line endings', () => 'HTTP/1.1 403 S\nContent-Length: 0\n\n'],
  ['a header block too large', () => `HTTP/1.1 101 S\r\nX: ${'a'.repeat(20000)}\r\n\r\n`],
  ['a connection closed in the middle of the head', () => 'HTTP/1.1 101 S\r\nUpgrade: websocket\r\n'],
  ['a connection closed before any answer', () => '']
];

describe('new WebSocket(): a malformed answer fails at once with Node\'s parser error', () => {
  for (const [what, answer] of malformed) {
    test(what, async () => {
      const srv = await rawServer(answer);
      const start = Date.now();
      const expected = await trace(ws, srv.url);
      const got = await trace(wirehub, srv.url);
      srv.close();
      assert.strictEqual(expected[0][0], 'error');
      assert.deepStrictEqual(got, expected);
      assert.ok(Date.now() - start < 2000, 'no wait for a timeout');
    });
  }
});

describe('new WebSocket(): answers only the engine refuses (ws accepts them)', () => {
  for (const [what, answer, expected] of [
    ['a 101 without an Upgrade header', (k) => `HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, [['error', 'Unexpected server response: 101', undefined, 2], ['close', 1006]]]
  ]) {
    test(`ws: ${what}`, async () => {
      const srv = await rawServer(answer);
      assert.deepStrictEqual((await trace(ws, srv.url)).filter((e) => e[0] !== 'upgrade'), expected);
      srv.close();
    });
    test(`wirehub: ${what}`, async () => {
      const srv = await rawServer(answer);
      try {
        assert.deepStrictEqual((await trace(wirehub, srv.url)).filter((e) => e[0] !== 'upgrade'), expected);
      } finally {
        srv.close();
      }
    });
  }
});

// Two compressed text frames "hello hello", the second a back reference into
// the first: it inflates only where the server keeps its context.
async function twoDeflatedFrames() {
  const deflate = zlib.createDeflateRaw();
  const frames = [];
  for (let i = 0; i < 2; i++) {
    const chunks = [];
    const onData = (c) => chunks.push(c);
    deflate.on('data', onData);
    deflate.write('hello hello');
    await new Promise((resolve) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, resolve));
    deflate.removeListener('data', onData);
    const payload = Buffer.concat(chunks).subarray(0, -4); // without 00 00 ff ff
    frames.push(Buffer.from([0xc1, payload.length]), payload);
  }
  deflate.close();
  return Buffer.concat(frames);
}

// What a client sees when the server answers with `extensions` (the value
// of one Sec-WebSocket-Extensions line, or several lines) and then sends
// the two frames and closes the TCP connection.
async function repeatedExtension(WebSocket, extensions) {
  const frames = await twoDeflatedFrames();
  const answer = (k) => Buffer.concat([Buffer.from(ok101(k, `Sec-WebSocket-Extensions: ${extensions}\r\n`)), frames]);
  const srv = await rawServer(answer);
  try {
    return await withTimeout(new Promise((resolve) => {
      const client = new WebSocket(srv.url);
      const events = [];
      client.on('open', () => events.push(['open', client.extensions]));
      client.on('message', (m, isBinary) => events.push(['message', String(m), isBinary]));
      client.on('error', (err) => events.push(['error', err.message, err.code]));
      client.on('close', (code) => resolve([...events, ['close', code]]));
    }), 5000, 'client close');
  } finally {
    srv.close();
  }
}

// ws (lib/websocket.js, PerMessageDeflate.accept): permessage-deflate given
// more than once in the answer is accepted; every offer's parameters are
// checked, the first offer's are used.
describe('new WebSocket(): an answer that repeats permessage-deflate', () => {
  const both = [['message', 'hello hello', false], ['message', 'hello hello', false]];
  const refused = [['error', 'Invalid Sec-WebSocket-Extensions header', undefined], ['close', 1006]];
  const cases = [
    ['a duplicated permessage-deflate answer', 'permessage-deflate, permessage-deflate',
      [['open', 'permessage-deflate'], ...both, ['close', 1006]]],
    ['permessage-deflate on two Sec-WebSocket-Extensions lines',
      'permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate',
      [['open', 'permessage-deflate'], ...both, ['close', 1006]]],
    ['the first offer\'s parameters are used (server_no_context_takeover first)',
      'permessage-deflate; server_no_context_takeover, permessage-deflate',
      [['open', 'permessage-deflate'], both[0], ['error', 'invalid distance too far back', 'Z_DATA_ERROR'],
        ['close', 1006]]],
    ['the first offer\'s parameters are used (server_no_context_takeover second)',
      'permessage-deflate, permessage-deflate; server_no_context_takeover',
      [['open', 'permessage-deflate'], ...both, ['close', 1006]]],
    ['a repeated offer with an unacceptable parameter is refused',
      'permessage-deflate, permessage-deflate; server_max_window_bits=20', refused]
  ];
  for (const [what, extensions, expected] of cases) {
    for (const [name, WebSocket] of impls) {
      test(`${name}: ${what}`, async () => {
        assert.deepStrictEqual(await repeatedExtension(WebSocket, extensions), expected);
      });
    }
  }
});

// A message of `n` bytes whose second half repeats its first: its back
// references reach `n / 2` bytes back, past a window of 2^bits when n / 2 is
// larger. Deflated with `bits`, without a final block; one binary frame.
function farReferences(n, bits) {
  const half = Buffer.alloc(n / 2);
  for (let i = 0, x = 7; i < half.length; i++) half[i] = (x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16;
  const data = Buffer.concat([half, half]);
  const z = zlib.deflateRawSync(data, { windowBits: bits, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  const head = z.length < 126 ? Buffer.from([0xc2, z.length]) : Buffer.from([0xc2, 126, z.length >> 8, z.length & 0xff]);
  return { data, frame: Buffer.concat([head, z]) };
}

// What a client with `options` sees when the server answers `extensions`
// and then sends `frames`.
async function answered(WebSocket, options, extensions, frames, expected) {
  const answer = (k) => Buffer.concat([Buffer.from(ok101(k, `Sec-WebSocket-Extensions: ${extensions}\r\n`)), frames]);
  const srv = await rawServer(answer);
  try {
    return await withTimeout(new Promise((resolve) => {
      const client = new WebSocket(srv.url, { perMessageDeflate: options });
      const events = [];
      client.on('open', () => events.push(['open', client.extensions]));
      client.on('message', (m) => events.push(['message', Buffer.compare(m, expected) === 0]));
      client.on('error', (err) => events.push(['error', err.message, err.code]));
      client.on('close', (code) => resolve([...events, ['close', code]]));
    }), 5000, 'client close');
  } finally {
    srv.close();
  }
}

// ws's PerMessageDeflate#acceptAsClient: it does not hold the server to the
// server_max_window_bits it offered (RFC 7692 7.1.2.1 would refuse both
// answers below) and inflates with the window answered, or 15 bits when
// none is; it refuses client_no_context_takeover when
// clientNoContextTakeover is false (not when it is left out). The engine
// takes the answer by these rules for the package (WH_CLIENT_WS_DEFLATE_ANSWER).
describe('new WebSocket(): the permessage-deflate answer as ws takes it', () => {
  const got = [['open', 'permessage-deflate'], ['message', true], ['close', 1006]];
  const refused = [['error', 'Invalid Sec-WebSocket-Extensions header', undefined], ['close', 1006]];
  const cases = [
    ['a server_max_window_bits above the one offered, inflated with the answered window',
      { serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=12', 12, 3000, got],
    ['no server_max_window_bits when one was offered, inflated with 15 bits',
      { serverMaxWindowBits: 10 }, 'permessage-deflate', 15, 40000, got],
    ['client_no_context_takeover with clientNoContextTakeover: false is refused',
      { clientNoContextTakeover: false }, 'permessage-deflate; client_no_context_takeover', 15, 100, refused],
    ['client_no_context_takeover with clientNoContextTakeover left out is taken',
      {}, 'permessage-deflate; client_no_context_takeover', 15, 100, got]
  ];
  for (const [what, options, extensions, bits, n, expected] of cases) {
    const { data, frame } = farReferences(n, bits);
    for (const [name, WebSocket] of impls) {
      test(`${name}: ${what}`, async () => {
        assert.deepStrictEqual(await answered(WebSocket, options, extensions, frame, data), expected);
      });
    }
  }

  // What the client compresses with: ws drops its context only when the
  // answer says client_no_context_takeover, even if it offered it. The
  // same 2000 bytes sent twice: the second is a short back reference to
  // the first unless the context was dropped.
  async function twoSends(WebSocket, extensions) {
    const sizes = [];
    let buf = Buffer.alloc(0);
    const srv = await deflateServer(extensions, (x) => {
      buf = Buffer.concat([buf, x]);
      // client frames (masked), with a 7- or 16-bit length
      for (;;) {
        if (buf.length < 2) break;
        const short = (buf[1] & 0x7f) <= 125;
        if (!short && buf.length < 4) break;
        const len = short ? buf[1] & 0x7f : buf.readUInt16BE(2);
        const hl = short ? 6 : 8;
        if (buf.length < hl + len) break;
        if ((buf[0] & 0x0f) === 0x2) sizes.push([len, (buf[0] & 0x40) !== 0]);
        buf = buf.subarray(hl + len);
      }
    });
    try {
      const client = new WebSocket(srv.url, { perMessageDeflate: { clientNoContextTakeover: true } });
      await withTimeout(new Promise((resolve) => client.on('open', resolve)), 5000, 'open');
      const { data } = farReferences(2000, 15);
      client.send(data);
      client.send(data);
      await withTimeout(new Promise((resolve) => {
        const t = setInterval(() => sizes.length === 2 && (clearInterval(t), resolve()), 10);
      }), 5000, 'two frames');
      client.terminate();
      return sizes;
    } finally {
      srv.close();
    }
  }
  for (const [name, WebSocket] of impls) {
    test(`${name}: clientNoContextTakeover offered but not answered: the context is kept`, async () => {
      const [first, second] = await twoSends(WebSocket, 'permessage-deflate');
      assert.ok(first[1] && second[1], 'both compressed');
      assert.ok(second[0] < 50 && first[0] > 1000, `${first[0]} then ${second[0]} bytes`);
    });
    test(`${name}: clientNoContextTakeover answered: each message compressed on its own`, async () => {
      const [first, second] = await twoSends(WebSocket, 'permessage-deflate; client_no_context_takeover');
      assert.ok(first[1] && second[1], 'both compressed');
      assert.ok(second[0] > 1000 && first[0] > 1000, `${first[0]} then ${second[0]} bytes`);
    });
  }
});

// ws's offer (lib/permessage-deflate.js offer(), lib/extension.js format()):
// the options as given, in a fixed order, 8 and 15 included;
// clientMaxWindowBits: false leaves client_max_window_bits out.
describe('new WebSocket(): the permessage-deflate offer', () => {
  const offers = [
    [true, 'permessage-deflate; client_max_window_bits'],
    [{ clientMaxWindowBits: 8, serverMaxWindowBits: 8 },
      'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8'],
    [{ clientMaxWindowBits: 8 }, 'permessage-deflate; client_max_window_bits=8'],
    [{ serverMaxWindowBits: 15 }, 'permessage-deflate; server_max_window_bits=15; client_max_window_bits'],
    [{ clientMaxWindowBits: 15 }, 'permessage-deflate; client_max_window_bits=15'],
    [{ serverNoContextTakeover: true }, 'permessage-deflate; server_no_context_takeover; client_max_window_bits'],
    [{ clientNoContextTakeover: true }, 'permessage-deflate; client_no_context_takeover; client_max_window_bits'],
    [{ clientMaxWindowBits: false }, 'permessage-deflate'],
    [{ clientMaxWindowBits: true }, 'permessage-deflate; client_max_window_bits'],
    [{ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: false },
      'permessage-deflate; client_max_window_bits'],
    [{ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; ' +
        'client_max_window_bits=12']
  ];
  // The offer as it went out: the request's Sec-WebSocket-Extensions line.
  function offered(WebSocket, options) {
    return withTimeout(new Promise((resolve) => {
      const probe = net.createServer((s) => {
        let head = '';
        s.on('data', (d) => {
          head += d;
          if (!head.includes('\r\n\r\n')) return;
          const m = /\r\nSec-WebSocket-Extensions: *([^\r]*)\r\n/i.exec(head);
          s.destroy();
          probe.close();
          resolve(m ? m[1] : null);
        });
      }).listen(0, '127.0.0.1', () => {
        const client = new WebSocket(`ws://127.0.0.1:${probe.address().port}/`, options);
        client.on('error', () => {});
      });
    }), 5000, 'the request');
  }
  for (const [pmd, offer] of offers) {
    for (const [name, WebSocket] of impls) {
      test(`${name}: perMessageDeflate ${JSON.stringify(pmd)} offers "${offer}"`, async () => {
        assert.strictEqual(await offered(WebSocket, { perMessageDeflate: pmd }), offer);
      });
      // Through Node's http (a `lookup` of the user's), the same offer.
      test(`${name}: perMessageDeflate ${JSON.stringify(pmd)} with lookup offers the same`, async () => {
        const lookup = (host, opts, cb) => dns.lookup(host, opts, cb);
        assert.strictEqual(await offered(WebSocket, { perMessageDeflate: pmd, lookup }), offer);
      });
    }
  }

  // Window bits 8 as ws agrees on them with a ws server: the answer echoes
  // 8 both ways and messages go through compressed in both directions.
  for (const [name, WebSocket] of impls) {
    test(`${name}: clientMaxWindowBits and serverMaxWindowBits 8 against a ws server`, async () => {
      const wss = new ws.WebSocketServer({ port: 0, perMessageDeflate: { threshold: 0 } });
      await new Promise((r) => wss.once('listening', r));
      let answer;
      wss.on('headers', (headers) => {
        answer = headers.find((h) => /^Sec-WebSocket-Extensions:/i.test(h));
      });
      wss.on('connection', (conn) => conn.on('message', (m, isBinary) => conn.send(m, { binary: isBinary })));
      const text = Array.from({ length: 2000 }, (_, i) => `line ${i % 37} of ${i % 11}`).join('\n');
      try {
        const got = await withTimeout(new Promise((resolve, reject) => {
          const client = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`, {
            perMessageDeflate: { clientMaxWindowBits: 8, serverMaxWindowBits: 8, threshold: 0 }
          });
          client.on('error', reject);
          client.on('open', () => {
            client.send(text);
            client.send(text);
          });
          const echoes = [];
          client.on('message', (m) => {
            echoes.push(String(m) === text);
            if (echoes.length === 2) {
              client.close();
              resolve([client.extensions, echoes]);
            }
          });
        }), 5000, 'the echoes');
        assert.deepStrictEqual(got, ['permessage-deflate', [true, true]]);
        assert.strictEqual(answer,
          'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_max_window_bits=8');
      } finally {
        for (const c of wss.clients) c.terminate();
        await new Promise((r) => wss.close(r));
      }
    });
  }
});
