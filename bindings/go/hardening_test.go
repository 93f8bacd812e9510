package wirehub

// Issue 11 in the Go binding: an OnUpgrade that fails refuses the client
// (fail closed), and the engine's hardening limits are reachable from
// ServerConfig and DialOptions, invalid values refused before anything
// starts. Loopback only; every wait is bounded.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hookedServer listens with hook as OnUpgrade; OnError reports go to errs.
func hookedServer(t *testing.T, hook func(r *Request)) (*Server, chan error) {
	t.Helper()
	errs := make(chan error, 8)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnUpgrade: hook,
		OnError:   func(err error) { errs <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, errs
}

// rawUpgrade sends an upgrade request by hand and returns the response.
func rawUpgrade(t *testing.T, s *Server) *http.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr(), wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(wait))
	_, err = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func assertRefusedWith500(t *testing.T, s *Server, errs chan error, why string) {
	t.Helper()
	c, err := Dial(ctxT(t), wsURL(s, "/"), nil)
	if err == nil {
		c.Close()
		t.Fatal("the client was admitted")
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Code != ErrStatus || oe.Status != 500 {
		t.Fatal("want a refusal with HTTP 500, got", err)
	}
	select {
	case e := <-errs:
		if !strings.Contains(e.Error(), why) || !errors.Is(e, ErrInternal) {
			t.Error("OnError got", e)
		}
	case <-time.After(wait):
		t.Fatal("OnError was not told")
	}
	resp := rawUpgrade(t, s)
	if resp.StatusCode != 500 {
		t.Error("raw upgrade answered", resp.Status)
	}
	if s.Connections() != 0 {
		t.Error("open connections:", s.Connections())
	}
}

func TestUpgradeHookThatPanicsRefusesWith500(t *testing.T) {
	s, errs := hookedServer(t, func(r *Request) { panic("hook bug") })
	assertRefusedWith500(t, s, errs, "panicked: hook bug")
}

func TestUpgradeHookThatReturnsWithoutAnsweringRefusesWith500(t *testing.T) {
	s, errs := hookedServer(t, func(r *Request) { _ = r.Path() })
	assertRefusedWith500(t, s, errs, "without answering")
}

func TestUpgradeHookThatPanicsAfterAcceptingKeepsItsAnswer(t *testing.T) {
	s, errs := hookedServer(t, func(r *Request) {
		_ = r.Accept("")
		panic("after the answer")
	})
	dial(t, wsURL(s, "/"), nil)
	select {
	case e := <-errs:
		if !strings.Contains(e.Error(), "panicked") {
			t.Error(e)
		}
	case <-time.After(wait):
		t.Fatal("OnError was not told")
	}
}

// Needs the engine's idle timeout (issue 11).
func TestIdleTimeoutClosesASilentConnectionWith1001(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), nil)
	t0 := time.Now()
	_, _, err = c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatal("want a close with 1001, got", err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 5*time.Second {
		t.Error("closed after", d)
	}
}

// Needs the engine's idle timeout (issue 11).
func TestDialIdleTimeoutClosesWith1001(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), &DialOptions{IdleTimeout: 300 * time.Millisecond})
	_, _, err = c.Read(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 || !errors.Is(err, ErrIdle) {
		t.Fatal("want a close with 1001 and ErrIdle, got", err)
	}
}

func TestHardeningLimitsWithValidValuesServe(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{MaxHandshakes: 8, IdleTimeout: 30 * time.Second, MessageTimeout: 5 * time.Second, MaxMemory: 64 << 20},
		{MaxHandshakes: NoLimit, MessageTimeout: NoLimit, MaxMemory: NoLimit},
	} {
		cfg.OnMessage = func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) }
		s, err := Listen("127.0.0.1:0", &cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, wsURL(s, "/"), &DialOptions{IdleTimeout: 30 * time.Second, MessageTimeout: NoLimit})
		if _, err := c.Send(Text, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, got := read(t, c); got != "hi" {
			t.Error(got)
		}
		_ = s.Close()
	}
}

