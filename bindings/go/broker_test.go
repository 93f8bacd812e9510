package wirehub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scale-out through Redis: servers attached to one Redis with one prefix
// share their topics. Each test starts Debian's redis-server on a free
// loopback port, without persistence, and looks at it with a few raw RESP
// commands. Every wait is bounded.

const brokerPrefix = "test:"

// redisServer is a redis-server of the test's own, killed at cleanup.
type redisServer struct {
	t        *testing.T
	port     int
	password string
	cmd      *exec.Cmd
}

func startRedis(t *testing.T, password string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (scripts/install-deps.sh installs it)")
	}
	r := &redisServer{t: t, port: closedPort(t), password: password}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start runs it (again, on the same port) and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning"}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	// Its start-up warnings (overcommit, say) go to stdout, which is
	// dropped: they are not the test's output.
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	eventually(r.t, "redis-server answers PING", func() bool {
		return strings.Contains(r.command("PING"), "PONG")
	})
}

func (r *redisServer) stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) url() string {
	if r.password != "" {
		return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", r.password, r.port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
}

func resp(args ...string) string {
	s := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		s += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	return s
}

// command sends one command (after AUTH with a password) and returns the
// raw reply, read until it is quiet ("" if Redis is not there).
func (r *redisServer) command(args ...string) string {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	out := ""
	if r.password != "" {
		out = resp("AUTH", r.password)
	}
	if _, err := c.Write([]byte(out + resp(args...))); err != nil {
		return ""
	}
	var reply []byte
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := c.Read(buf)
		reply = append(reply, buf[:n]...)
		if err != nil {
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	}
	return string(reply)
}

// numsub is PUBSUB NUMSUB: how many subscribers Redis counts on a channel.
func (r *redisServer) numsub(channel string) int {
	rep := r.command("PUBSUB", "NUMSUB", channel)
	i := strings.LastIndexByte(rep, ':')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(rep[i+1:]))
	if err != nil {
		return -1
	}
	return n
}

// counts waits until Redis counts n subscribers (nodes) of topic's channel.
func (r *redisServer) counts(topic string, n int) {
	r.t.Helper()
	eventually(r.t, fmt.Sprintf("PUBSUB NUMSUB %s%s = %d", brokerPrefix, topic, n), func() bool {
		return r.numsub(brokerPrefix+topic) == n
	})
}

