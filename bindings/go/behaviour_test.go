package wirehub

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond until it holds, failing the test after `wait`.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stalledPeer is a WebSocket server that answers the handshake and then
// reads only what the test tells it to (io.CopyN on conn). Its receive
// buffer is fixed (SO_RCVBUF, so the kernel does not grow it), so a client
// sending megabytes keeps most of them in its own send buffer until the
// peer reads: what Write waits on.
type stalledPeer struct {
	url  string
	conn net.Conn
}

func newStalledPeer(t *testing.T) (*stalledPeer, *Conn) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := &stalledPeer{url: "ws://" + l.Addr().String() + "/"}
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- err
			return
		}
		br := bufio.NewReader(c)
		key := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				c.Close()
				accepted <- err
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
				key = strings.TrimSpace(v)
			}
		}
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		_, err = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
			"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		// The client sends nothing before the 101, so br holds no frame bytes.
		p.conn = c
		accepted <- err
	}()
	c, err := Dial(ctxT(t), p.url, &DialOptions{MaxBuffered: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Terminate()
		p.conn.Close()
		_ = c.Wait(ctxT(t))
	})
	return p, c
}

// frameLen is the size of a client frame (masked) carrying n bytes.
func frameLen(n int) int64 {
	switch {
	case n < 126:
		return int64(n) + 6
	case n < 1<<16:
		return int64(n) + 8
	}
	return int64(n) + 14
}

// read consumes n bytes in the background; the result arrives on the channel.
func (p *stalledPeer) read(n int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, p.conn, n)
		done <- err
	}()
	return done
}

func recvErr(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		t.Fatalf("after %v: %s", wait, what)
	}
	return nil
}

// The low-water mark under which the engine reports a drain: the default
// high-water mark (64 KiB) / 4; the Go API does not change either.
const lowWater = 16 << 10

func TestServerPortIsTheBoundPort(t *testing.T) {
	s := echoServer(t)
	if s.Port() <= 0 || s.Addr() != fmt.Sprintf("127.0.0.1:%d", s.Port()) {
		t.Fatal(s.Port(), s.Addr())
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port()), wait)
	if err != nil {
		t.Fatal("nothing listens on Port():", err)
	}
	c.Close()
	want := closedPort(t)
	s2, err := Listen(fmt.Sprintf("127.0.0.1:%d", want), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Port() != want {
		t.Error(s2.Port(), "!=", want)
	}
}

func TestCloseErrorMessageNamesCodeReasonAndCause(t *testing.T) {
	clean := &CloseError{Code: 1000, Reason: "bye"}
	if got := clean.Error(); got != `wirehub: connection closed (1000 "bye")` {
		t.Error(got)
	}
	if !errors.Is(clean, ErrClosed) {
		t.Error("a clean close does not wrap ErrClosed")
	}
	reset := &CloseError{Code: 1006, Err: ErrReset}
	if got := reset.Error(); got != `wirehub: connection closed (1006 ""): `+ErrReset.Error() {
		t.Error(got)
	}
	if !errors.Is(reset, ErrReset) || errors.Is(reset, ErrClosed) {
		t.Error("an unclean close wraps its cause, not ErrClosed")
	}
	// And as a real connection reports it.
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	_ = c.CloseWith(4000, "over")
	if err := c.Wait(ctxT(t)); err == nil || err.Error() != `wirehub: connection closed (4000 "over")` {
		t.Error(err)
	}
}

func TestServerSubprotocolsPickInServerPreferenceOrder(t *testing.T) {
	onServer := make(chan string, 3)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		Subprotocols: "chat, superchat",
		OnOpen:       func(c *Conn) { onServer <- c.Subprotocol() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), &DialOptions{Subprotocols: "superchat, chat"})
	if c.Subprotocol() != "chat" {
		t.Errorf("client sees %q, want the server's first choice %q", c.Subprotocol(), "chat")
	}
	if got := <-onServer; got != "chat" {
		t.Errorf("server sees %q", got)
	}
	c2 := dial(t, wsURL(s, "/"), &DialOptions{Subprotocols: "superchat"})
	if c2.Subprotocol() != "superchat" {
		t.Error(c2.Subprotocol())
	}
	<-onServer
	// Nothing in common: the server answers without one, which a client
	// that offered some refuses (as ws does).
	if _, err := Dial(ctxT(t), wsURL(s, "/"), &DialOptions{Subprotocols: "other"}); !errors.Is(err, ErrHandshake) {
		t.Error("nothing in common:", err)
	}
}

