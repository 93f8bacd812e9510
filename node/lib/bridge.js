'use strict';
// A connection whose bytes only Node can read (a TLSSocket: the TLS state
// lives in Node's OpenSSL; a user's Duplex without a descriptor) is handed
// to the engine through a UNIX socketpair: the engine owns one end, Node
// pipes the other to the socket both ways. Used by the server ({ server }
// over https, handleUpgrade) and by the client (wss:// through an `agent`,
// `createConnection`, or TLS options only Node's tls.connect honours).
//
// Each direction ends as it would on the wire, so the engine sees what it
// sees on a socket of its own:
//   - the peer's end (TLS close, FIN) is the engine's EOF, after every byte
//     that came before it;
//   - a TLS error or a reset is an EOF too (no close frame: 1006, as in ws);
//   - the engine's half-close after its close frame (connection.cpp,
//     after_close_flushed) ends the socket (close_notify, FIN), whose answer
//     still flows back until the peer ends in turn;
//   - the engine closing its end for good (EPIPE, ECONNRESET) destroys it.
// The pipes carry the streams' backpressure: a slow engine stops Node
// reading the socket, a slow peer stops Node reading the engine's end.

const net = require('net');

const { addon } = require('./native');

// Returns the engine's end of the pair; the caller hands it to the engine,
// which owns it from then on. `closeTimeout` (ms) bounds how long the socket
// waits for the peer's end once the engine ended its side; the engine waits
// as long for the same EOF, so this only frees a socket it gave up on.
function bridge(socket, closeTimeout = 30000) {
  const [engineEnd, ourEnd] = addon.socketpair();
  // allowHalfOpen: the engine half-closes after its close frame and still
  // reads the peer's.
  const local = new net.Socket({ fd: ourEnd, readable: true, writable: true, allowHalfOpen: true });
  let timer = null;
  let socketClosed = false;
  let localClosed = false;
  const settle = () => {
    if (socketClosed && localClosed && timer) clearTimeout(timer);
  };
  socket.on('error', () => {}); // its 'close' follows, handled below
  socket.on('close', () => {
    socketClosed = true;
    // An end without 'end' (a reset, a TLS error, destroy()): EOF for the
    // engine once what arrived before is written.
    if (!local.destroyed && !local.writableEnded) local.end();
    settle();
  });
  local.on('error', () => {
    socket.destroy();
    local.destroy();
  });
  local.on('end', () => {
    // The pipe below ends the socket; the peer has closeTimeout to end too.
    timer = setTimeout(() => {
      socket.destroy();
      local.destroy();
    }, closeTimeout + 1000);
    timer.unref();
  });
  local.on('close', () => {
    localClosed = true;
    if (!socketClosed && !(socket.writableEnded)) socket.destroy();
    settle();
  });
  socket.pipe(local);
  local.pipe(socket);
  return engineEnd;
}

module.exports = { bridge };