// brokerNode is a server attached to url whose clients subscribe with
// "sub TOPIC" and leave with "unsub TOPIC" (each answered "ok").
func brokerNode(t *testing.T, url string) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		Broker:               url,
		BrokerPrefix:         brokerPrefix,
		BrokerConnectTimeout: 2 * time.Second,
		OnMessage: func(c *Conn, typ MessageType, data []byte) {
			m := string(data)
			switch {
			case strings.HasPrefix(m, "sub "):
				_ = c.Subscribe(m[4:])
			case strings.HasPrefix(m, "unsub "):
				_ = c.Unsubscribe(m[6:])
			}
			_, _ = c.SendText("ok")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func brokerStats(t *testing.T, s *Server) BrokerStats {
	t.Helper()
	st, err := s.BrokerStats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func subscribeTo(t *testing.T, c *Conn, topic string) {
	t.Helper()
	if _, err := c.SendText("sub " + topic); err != nil {
		t.Fatal(err)
	}
	if _, m := read(t, c); m != "ok" {
		t.Fatalf("sub %s: %q", topic, m)
	}
}

// subscribedPair: two nodes on one Redis, and on each one client (a on n0,
// b on n1) subscribed to topic, once Redis counts both nodes.
func subscribedPair(t *testing.T, topic string) (redis *redisServer, n0, n1 *Server, a, b *Conn) {
	t.Helper()
	redis = startRedis(t, "")
	n0, n1 = brokerNode(t, redis.url()), brokerNode(t, redis.url())
	a, b = dial(t, wsURL(n0, "/"), nil), dial(t, wsURL(n1, "/"), nil)
	subscribeTo(t, a, topic)
	subscribeTo(t, b, topic)
	redis.counts(topic, 2)
	return redis, n0, n1, a, b
}

func expect(t *testing.T, c *Conn, typ MessageType, want string) {
	t.Helper()
	if gt, m := read(t, c); gt != typ || m != want {
		t.Fatalf("got %v %q, want %v %q", gt, m, typ, want)
	}
}

// quietFor: nothing arrives on c for d.
func quietFor(t *testing.T, c *Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if typ, m, err := c.Read(ctx); err == nil {
		t.Fatalf("expected nothing, got %v %q", typ, m)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

func TestBrokerPublishReachesSubscribersOnEveryNodeOnce(t *testing.T) {
	_, n0, n1, a, b := subscribedPair(t, "room")
	idle := dial(t, wsURL(n1, "/"), nil)

	// The count is of local subscribers: the remote ones are Redis's.
	if n, err := n0.Publish("room", Text, []byte("hello"), nil); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	expect(t, a, Text, "hello")
	expect(t, b, Text, "hello")
	// The kind crosses nodes too.
	if n, err := n1.Publish("room", Binary, []byte{0, 0xff}, nil); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	expect(t, b, Binary, "\x00\xff")
	expect(t, a, Binary, "\x00\xff")
	// Exactly once: the publishing node skips its own copy from Redis, and
	// a connection that subscribed to nothing gets nothing.
	quietFor(t, a, 200*time.Millisecond)
	quietFor(t, b, 50*time.Millisecond)
	quietFor(t, idle, 50*time.Millisecond)
	// A broadcast stays on its node.
	if n, err := n0.Broadcast(Text, []byte("all"), nil); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	expect(t, a, Text, "all")
	quietFor(t, b, 200*time.Millisecond)

	s0, s1 := brokerStats(t, n0), brokerStats(t, n1)
	want := BrokerStats{Connected: true, Channels: 1, Published: 1, Received: 1}
	if s0 != want || s1 != want {
		t.Errorf("stats %+v and %+v, want %+v", s0, s1, want)
	}
}

func TestBrokerSubscribesToATopicOnlyWhileTheNodeHasSubscribers(t *testing.T) {
	redis := startRedis(t, "")
	n0, n1 := brokerNode(t, redis.url()), brokerNode(t, redis.url())
	a, b := dial(t, wsURL(n1, "/"), nil), dial(t, wsURL(n1, "/"), nil)
	if n := redis.numsub("test:lobby"); n != 0 {
		t.Fatal(n)
	}
	subscribeTo(t, a, "lobby")
	subscribeTo(t, b, "lobby")
	// Two local subscribers, one Redis subscription.
	redis.counts("lobby", 1)
	_, _ = a.SendText("unsub lobby")
	expect(t, a, Text, "ok")
	redis.counts("lobby", 1)
	if st := brokerStats(t, n1); st.Channels != 1 {
		t.Errorf("%+v", st)
	}
	// The last one leaving (by closing) takes the subscription with it.
	_ = b.Close()
	redis.counts("lobby", 0)
	eventually(t, "no channel left", func() bool { return brokerStats(t, n1).Channels == 0 })
	// Node 0 has no subscriber of "lobby": node 1's publishes to it never
	// reach node 0.
	for i := 0; i < 20; i++ {
		_, _ = n1.Publish("lobby", Text, []byte("x"), nil)
	}
	subscribeTo(t, a, "other")
	redis.counts("other", 1)
	if st := brokerStats(t, n0); st.Channels != 0 || st.Received != 0 || st.Malformed != 0 {
		t.Errorf("node 0: %+v", st)
	}
}

func TestBrokerKeepsOnePublishersOrderOnEveryNode(t *testing.T) {
	_, n0, n1, a, b := subscribedPair(t, "seq")
	const n = 2000
	for i := 0; i < n; i++ {
		if _, err := n0.Publish("seq", Text, []byte(strconv.Itoa(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*Conn{a, b} {
		for i := 0; i < n; i++ {
			expect(t, c, Text, strconv.Itoa(i))
		}
	}
	if st := brokerStats(t, n0); st.Dropped != 0 {
		t.Errorf("%+v", st)
	}
	eventually(t, "node 1 received them all", func() bool { return brokerStats(t, n1).Received == n })
}

func TestBrokerRedisGoingAwayAndComingBackMidStream(t *testing.T) {
	redis, n0, n1, a, b := subscribedPair(t, "live")
	stream := func(what string, subscribers ...*Conn) {
		t.Helper()
		for i := 0; i < 100; i++ {
			if _, err := n0.Publish("live", Text, []byte(fmt.Sprint(what, i)), nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range subscribers {
			for i := 0; i < 100; i++ {
				expect(t, c, Text, fmt.Sprint(what, i))
			}
		}
	}
	stream("before ", a, b)

	redis.stop()
	eventually(t, "node 0 sees Redis gone", func() bool { return !brokerStats(t, n0).Connected })
	// Local delivery goes on, and never fails; what node 1 misses is counted.
	stream("local ", a)
	if st := brokerStats(t, n0); st.Dropped < 100 {
		t.Errorf("%+v", st)
	}
	quietFor(t, b, 100*time.Millisecond)

	redis.start()
	// Both nodes reconnect and subscribe again by themselves.
	eventually(t, "both nodes reconnect", func() bool {
		return brokerStats(t, n0).Connected && brokerStats(t, n1).Connected
	})
	redis.counts("live", 2)
	for i, s := range []*Server{n0, n1} {
		if st := brokerStats(t, s); st.Reconnects < 1 {
			t.Errorf("node %d: %+v", i, st)
		}
	}
	stream("after ", a, b)
}

func TestBrokerDropsAndCountsAForeignPublishersGarbage(t *testing.T) {
	redis := startRedis(t, "")
	n0, n1 := brokerNode(t, redis.url()), brokerNode(t, redis.url())
	b := dial(t, wsURL(n1, "/"), nil)
	subscribeTo(t, b, "g")
	redis.counts("g", 1)
	for _, junk := range []string{"not a wirehub message", "", "WH"} {
		if r := redis.command("PUBLISH", "test:g", junk); !strings.HasPrefix(r, ":") {
			t.Fatalf("PUBLISH: %q", r)
		}
	}
	eventually(t, "3 malformed", func() bool { return brokerStats(t, n1).Malformed == 3 })
	quietFor(t, b, 100*time.Millisecond)
	// ...and the channel still works.
	_, _ = n0.Publish("g", Text, []byte("fine"), nil)
	expect(t, b, Text, "fine")
	if st := brokerStats(t, n1); st.Received != 1 {
		t.Errorf("%+v", st)
	}
}

func listenBroker(cfg ServerConfig) error {
	if cfg.BrokerConnectTimeout == 0 {
		cfg.BrokerConnectTimeout = 2 * time.Second
	}
	s, err := Listen("127.0.0.1:0", &cfg)
	if err == nil {
		_ = s.Close()
		return errors.New("listening succeeded")
	}
	return err
}

func TestBrokerMalformedURLFailsListenWithErrURL(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:6379",
		"redis://",
		"redis://127.0.0.1:99999",
		"redis://127.0.0.1:6379/x",
		"redis://host name",
	} {
		err := listenBroker(ServerConfig{Broker: u})
		if !errors.Is(err, ErrURL) || !strings.Contains(err.Error(), "WH_EURL") {
			t.Errorf("%q: %v, want ErrURL", u, err)
		}
	}
	if err := listenBroker(ServerConfig{Broker: "redis://a\x00b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NUL: %v, want ErrInvalid", err)
	}
	// Broker options without a URL are a mistake, not a server without a broker.
	if err := listenBroker(ServerConfig{BrokerPrefix: "app:"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("prefix alone: %v, want ErrInvalid", err)
	}
}

func TestBrokerUnreachableRedisFailsListenAtOnce(t *testing.T) {
	u := fmt.Sprintf("redis://127.0.0.1:%d", closedPort(t))
	t0 := time.Now()
	err := listenBroker(ServerConfig{Broker: u})
	if !errors.Is(err, ErrConnRefused) {
		t.Fatalf("%v, want ErrConnRefused", err)
	}
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(err.Error(), "broker "+u) {
		t.Errorf("%q does not name the URL", err)
	}
}

func TestBrokerRefusedPasswordIsErrAccessAndNotShown(t *testing.T) {
	redis := startRedis(t, "s3cret")
	bad := fmt.Sprintf("redis://:wrong@127.0.0.1:%d", redis.port)
	err := listenBroker(ServerConfig{Broker: bad})
	if !errors.Is(err, ErrAccess) {
		t.Fatalf("%v, want ErrAccess", err)
	}
	if strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "***@127.0.0.1") {
		t.Errorf("%q", err)
	}
	none := fmt.Sprintf("redis://127.0.0.1:%d", redis.port)
	if err := listenBroker(ServerConfig{Broker: none}); !errors.Is(err, ErrAccess) {
		t.Errorf("no password: %v, want ErrAccess", err)
	}
	// The right one works.
	s := brokerNode(t, redis.url())
	eventually(t, "connected", func() bool { return brokerStats(t, s).Connected })
}

func TestBrokerStatsWithoutABrokerIsErrState(t *testing.T) {
	s := echoServer(t)
	if _, err := s.BrokerStats(); !errors.Is(err, ErrState) {
		t.Errorf("%v, want ErrState", err)
	}
	_ = s.Close()
	if _, err := s.BrokerStats(); !errors.Is(err, ErrShutdown) {
		t.Errorf("after Close: %v, want ErrShutdown", err)
	}
}

func TestServerConfigPrintsWithoutTheBrokerPassword(t *testing.T) {
	cfg := ServerConfig{Broker: "redis://:s3cret@127.0.0.1:6379/0", BrokerPrefix: "chat:"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		shown := fmt.Sprintf(verb, cfg)
		if strings.Contains(shown, "s3cret") {
			t.Errorf("%s shows the password: %s", verb, shown)
		}
		if !strings.Contains(shown, "redis://***@127.0.0.1:6379/0") || !strings.Contains(shown, "chat:") {
			t.Errorf("%s: %s", verb, shown)
		}
	}
	if shown := fmt.Sprintf("%#v", &cfg); strings.Contains(shown, "s3cret") {
		t.Errorf("%%#v of a pointer shows the password: %s", shown)
	}
}
