'use strict';
// Error objects shaped like ws's: `code` carries ws's WS_ERR_* name where ws
// has one; engine errors without a ws counterpart carry the engine's name
// (WH_E*) and `errno` (the negative WH_E* value).

const { constants } = require('os');
const { errName, E } = require('./native');

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
  if (rc === E.EMFILE) {
    // As Node's own socket and fs calls report it, so one handler serves both.
    err.code = 'EMFILE';
    err.errno = -constants.errno.EMFILE;
    return err;
  }
  // The others (WH_EIDLE, WH_EBUDGET, ...) have no ws or Node counterpart.
  err.code = name;
  err.errno = rc;
  return err;
}

// RFC 6455 close codes, the engine's WH_CLOSE_* (a wirehub extra: ws has no
// such export). NO_STATUS and ABNORMAL are only ever reported, never sent.
const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014
});

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

module.exports = { wsError, engineError, isValidStatusCode, toBuffer, kStatusCode, CloseCode };
