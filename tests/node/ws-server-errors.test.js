'use strict';
// Error codes (ws.md "Error codes"): what a server-side WebSocket emits when
// its peer breaks the protocol. A raw client sends each violation to ws's
// server and to wirehub's; both must emit the same error (class, message,
// code) and close with 1002, the code alone.
const { describe, test } = require('node:test');
const assert = require('assert');
const { withTimeout, listen, closeServer } = require('./helpers');
const { impls, rawSocket } = require('./ws-server-helpers');

// A client frame: masked with a zero key unless `mask` is false.
function frame(first, payload, { mask = true, lengthByte } = {}) {
  const len = lengthByte !== undefined ? lengthByte : payload.length;
  const head = Buffer.from([first, (mask ? 0x80 : 0) | len]);
  return Buffer.concat([head, mask ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

const violations = [
  ['RSV2 set', frame(0x81 | 0x20, Buffer.from('x')), 'Invalid WebSocket frame: RSV2 and RSV3 must be clear', 'WS_ERR_UNEXPECTED_RSV_2_3'],
  ['RSV1 set without deflate', frame(0x81 | 0x40, Buffer.from('x')), 'Invalid WebSocket frame: RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1'],
  ['an unmasked frame', frame(0x81, Buffer.from('x'), { mask: false }), 'Invalid WebSocket frame: MASK must be set', 'WS_ERR_EXPECTED_MASK'],
  ['opcode 3', frame(0x83, Buffer.from('x')), 'Invalid WebSocket frame: invalid opcode 3', 'WS_ERR_INVALID_OPCODE'],
  ['a continuation with nothing to continue', frame(0x80, Buffer.from('x')), 'Invalid WebSocket frame: invalid opcode 0', 'WS_ERR_INVALID_OPCODE'],
  ['a ping that is not final', frame(0x09, Buffer.from('x')), 'Invalid WebSocket frame: FIN must be set', 'WS_ERR_EXPECTED_FIN'],
  ['a 126-byte ping', frame(0x89, Buffer.alloc(0), { lengthByte: 126 }), 'Invalid WebSocket frame: invalid payload length 126', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
  ['a close of one byte', frame(0x88, Buffer.from([3])), 'Invalid WebSocket frame: invalid payload length 1', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
  ['close code 1005', frame(0x88, Buffer.from([0x03, 0xed])), 'Invalid WebSocket frame: invalid status code 1005', 'WS_ERR_INVALID_CLOSE_CODE']
];

async function violate(lib, bytes) {
  const { wss } = await listen(lib.WebSocketServer);
  const got = withTimeout(
    new Promise((resolve) => {
      wss.once('connection', (sock) => {
        let error = null;
        sock.on('error', (e) => (error = [e.constructor.name, e.message, e.code]));
        sock.on('close', (code) => resolve({ error, code }));
      });
    }),
    5000,
    'server close'
  );
  const s = rawSocket(wss.address().port);
  let received = Buffer.alloc(0);
  const ended = new Promise((resolve) => s.once('close', resolve));
  s.once('data', () => {
    s.on('data', (d) => (received = Buffer.concat([received, d])));
    s.write(bytes);
  });
  const out = await got;
  await withTimeout(ended, 5000, 'the server ending the connection');
  // The close frame the server sent: its code and reason.
  out.sent = received.length >= 4 && received[0] === 0x88
    ? [received.readUInt16BE(2), received.subarray(4, 2 + (received[1] & 0x7f)).toString()]
    : null;
  s.destroy();
  await closeServer(wss);
  return out;
}

describe('Error codes: a peer that breaks the protocol', () => {
  for (const [what, bytes, message, code] of violations) {
    for (const [name, lib] of impls) {
      test(`${name}: ${what} -> ${code}`, async () => {
        const out = await violate(lib, bytes);
        assert.deepStrictEqual(out.error, ['RangeError', message, code]);
        assert.strictEqual(out.code, 1006, 'the server side reports 1006 (it sent 1002, got no close back)');
        assert.deepStrictEqual(out.sent, [1002, ''], 'the close frame names no reason, as ws\'s');
      });
    }
  }
});

// WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: a length past 2^53 - 1, which a
// JavaScript number cannot hold. ws's receiver refuses it before maxPayload
// is even looked at (here with no limit at all, and with one): 1009, the
// code alone.
describe('Error codes: a frame longer than 2^53 - 1', () => {
  const head = Buffer.from([0x82, 0xff, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // masked, 2^53, zero key
  for (const maxPayload of [0, 1000]) {
    for (const [name, lib] of impls) {
      test(`${name}: maxPayload ${maxPayload} -> WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH`, async () => {
        const Server = class extends lib.WebSocketServer {
          constructor(options, cb) {
            super({ ...options, maxPayload }, cb);
          }
        };
        const out = await violate({ WebSocketServer: Server }, head);
        assert.deepStrictEqual(out.error, [
          'RangeError',
          'Unsupported WebSocket frame: payload length > 2^53 - 1',
          'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'
        ]);
        assert.deepStrictEqual(out.sent, [1009, '']);
      });
    }
  }
});
