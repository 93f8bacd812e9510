// Package wirehub is the Go binding of wirehub, a native WebSocket engine,
// over its C ABI (capi/wirehub.h).
//
// Listen starts a server, Dial connects a client; both give *Conn values
// whose messages arrive either on handler functions (ServerConfig.OnMessage,
// DialOptions.OnMessage: zero-copy, called on the engine's I/O thread) or
// through Conn.Read (copied, queued, with a context). Every Conn's methods
// are safe from any goroutine. Errors wrap the C ABI's codes (Errno):
// errors.Is(err, wirehub.ErrConnRefused).
//
// Events come from the engine's I/O threads, which are C threads: the first
// callback on each binds a Go M to it for good, so each event costs one
// C-to-Go transition and no goroutine switch. The package starts no
// goroutine of its own except to finish a Server.Close called from a handler.
package wirehub
