'use strict';
// Error objects shaped like ws's: `code` carries ws's WS_ERR_* name where ws
// has one; engine errors without a ws counterpart carry the engine's name
// (WH_E*) and `errno` (the negative WH_E* value).

const { errName } = require('./native');

const kStatusCode = Symbol('status-code');

function wsError(Ctor, message, code, statusCode) {
  const err = new Ctor(message);
  err.code = code;
  err[kStatusCode] = statusCode;
  return err;
}

function engineError(rc, detail) {
  const [name, text] = errName(rc);
  const err = new Error(detail ? `${text}: ${detail}` : text);
  err.code = name;
  err.errno = rc;
  return err;
}

// ws lib/validation.js isValidStatusCode
function isValidStatusCode(code) {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(String(data));
}

module.exports = { wsError, engineError, isValidStatusCode, toBuffer, kStatusCode };
