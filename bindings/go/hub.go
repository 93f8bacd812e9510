package wirehub

/*
#include "wirehub_go.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// A hub is the engine's I/O threads plus the Go side's view of them. Its
// events arrive in goWirehubEvent, called by C on an I/O thread (a C thread:
// cgo binds an M to it on the first callback and keeps it, so later
// callbacks do not pay for a thread registration).
type hub struct {
	raw    *C.wh_hub
	handle cgo.Handle
	server *Server // the server that owns this hub; nil for the client hub

	// Held across wh_connect + wh_conn_retain and taken by a client
	// connection's close callback: the engine frees the handle after that
	// callback, so a dial failing at once cannot free it before we retained it.
	connectMu sync.Mutex

	mu        sync.Mutex
	conns     map[*Conn]struct{} // open or connecting, for destroy
	destroyed bool
}

func newHub(ioThreads int) (*hub, error) {
	if ioThreads < 0 || ioThreads > 256 {
		return nil, &OpError{Op: fmt.Sprintf("hub with %d I/O threads", ioThreads), Code: ErrInvalid}
	}
	h := &hub{conns: make(map[*Conn]struct{})}
	h.handle = cgo.NewHandle(h)
	if rc := C.wh_go_hub_create(C.int(ioThreads), C.uintptr_t(h.handle), &h.raw); rc < 0 {
		h.handle.Delete()
		return nil, opErr("hub", rc)
	}
	return h, nil
}

func (h *hub) track(c *Conn) {
	h.mu.Lock()
	if h.conns != nil {
		h.conns[c] = struct{}{}
	}
	h.mu.Unlock()
}

func (h *hub) untrack(c *Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// destroy closes everything and stops the I/O threads. From an I/O thread
// (a handler calling Server.Close) the C call refuses with WH_ESTATE, since
// it would wait for itself; then it finishes on a goroutine.
func (h *hub) destroy(timeout time.Duration, done func()) error {
	rc := C.wh_hub_destroy(h.raw, C.int(durationMs(timeout)))
	if rc == C.WH_ESTATE {
		go func() { _ = h.destroy(timeout, done) }()
		return nil
	}
	h.mu.Lock()
	h.destroyed = true
	left := h.conns
	h.conns = nil
	h.mu.Unlock()
	// Connections the engine dropped without a close event still get one.
	for c := range left {
		c.finish(1006, "", ErrShutdown, 0)
	}
	h.handle.Delete()
	if done != nil {
		done()
	}
	return opErr("close", rc)
}

func durationMs(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms > 1<<30 {
		ms = 1 << 30
	}
	return int(ms)
}

func connOf(id C.uintptr_t) *Conn { return lookupConn(uintptr(id)) }

// goWirehubBatch delivers a batch of messages buffered by the C trampoline
// until WH_EV_BATCH_END (see helpers.c); data points into the batch buffer,
// valid during the handler call like an event's.
//
//export goWirehubBatch
func goWirehubBatch(hubHandle C.uintptr_t, items *C.wh_go_item, n C.int, buf *C.char) {
	for _, it := range unsafe.Slice(items, int(n)) {
		c := lookupConn(uintptr(it.id))
		if c == nil {
			continue
		}
		deliver(c, messageType(it.flags), bytesOf(unsafe.Add(unsafe.Pointer(buf), uintptr(it.off)), it.len))
	}
}

func messageType(flags C.int) MessageType {
	if flags&C.WH_TEXT != 0 {
		return Text
	}
	return Binary
}

// bytesOf views n bytes at p (nil when empty) without copying.
func bytesOf(p unsafe.Pointer, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), int(n))
}

// deliver runs one message's handler; a panic ends only that call.
func deliver(c *Conn, typ MessageType, data []byte) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "wirehub: event handler panicked: %v\n", r)
		}
	}()
	if c.onMessage != nil {
		c.onMessage(c, typ, data)
	} else {
		c.push(typ, append([]byte(nil), data...))
	}
}

//export goWirehubEvent
func goWirehubEvent(ev *C.wh_event, hubHandle, connID C.uintptr_t) {
	// A panic must not unwind into the C frames below us.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "wirehub: event handler panicked: %v\n", r)
		}
	}()
	switch ev._type {
	case C.WH_EV_MESSAGE: // larger than the trampoline buffers
		if c := connOf(connID); c != nil {
			deliver(c, messageType(ev.flags), bytesOf(unsafe.Pointer(ev.data), ev.len))
		}
	case C.WH_EV_OPEN:
		h := cgo.Handle(hubHandle).Value().(*hub)
		if c := connOf(connID); c != nil {
			// A client connection: Dial sets c.raw under connectMu; taking it
			// here orders that before any handler of this connection runs.
			h.connectMu.Lock()
			h.connectMu.Unlock() //nolint:staticcheck // a barrier
			c.markOpen()
			return
		}
		if h.server != nil {
			h.server.opened(ev.conn)
		}
	case C.WH_EV_CLOSE:
		if ev.server == nil {
			h := cgo.Handle(hubHandle).Value().(*hub)
			h.connectMu.Lock()
			h.connectMu.Unlock() //nolint:staticcheck // a barrier, see hub.connectMu
		}
		c := connOf(connID)
		if c == nil {
			return
		}
		reason := ""
		if ev.len > 0 && ev.status == 0 {
			reason = C.GoStringN(ev.data, C.int(ev.len))
		}
		c.finish(int(ev.code), reason, Errno(ev.error), int(ev.status))
	case C.WH_EV_DRAIN:
		if c := connOf(connID); c != nil {
			c.drainEvent()
		}
	case C.WH_EV_PONG:
		if c := connOf(connID); c != nil && c.onPong != nil {
			var data []byte
			if ev.len > 0 {
				data = C.GoBytes(unsafe.Pointer(ev.data), C.int(ev.len))
			}
			c.onPong(c, data)
		}
	case C.WH_EV_UPGRADE:
		h := cgo.Handle(hubHandle).Value().(*hub)
		if h.server == nil || h.server.cfg.OnUpgrade == nil {
			_ = (&Request{raw: ev.request}).Accept("")
			return
		}
		h.server.upgrade(&Request{raw: ev.request})
	case C.WH_EV_SERVER_CLOSED:
	case C.WH_EV_ERROR:
		h := cgo.Handle(hubHandle).Value().(*hub)
		if h.server != nil && h.server.cfg.OnError != nil {
			msg := ""
			if ev.len > 0 {
				msg = C.GoStringN(ev.data, C.int(ev.len))
			}
			h.server.cfg.OnError(&OpError{Op: "server: " + msg, Code: Errno(ev.code)})
		}
	}
}
