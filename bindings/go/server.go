package wirehub

/*
#include "wirehub_go.h"
*/
import "C"

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ServerConfig configures Listen. The handlers run on the engine's I/O
// thread: they must not block (no Write, no waiting on channels another
// handler fills); Send, Broadcast, Close and the like are fine.
type ServerConfig struct {
	IOThreads      int    // I/O threads (default 1)
	Backlog        int    // listen backlog (default 511)
	Subprotocols   string // "chat, superchat": preference order
	MaxConnections int    // above it new upgrades get 503 (0: unlimited)
	MaxMessageSize int    // default 16 MiB
	Deflate        bool   // negotiate permessage-deflate
	CloseTimeout   time.Duration
	TLSCertFile    string // PEM certificate chain: serve wss://
	TLSKeyFile     string // PEM private key

	// Hardening limits (issue 11). Zero values are the engine's defaults;
	// NoLimit turns a limit off where it says so; other negative values make
	// Listen fail with ErrInvalid.
	//
	// MaxHandshakes caps sockets accepted but not yet open (TLS, the HTTP
	// upgrade, OnUpgrade deciding); a socket past it is closed at once.
	// Default 1024; NoLimit for none.
	MaxHandshakes int
	// IdleTimeout closes an open connection with 1001 when nothing arrived
	// from the peer for this long. Default 0: off.
	IdleTimeout time.Duration
	// MessageTimeout: a frame or fragmented message that has begun must be
	// complete within it, else the connection closes with 1008. Default
	// 60 s; NoLimit turns it off.
	MessageTimeout time.Duration
	// MaxMemory is the server-wide budget in bytes for what is held for
	// peers (partial frames, messages being assembled, send buffers): input
	// past it closes that connection with 1008, a send past it fails with
	// ErrDropped. Default 1 GiB; NoLimit for none.
	MaxMemory int64
	// MaxQueue caps the messages waiting for Conn.Read (without OnMessage):
	// reading from that peer pauses there and resumes at a quarter of it,
	// as python-websockets' max_queue. Default 16; NoLimit never pauses.
	MaxQueue int

	// Broker attaches the server to Redis for scale-out (issue 13):
	// "redis://[[user]:password@]host[:port][/db]", or "rediss://" for TLS.
	// Publish then also reaches the subscribers of the topic on every server
	// attached to the same Redis with the same BrokerPrefix; Broadcast stays
	// local. Listen waits (up to BrokerConnectTimeout) for Redis to answer
	// and fails if it does not: ErrURL for a malformed URL, ErrConnRefused,
	// ErrResolve or ErrTimedOut for an unreachable Redis, ErrAccess for a
	// refused password, ErrTLS, else ErrBroker. After that, Redis going away
	// never fails a Publish: local subscribers still get it, what other
	// nodes miss is counted (BrokerStats.Dropped), and the engine
	// reconnects by itself. Empty: no broker.
	Broker string
	// BrokerPrefix is the Redis channel prefix (a topic's channel is prefix
	// + topic), so applications can share one Redis. Default "wirehub:".
	BrokerPrefix string
	// BrokerCAFile (rediss://): trust the CAs in this PEM file, else the
	// system's. BrokerInsecure: do not verify Redis's certificate.
	BrokerCAFile   string
	BrokerInsecure bool
	// BrokerConnectTimeout bounds Listen's wait for Redis and each
	// reconnect attempt. Default 5 s.
	BrokerConnectTimeout time.Duration
	// BrokerMaxPending caps the bytes of publishes handed to Redis but not
	// yet written; past it a publish for other nodes is dropped and counted.
	// Default 8 MiB.
	BrokerMaxPending int

	// OnUpgrade decides each handshake: call r.Accept or r.Reject before it
	// returns. Left unanswered, or if OnUpgrade panics, the handshake is
	// refused with HTTP 500 and OnError is told (stderr without OnError).
	OnUpgrade func(r *Request)
	// OnOpen receives each new connection. Without OnOpen and OnMessage,
	// connections wait for Accept (call it, or they pile up).
	OnOpen func(c *Conn)
	// OnMessage receives every message of every connection. data points into
	// the engine's receive buffer and is valid only during the call (copy it
	// to keep it). Without it, messages wait for Conn.Read.
	OnMessage func(c *Conn, typ MessageType, data []byte)
	// OnClose is each connection's last call.
	OnClose func(c *Conn, info *CloseError)
	// OnPong receives pongs.
	OnPong func(c *Conn, data []byte)
	// OnError receives non-fatal server errors (e.g. accept failing).
	OnError func(err error)
}

