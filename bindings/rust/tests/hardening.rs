//! Issue 11 in the Rust binding: an upgrade hook that fails refuses the
//! client (fail closed), and the engine's hardening limits are reachable from
//! the builders, with invalid values refused before anything starts.
//! Loopback only; every wait is bounded.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wirehub::*;

const WAIT: Duration = Duration::from_secs(10);

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{}/", port)
}

/// A server whose upgrade hook is `hook`; every server-level Error event's
/// message goes to the returned receiver.
fn hooked_server<H>(hook: H) -> (Server, mpsc::Receiver<String>)
where
    H: Fn(&UpgradeRequest) + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(
        ServerOptions::new().upgrade_hook(true),
        move |ev: &Event| match ev {
            Event::Upgrade { request, .. } => hook(request),
            Event::Error { error } => {
                let _ = tx.lock().unwrap().send(error.to_string());
            }
            _ => {}
        },
    )
    .expect("listen");
    (server, rx)
}

/// The raw HTTP answer to an upgrade request, up to the peer's close.
fn raw_upgrade(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out); // the server closes after its answer
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_refused_with_500(server: &Server, errors: &mpsc::Receiver<String>, why: &str) {
    let err = Client::connect(&url(server.port()), ClientOptions::new(), |_: &Event| {})
        .err()
        .expect("the client must not be admitted");
    assert_eq!(err.code(), Code::Status, "{}", err);
    assert_eq!(err.http_status(), Some(500), "{}", err);
    let told = errors
        .recv_timeout(WAIT)
        .expect("an Error event for the failed hook");
    assert!(told.contains(why), "{}", told);
    // On the wire: a 500 and then the socket closes, never a 101.
    let answer = raw_upgrade(server.port());
    assert!(answer.starts_with("HTTP/1.1 500"), "{:?}", answer);
    assert!(!answer.contains("101"), "{:?}", answer);
    assert_eq!(server.connections(), 0);
}

#[test]
fn an_upgrade_hook_that_panics_refuses_the_client_with_500() {
    let (server, errors) = hooked_server(|_r: &UpgradeRequest| panic!("hook bug"));
    assert_refused_with_500(&server, &errors, "panicked");
}

#[test]
fn an_upgrade_hook_that_returns_without_answering_refuses_the_client_with_500() {
    let (server, errors) = hooked_server(|r: &UpgradeRequest| {
        let _ = r.path(); // looks at the request, forgets to answer
    });
    assert_refused_with_500(&server, &errors, "without answering");
}

#[test]
fn an_upgrade_hook_that_panics_after_accepting_keeps_its_answer() {
    let (server, errors) = hooked_server(|r: &UpgradeRequest| {
        r.accept(None).unwrap();
        panic!("after the answer");
    });
    let c = Client::connect(&url(server.port()), ClientOptions::new(), |_: &Event| {});
    assert!(c.is_ok(), "{:?}", c.err());
    // The panic is still reported.
    assert!(errors.recv_timeout(WAIT).unwrap().contains("panicked"));
}