func TestServerWithSeveralIOThreadsServesAndBroadcastsToAll(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		IOThreads: 3,
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 6
	var cs []*Conn
	for i := 0; i < n; i++ {
		c := dial(t, wsURL(s, "/"), nil)
		_, _ = c.SendText(fmt.Sprint("echo ", i))
		if _, m := read(t, c); m != fmt.Sprint("echo ", i) {
			t.Fatal(i, m)
		}
		cs = append(cs, c)
	}
	eventually(t, "6 connections", func() bool { return s.Connections() == n })
	if got, err := s.Broadcast(Text, []byte("to all threads"), nil); got != n || err != nil {
		t.Fatal(got, err)
	}
	for _, c := range cs {
		if _, m := read(t, c); m != "to all threads" {
			t.Error(m)
		}
	}
}

func TestDialOnCloseGetsHowTheServerClosed(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _ = c.CloseWith(4001, string(data)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	infos := make(chan *CloseError, 2)
	var calls int32
	c := dial(t, wsURL(s, "/"), &DialOptions{OnClose: func(cc *Conn, info *CloseError) {
		atomic.AddInt32(&calls, 1)
		infos <- info
	}})
	_, _ = c.SendText("bye now")
	select {
	case info := <-infos:
		if info.Code != 4001 || info.Reason != "bye now" || info.Err != nil {
			t.Error(info)
		}
		if err := c.Wait(ctxT(t)); err != error(info) {
			t.Error("Wait and OnClose disagree:", err, info)
		}
	case <-time.After(wait):
		t.Fatal("OnClose not called")
	}
	time.Sleep(20 * time.Millisecond)
	if n := atomic.LoadInt32(&calls); n != 1 {
		t.Error("OnClose called", n, "times")
	}
}

func TestDialMaxMessageSizeFailsLargerMessagesWith1009(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxMessageSize: 64})
	_, _ = c.SendText(strings.Repeat("s", 64))
	if _, m := read(t, c); len(m) != 64 {
		t.Fatal(len(m))
	}
	_, _ = c.SendText(strings.Repeat("b", 65)) // echoed: one byte over our limit
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1009 || !errors.Is(err, ErrTooBig) {
		t.Fatal(err)
	}
}

func TestDialTLSServerNameIsTheNameVerified(t *testing.T) {
	_, u, cert := tlsEchoServer(t, "DNS:localhost") // not valid for 127.0.0.1
	// By the URL's host (127.0.0.1) the certificate does not match.
	if _, err := Dial(ctxT(t), u, &DialOptions{TLSCAFile: cert}); !errors.Is(err, ErrTLS) {
		t.Error("verified as 127.0.0.1:", err)
	}
	if _, err := Dial(ctxT(t), u, &DialOptions{TLSCAFile: cert, TLSServerName: "other.test"}); !errors.Is(err, ErrTLS) {
		t.Error("verified as other.test:", err)
	}
	c := dial(t, u, &DialOptions{TLSCAFile: cert, TLSServerName: "localhost"})
	_, _ = c.SendText("by name")
	if _, m := read(t, c); m != "by name" {
		t.Error(m)
	}
}

func TestWaitReturnsTheContextErrorWhileStillOpen(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	_, _ = c.SendText("still open")
	if _, m := read(t, c); m != "still open" {
		t.Error(m)
	}
}