// NoLimit turns off the ServerConfig and DialOptions limits that allow it.
const NoLimit = -1

// limitMs converts a timeout for the C ABI: 0 stays 0 (the default), off
// (allowed for NoLimit) becomes -1, other negative values are an error.
func limitMs(name string, d time.Duration, offAllowed bool) (C.int, error) {
	switch {
	case d == NoLimit && offAllowed:
		return -1, nil
	case d < 0:
		return 0, &OpError{Op: name + " must not be negative", Code: ErrInvalid}
	case d > 0 && d < time.Millisecond:
		return 0, &OpError{Op: name + " must be 0 or at least 1 ms", Code: ErrInvalid}
	case d.Milliseconds() > 1<<31-1:
		return 0, &OpError{Op: name + " is too long", Code: ErrInvalid}
	}
	return C.int(d.Milliseconds()), nil
}

// hardening fills the appended wh_server_options fields from cfg.
func (cfg *ServerConfig) hardening(o *C.wh_server_options) error {
	switch {
	case cfg.MaxHandshakes == NoLimit:
		o.max_handshakes = -1
	case cfg.MaxHandshakes < 0 || cfg.MaxHandshakes > 1<<31-1:
		return &OpError{Op: "MaxHandshakes must be positive, 0 (default) or NoLimit", Code: ErrInvalid}
	default:
		o.max_handshakes = C.int(cfg.MaxHandshakes)
	}
	switch {
	case cfg.MaxMemory == NoLimit:
		o.max_memory = ^C.size_t(0)
	case cfg.MaxMemory < 0:
		return &OpError{Op: "MaxMemory must be positive, 0 (default) or NoLimit", Code: ErrInvalid}
	default:
		o.max_memory = C.size_t(cfg.MaxMemory)
	}
	var err error
	if o.idle_timeout_ms, err = limitMs("IdleTimeout", cfg.IdleTimeout, false); err != nil {
		return err
	}
	o.message_timeout_ms, err = limitMs("MessageTimeout", cfg.MessageTimeout, true)
	return err
}

// Server is a listening WebSocket server with its own I/O threads.
type Server struct {
	raw  *C.wh_server
	hub  *hub
	cfg  ServerConfig
	port int
	host string

	// Read-locked around calls on raw; Close write-locks it, so no call can
	// use the handle after it is freed. Handlers use TryRLock: a handler
	// running while Close waits for the I/O threads must not block.
	life sync.RWMutex

	queueHigh int // Read's queue cap of its connections

	acceptMu sync.Mutex
	pending  []*Conn
	acceptCh chan struct{}
	closed   chan struct{}
	once     sync.Once
	closeErr error
}

