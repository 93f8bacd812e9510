package wirehub

/*
#include "wirehub_go.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// DialOptions configures Dial. Handlers run on the engine's I/O thread and
// must not block (see ServerConfig).
type DialOptions struct {
	Subprotocols   string            // offered, "a, b"
	Header         map[string]string // extra request headers
	Origin         string
	Deflate        bool // offer permessage-deflate
	MaxMessageSize int
	MaxBuffered    int    // send buffer hard cap (default 16 MiB + MaxMessageSize)
	TLSCAFile      string // wss://: trust these CAs (else the system's)
	TLSInsecure    bool   // wss://: do not verify the server certificate
	TLSServerName  string // wss://: SNI and verification name (default: the URL's host)
	// As in ServerConfig: IdleTimeout closes with 1001 when the server sent
	// nothing for this long (0: off); MessageTimeout bounds a message that
	// has begun (0: 60 s, NoLimit: off). Negative values fail with ErrInvalid.
	IdleTimeout    time.Duration
	MessageTimeout time.Duration
	// MaxQueue caps the messages waiting for Conn.Read, as in ServerConfig
	// (default 16, NoLimit never pauses).
	MaxQueue int
	// Without a deadline on the context, the open timeout is the engine's
	// (10 s); with one, it is the time left.
	OnMessage func(c *Conn, typ MessageType, data []byte) // else Conn.Read
	OnClose   func(c *Conn, info *CloseError)
	OnPong    func(c *Conn, data []byte)
}

// Client connections share one hub (one I/O thread, a C thread: no
// goroutine) for the life of the process.
var (
	clientHubOnce sync.Once
	clientHub     *hub
	clientHubErr  error
)

func defaultHub() (*hub, error) {
	clientHubOnce.Do(func() { clientHub, clientHubErr = newHub(1) })
	return clientHub, clientHubErr
}

// Dial connects to a ws:// or wss:// URL and returns once the connection is
// open, or fails: a malformed URL (ErrURL), nothing listening
// (ErrConnRefused), a refused handshake (ErrStatus, with OpError.Status), a
// timeout, or ctx being done (then the error wraps ctx.Err()).
func Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, error) {
	op := "dial " + url
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wirehub: %s: %w", op, err)
	}
	// C strings end at a NUL: the engine would see (and connect to) a
	// shorter URL than the one given.
	if strings.IndexByte(url, 0) >= 0 {
		return nil, &OpError{Op: op, Code: ErrURL}
	}
	h, err := defaultHub()
	if err != nil {
		return nil, err
	}
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	var co C.wh_client_options
	if co.idle_timeout_ms, err = limitMs("IdleTimeout", o.IdleTimeout, false); err == nil {
		co.message_timeout_ms, err = limitMs("MessageTimeout", o.MessageTimeout, true)
	}
	var queueHigh int
	if err == nil {
		queueHigh, err = maxQueue(o.MaxQueue)
	}
	if err != nil {
		err.(*OpError).Op = op + ": " + err.(*OpError).Op
		return nil, err
	}
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	cstr := func(s string) *C.char {
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	if o.Subprotocols != "" {
		co.subprotocols = cstr(o.Subprotocols)
	}
	if len(o.Header) > 0 {
		names := make([]string, 0, len(o.Header))
		for k := range o.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		hs := ""
		for _, k := range names {
			// A CR or LF would forge further header lines, a NUL cut the block short.
			if strings.ContainsAny(k, "\r\n\x00") || strings.ContainsAny(o.Header[k], "\r\n\x00") {
				return nil, &OpError{Op: op + ": header " + strconv.Quote(k), Code: ErrInvalid}
			}
			hs += k + ": " + o.Header[k] + "\r\n"
		}
		co.headers = cstr(hs)
	}
	if strings.ContainsRune(o.Origin, 0) || strings.ContainsRune(o.Subprotocols, 0) {
		return nil, &OpError{Op: op + ": origin or subprotocols", Code: ErrInvalid}
	}
	if o.Origin != "" {
		co.origin = cstr(o.Origin)
	}
	if o.Deflate {
		co.deflate.enabled = 1
	}
	co.limits.max_message_size = C.size_t(o.MaxMessageSize)
	co.limits.max_buffered = C.size_t(o.MaxBuffered)
	if o.TLSCAFile != "" {
		co.tls.ca_file = cstr(o.TLSCAFile)
	}
	if o.TLSInsecure {
		co.tls.insecure = 1
	}
	if o.TLSServerName != "" {
		co.tls.server_name = cstr(o.TLSServerName)
	}
	if dl, ok := ctx.Deadline(); ok {
		co.limits.handshake_timeout_ms = C.int(durationMs(time.Until(dl)))
	}

	c := newConn(h)
	c.queueHigh = queueHigh
	c.onMessage = o.OnMessage
	c.onClose = o.OnClose
	c.onPong = o.OnPong
	h.track(c)
	var raw *C.wh_conn
	h.connectMu.Lock()
	rc := C.wh_go_connect(h.raw, cstr(url), &co, C.uintptr_t(c.id), &raw)
	if rc < 0 {
		h.connectMu.Unlock()
		unregisterConn(c.id)
		h.untrack(c)
		return nil, &OpError{Op: op, Code: Errno(rc)}
	}
	c.adopt(raw)
	h.connectMu.Unlock()

	select {
	case <-c.opened:
		return c, nil
	case <-c.done:
		return nil, c.dialError(op)
	case <-ctx.Done():
		// Wait for its close event too, so nothing of it is left behind.
		_ = c.Terminate()
		<-c.done
		return nil, fmt.Errorf("wirehub: %s: %w", op, ctx.Err())
	}
}

func (c *Conn) dialError(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var code Errno = ErrHandshake
	var e Errno
	if c.closeErr != nil && errors.As(c.closeErr.Err, &e) {
		code = e
	}
	return &OpError{Op: op, Code: code, Status: c.status}
}
