package wirehub

/*
#include "wirehub_go.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"unsafe"
)

// MessageType is a message's type.
type MessageType int

const (
	Text   MessageType = C.WH_TEXT
	Binary MessageType = C.WH_BINARY
)

func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "invalid"
}

// Conn is a WebSocket connection, server- or client-side. Its methods may be
// called from any goroutine and from handlers. Once it is closed they return
// an error wrapping ErrClosed; the handle stays valid until the Conn is
// garbage collected (it is retained, and released by a finalizer).
type Conn struct {
	raw       *C.wh_conn
	hub       *hub
	id        uintptr // registry id, the engine's user data for this conn
	onMessage func(c *Conn, typ MessageType, data []byte)
	onPong    func(c *Conn, data []byte)
	onClose   func(c *Conn, info *CloseError)

	opened chan struct{} // closed at WH_EV_OPEN (client connections)
	done   chan struct{} // closed at WH_EV_CLOSE
	notify chan struct{} // a message was queued or the connection closed

	mu    sync.Mutex
	queue []inbound
	// WH_EV_DRAIN, for every Write waiting at once: drainGen counts drain
	// events; drained (made by the first waiter) is closed and cleared at
	// the next one. Without waiters a drain event costs no allocation and
	// leaves nothing behind for a later Write to mistake for its own.
	drainGen uint64
	drained  chan struct{}
	closeErr *CloseError
	status   int // HTTP status of a client refused at handshake
	isOpen   bool
	// Read's queue is capped as python-websockets' max_queue is: reading
	// pauses at queueHigh messages and resumes at queueHigh/4 (0: never).
	queueHigh  int
	autoPaused bool // paused by the cap
	userPaused bool // paused by Pause
	closing    bool // CloseWith was called: the peer's close must be read
}

// defaultMaxQueue is python-websockets' max_queue default.
const defaultMaxQueue = 16

// maxQueue converts a MaxQueue option: 0 is the default, NoLimit never pauses.
func maxQueue(n int) (int, error) {
	switch {
	case n == 0:
		return defaultMaxQueue, nil
	case n == NoLimit:
		return 0, nil
	case n < 0:
		return 0, &OpError{Op: "MaxQueue must be positive, 0 (default) or NoLimit", Code: ErrInvalid}
	}
	return n, nil
}

type inbound struct {
	typ  MessageType
	data []byte
}

func newConn(h *hub) *Conn {
	c := &Conn{
		hub:    h,
		opened: make(chan struct{}),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	c.id = registerConn(c)
	return c
}

// adopt takes a reference on raw, dropped when the Conn is collected. Every
// method that passes c.raw to C keeps c alive until the call has returned
// (runtime.KeepAlive), so the finalizer never releases a handle in use.
func (c *Conn) adopt(raw *C.wh_conn) {
	C.wh_conn_retain(raw)
	c.raw = raw
	runtime.SetFinalizer(c, func(c *Conn) { C.wh_conn_release(c.raw) })
}

func (c *Conn) markOpen() {
	c.mu.Lock()
	c.isOpen = true
	c.mu.Unlock()
	close(c.opened)
}

// testHookPauseWindow, when a test sets it, runs on the I/O thread between
// push deciding to pause and the engine being told: it widens that window
// so a test can show Read's resume never overtakes the pause.
var testHookPauseWindow func()

func (c *Conn) push(typ MessageType, data []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, inbound{typ, data})
	pause := c.queueHigh > 0 && !c.autoPaused && !c.closing && len(c.queue) >= c.queueHigh
	if pause {
		c.autoPaused = true
		if testHookPauseWindow != nil {
			testHookPauseWindow()
		}
		// Under mu, as every pause and resume of c: the engine applies the
		// latest call, so the calls must reach it in the order the flags
		// changed, or a Read's resume overtaken by this pause leaves the
		// connection paused with nothing queued. Neither call blocks or
		// calls back. On the I/O thread, during c's event: c.raw is valid.
		C.wh_conn_pause(c.raw)
	}
	c.mu.Unlock()
	c.wake()
}

// drainEvent runs on the I/O thread at WH_EV_DRAIN.
func (c *Conn) drainEvent() {
	c.mu.Lock()
	c.drainGen++
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
	c.mu.Unlock()
}

func (c *Conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// finish records the connection's end; it runs once, at its close event
// (or when its hub is destroyed without one).
func (c *Conn) finish(code int, reason string, err Errno, status int) {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return
	}
	ce := &CloseError{Code: code, Reason: reason}
	if err != 0 {
		ce.Err = err
	}
	c.closeErr = ce
	c.status = status
	c.mu.Unlock()
	unregisterConn(c.id)
	c.hub.untrack(c)
	close(c.done)
	c.wake()
	if c.onClose != nil {
		c.onClose(c, ce)
	}
}

// Send queues a message without blocking, the call for handlers. It returns
// queued=true when the send buffer is above its high-water mark (a caller
// that cares waits with Write, or for Drain, before sending more).
func (c *Conn) Send(typ MessageType, data []byte) (queued bool, err error) {
	var p uintptr
	if len(data) > 0 {
		p = uintptr(unsafe.Pointer(&data[0]))
	}
	// As an integer: the pointer check cgo makes on unsafe.Pointer arguments
	// (runtime.cgoCheckPointer) costs ~1% of the echo benchmark. It could
	// only ever pass: cmd/cgo's rule ("Passing pointers") lets Go pass C a
	// pointer to Go memory that holds no Go pointers, which a []byte never
	// does, provided C keeps no copy of it after the call returns. Here it
	// keeps none: wh_conn_send copies the bytes (into the frame it queues,
	// or into the hand-off to the I/O thread) before returning; only
	// WH_BORROW, which this package never passes, would let the engine
	// read them later (capi/wirehub.h). KeepAlive keeps data reachable
	// until the call has returned, and the memory cannot move meanwhile
	// (Go's heap does not move objects; a goroutine's stack is not moved
	// while it is in a cgo call).
	rc := C.wh_go_send(c.raw, C.uintptr_t(p), C.size_t(len(data)), C.int(typ))
	runtime.KeepAlive(data)
	runtime.KeepAlive(c)
	if rc < 0 {
		return false, &OpError{Op: "send", Code: Errno(rc)}
	}
	return rc == C.WH_QUEUED, nil
}

// SendFragment sends one fragment (frame) of a message: the first
// fragment's type is the message's type (later ones' is ignored); last ends
// the message. A message's fragments come from one goroutine, with no other
// send on this connection between them.
func (c *Conn) SendFragment(typ MessageType, data []byte, last bool) (queued bool, err error) {
	flags := C.int(typ)
	if !last {
		flags |= C.WH_MORE
	}
	var p uintptr // as in Send: safe, the bytes are copied during the call
	if len(data) > 0 {
		p = uintptr(unsafe.Pointer(&data[0]))
	}
	rc := C.wh_go_send(c.raw, C.uintptr_t(p), C.size_t(len(data)), flags)
	runtime.KeepAlive(data)
	runtime.KeepAlive(c)
	if rc < 0 {
		return false, &OpError{Op: "send fragment", Code: Errno(rc)}
	}
	return rc == C.WH_QUEUED, nil
}

// SendText is Send(Text, []byte(s)).
func (c *Conn) SendText(s string) (queued bool, err error) {
	return c.Send(Text, []byte(s))
}

// Write sends a message and, if the send buffer is above its high-water
// mark, waits until it drains, the connection closes, or ctx is done. Do not
// call it from a handler (the drain it waits for would be held up behind the
// handler): use Send there.
func (c *Conn) Write(ctx context.Context, typ MessageType, data []byte) error {
	if typ != Text && typ != Binary {
		return &OpError{Op: "write", Code: ErrInvalid}
	}
	// WH_QUEUED promises one WH_EV_DRAIN after it: wait for a drain event
	// later than the ones seen before this send (an earlier one, e.g. owed
	// to a Send nobody waited on, says nothing about these bytes).
	c.mu.Lock()
	gen := c.drainGen
	c.mu.Unlock()
	queued, err := c.Send(typ, data)
	if err != nil || !queued {
		return err
	}
	c.mu.Lock()
	if c.drainGen != gen {
		c.mu.Unlock()
		return nil // drained already
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	drained := c.drained
	c.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-c.done:
		return nil // the message was accepted; the close shows on Read/Wait
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read returns the next message, waiting for one until the connection
// closes (then the *CloseError) or ctx is done. Not available when the
// connection has an OnMessage handler (messages go there).
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if c.onMessage != nil {
		return 0, nil, &OpError{Op: "read (the connection has an OnMessage handler)", Code: ErrState}
	}
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = inbound{}
			c.queue = c.queue[1:]
			if c.autoPaused && len(c.queue) <= c.queueHigh/4 {
				c.autoPaused = false
				if !c.userPaused {
					C.wh_conn_resume(c.raw)
				}
			}
			c.mu.Unlock()
			runtime.KeepAlive(c)
			return m.typ, m.data, nil
		}
		ce := c.closeErr
		c.mu.Unlock()
		if ce != nil {
			return 0, nil, ce
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// Ping sends a ping (at most 125 bytes); the pong goes to OnPong.
func (c *Conn) Ping(data []byte) error {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	defer runtime.KeepAlive(c)
	return opErr("ping", C.wh_conn_ping(c.raw, p, C.size_t(len(data))))
}

// Close starts the close handshake with 1000 (normal closure).
func (c *Conn) Close() error { return c.CloseWith(1000, "") }

// CloseWith starts the close handshake: code 1000-1003, 1007-1014,
// 3000-4999 (0: no code), reason at most 123 bytes of UTF-8. Wait or Done
// tell when it finished.
func (c *Conn) CloseWith(code int, reason string) error {
	p := C.CString(reason)
	defer C.free(unsafe.Pointer(p))
	defer runtime.KeepAlive(c)
	err := opErr("close", C.wh_conn_close(c.raw, C.int(code), p, C.size_t(len(reason))))
	if err == nil {
		// The peer's close frame must be read even with Read's queue full
		// or after Pause, else the handshake waits for the close timeout.
		c.mu.Lock()
		c.closing = true
		if c.autoPaused || c.userPaused {
			c.autoPaused, c.userPaused = false, false
			C.wh_conn_resume(c.raw)
		}
		c.mu.Unlock()
	}
	return err
}

// Terminate drops the TCP connection at once (the close code is 1006).
func (c *Conn) Terminate() error {
	defer runtime.KeepAlive(c)
	return opErr("terminate", C.wh_conn_terminate(c.raw))
}

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Wait waits until the connection has closed and returns how (a
// *CloseError), or ctx's error.
func (c *Conn) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Buffered is the number of bytes sent but not yet written to the socket.
func (c *Conn) Buffered() (int, error) {
	defer runtime.KeepAlive(c)
	var n C.size_t
	if rc := C.wh_conn_buffered(c.raw, &n); rc < 0 {
		return 0, &OpError{Op: "buffered", Code: Errno(rc)}
	}
	return int(n), nil
}

// Pause stops reading from the peer until Resume.
func (c *Conn) Pause() error {
	defer runtime.KeepAlive(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.userPaused = true
	return opErr("pause", C.wh_conn_pause(c.raw))
}

// Resume undoes Pause; reading stays paused while Read's queue is over its
// cap (MaxQueue) and resumes when Read brings it down.
func (c *Conn) Resume() error {
	defer runtime.KeepAlive(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.userPaused = false
	if c.autoPaused {
		return nil
	}
	return opErr("resume", C.wh_conn_resume(c.raw))
}

// Subscribe adds the connection to a topic of its server (see Server.Publish).
func (c *Conn) Subscribe(topic string) error {
	t := C.CString(topic)
	defer C.free(unsafe.Pointer(t))
	defer runtime.KeepAlive(c)
	return opErr("subscribe", C.wh_conn_subscribe(c.raw, t))
}

func (c *Conn) Unsubscribe(topic string) error {
	t := C.CString(topic)
	defer C.free(unsafe.Pointer(t))
	defer runtime.KeepAlive(c)
	return opErr("unsubscribe", C.wh_conn_unsubscribe(c.raw, t))
}

// Subprotocol is the negotiated subprotocol, "" if none.
func (c *Conn) Subprotocol() string {
	defer runtime.KeepAlive(c)
	return C.GoString(C.wh_conn_subprotocol(c.raw))
}

// Extensions is the negotiated extensions header value, "" if none.
func (c *Conn) Extensions() string {
	defer runtime.KeepAlive(c)
	return C.GoString(C.wh_conn_extensions(c.raw))
}

// RemoteAddr is the peer's address and port.
func (c *Conn) RemoteAddr() (string, int) {
	defer runtime.KeepAlive(c)
	return C.GoString(C.wh_conn_remote_address(c.raw)), int(C.wh_conn_remote_port(c.raw))
}

// LocalAddr is this end's address and port: the ones the peer reached on a
// server's connection, the ones its socket got on a client's. "" and 0 over
// a UNIX socket, as for RemoteAddr.
func (c *Conn) LocalAddr() (string, int) {
	defer runtime.KeepAlive(c)
	return C.GoString(C.wh_conn_local_address(c.raw)), int(C.wh_conn_local_port(c.raw))
}