// Listen starts a server on addr ("127.0.0.1:8080", "[::1]:0", ":0"; port 0
// picks a free port, see Port).
func Listen(addr string, cfg *ServerConfig) (*Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	op := "listen " + addr
	if err != nil {
		return nil, &OpError{Op: op + ": " + err.Error(), Code: ErrAddr}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, &OpError{Op: op + ": invalid port", Code: ErrAddr}
	}
	s := &Server{acceptCh: make(chan struct{}, 1), closed: make(chan struct{})}
	if cfg != nil {
		s.cfg = *cfg
	}
	var o C.wh_server_options
	if s.queueHigh, err = maxQueue(s.cfg.MaxQueue); err != nil {
		err.(*OpError).Op = op + ": " + err.(*OpError).Op
		return nil, err
	}
	if err := s.cfg.hardening(&o); err != nil {
		err.(*OpError).Op = op + ": " + err.(*OpError).Op
		return nil, err
	}
	h, err := newHub(s.cfg.IOThreads)
	if err != nil {
		return nil, err
	}
	h.server = s
	s.hub = h

	if host == "" {
		host = "0.0.0.0"
	}
	chost := C.CString(host)
	defer C.free(unsafe.Pointer(chost))
	o.host = chost
	o.port = C.int(port)
	o.backlog = C.int(s.cfg.Backlog)
	if s.cfg.OnUpgrade != nil {
		o.flags |= C.WH_SERVER_UPGRADE_HOOK
	}
	if s.cfg.Subprotocols != "" {
		sp := C.CString(s.cfg.Subprotocols)
		defer C.free(unsafe.Pointer(sp))
		o.subprotocols = sp
	}
	o.max_connections = C.int(s.cfg.MaxConnections)
	o.limits.max_message_size = C.size_t(s.cfg.MaxMessageSize)
	o.limits.close_timeout_ms = C.int(durationMs(s.cfg.CloseTimeout))
	if s.cfg.Deflate {
		o.deflate.enabled = 1
	}
	if s.cfg.TLSCertFile != "" || s.cfg.TLSKeyFile != "" {
		cert, key := C.CString(s.cfg.TLSCertFile), C.CString(s.cfg.TLSKeyFile)
		defer C.free(unsafe.Pointer(cert))
		defer C.free(unsafe.Pointer(key))
		o.tls.cert_file, o.tls.key_file = cert, key
	}
	if rc := C.wh_go_listen(h.raw, &o, &s.raw); rc < 0 {
		_ = h.destroy(0, nil)
		return nil, opErr(op, rc)
	}
	if err := s.attachBroker(); err != nil {
		_ = h.destroy(0, nil)
		return nil, err
	}
	s.port = int(C.wh_server_port(s.raw))
	s.host = host
	return s, nil
}

// attachBroker connects the new server to ServerConfig.Broker, if set. It
// blocks until Redis answers (or BrokerConnectTimeout), on the calling
// goroutine's thread; from a handler (an I/O thread) it fails with ErrState.
func (s *Server) attachBroker() error {
	cfg := &s.cfg
	if cfg.Broker == "" {
		if cfg.BrokerPrefix != "" || cfg.BrokerCAFile != "" || cfg.BrokerInsecure ||
			cfg.BrokerConnectTimeout != 0 || cfg.BrokerMaxPending != 0 {
			return &OpError{Op: "broker options without a Broker URL", Code: ErrInvalid}
		}
		return nil
	}
	// The URL may carry a password: errors name it without one.
	op := "broker " + redactURL(cfg.Broker)
	if cfg.BrokerMaxPending < 0 {
		return &OpError{Op: op + ": BrokerMaxPending must not be negative", Code: ErrInvalid}
	}
	var o C.wh_broker_options
	o.size = C.size_t(unsafe.Sizeof(o))
	var err error
	if o.connect_timeout_ms, err = limitMs("BrokerConnectTimeout", cfg.BrokerConnectTimeout, false); err != nil {
		err.(*OpError).Op = op + ": " + err.(*OpError).Op
		return err
	}
	o.max_pending = C.size_t(cfg.BrokerMaxPending)
	// C strings cannot hold a NUL: one in the URL would cut it short.
	for _, v := range []string{cfg.Broker, cfg.BrokerPrefix, cfg.BrokerCAFile} {
		if strings.IndexByte(v, 0) >= 0 {
			return &OpError{Op: op + ": a NUL byte in the broker options", Code: ErrInvalid}
		}
	}
	url := C.CString(cfg.Broker)
	defer C.free(unsafe.Pointer(url))
	o.url = url
	if cfg.BrokerPrefix != "" {
		p := C.CString(cfg.BrokerPrefix)
		defer C.free(unsafe.Pointer(p))
		o.prefix = p
	}
	if cfg.BrokerCAFile != "" {
		ca := C.CString(cfg.BrokerCAFile)
		defer C.free(unsafe.Pointer(ca))
		o.ca_file = ca
	}
	if cfg.BrokerInsecure {
		o.insecure = 1
	}
	return opErr(op, C.wh_server_set_broker(s.raw, &o))
}