func TestInvalidHardeningLimitsFailWithErrInvalid(t *testing.T) {
	for name, cfg := range map[string]ServerConfig{
		"MaxHandshakes":  {MaxHandshakes: -2},
		"IdleTimeout":    {IdleTimeout: -time.Second},
		"MessageTimeout": {MessageTimeout: -time.Second},
		"MaxMemory":      {MaxMemory: -5},
	} {
		s, err := Listen("127.0.0.1:0", &cfg)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	s := echoServer(t)
	for name, o := range map[string]DialOptions{
		"IdleTimeout":    {IdleTimeout: -time.Millisecond},
		"MessageTimeout": {MessageTimeout: -time.Minute},
	} {
		o := o
		c, err := Dial(ctxT(t), wsURL(s, "/"), &o)
		if err == nil {
			c.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// handshakesLeftOpen opens n sockets that never send a request and says
// which are still open after 300 ms.
func handshakesLeftOpen(t *testing.T, addr string, n int) []string {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	time.Sleep(300 * time.Millisecond)
	states := make([]string, n)
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			states[i] = "open"
		} else {
			states[i] = "closed"
		}
	}
	return states
}

func TestMaxHandshakesClosesSocketsPastTheCapAtOnce(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{MaxHandshakes: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := strings.Join(handshakesLeftOpen(t, s.Addr(), 3), " "); got != "open open closed" {
		t.Error(got)
	}
	dial(t, wsURL(s, "/"), nil) // finished handshakes free their slots
}

func TestMessageTimeoutClosesAnUnfinishedMessageWith1008(t *testing.T) {
	closed := make(chan *CloseError, 1)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		MessageTimeout: 300 * time.Millisecond,
		OnOpen:         func(c *Conn) {},
		OnClose:        func(c *Conn, info *CloseError) { closed <- info },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nc, err := net.DialTimeout("tcp", s.Addr(), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatal(resp, err)
	}
	t0 := time.Now()
	_, _ = nc.Write([]byte{0x81, 0x80 | 10, 1, 2, 3, 4, 'a', 'b', 'c'}) // 3 of 10 payload bytes
	frame := make([]byte, 4)
	if _, err := io.ReadFull(br, frame); err != nil {
		t.Fatal(err)
	}
	if frame[0] != 0x88 || int(frame[2])<<8|int(frame[3]) != 1008 {
		t.Errorf("got % x, want a close frame with 1008", frame)
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Error("closed after", d)
	}
	select {
	case info := <-closed:
		if info.Code != 1008 {
			t.Error(info)
		}
	case <-time.After(wait):
		t.Error("no OnClose")
	}
}

// streamServer writes n messages of size bytes to each connection, waiting
// for its send buffer to drain (Write), and counts them in sent.
func streamServer(t *testing.T, n, size int, sent *atomic.Int64) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnOpen: func(c *Conn) {
			go func() {
				payload := strings.Repeat("s", size)
				for i := 0; i < n; i++ {
					if err := c.Write(context.Background(), Text, []byte(fmt.Sprintf("%05d%s", i, payload))); err != nil {
						return
					}
					sent.Add(1)
				}
			}()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestReadQueueIsCappedAndTheSenderBacksUp(t *testing.T) {
	const n, size = 10000, 4000 // 40 MB: more than loopback's socket buffers hold
	var sent atomic.Int64
	s := streamServer(t, n, size, &sent)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxQueue: 16})
	time.Sleep(time.Second) // not reading
	c.mu.Lock()
	held := len(c.queue)
	c.mu.Unlock()
	// The engine applies the pause after its current read turn, so a few
	// more than 16 may be queued; without the cap all of it would be.
	if held < 16 || held >= n/4 {
		t.Errorf("%d of %d messages queued unread (MaxQueue 16)", held, n)
	}
	t.Logf("not reading for 1 s: %d messages queued, %d of %d sent", held, sent.Load(), n)
	if sent.Load() >= n {
		t.Error("the sender was not held back")
	}
	for i := 0; i < n; i++ {
		_, data, err := c.Read(ctxT(t))
		if err != nil {
			t.Fatal(i, err)
		}
		if want := fmt.Sprintf("%05d", i); string(data[:5]) != want {
			t.Fatalf("message %d is %s", i, data[:5])
		}
	}
}

// The cap's pause and Read's resume reach the engine in the order Conn
// decided them. Here the I/O thread is slow to pass its pause on, and Read
// brings the queue down to its low mark meanwhile: the engine must still
// end up reading, or the stream stalls with nothing queued.
func TestReadResumesEvenWhenThePauseReachesTheEngineLate(t *testing.T) {
	testHookPauseWindow = func() { time.Sleep(20 * time.Millisecond) }
	t.Cleanup(func() { testHookPauseWindow = nil })
	const n, size = 2000, 100
	var sent atomic.Int64
	s := streamServer(t, n, size, &sent)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxQueue: 16})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("read stalled at message %d of %d: %v", i, n, err)
		}
	}
}

func TestCloseWhileReadingIsPausedCompletesTheHandshake(t *testing.T) {
	var sent atomic.Int64
	s := streamServer(t, 10000, 4000, &sent)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxQueue: 4})
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	err := c.Wait(ctxT(t))
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 {
		t.Error("want a clean close with 1000, got", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Error("close took", d)
	}
}

func TestInvalidMaxQueueFailsWithErrInvalid(t *testing.T) {
	if _, err := Listen("127.0.0.1:0", &ServerConfig{MaxQueue: -4}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "MaxQueue") {
		t.Error(err)
	}
	s := echoServer(t)
	if _, err := Dial(ctxT(t), wsURL(s, "/"), &DialOptions{MaxQueue: -2}); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
}