func TestPublishExceptSkipsThatSubscriber(t *testing.T) {
	opened := make(chan *Conn, 2)
	s, err := Listen("127.0.0.1:0", &ServerConfig{OnOpen: func(c *Conn) {
		_ = c.Subscribe("room")
		opened <- c
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := dial(t, wsURL(s, "/"), nil)
	sa := <-opened
	b := dial(t, wsURL(s, "/"), nil)
	<-opened
	if n, err := s.Publish("room", Text, []byte("not for a"), sa); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := s.Publish("room", Text, []byte("for both"), nil); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	if _, m := read(t, b); m != "not for a" {
		t.Error("b:", m)
	}
	if _, m := read(t, b); m != "for both" {
		t.Error("b:", m)
	}
	if _, m := read(t, a); m != "for both" {
		t.Error("a got the message published except it:", m)
	}
}

func TestSendAboveMaxBufferedIsErrDropped(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxBuffered: 64 << 10})
	big := make([]byte, 100<<10)
	_, err := c.Send(Binary, big)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "send" || !errors.Is(err, ErrDropped) {
		t.Fatal(err)
	}
	if err := c.Write(ctxT(t), Binary, big); !errors.Is(err, ErrDropped) {
		t.Error("Write:", err)
	}
	// Dropped, not fatal: the connection still works.
	_, _ = c.SendText("small")
	if _, m := read(t, c); m != "small" {
		t.Error(m)
	}
}

func TestWriteWaitsUntilItsBytesDrain(t *testing.T) {
	p, c := newStalledPeer(t)
	const size = 16 << 20
	res := make(chan error, 1)
	go func() { res <- c.Write(ctxT(t), Binary, make([]byte, size)) }()
	select {
	case err := <-res:
		n, _ := c.Buffered()
		t.Fatalf("Write returned (%v) with %d bytes buffered and the peer reading nothing", err, n)
	case <-time.After(200 * time.Millisecond):
	}
	read := p.read(frameLen(size))
	if err := recvErr(t, res, "Write did not return once the peer read everything"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Buffered(); err != nil || n > lowWater {
		t.Errorf("Write returned with %d bytes buffered (%v)", n, err)
	}
	if err := recvErr(t, read, "the peer did not get the message"); err != nil {
		t.Fatal(err)
	}
}

func TestWriteReturnsWhenTheConnectionEndsWhileItWaits(t *testing.T) {
	p, c := newStalledPeer(t)
	res := make(chan error, 1)
	go func() { res <- c.Write(ctxT(t), Binary, make([]byte, 16<<20)) }()
	eventually(t, "the message is queued", func() bool { n, _ := c.Buffered(); return n > 1<<20 })
	p.conn.Close() // with unread bytes: a reset
	// The message was accepted; how the connection ended shows on Wait.
	if err := recvErr(t, res, "Write still waiting after the connection ended"); err != nil {
		t.Fatal(err)
	}
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1006 || ce.Err == nil {
		t.Error(err)
	}
}

func TestWriteGivesUpWhenItsContextEndsAndTheConnStaysUsable(t *testing.T) {
	p, c := newStalledPeer(t)
	const size = 16 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Write(ctx, Binary, make([]byte, size)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("gave up after %v", d)
	}
	// Still queued and still sent once the peer reads.
	read := p.read(frameLen(size) + frameLen(5))
	if err := c.Write(ctxT(t), Text, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, read, "the peer did not get both messages"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the send buffer empties", func() bool { n, _ := c.Buffered(); return n == 0 })
}

// A drain event owed to an earlier Send (which nobody waited on) must not
// end a later Write's wait: that Write's bytes are still buffered.
func TestWriteIgnoresADrainOwedToAnEarlierSend(t *testing.T) {
	p, c := newStalledPeer(t)
	const first = 1 << 20
	queued, err := c.Send(Binary, make([]byte, first))
	if err != nil || !queued {
		t.Fatal(queued, err)
	}
	if err := recvErr(t, p.read(frameLen(first)), "the peer did not get the first message"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first message drains", func() bool { n, _ := c.Buffered(); return n == 0 })
	time.Sleep(50 * time.Millisecond) // its drain event follows at once
	const size = 16 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = c.Write(ctx, Binary, make([]byte, size))
	n, _ := c.Buffered()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write returned %v with %d bytes buffered and the peer reading nothing", err, n)
	}
}

// One drain event ends the wait of every Write waiting for it.
func TestWritesWaitingTogetherAllReturnAtTheDrain(t *testing.T) {
	p, c := newStalledPeer(t)
	const size, writers = 12 << 20, 3
	res := make(chan error, writers)
	for i := 0; i < writers; i++ {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait/2)
			defer cancel()
			res <- c.Write(ctx, Binary, make([]byte, size))
		}()
	}
	// Above what one message alone could leave buffered: all have sent.
	eventually(t, "every message is queued", func() bool { n, _ := c.Buffered(); return n > (writers-1)*size })
	read := p.read(writers * frameLen(size))
	for i := 0; i < writers; i++ {
		if err := recvErr(t, res, "a Write still waiting after the drain"); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if err := recvErr(t, read, "the peer did not get every message"); err != nil {
		t.Fatal(err)
	}
}

// Dials and closes many connections against one server: afterwards the
// server counts none, every close event arrived, no goroutine is left.
func TestConnectCloseCycleLeavesNothingBehind(t *testing.T) {
	var closes int32
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
		OnClose:   func(c *Conn, info *CloseError) { atomic.AddInt32(&closes, 1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The client hub exists once a first dial has run.
	warm := dial(t, wsURL(s, "/"), nil)
	_ = warm.Close()
	_ = warm.Wait(ctxT(t))
	eventually(t, "the warm-up connection closes", func() bool { return atomic.LoadInt32(&closes) == 1 })
	runtime.GC()
	before := runtime.NumGoroutine()
	const cycles = 50
	for i := 0; i < cycles; i++ {
		c, err := Dial(ctxT(t), wsURL(s, "/"), nil)
		if err != nil {
			t.Fatal(i, err)
		}
		if i%2 == 0 { // half of them carry a message first
			_, _ = c.SendText("x")
			read(t, c)
		}
		if err := c.Close(); err != nil {
			t.Fatal(i, err)
		}
		if err := c.Wait(ctxT(t)); !errors.Is(err, ErrClosed) {
			t.Fatal(i, err)
		}
	}
	eventually(t, "the server counts no connection", func() bool { return s.Connections() == 0 })
	eventually(t, "every server-side close event arrived", func() bool { return atomic.LoadInt32(&closes) == cycles+1 })
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