// String prints the config as %+v would, with the Broker URL's user and
// password replaced by "***": logging a config must not leak Redis's
// password. GoString does the same for %#v.
func (c ServerConfig) String() string {
	type plain ServerConfig // without the methods, so Sprintf does not recurse
	p := plain(c)
	p.Broker = redactURL(p.Broker)
	return fmt.Sprintf("%+v", p)
}

// GoString: see String.
func (c ServerConfig) GoString() string {
	type ServerConfig_ ServerConfig
	p := ServerConfig_(c)
	p.Broker = redactURL(p.Broker)
	return strings.Replace(fmt.Sprintf("%#v", p), "ServerConfig_", "ServerConfig", 1)
}

// redactURL replaces the user and password of a URL, if any, with "***".
func redactURL(u string) string {
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	end := len(u)
	if i := strings.IndexByte(u[start:], '/'); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(u[start:end], '@'); at >= 0 {
		return u[:start] + "***" + u[start+at:]
	}
	return u
}

// BrokerStats are the counters of a server's broker (Server.BrokerStats).
type BrokerStats struct {
	Connected  bool   // the connection to Redis is up
	Channels   int    // Redis channels subscribed now: topics with a local subscriber
	Published  uint64 // messages written to Redis for other nodes
	Received   uint64 // messages from other nodes delivered to local subscribers
	Dropped    uint64 // publishes other nodes did not get (Redis down, BrokerMaxPending)
	Malformed  uint64 // messages on our channels dropped as unreadable (another publisher's, ...)
	Reconnects uint64 // times the connection to Redis came back after a loss
}

// BrokerStats returns the broker's counters: ErrState for a server without
// a broker (ServerConfig.Broker), ErrShutdown once closed.
func (s *Server) BrokerStats() (BrokerStats, error) {
	if !s.life.TryRLock() {
		return BrokerStats{}, &OpError{Op: "broker stats", Code: ErrShutdown}
	}
	defer s.life.RUnlock()
	if s.raw == nil {
		return BrokerStats{}, &OpError{Op: "broker stats", Code: ErrShutdown}
	}
	var st C.wh_broker_stats
	st.size = C.size_t(unsafe.Sizeof(st))
	if rc := C.wh_server_broker_stats(s.raw, &st); rc < 0 {
		return BrokerStats{}, &OpError{Op: "broker stats", Code: Errno(rc)}
	}
	return BrokerStats{
		Connected:  st.connected != 0,
		Channels:   int(st.channels),
		Published:  uint64(st.published),
		Received:   uint64(st.received),
		Dropped:    uint64(st.dropped),
		Malformed:  uint64(st.malformed),
		Reconnects: uint64(st.reconnects),
	}, nil
}

// upgrade runs OnUpgrade on the I/O thread. It fails closed: a hook that
// panics or returns without answering refuses the client with 500, and the
// application hears of it through OnError (stderr without one).
func (s *Server) upgrade(r *Request) {
	var why string
	func() {
		defer func() {
			if p := recover(); p != nil {
				why = fmt.Sprintf("OnUpgrade panicked: %v", p)
			}
		}()
		s.cfg.OnUpgrade(r)
		if !r.answered {
			why = "OnUpgrade returned without answering"
		}
	}()
	if why == "" {
		return
	}
	target := r.Target()
	if !r.answered {
		_ = r.Reject(500, "Internal Server Error\n")
	}
	err := &OpError{Op: "upgrade " + target + ": " + why + "; refused with HTTP 500", Code: ErrInternal, Status: 500}
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
		return
	}
	fmt.Fprintln(os.Stderr, err)
}

