package wirehub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Every wait in these tests is bounded by this.
const wait = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func echoServer(t *testing.T) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func wsURL(s *Server, path string) string { return "ws://" + s.Addr() + path }

func dial(t *testing.T, url string, o *DialOptions) *Conn {
	t.Helper()
	c, err := Dial(ctxT(t), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func read(t *testing.T, c *Conn) (MessageType, string) {
	t.Helper()
	typ, data, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return typ, string(data)
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func TestErrnoDescribesEveryCode(t *testing.T) {
	for e := ErrBroker; e <= ErrInvalid; e++ {
		if !strings.HasPrefix(e.Name(), "WH_E") || e.Error() == "" {
			t.Errorf("%d: %q %q", int(e), e.Name(), e.Error())
		}
	}
	if ErrClosed.Name() != "WH_ECLOSED" {
		t.Error(ErrClosed.Name())
	}
	err := &OpError{Op: "send", Code: ErrClosed}
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "WH_ECLOSED") {
		t.Error(err)
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := c.Write(ctxT(t), Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if typ, m := read(t, c); typ != Text || m != "hello" {
		t.Fatalf("%v %q", typ, m)
	}
	if _, err := c.Send(Binary, []byte{0, 1, 255}); err != nil {
		t.Fatal(err)
	}
	if typ, m := read(t, c); typ != Binary || m != "\x00\x01\xff" {
		t.Fatalf("%v %q", typ, m)
	}
	if _, err := c.SendText(""); err != nil {
		t.Fatal(err)
	}
	if typ, m := read(t, c); typ != Text || m != "" {
		t.Fatalf("%v %q", typ, m)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := c.Write(ctxT(t), Binary, big); err != nil {
		t.Fatal(err)
	}
	if _, m := read(t, c); m != string(big) {
		t.Fatal("1 MiB echo differs")
	}
	if Text.String() != "text" || Binary.String() != "binary" || MessageType(9).String() != "invalid" {
		t.Error("MessageType.String")
	}
	if err := c.Write(ctxT(t), MessageType(0), nil); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
}

func TestHandlersSeeOpenMessagesAndClose(t *testing.T) {
	closed := make(chan *CloseError, 1)
	opened := make(chan *Conn, 1)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnOpen:    func(c *Conn) { opened <- c },
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, append([]byte("re: "), data...)) },
		OnClose:   func(c *Conn, info *CloseError) { closed <- info },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	var mu sync.Mutex
	done := make(chan struct{})
	c, err := Dial(ctxT(t), wsURL(s, "/"), &DialOptions{OnMessage: func(c *Conn, typ MessageType, data []byte) {
		mu.Lock()
		got = append(got, string(data))
		mu.Unlock()
		close(done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-opened
	if a, p := sc.RemoteAddr(); a != "127.0.0.1" || p <= 0 {
		t.Error(a, p)
	}
	if _, err := c.SendText("hi"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("no reply")
	}
	mu.Lock()
	if len(got) != 1 || got[0] != "re: hi" {
		t.Error(got)
	}
	mu.Unlock()
	if _, _, err := c.Read(ctxT(t)); !errors.Is(err, ErrState) {
		t.Error("Read with an OnMessage handler:", err)
	}
	if err := c.CloseWith(4002, "done here"); err != nil {
		t.Fatal(err)
	}
	select {
	case info := <-closed:
		if info.Code != 4002 || info.Reason != "done here" || info.Err != nil {
			t.Error(info)
		}
	case <-time.After(wait):
		t.Fatal("no close on the server")
	}
	werr := c.Wait(ctxT(t))
	var ce *CloseError
	if !errors.As(werr, &ce) || ce.Code != 4002 || !errors.Is(werr, ErrClosed) {
		t.Error(werr)
	}
}

func TestDialClosedPortIsRefused(t *testing.T) {
	_, err := Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", closedPort(t)), nil)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Code != ErrConnRefused || !errors.Is(err, ErrConnRefused) {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Error(err)
	}
}

func TestDialInvalidURL(t *testing.T) {
	for _, u := range []string{"not a url", "http://127.0.0.1/", "ws://", ""} {
		if _, err := Dial(ctxT(t), u, nil); !errors.Is(err, ErrURL) {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestUpgradeHookRefusesWith403(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnUpgrade: func(r *Request) {
			if r.Header("X-Token") != "secret" {
				_ = r.Reject(403, "no token")
				if err := r.Reject(403, "twice"); !errors.Is(err, ErrState) {
					t.Error("second answer:", err)
				}
			} else {
				_ = r.Accept("")
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Dial(ctxT(t), wsURL(s, "/"), nil)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Code != ErrStatus || oe.Status != 403 {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), "403") {
		t.Error(err)
	}
	c, err := Dial(ctxT(t), wsURL(s, "/"), &DialOptions{Header: map[string]string{"X-Token": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestUpgradeHookSeesTheRequestAndPicksTheSubprotocol(t *testing.T) {
	seen := make(chan []string, 1)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnUpgrade: func(r *Request) {
			a, _ := r.RemoteAddr()
			seen <- []string{r.Method(), r.Path(), r.Query(), r.Target(), r.Subprotocols(), a, r.Header("Origin")}
			_ = r.Accept("b")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/room?x=1"), &DialOptions{Subprotocols: "a, b", Origin: "http://example.test"})
	if c.Subprotocol() != "b" || c.Extensions() != "" {
		t.Error(c.Subprotocol(), c.Extensions())
	}
	got := strings.Join(<-seen, "|")
	if got != "GET|/room|x=1|/room?x=1|a, b|127.0.0.1|http://example.test" {
		t.Error(got)
	}
}

func TestSendAfterCloseIsErrClosed(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendText("late"); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	if err := c.Wait(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	// The handle is retained: after the close event it still answers.
	if _, err := c.SendText("later"); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	if err := c.Ping(nil); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	if _, _, err := c.Read(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Error(err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed")
	}
}

func TestInvalidCloseCodesAndPings(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := c.CloseWith(999, ""); !errors.Is(err, ErrCloseCode) {
		t.Error(err)
	}
	if err := c.CloseWith(1000, strings.Repeat("x", 124)); !errors.Is(err, ErrCloseCode) {
		t.Error(err)
	}
	if err := c.Ping(make([]byte, 126)); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
}

func TestPingBringsPong(t *testing.T) {
	s := echoServer(t)
	pong := make(chan string, 1)
	c := dial(t, wsURL(s, "/"), &DialOptions{OnPong: func(c *Conn, data []byte) { pong <- string(data) }})
	if err := c.Ping([]byte("are you there")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pong:
		if p != "are you there" {
			t.Error(p)
		}
	case <-time.After(wait):
		t.Fatal("no pong")
	}
}

func TestTerminateEndsWith1006(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := c.Terminate(); err != nil {
		t.Fatal(err)
	}
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1006 || ce.Err == nil {
		t.Fatal(err)
	}
}

func TestAcceptReadWriteWithoutHandlers(t *testing.T) {
	s, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), nil)
	sc, err := s.Accept(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Write(ctxT(t), Text, []byte("from server")); err != nil {
		t.Fatal(err)
	}
	if _, m := read(t, c); m != "from server" {
		t.Error(m)
	}
	_ = c.Write(ctxT(t), Binary, []byte("from client"))
	if typ, m := read(t, sc); typ != Binary || m != "from client" {
		t.Error(typ, m)
	}
	// Accept and Read honour their context.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Accept(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Error(err)
	}
	if _, _, err := sc.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Error(err)
	}
}

func TestBroadcastAndPublish(t *testing.T) {
	var srv *Server
	srv, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			switch string(data) {
			case "join":
				_ = c.Subscribe("news")
			case "leave":
				_ = c.Unsubscribe("news")
			}
			_, _ = c.SendText("ok")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var cs []*Conn
	for i := 0; i < 3; i++ {
		cs = append(cs, dial(t, wsURL(srv, "/"), nil))
	}
	deadline := time.Now().Add(wait)
	for srv.Connections() != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n, err := srv.Broadcast(Text, []byte("all"), nil); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	for _, c := range cs {
		if _, m := read(t, c); m != "all" {
			t.Error(m)
		}
	}
	_, _ = cs[0].SendText("join")
	if _, m := read(t, cs[0]); m != "ok" {
		t.Fatal(m)
	}
	if n, err := srv.Publish("news", Text, []byte("headline"), nil); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if _, m := read(t, cs[0]); m != "headline" {
		t.Error(m)
	}
	_, _ = cs[0].SendText("leave")
	if _, m := read(t, cs[0]); m != "ok" {
		t.Fatal(m)
	}
	if n, _ := srv.Publish("news", Text, []byte("again"), nil); n != 0 {
		t.Error(n)
	}
	if err := cs[1].Subscribe("news"); !errors.Is(err, ErrNotSupported) {
		t.Error("client subscribe:", err)
	}
}

func TestBroadcastExceptSkipsOne(t *testing.T) {
	opened := make(chan *Conn, 2)
	srv, err := Listen("127.0.0.1:0", &ServerConfig{OnOpen: func(c *Conn) { opened <- c }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dial(t, wsURL(srv, "/"), nil)
	dial(t, wsURL(srv, "/"), nil)
	first := <-opened
	<-opened
	if n, err := srv.Broadcast(Binary, []byte("x"), first); n != 1 || err != nil {
		t.Error(n, err)
	}
}

func TestPauseResumeBuffered(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	_, _ = c.SendText("held")
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Error("read while paused:", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, m := read(t, c); m != "held" {
		t.Error(m)
	}
	if n, err := c.Buffered(); err != nil || n > 1<<20 {
		t.Error(n, err)
	}
}

func TestListenErrors(t *testing.T) {
	s := echoServer(t)
	if _, err := Listen(s.Addr(), nil); !errors.Is(err, ErrAddrInUse) {
		t.Error(err)
	}
	if _, err := Listen("no-port", nil); !errors.Is(err, ErrAddr) {
		t.Error(err)
	}
	if _, err := Listen("127.0.0.1:99999", nil); !errors.Is(err, ErrAddr) {
		t.Error(err)
	}
	if _, err := Listen("127.0.0.1:0", &ServerConfig{IOThreads: 1000}); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
}

func TestServerCloseEndsConnectionsWith1001(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Error("second Close:", err)
	}
	if _, err := s.Broadcast(Text, nil, nil); !errors.Is(err, ErrShutdown) {
		t.Error(err)
	}
	if _, err := s.Publish("t", Text, nil, nil); !errors.Is(err, ErrShutdown) {
		t.Error(err)
	}
	if _, err := s.Accept(ctxT(t)); !errors.Is(err, ErrShutdown) {
		t.Error(err)
	}
	if s.Connections() != 0 {
		t.Error(s.Connections())
	}
}

func TestServerClosedFromItsOwnHandler(t *testing.T) {
	var s *Server
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _ = s.Close() },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, wsURL(s, "/"), nil)
	_, _ = c.SendText("stop")
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatal(err)
	}
	_ = s.Close()
}

func TestDialContextCancelAndDeadline(t *testing.T) {
	// A listener that never answers the handshake.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	u := "ws://" + l.Addr().String() + "/"
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := Dial(ctx, u, nil); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = Dial(ctx2, u, nil)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTimedOut) {
		t.Error(err)
	}
	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if _, err := Dial(done, u, nil); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

func TestPanickingHandlerDoesNotCrash(t *testing.T) {
	var n int32
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			if atomic.AddInt32(&n, 1) == 1 {
				panic("handler bug (expected by this test)")
			}
			_, _ = c.SendText("still here")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), nil)
	_, _ = c.SendText("boom")
	_, _ = c.SendText("again")
	if _, m := read(t, c); m != "still here" {
		t.Error(m)
	}
}

func TestConnUsableFromManyGoroutines(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := c.Write(context.Background(), Text, []byte("m")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 400; i++ {
		read(t, c)
	}
}

func TestDeflateAndLimits(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		Deflate: true, MaxMessageSize: 16, MaxConnections: 4, CloseTimeout: time.Second, Backlog: 16,
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, wsURL(s, "/"), &DialOptions{Deflate: true})
	if !strings.Contains(c.Extensions(), "permessage-deflate") {
		t.Error(c.Extensions())
	}
	// MaxConnections: 4 open, the fifth upgrade is refused with HTTP 503.
	for i := 0; i < 3; i++ {
		dial(t, wsURL(s, "/"), nil) // closed by its cleanup
	}
	_, err = Dial(ctxT(t), wsURL(s, "/"), nil)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Code != ErrStatus || oe.Status != 503 {
		t.Fatal("a fifth connection over MaxConnections 4:", err)
	}
	_, _ = c.SendText(strings.Repeat("x", 100))
	var ce *CloseError
	if err := c.Wait(ctxT(t)); !errors.As(err, &ce) || ce.Code != 1009 {
		t.Error(err)
	}
	// The slot of the connection failed with 1009 is free again.
	deadline := time.Now().Add(wait)
	for {
		c5, err := Dial(ctxT(t), wsURL(s, "/"), nil)
		if err == nil {
			_ = c5.Close()
			break
		}
		if !errors.As(err, &oe) || oe.Status != 503 || time.Now().After(deadline) {
			t.Fatal("no room after a connection closed:", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// No goroutine is left behind by dials, reads, servers and their closing.
func TestNoGoroutineLeaks(t *testing.T) {
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		s, err := Listen("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Dial(ctxT(t), wsURL(s, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		sc, _ := s.Accept(ctxT(t))
		_, _ = sc.SendText("x")
		read(t, c)
		_, _ = Dial(ctxT(t), fmt.Sprintf("ws://127.0.0.1:%d/", closedPort(t)), nil)
		_ = c.Close()
		_ = c.Wait(ctxT(t))
		_ = s.Close()
	}
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// ipv6Loopback reports whether this machine has an IPv6 loopback: binding
// [::1] fails with EADDRNOTAVAIL (no ::1 configured) or EAFNOSUPPORT (no IPv6
// at all) only when it has none. Any other error is not a missing feature.
func ipv6Loopback(t *testing.T) bool {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err == nil {
		_ = l.Close()
		return true
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
		return false
	}
	t.Fatal("probing the IPv6 loopback:", err)
	return false
}

func TestListenOnIPv6Loopback(t *testing.T) {
	if !ipv6Loopback(t) {
		t.Skip("this machine has no IPv6 loopback")
	}
	// With a loopback present, a failure to listen on it is the engine's.
	s, err := Listen("[::1]:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
	})
	if err != nil {
		t.Fatal("listen on [::1]:", err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr(), "[::1]:") {
		t.Fatal(s.Addr())
	}
	c := dial(t, "ws://"+s.Addr()+"/", nil)
	_, _ = c.SendText("v6")
	if _, m := read(t, c); m != "v6" {
		t.Error(m)
	}
	if a, _ := c.RemoteAddr(); a != "::1" {
		t.Error(a)
	}
}

func TestLocalAddrIsEachEndsOwn(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			if host == "::1" && !ipv6Loopback(t) {
				t.Skip("this machine has no IPv6 loopback")
			}
			opened := make(chan *Conn, 1)
			s, err := Listen(net.JoinHostPort(host, "0"), &ServerConfig{OnOpen: func(c *Conn) { opened <- c }})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := dial(t, "ws://"+s.Addr()+"/", nil)
			var sc *Conn
			select {
			case sc = <-opened:
			case <-time.After(wait):
				t.Fatal("the server's conn did not open")
			}
			// Each end's local address is the other's remote one.
			la, lp := c.LocalAddr()
			if la != host || lp <= 0 || lp == s.Port() {
				t.Error("client's local end:", la, lp)
			}
			if a, p := c.RemoteAddr(); a != host || p != s.Port() {
				t.Error("client's remote end:", a, p)
			}
			if a, p := sc.LocalAddr(); a != host || p != s.Port() {
				t.Error("server conn's local end:", a, p)
			}
			if a, p := sc.RemoteAddr(); a != la || p != lp {
				t.Error("server conn's remote end:", a, p, "not the client's local", la, lp)
			}
		})
	}
}

func TestServerCloseWhileAHandlerRuns(t *testing.T) {
	entered := make(chan struct{}, 1)
	var finished int32
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			entered <- struct{}{}
			time.Sleep(50 * time.Millisecond)
			atomic.StoreInt32(&finished, 1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, wsURL(s, "/"), nil)
	_, _ = c.SendText("slow")
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("handler not entered")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if atomic.LoadInt32(&finished) != 1 {
		t.Error("Close returned before the running handler finished")
	}
}

func TestFragmentsArriveAsOneMessage(t *testing.T) {
	s := echoServer(t)
	c := dial(t, wsURL(s, "/"), &DialOptions{MaxBuffered: 64 << 20})
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.SendFragment(Text, []byte("one, "), false)
	check(err)
	// Continuation bytes need not be valid UTF-8 on their own: "✓" split.
	_, err = c.SendFragment(Text, []byte("two ✓")[:5], false)
	check(err)
	_, err = c.SendFragment(Text, []byte("two ✓")[5:], true)
	check(err)
	if typ, m := read(t, c); typ != Text || m != "one, two ✓" {
		t.Fatal(typ, m)
	}
	_, err = c.SendFragment(Binary, []byte{1, 2}, false)
	check(err)
	_, err = c.SendFragment(Binary, []byte{3}, true)
	check(err)
	if typ, m := read(t, c); typ != Binary || m != "\x01\x02\x03" {
		t.Fatal(typ, m)
	}
}

// A self-signed certificate valid for the subjectAltName san only, made
// with openssl (skipped without it).
func selfSignedFor(t *testing.T, san string) (cert, key string) {
	t.Helper()
	dir := t.TempDir()
	cert, key = dir+"/cert.pem", dir+"/key.pem"
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=localhost", "-addext", "subjectAltName="+san,
		"-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Skipf("openssl: %v %s", err, out)
	}
	return cert, key
}

// A wss echo server on a certificate valid for san; closed with the test.
func tlsEchoServer(t *testing.T, san string) (s *Server, url, cert string) {
	t.Helper()
	cert, key := selfSignedFor(t, san)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		TLSCertFile: cert, TLSKeyFile: key,
		OnMessage: func(c *Conn, typ MessageType, data []byte) { _, _ = c.Send(typ, data) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, "wss://" + s.Addr() + "/", cert
}

func TestWSSWithAServerCertificate(t *testing.T) {
	_, u, cert := tlsEchoServer(t, "DNS:localhost,IP:127.0.0.1")
	// Not trusted by default: the handshake fails with a TLS error.
	if _, err := Dial(ctxT(t), u, nil); !errors.Is(err, ErrTLS) {
		t.Error("untrusted certificate:", err)
	}
	for _, o := range []*DialOptions{{TLSCAFile: cert}, {TLSInsecure: true}} {
		c := dial(t, u, o)
		_, _ = c.SendText("secure")
		if _, m := read(t, c); m != "secure" {
			t.Error(m)
		}
	}
	if _, err := Listen("127.0.0.1:0", &ServerConfig{TLSCertFile: cert}); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTLS) {
		t.Error("certificate without key:", err)
	}
}