#[test]
fn an_idle_timeout_closes_a_silent_connection_with_1001() {
    // Needs the engine's idle timeout (issue 11).
    let server = Server::listen(
        ServerOptions::new().idle_timeout(Duration::from_millis(300)),
        |_: &Event| {},
    )
    .unwrap();
    let (_client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    let t0 = Instant::now();
    loop {
        match rx.recv_timeout(WAIT).expect("closed within 10 s") {
            OwnedEvent::Close { code, .. } => {
                assert_eq!(code, 1001);
                break;
            }
            _ => continue,
        }
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{:?}",
        took
    );
}

#[test]
fn a_client_idle_timeout_closes_its_side_with_1001() {
    // Needs the engine's idle timeout (issue 11): the server never sends.
    let server = Server::listen(ServerOptions::new(), |_: &Event| {}).unwrap();
    let (_client, rx) = Client::connect_channel(
        &url(server.port()),
        ClientOptions::new().idle_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    loop {
        match rx.recv_timeout(WAIT).expect("closed within 10 s") {
            OwnedEvent::Close { code, error, .. } => {
                assert_eq!(code, 1001);
                assert_eq!(error, Some(Code::Idle));
                break;
            }
            _ => continue,
        }
    }
}

#[test]
fn the_limits_are_accepted_with_valid_values() {
    let server = Server::listen(
        ServerOptions::new()
            .max_handshakes(Setting::Set(8))
            .idle_timeout(Duration::from_secs(30))
            .message_timeout(Setting::Off)
            .max_memory(Setting::Set(64 << 20)),
        |ev: &Event| {
            if let Event::Message { conn, message, .. } = ev {
                let _ = conn.send(*message);
            }
        },
    )
    .unwrap();
    let (c, rx) = Client::connect_channel(
        &url(server.port()),
        ClientOptions::new()
            .idle_timeout(Duration::from_secs(30))
            .message_timeout(Setting::Set(Duration::from_secs(5))),
    )
    .unwrap();
    c.send("hi").unwrap();
    loop {
        match rx.recv_timeout(WAIT).unwrap() {
            OwnedEvent::Message(m) => {
                assert_eq!(m, OwnedMessage::Text("hi".into()));
                break;
            }
            OwnedEvent::Close { .. } => panic!("closed"),
            _ => continue,
        }
    }
    let unlimited = Server::listen(
        ServerOptions::new()
            .max_handshakes(Setting::Off)
            .max_memory(Setting::Off),
        |_: &Event| {},
    );
    assert!(unlimited.is_ok());
}

#[test]
fn invalid_limits_are_refused_with_invalid_argument() {
    let bad_server = [
        (
            "max_handshakes",
            ServerOptions::new().max_handshakes(Setting::Set(0)),
        ),
        (
            "max_handshakes",
            ServerOptions::new().max_handshakes(Setting::Set(u32::MAX)),
        ),
        ("idle_timeout", ServerOptions::new().idle_timeout(Duration::ZERO)),
        (
            "idle_timeout",
            ServerOptions::new().idle_timeout(Duration::from_secs(1 << 40)),
        ),
        (
            "message_timeout",
            ServerOptions::new().message_timeout(Setting::Set(Duration::from_micros(10))),
        ),
        ("max_memory", ServerOptions::new().max_memory(Setting::Set(0))),
    ];
    for (what, o) in bad_server {
        let err = Server::listen(o, |_: &Event| {}).err().expect(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err);
        assert!(err.message().contains(what), "{}", err);
    }
    let server = Server::listen(ServerOptions::new(), |_: &Event| {}).unwrap();
    let bad_client = [
        ("idle_timeout", ClientOptions::new().idle_timeout(Duration::ZERO)),
        (
            "message_timeout",
            ClientOptions::new().message_timeout(Setting::Set(Duration::ZERO)),
        ),
    ];
    for (what, o) in bad_client {
        let err = Client::connect(&url(server.port()), o, |_: &Event| {})
            .err()
            .expect(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err);
        assert!(err.message().contains(what), "{}", err);
    }
}

/// Opens `n` sockets that never send a request: which are still open after
/// 300 ms.
fn handshakes_left_open(port: u16, n: usize) -> Vec<&'static str> {
    let socks: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    socks
        .iter()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            match (&*s).read(&mut [0u8; 1]) {
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    "open"
                }
                _ => "closed",
            }
        })
        .collect()
}

#[test]
fn max_handshakes_closes_sockets_past_the_cap_at_once() {
    let server = Server::listen(
        ServerOptions::new().max_handshakes(Setting::Set(2)),
        |_: &Event| {},
    )
    .unwrap();
    assert_eq!(
        handshakes_left_open(server.port(), 3),
        vec!["open", "open", "closed"]
    );
    // Finished handshakes free their slots.
    assert!(Client::connect(&url(server.port()), ClientOptions::new(), |_: &Event| {}).is_ok());
}

#[test]
fn message_timeout_closes_an_unfinished_message_with_1008() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(
        ServerOptions::new().message_timeout(Setting::Set(Duration::from_millis(300))),
        move |ev: &Event| {
            if let Event::Close { info, .. } = ev {
                let _ = tx.lock().unwrap().send(info.code);
            }
        },
    )
    .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let t0 = Instant::now();
    s.write_all(&[0x81, 0x80 | 10, 1, 2, 3, 4, b'a', b'b', b'c'])
        .unwrap(); // 3 of 10 payload bytes
    let mut frame = [0u8; 4];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(frame[0], 0x88);
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1008);
    assert!(t0.elapsed() >= Duration::from_millis(250), "{:?}", t0.elapsed());
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1008);
}