// opened runs on the I/O thread at a server connection's WH_EV_OPEN.
func (s *Server) opened(raw *C.wh_conn) {
	c := newConn(s.hub)
	c.adopt(raw)
	c.onMessage = s.cfg.OnMessage
	c.queueHigh = s.queueHigh
	c.onClose = s.cfg.OnClose
	c.onPong = s.cfg.OnPong
	C.wh_go_set_conn_handle(raw, C.uintptr_t(c.id))
	s.hub.track(c)
	c.markOpen()
	if s.cfg.OnOpen != nil {
		s.cfg.OnOpen(c)
		return
	}
	if s.cfg.OnMessage != nil {
		return // a handler-driven server: nobody will Accept
	}
	s.acceptMu.Lock()
	s.pending = append(s.pending, c)
	s.acceptMu.Unlock()
	select {
	case s.acceptCh <- struct{}{}:
	default:
	}
}

// Accept returns the next new connection (when ServerConfig.OnOpen is nil).
func (s *Server) Accept(ctx context.Context) (*Conn, error) {
	for {
		select {
		case <-s.closed:
			return nil, &OpError{Op: "accept", Code: ErrShutdown}
		default:
		}
		s.acceptMu.Lock()
		if len(s.pending) > 0 {
			c := s.pending[0]
			s.pending[0] = nil
			s.pending = s.pending[1:]
			s.acceptMu.Unlock()
			return c, nil
		}
		s.acceptMu.Unlock()
		select {
		case <-s.acceptCh:
		case <-s.closed:
			return nil, &OpError{Op: "accept", Code: ErrShutdown}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Port is the bound port.
func (s *Server) Port() int { return s.port }

// Addr is "HOST:PORT" with the bound port, for building URLs (a wildcard
// host gives the loopback address).
func (s *Server) Addr() string {
	h := s.host
	switch h {
	case "", "0.0.0.0":
		h = "127.0.0.1"
	case "::":
		h = "::1"
	}
	return net.JoinHostPort(h, strconv.Itoa(s.port))
}

// Connections is the number of open connections.
func (s *Server) Connections() int {
	if !s.life.TryRLock() {
		return 0
	}
	defer s.life.RUnlock()
	if s.raw == nil {
		return 0
	}
	return int(C.wh_server_connections(s.raw))
}

// Broadcast sends a message to every open connection but except (may be
// nil), framing it once; it returns how many it was queued for.
func (s *Server) Broadcast(typ MessageType, data []byte, except *Conn) (int, error) {
	if !s.life.TryRLock() {
		return 0, &OpError{Op: "broadcast", Code: ErrShutdown}
	}
	defer s.life.RUnlock()
	if s.raw == nil {
		return 0, &OpError{Op: "broadcast", Code: ErrShutdown}
	}
	// An integer, not an unsafe.Pointer, for the reason given in Conn.Send:
	// wh_server_broadcast frames (copies) the bytes once before it returns
	// and keeps no pointer to them; KeepAlive below holds them until then.
	var p uintptr
	if len(data) > 0 {
		p = uintptr(unsafe.Pointer(&data[0]))
	}
	var ex *C.wh_conn
	if except != nil {
		ex = except.raw
	}
	rc := C.wh_go_broadcast(s.raw, C.uintptr_t(p), C.size_t(len(data)), C.int(typ), ex)
	runtime.KeepAlive(except)
	runtime.KeepAlive(data)
	if rc < 0 {
		return 0, &OpError{Op: "broadcast", Code: Errno(rc)}
	}
	return int(rc), nil
}

// Publish sends a message to every subscriber of topic but except.
func (s *Server) Publish(topic string, typ MessageType, data []byte, except *Conn) (int, error) {
	if !s.life.TryRLock() {
		return 0, &OpError{Op: "publish", Code: ErrShutdown}
	}
	defer s.life.RUnlock()
	if s.raw == nil {
		return 0, &OpError{Op: "publish", Code: ErrShutdown}
	}
	t := C.CString(topic)
	defer C.free(unsafe.Pointer(t))
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var ex *C.wh_conn
	if except != nil {
		ex = except.raw
	}
	rc := C.wh_server_publish(s.raw, t, p, C.size_t(len(data)), C.int(typ), ex)
	runtime.KeepAlive(except)
	if rc < 0 {
		return 0, &OpError{Op: "publish", Code: Errno(rc)}
	}
	return int(rc), nil
}

// Close stops the server: every connection is closed with 1001 (up to 5 s
// for the close handshakes), every handler has returned, the I/O threads are
// gone. Called from a handler it returns at once and finishes in the
// background. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.life.Lock()
		raw := s.raw
		s.raw = nil
		_ = raw
		// The hub closes its server itself; the lock is released once the
		// engine is gone (possibly on another goroutine, see hub.destroy).
		s.closeErr = s.hub.destroy(0, s.life.Unlock)
	})
	return s.closeErr
}

