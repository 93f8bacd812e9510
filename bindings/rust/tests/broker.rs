//! Scale-out through Redis: servers attached to one Redis with one prefix
//! share their topics. Each test starts Debian's `redis-server` on a free
//! loopback port, without persistence, and looks at it with a few raw RESP
//! commands. Every wait is bounded.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use wirehub::*;

const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "test:";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `f` holds within `within`.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A redis-server of the test's own; killed when dropped.
struct Redis {
    port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl Redis {
    fn start(password: Option<&str>) -> Redis {
        let mut r = Redis {
            port: free_port(),
            password: password.map(str::to_string),
            child: None,
        };
        r.restart();
        r
    }

    /// Starts it (again, on the same port) and waits until it answers.
    fn restart(&mut self) {
        assert!(self.child.is_none());
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--loglevel", "warning"])
        // Its start-up warnings (overcommit, say) are not the test's output.
        .stdout(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .spawn()
            .expect("could not run redis-server (is it installed? scripts/install-deps.sh)");
        self.child = Some(child);
        assert!(
            eventually(Duration::from_secs(5), || self
                .command(&["PING"])
                .contains("PONG")),
            "redis-server on port {} did not answer PING",
            self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{}@127.0.0.1:{}/0", p, self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// One command (after AUTH if it has a password); the raw reply, read
    /// until it is quiet ("" if Redis is not there).
    fn command(&self, args: &[&str]) -> String {
        let mut s = match TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(s) => s,
            Err(_) => return String::new(),
        };
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            out.extend(resp(&["AUTH", p]));
        }
        out.extend(resp(args));
        if s.write_all(&out).is_err() {
            return String::new();
        }
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        let _ = s.set_read_timeout(Some(Duration::from_millis(2000)));
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            let _ = s.set_read_timeout(Some(Duration::from_millis(30)));
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// PUBSUB NUMSUB: how many subscribers Redis counts on a channel.
    fn numsub(&self, channel: &str) -> i64 {
        let r = self.command(&["PUBSUB", "NUMSUB", channel]);
        r.rfind(':')
            .and_then(|i| r[i + 1..].trim().parse().ok())
            .unwrap_or(-1)
    }

    /// Redis counts `n` subscribers (nodes) of `topic`'s channel, soon.
    fn counts(&self, topic: &str, n: i64) -> bool {
        eventually(WAIT, || self.numsub(&format!("{}{}", PREFIX, topic)) == n)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut s = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        s.extend(format!("${}\r\n", a.len()).bytes());
        s.extend(a.as_bytes());
        s.extend(b"\r\n");
    }
    s
}

/// A server whose clients subscribe with "sub TOPIC" and leave with
/// "unsub TOPIC" (each answered "ok"), attached to `url`.
fn node(url: &str) -> Server {
    Server::listen(
        ServerOptions::new()
            .broker(url)
            .broker_prefix(PREFIX)
            .broker_connect_timeout(Duration::from_secs(2)),
        |ev: &Event| {
            if let Event::Message {
                conn,
                message: Message::Text(t),
                ..
            } = ev
            {
                if let Some(topic) = t.strip_prefix("sub ") {
                    conn.subscribe(topic).unwrap();
                } else if let Some(topic) = t.strip_prefix("unsub ") {
                    conn.unsubscribe(topic).unwrap();
                }
                let _ = conn.send_text("ok");
            }
        },
    )
    .expect("listen with a broker")
}

fn client(server: &Server) -> (Client, Receiver<OwnedEvent>) {
    let (c, rx) = Client::connect_channel(
        &format!("ws://127.0.0.1:{}/", server.port()),
        ClientOptions::new(),
    )
    .expect("connect");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), OwnedEvent::Open);
    (c, rx)
}

/// The next message, skipping pings and pongs.
fn next(rx: &Receiver<OwnedEvent>) -> OwnedMessage {
    loop {
        match rx.recv_timeout(WAIT).expect("a message within 10 s") {
            OwnedEvent::Message(m) => return m,
            OwnedEvent::Ping(_) | OwnedEvent::Pong(_) | OwnedEvent::Drain => continue,
            e => panic!("expected a message, got {:?}", e),
        }
    }
}

fn text(s: &str) -> OwnedMessage {
    OwnedMessage::Text(s.to_string())
}

/// Nothing but pings for `d`.
fn quiet_for(rx: &Receiver<OwnedEvent>, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(OwnedEvent::Ping(_)) | Ok(OwnedEvent::Pong(_)) => continue,
            Ok(e) => {
                eprintln!("not quiet: {:?}", e);
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn subscribe(c: &Client, rx: &Receiver<OwnedEvent>, topic: &str) {
    c.send_text(&format!("sub {}", topic)).unwrap();
    assert_eq!(next(rx), text("ok"));
}

/// A client and the receiver of its events.
type Subscriber = (Client, Receiver<OwnedEvent>);

/// Two nodes on one Redis and on each one client subscribed to `topic`
/// (the first on n0, the second on n1), once Redis counts both nodes.
/// Bind the clients (`_a`, not `_`): dropping one closes it.
fn subscribed_pair(topic: &str) -> (Redis, Server, Server, Subscriber, Subscriber) {
    let redis = Redis::start(None);
    let (n0, n1) = (node(&redis.url()), node(&redis.url()));
    let (a, arx) = client(&n0);
    let (b, brx) = client(&n1);
    subscribe(&a, &arx, topic);
    subscribe(&b, &brx, topic);
    assert!(redis.counts(topic, 2));
    (redis, n0, n1, (a, arx), (b, brx))
}

#[test]
fn a_publish_reaches_the_subscribers_on_every_node_once() {
    let (_redis, n0, n1, (_a, arx), (_b, brx)) = subscribed_pair("room");
    let (_idle, idle_rx) = client(&n1);

    // The count is of local subscribers: the remote ones are Redis's.
    assert_eq!(n0.publish("room", "hello", None).unwrap(), 1);
    assert_eq!(next(&arx), text("hello"));
    assert_eq!(next(&brx), text("hello"));
    // The kind crosses nodes too.
    assert_eq!(n1.publish("room", &[0u8, 0xff][..], None).unwrap(), 1);
    assert_eq!(next(&brx), OwnedMessage::Binary(vec![0, 0xff]));
    assert_eq!(next(&arx), OwnedMessage::Binary(vec![0, 0xff]));
    // Exactly once: the publishing node skips its own copy from Redis, and
    // a connection that subscribed to nothing gets nothing.
    assert!(quiet_for(&arx, Duration::from_millis(200)));
    assert!(quiet_for(&brx, Duration::from_millis(50)));
    assert!(quiet_for(&idle_rx, Duration::from_millis(50)));
    // A broadcast stays on its node.
    assert_eq!(n0.broadcast("all", None).unwrap(), 1);
    assert_eq!(next(&arx), text("all"));
    assert!(quiet_for(&brx, Duration::from_millis(200)));

    let (s0, s1) = (n0.broker_stats().unwrap(), n1.broker_stats().unwrap());
    assert!(s0.connected && s1.connected);
    assert_eq!((s0.channels, s1.channels), (1, 1));
    assert_eq!((s0.published, s0.received), (1, 1), "{:?}", s0);
    assert_eq!((s1.published, s1.received), (1, 1), "{:?}", s1);
    assert_eq!(s0.dropped + s0.malformed + s1.dropped + s1.malformed, 0);
}

#[test]
fn a_node_subscribes_to_a_topic_only_while_it_has_subscribers() {
    let redis = Redis::start(None);
    let (n0, n1) = (node(&redis.url()), node(&redis.url()));
    let (a, arx) = client(&n1);
    let (b, brx) = client(&n1);
    assert_eq!(redis.numsub("test:lobby"), 0);
    subscribe(&a, &arx, "lobby");
    subscribe(&b, &brx, "lobby");
    // Two local subscribers, one Redis subscription.
    assert!(redis.counts("lobby", 1));
    a.send_text("unsub lobby").unwrap();
    assert_eq!(next(&arx), text("ok"));
    assert!(redis.counts("lobby", 1));
    assert_eq!(n1.broker_stats().unwrap().channels, 1);
    // The last one leaving (by closing) takes the subscription with it.
    drop(b);
    assert!(redis.counts("lobby", 0));
    assert!(eventually(WAIT, || n1.broker_stats().unwrap().channels == 0));
    // Node 0 has no subscriber of "lobby": node 1's publishes to it never
    // reach node 0.
    for _ in 0..20 {
        n1.publish("lobby", "x", None).unwrap();
    }
    subscribe(&a, &arx, "other");
    assert!(redis.counts("other", 1));
    let s0 = n0.broker_stats().unwrap();
    assert_eq!((s0.channels, s0.received, s0.malformed), (0, 0, 0));
}

#[test]
fn two_thousand_messages_arrive_in_publish_order_on_every_node() {
    let (_redis, n0, n1, (_a, arx), (_b, brx)) = subscribed_pair("seq");
    const N: usize = 2000;
    for i in 0..N {
        n0.publish("seq", i.to_string().as_str(), None).unwrap();
    }
    for (name, rx) in [("local", &arx), ("remote", &brx)] {
        for i in 0..N {
            assert_eq!(next(rx), text(&i.to_string()), "{} subscriber", name);
        }
    }
    assert_eq!(n0.broker_stats().unwrap().dropped, 0);
    assert!(eventually(WAIT, || n1.broker_stats().unwrap().received == N as u64));
}

#[test]
fn redis_going_away_and_coming_back_mid_stream() {
    let (mut redis, n0, n1, (_a, arx), (_b, brx)) = subscribed_pair("live");
    for i in 0..100 {
        n0.publish("live", format!("before {}", i).as_str(), None)
            .unwrap();
    }
    for rx in [&arx, &brx] {
        for i in 0..100 {
            assert_eq!(next(rx), text(&format!("before {}", i)));
        }
    }

    redis.stop();
    assert!(eventually(WAIT, || !n0.broker_stats().unwrap().connected));
    // Local delivery goes on, and never fails; what node 1 misses is counted.
    for i in 0..50 {
        assert_eq!(
            n0.publish("live", format!("local {}", i).as_str(), None).unwrap(),
            1
        );
        assert_eq!(next(&arx), text(&format!("local {}", i)));
    }
    assert!(n0.broker_stats().unwrap().dropped >= 50);
    assert!(quiet_for(&brx, Duration::from_millis(100)));

    redis.restart();
    // Both nodes reconnect and subscribe again by themselves.
    assert!(eventually(WAIT, || {
        n0.broker_stats().unwrap().connected && n1.broker_stats().unwrap().connected
    }));
    assert!(redis.counts("live", 2));
    assert!(n0.broker_stats().unwrap().reconnects >= 1);
    assert!(n1.broker_stats().unwrap().reconnects >= 1);
    for i in 0..100 {
        n0.publish("live", format!("after {}", i).as_str(), None).unwrap();
    }
    for rx in [&arx, &brx] {
        for i in 0..100 {
            assert_eq!(next(rx), text(&format!("after {}", i)));
        }
    }
}

#[test]
fn a_foreign_publishers_garbage_is_dropped_and_counted() {
    let redis = Redis::start(None);
    let (n0, n1) = (node(&redis.url()), node(&redis.url()));
    let (b, brx) = client(&n1);
    subscribe(&b, &brx, "g");
    assert!(redis.counts("g", 1));
    for junk in ["not a wirehub message", "", "WH"] {
        assert!(redis.command(&["PUBLISH", "test:g", junk]).starts_with(':'));
    }
    assert!(eventually(WAIT, || n1.broker_stats().unwrap().malformed == 3));
    assert!(quiet_for(&brx, Duration::from_millis(100)));
    // ...and the channel still works.
    n0.publish("g", "fine", None).unwrap();
    assert_eq!(next(&brx), text("fine"));
    assert_eq!(n1.broker_stats().unwrap().received, 1);
}

fn listen_error(url: &str) -> Error {
    let options = ServerOptions::new()
        .broker(url)
        .broker_connect_timeout(Duration::from_secs(2));
    match Server::listen(options, |_: &Event| {}) {
        Ok(_) => panic!("{}: listening succeeded", url),
        Err(e) => e,
    }
}

#[test]
fn a_malformed_broker_url_fails_listen_with_code_url() {
    for url in [
        "",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:99999",
        "redis://127.0.0.1:6379/x",
        "redis://host name",
    ] {
        let e = listen_error(url);
        assert_eq!(e.code(), Code::Url, "{:?}: {}", url, e);
        assert!(e.to_string().contains("WH_EURL"), "{}", e);
    }
    assert_eq!(listen_error("redis://a\0b").code(), Code::InvalidArgument);
}

#[test]
fn an_unreachable_redis_fails_listen_at_once() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let t0 = Instant::now();
    let e = listen_error(&url);
    assert_eq!(e.code(), Code::ConnectionRefused, "{}", e);
    assert!(t0.elapsed() < Duration::from_millis(1500));
    assert!(e.to_string().starts_with(&format!("broker {}", url)), "{}", e);
}

#[test]
fn a_refused_password_fails_listen_with_code_access_and_is_not_shown() {
    let redis = Redis::start(Some("s3cret"));
    let bad = format!("redis://:wrong@127.0.0.1:{}", redis.port);
    let e = listen_error(&bad);
    assert_eq!(e.code(), Code::Access, "{}", e);
    assert!(!e.to_string().contains("wrong"), "{}", e);
    assert!(e.to_string().contains("***@127.0.0.1"), "{}", e);
    let none = format!("redis://127.0.0.1:{}", redis.port);
    assert_eq!(listen_error(&none).code(), Code::Access);
    // The right one works.
    let server = node(&redis.url());
    assert!(eventually(WAIT, || server.broker_stats().unwrap().connected));
}

#[test]
fn a_server_without_a_broker_has_no_stats() {
    let server = Server::listen(ServerOptions::new(), |_: &Event| {}).unwrap();
    assert_eq!(server.broker_stats().unwrap_err().code(), Code::State);
    // A prefix alone is a mistake, not a server without a broker.
    let e = Server::listen(ServerOptions::new().broker_prefix("app:"), |_: &Event| {})
        .err()
        .expect("a broker prefix without a URL is refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e);
}
