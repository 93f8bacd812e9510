'use strict';
// The client's opening handshake as ws 8 reports it: the errors for a bad
// 101 answer (lib/websocket.js initAsClient, the 'upgrade' handler) and
// Node's http parser errors for a malformed answer. Each case runs against
// ws and wirehub and compares what the application sees.
const { describe, test } = require('node:test');
const assert = require('assert');
const ws = require('ws');
const wirehub = require('../../node');
const { accept, rawServer, ok101, trace, impls } = require('./ws-client-helpers');

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
    ['a duplicated permessage-deflate answer', (k) => ok101(k, 'Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n'), [['open'], ['close', 1006]]],
    ['a 101 without an Upgrade header', (k) => `HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, [['error', 'Unexpected server response: 101', undefined, 2], ['close', 1006]]]
  ]) {
    test(`ws: ${what}`, async () => {
      const srv = await rawServer(answer);
      assert.deepStrictEqual((await trace(ws, srv.url)).filter((e) => e[0] !== 'upgrade'), expected);
      srv.close();
    });
    const todo = what.startsWith('a duplicated') ? 'the engine refuses a repeated extension answer (core/src/client.cpp)' : false;
    test(`wirehub: ${what}`, { todo }, async () => {
      const srv = await rawServer(answer);
      try {
        assert.deepStrictEqual((await trace(wirehub, srv.url)).filter((e) => e[0] !== 'upgrade'), expected);
      } finally {
        srv.close();
      }
    });
  }
});
