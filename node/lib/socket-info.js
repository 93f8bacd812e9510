'use strict';
// ws._socket where the engine holds the socket: what ws's net.Socket
// answers about the connection's two ends. Node forgets a socket's own end
// when it is destroyed (localAddress, localPort and localFamily read
// undefined once ws has emitted 'close') and keeps the peer's; so do these.

const CLOSED = 3;

function family(address) {
  if (!address) return undefined;
  return address.includes(':') ? 'IPv6' : 'IPv4';
}

class SocketInfo {
  // ws: the WebSocket whose state says whether the socket is gone yet.
  constructor(ws, remoteAddress, remotePort, remoteFamily, localAddress, localPort, localFamily) {
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.remoteFamily = remoteFamily;
    this._ws = ws;
    this._localAddress = localAddress;
    this._localPort = localPort;
    this._localFamily = localFamily;
  }

  // From the engine's [.., remoteAddress, remotePort, localAddress, localPort]
  // ("" and 0 for none: a UNIX socket's, which Node also leaves undefined).
  static fromEngine(ws, i) {
    const remote = nodeAddress(i[2], ws._mapV4);
    const local = nodeAddress(i[4], ws._mapV4);
    return new SocketInfo(ws, remote || undefined, i[3] || undefined, family(remote),
      local || undefined, i[5] || undefined, family(local));
  }

  get localAddress() {
    return this._ws.readyState === CLOSED ? undefined : this._localAddress;
  }
  get localPort() {
    return this._ws.readyState === CLOSED ? undefined : this._localPort;
  }
  get localFamily() {
    return this._ws.readyState === CLOSED ? undefined : this._localFamily;
  }
}
// As net.Socket's: enumerable accessors on the prototype.
for (const name of ['localAddress', 'localPort', 'localFamily']) {
  Object.defineProperty(SocketInfo.prototype, name, { enumerable: true });
}

// Gives `socket`, a stand-in without a handle (the engine holds the real
// one), the two ends of the engine's connection `i` ([.., remoteAddress,
// remotePort, localAddress, localPort]) as a net.Socket answers them: the
// peer's kept, its own undefined once the stand-in is destroyed.
function answerEnds(socket, i) {
  const remote = { remoteAddress: i[2] || undefined, remotePort: i[3] || undefined, remoteFamily: family(i[2]) };
  for (const name of Object.keys(remote)) {
    Object.defineProperty(socket, name, { configurable: true, enumerable: true, value: remote[name] });
  }
  return answerLocalEnd(socket, i[4], i[5]);
}

// Gives a stand-in socket its own end, read undefined once it is destroyed
// (Node reads it from the handle, which a destroyed socket has not).
function answerLocalEnd(socket, address, port) {
  const own = { localAddress: address || undefined, localPort: port || undefined, localFamily: family(address) };
  for (const name of Object.keys(own)) {
    Object.defineProperty(socket, name, {
      configurable: true,
      enumerable: true,
      get() {
        return this.destroyed ? undefined : own[name];
      }
    });
  }
  return socket;
}

// An address as Node shows it on a server's socket: IPv4-mapped when the
// server listens on '::' (dual stack).
function nodeAddress(address, mapV4) {
  return mapV4 && address && !address.includes(':') ? `::ffff:${address}` : address;
}

module.exports = { SocketInfo, answerEnds, answerLocalEnd, nodeAddress, family };