// Request is a WebSocket handshake waiting for ServerConfig.OnUpgrade's
// answer. It is valid only during that call.
type Request struct {
	raw      *C.wh_request
	answered bool
}

func (r *Request) str(f func(*C.wh_request) *C.char) string {
	if r.answered {
		return ""
	}
	return C.GoString(f(r.raw))
}

func (r *Request) Method() string {
	return r.str(func(q *C.wh_request) *C.char { return C.wh_request_method(q) })
}

// Target is "/path?query" as sent.
func (r *Request) Target() string {
	return r.str(func(q *C.wh_request) *C.char { return C.wh_request_target(q) })
}
func (r *Request) Path() string {
	return r.str(func(q *C.wh_request) *C.char { return C.wh_request_path(q) })
}
func (r *Request) Query() string {
	return r.str(func(q *C.wh_request) *C.char { return C.wh_request_query(q) })
}

// Subprotocols is what the client offered, as sent ("a, b").
func (r *Request) Subprotocols() string {
	return r.str(func(q *C.wh_request) *C.char { return C.wh_request_subprotocols(q) })
}

// RemoteAddr is the client's address and port.
func (r *Request) RemoteAddr() (string, int) {
	if r.answered {
		return "", 0
	}
	return C.GoString(C.wh_request_remote_address(r.raw)), int(C.wh_request_remote_port(r.raw))
}

// Header returns a request header by case-insensitive name ("" if absent).
func (r *Request) Header(name string) string {
	if r.answered {
		return ""
	}
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	return C.GoString(C.wh_request_header(r.raw, n))
}

// Accept accepts the handshake with subprotocol ("" for none).
func (r *Request) Accept(subprotocol string) error {
	if r.answered {
		return &OpError{Op: "accept: already answered", Code: ErrState}
	}
	r.answered = true
	var sp *C.char
	if subprotocol != "" {
		sp = C.CString(subprotocol)
		defer C.free(unsafe.Pointer(sp))
	}
	return opErr("accept", C.wh_go_request_accept(r.raw, sp))
}

// Reject refuses the handshake with an HTTP status (e.g. 403) and a body.
func (r *Request) Reject(status int, body string) error {
	if r.answered {
		return &OpError{Op: "reject: already answered", Code: ErrState}
	}
	r.answered = true
	b := C.CString(body)
	defer C.free(unsafe.Pointer(b))
	return opErr("reject", C.wh_request_respond(r.raw, C.int(status), nil, unsafe.Pointer(b), C.size_t(len(body))))
}
