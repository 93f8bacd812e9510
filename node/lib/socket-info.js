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
    // A server on '::' (dual stack) shows IPv4 ends IPv4-mapped, as Node's does.
    const map = (a) => (ws._mapV4 && a && !a.includes(':') ? `::ffff:${a}` : a);
    const remote = map(i[2]);
    const local = map(i[4]);
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
  const ends = {
    remoteAddress: i[2] || undefined,
    remotePort: i[3] || undefined,
    remoteFamily: family(i[2]),
    localAddress: i[4] || undefined,
    localPort: i[5] || undefined,
    localFamily: family(i[4])
  };
  for (const name of Object.keys(ends)) {
    const own = name.startsWith('local');
    Object.defineProperty(socket, name, {
      configurable: true,
      enumerable: true,
      get() {
        return own && this.destroyed ? undefined : ends[name];
      }
    });
  }
  return socket;
}

module.exports = { SocketInfo, answerEnds };
