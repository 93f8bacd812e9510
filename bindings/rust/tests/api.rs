//! The Rust binding's behaviour, public function by public function, and its
//! error paths. Loopback only; every wait is bounded.
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirehub::*;

const WAIT: Duration = Duration::from_secs(10);

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{}/", port)
}

/// An echo server on a free port.
fn echo_server() -> Server {
    Server::listen(ServerOptions::new().port(0), |ev: &Event| {
        if let Event::Message { conn, message, .. } = ev {
            let _ = conn.send(*message);
        }
    })
    .expect("listen")
}

fn next(rx: &Receiver<OwnedEvent>) -> OwnedEvent {
    rx.recv_timeout(WAIT).expect("an event within 10 s")
}

/// The next event that is not a ping/pong/drain.
fn next_main(rx: &Receiver<OwnedEvent>) -> OwnedEvent {
    loop {
        match next(rx) {
            OwnedEvent::Ping(_) | OwnedEvent::Pong(_) | OwnedEvent::Drain => continue,
            e => return e,
        }
    }
}

/// A port nothing listens on: bound, then closed.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

#[test]
fn version_and_abi_match_the_header() {
    assert_eq!(version(), "0.1.0");
    assert_eq!(abi_version(), sys::WH_ABI_VERSION);
}

#[test]
fn codes_round_trip_and_describe_themselves() {
    for raw in sys::WH_EBROKER..=-1 {
        let c = Code::from_raw(raw);
        assert_eq!(c.raw(), raw);
        assert!(!matches!(c, Code::Other(_)), "{} has no variant", raw);
        assert!(c.name().starts_with("WH_E"), "{}", c.name());
        assert!(!c.description().is_empty());
    }
    assert_eq!(Code::from_raw(-3), Code::Closed);
    assert_eq!(Code::Closed.name(), "WH_ECLOSED");
    assert_eq!(Code::from_raw(-99), Code::Other(-99));
}

#[test]
fn a_client_echoes_text_and_binary_through_a_server() {
    let server = echo_server();
    assert!(server.port() > 0);
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    assert_eq!(client.send_text("hello").unwrap(), SendStatus::Sent);
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("hello".into()))
    );
    client.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Binary(vec![0, 1, 2, 255]))
    );
    client.send(Message::Text("")).unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text(String::new()))
    );
    let big = vec![7u8; 1 << 20];
    client.send(&big[..]).unwrap();
    assert_eq!(next_main(&rx), OwnedEvent::Message(OwnedMessage::Binary(big)));
}

#[test]
fn messages_borrowed_in_a_callback_can_be_kept_as_owned_copies() {
    let m = Message::Text("abc");
    assert!(m.is_text());
    assert_eq!(m.as_bytes(), b"abc");
    let o = m.to_owned();
    assert_eq!(o.as_message(), m);
    let b: Message = (&b"xy"[..]).into();
    assert!(!b.is_text());
    assert_eq!(b.to_owned(), OwnedMessage::Binary(b"xy".to_vec()));
}

#[test]
fn the_close_code_and_reason_reach_the_other_side() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::Close { info, .. } = ev {
            let _ = tx
                .lock()
                .unwrap()
                .send((info.code, info.reason.to_string(), info.error));
        }
    })
    .unwrap();
    let (client, crx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&crx), OwnedEvent::Open);
    client.close(4001, "bye now").unwrap();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (4001, "bye now".to_string(), None)
    );
    match next_main(&crx) {
        OwnedEvent::Close { code, error, .. } => {
            assert_eq!(code, 4001);
            assert_eq!(error, None);
        }
        e => panic!("{:?}", e),
    }
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let err = Client::connect(&url(closed_port()), ClientOptions::new(), |_: &Event| {})
        .err()
        .expect("an error");
    assert_eq!(err.code(), Code::ConnectionRefused);
    assert_eq!(err.raw_code(), -8);
    assert!(err.message().contains("connection refused"), "{}", err);
    assert!(err.to_string().contains("WH_ECONNREFUSED"), "{}", err);
}

#[test]
fn an_invalid_url_fails_at_once() {
    for bad in ["not a url", "http://127.0.0.1/", "ws://", ""] {
        let err = connect(bad, |_: &Event| {}).err().expect(bad);
        assert_eq!(err.code(), Code::Url, "{}: {}", bad, err);
    }
    let err = connect("ws://127.0.0.1/\0x", |_: &Event| {}).err().unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("NUL"));
}

#[test]
fn an_upgrade_hook_can_refuse_the_handshake_with_403() {
    let server = Server::listen(ServerOptions::new().upgrade_hook(true), |ev: &Event| {
        if let Event::Upgrade { request, .. } = ev {
            if request.header("x-token").as_deref() != Some("secret") {
                request.reject(403, "no token").unwrap();
                assert!(request.reject(403, "twice").is_err());
            } else {
                request.accept(None).unwrap();
            }
        }
    })
    .unwrap();
    let err = Client::connect(&url(server.port()), ClientOptions::new(), |_: &Event| {})
        .err()
        .expect("refused");
    assert_eq!(err.code(), Code::Status);
    assert_eq!(err.http_status(), Some(403));
    assert!(err.to_string().contains("403"), "{}", err);
    // The same server accepts a client that brings the token.
    let ok = Client::connect(
        &url(server.port()),
        ClientOptions::new().header("X-Token", "secret"),
        |_: &Event| {},
    );
    assert!(ok.is_ok());
}

#[test]
fn an_upgrade_hook_sees_the_request_and_picks_the_subprotocol() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let server = Server::listen(ServerOptions::new().upgrade_hook(true), move |ev: &Event| {
        if let Event::Upgrade { request, .. } = ev {
            let mut s = s2.lock().unwrap();
            s.push(request.method());
            s.push(request.path());
            s.push(request.query());
            s.push(request.target());
            s.push(request.subprotocols());
            s.push(request.remote_addr().0);
            request.accept(Some("b")).unwrap();
        }
    })
    .unwrap();
    let u = format!("ws://127.0.0.1:{}/room?x=1", server.port());
    let client = Client::connect(&u, ClientOptions::new().subprotocols("a, b"), |_: &Event| {}).unwrap();
    assert_eq!(client.subprotocol(), "b");
    assert_eq!(client.extensions(), "");
    let s = seen.lock().unwrap().clone();
    assert_eq!(s, vec!["GET", "/room", "x=1", "/room?x=1", "a, b", "127.0.0.1"]);
}

#[test]
fn sending_after_close_is_a_closed_error() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.close(1000, "").unwrap();
    let e = client.send_text("late").unwrap_err();
    assert_eq!(e.code(), Code::Closed);
    assert_eq!(client.close(1000, "").unwrap_err().code(), Code::Closed);
    assert!(matches!(next_main(&rx), OwnedEvent::Close { code: 1000, .. }));
    // Still closed, and still safe, once the close event has come and gone.
    assert_eq!(client.send_text("later").unwrap_err().code(), Code::Closed);
    assert_eq!(client.ping(b"p").unwrap_err().code(), Code::Closed);
}

#[test]
fn invalid_close_codes_and_oversized_pings_are_rejected() {
    let server = echo_server();
    let client = connect(&url(server.port()), |_: &Event| {}).unwrap();
    assert_eq!(client.close(999, "").unwrap_err().code(), Code::CloseCode);
    assert_eq!(
        client.close(1000, &"x".repeat(124)).unwrap_err().code(),
        Code::CloseCode
    );
    assert_eq!(
        client.ping(&[0u8; 126]).unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[test]
fn ping_brings_a_pong_with_the_same_payload() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.ping(b"are you there").unwrap();
    loop {
        match next(&rx) {
            OwnedEvent::Pong(p) => {
                assert_eq!(p, b"are you there");
                break;
            }
            OwnedEvent::Close { .. } => panic!("closed"),
            _ => {}
        }
    }
}

#[test]
fn terminate_ends_the_connection_with_1006() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.terminate().unwrap();
    match next_main(&rx) {
        OwnedEvent::Close { code, error, .. } => {
            assert_eq!(code, 1006);
            assert!(error.is_some());
        }
        e => panic!("{:?}", e),
    }
}

#[test]
fn broadcast_reaches_every_connection_and_honours_except() {
    let opened = Arc::new(Mutex::new(Vec::<Connection>::new()));
    let o2 = opened.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::Open { conn, .. } = ev {
            o2.lock().unwrap().push((*conn).clone());
        }
    })
    .unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap());
    }
    for (_, rx) in &clients {
        assert_eq!(next(rx), OwnedEvent::Open);
    }
    // OPEN on the client can precede OPEN on the server by a hair.
    for _ in 0..1000 {
        if server.connections() == 3 && opened.lock().unwrap().len() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(server.broadcast("all", None).unwrap(), 3);
    for (_, rx) in &clients {
        assert_eq!(
            next_main(rx),
            OwnedEvent::Message(OwnedMessage::Text("all".into()))
        );
    }
    let first = opened.lock().unwrap()[0].clone();
    assert_eq!(server.broadcast(&b"most"[..], Some(&first)).unwrap(), 2);
}

#[test]
fn publish_reaches_only_subscribers() {
    let server = Server::listen(ServerOptions::new(), |ev: &Event| {
        if let Event::Message { conn, message, .. } = ev {
            match *message {
                Message::Text("join") => conn.subscribe("news").unwrap(),
                Message::Text("leave") => conn.unsubscribe("news").unwrap(),
                _ => {}
            }
            conn.send_text("ok").unwrap();
        }
    })
    .unwrap();
    let (a, arx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    let (_b, brx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&arx), OwnedEvent::Open);
    assert_eq!(next(&brx), OwnedEvent::Open);
    a.send_text("join").unwrap();
    assert_eq!(
        next_main(&arx),
        OwnedEvent::Message(OwnedMessage::Text("ok".into()))
    );
    assert_eq!(server.publish("news", "headline", None).unwrap(), 1);
    assert_eq!(
        next_main(&arx),
        OwnedEvent::Message(OwnedMessage::Text("headline".into()))
    );
    a.send_text("leave").unwrap();
    assert_eq!(
        next_main(&arx),
        OwnedEvent::Message(OwnedMessage::Text("ok".into()))
    );
    assert_eq!(server.publish("news", "again", None).unwrap(), 0);
    // Client connections have no server: topics are not for them.
    assert_eq!(a.subscribe("news").unwrap_err().code(), Code::NotSupported);
    assert_eq!(a.subscribe("a\0b").unwrap_err().code(), Code::InvalidArgument);
}

#[test]
fn pause_resume_buffered_and_remote_address_work_on_an_open_connection() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.pause().unwrap();
    client.send_text("held").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "nothing is read while paused");
    client.resume().unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("held".into()))
    );
    assert!(client.buffered().unwrap() < 1 << 20);
    let (addr, port) = client.remote_addr();
    assert_eq!(addr, "127.0.0.1");
    assert_eq!(port, server.port());
}

/// Each end's local address is the other's remote one, over IPv4 and IPv6.
#[test]
fn local_addr_is_each_ends_own() {
    for host in ["127.0.0.1", "::1"] {
        if host == "::1" && TcpListener::bind("[::1]:0").is_err() {
            eprintln!("no IPv6 loopback: skipped");
            continue;
        }
        let (tx, opened) = mpsc::channel::<Connection>();
        let tx = Mutex::new(tx);
        let server = Server::listen(ServerOptions::new().host(host), move |ev: &Event| {
            if let Event::Open { conn, .. } = ev {
                let _ = tx.lock().unwrap().send((*conn).clone());
            }
        })
        .unwrap();
        let port = server.port();
        let url = if host.contains(':') {
            format!("ws://[{}]:{}/", host, port)
        } else {
            url(port)
        };
        let (client, rx) = Client::connect_channel(&url, ClientOptions::new()).unwrap();
        assert_eq!(next(&rx), OwnedEvent::Open);
        let conn = opened.recv_timeout(WAIT).expect("the server's conn opens");
        let (local, local_port) = client.local_addr();
        assert_eq!(local, host);
        assert!(local_port != 0 && local_port != port, "{}", local_port);
        assert_eq!(client.remote_addr(), (host.to_string(), port));
        assert_eq!(conn.local_addr(), (host.to_string(), port));
        assert_eq!(conn.remote_addr(), (local, local_port));
    }
}

#[test]
fn listening_on_a_used_port_is_addr_in_use() {
    let server = echo_server();
    let err = Server::listen(ServerOptions::new().port(server.port()), |_: &Event| {})
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::AddrInUse);
    assert!(err.message().contains(&server.port().to_string()), "{}", err);
    let err = Server::listen(ServerOptions::new().host("not-an-address!"), |_: &Event| {})
        .err()
        .unwrap();
    assert!(matches!(err.code(), Code::Addr | Code::Resolve), "{}", err);
    let err = Server::listen(ServerOptions::new().io_threads(1000), |_: &Event| {})
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[test]
fn closing_a_server_closes_its_connections_with_1001_and_reports_server_closed() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::ServerClosed = ev {
            let _ = tx.lock().unwrap().send(());
        }
    })
    .unwrap();
    let (_client, crx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&crx), OwnedEvent::Open);
    let hub = server.hub().clone();
    server.close(Duration::from_secs(2)).unwrap();
    assert!(matches!(next_main(&crx), OwnedEvent::Close { code: 1001, .. }));
    rx.recv_timeout(WAIT).expect("ServerClosed");
    drop(hub);
}

#[test]
fn hub_connect_returns_at_once_and_reports_the_outcome_as_events() {
    let server = echo_server();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let hub = Hub::new(HubOptions { io_threads: 2 }, move |ev: &Event| {
        if let Some(o) = OwnedEvent::from_event(ev) {
            let _ = tx.lock().unwrap().send(o);
        }
    })
    .unwrap();
    let conn = hub.connect(&url(server.port()), &ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    conn.send_text("via hub").unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("via hub".into()))
    );
    let refused = hub.connect(&url(closed_port()), &ClientOptions::new()).unwrap();
    match next_main(&rx) {
        OwnedEvent::Close { code, error, .. } => {
            assert_eq!(code, 1006);
            assert_eq!(error, Some(Code::ConnectionRefused));
        }
        e => panic!("{:?}", e),
    }
    assert_eq!(refused.send_text("x").unwrap_err().code(), Code::Closed);
    assert_eq!(
        hub.connect("nope", &ClientOptions::new()).unwrap_err().code(),
        Code::Url
    );
    assert!(conn == conn.clone());
    assert_ne!(conn.id(), refused.id());
}

#[test]
fn a_connection_kept_past_its_close_stays_safe_to_use() {
    let kept = Arc::new(Mutex::new(None::<Connection>));
    let k2 = kept.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::Open { conn, .. } = ev {
            *k2.lock().unwrap() = Some((*conn).clone());
        }
    })
    .unwrap();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    drop(client);
    drop(server); // the hub, its threads and the connection are gone
    let conn = kept.lock().unwrap().take().expect("kept");
    assert_eq!(conn.send_text("ghost").unwrap_err().code(), Code::Closed);
    let conn2 = conn.clone();
    drop(conn);
    assert_eq!(conn2.terminate().unwrap_err().code(), Code::Closed);
}

#[test]
fn dropping_handles_inside_a_callback_is_safe() {
    // The server drops itself (its last handle) from its own handler: the
    // hub cannot be destroyed on its own I/O thread, so that finishes on
    // another thread; clients see 1001.
    let slot: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    let kept = Arc::new(Mutex::new(Vec::<Connection>::new()));
    let k2 = kept.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| match ev {
        Event::Open { conn, .. } => k2.lock().unwrap().push((*conn).clone()),
        Event::Message { .. } => {
            // Release every kept connection handle, then the server itself.
            k2.lock().unwrap().clear();
            let me = s2.lock().unwrap().take();
            drop(me);
        }
        _ => {}
    })
    .unwrap();
    let port = server.port();
    *slot.lock().unwrap() = Some(server);
    let (client, rx) = Client::connect_channel(&url(port), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.send_text("stop").unwrap();
    assert!(matches!(next_main(&rx), OwnedEvent::Close { code: 1001, .. }));
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn a_panicking_handler_does_not_take_the_process_down() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::Message { conn, .. } = ev {
            if c2.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("handler bug (expected by this test)");
            }
            conn.send_text("still here").unwrap();
        }
    })
    .unwrap();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.send_text("boom").unwrap();
    client.send_text("again").unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("still here".into()))
    );
}

#[test]
fn connections_and_servers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Connection>();
    assert_send_sync::<Server>();
    assert_send_sync::<ServerRef>();
    assert_send_sync::<Hub>();
    assert_send_sync::<Client>();
    assert_send_sync::<Error>();
}

#[test]
fn a_connection_is_usable_from_another_thread() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    let conn = client.connection().clone();
    let t = std::thread::spawn(move || {
        for i in 0..100 {
            conn.send_text(&i.to_string()).unwrap();
        }
    });
    t.join().unwrap();
    for i in 0..100 {
        assert_eq!(
            next_main(&rx),
            OwnedEvent::Message(OwnedMessage::Text(i.to_string()))
        );
    }
}

#[test]
fn server_errors_and_limits_options_are_accepted() {
    let limits = Limits {
        max_message_size: 16,
        handshake_timeout: Some(Duration::from_secs(2)),
        close_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let server = Server::listen(
        ServerOptions::new()
            .limits(limits)
            .deflate(true)
            .max_connections(1),
        |ev: &Event| {
            if let Event::Message { conn, message, .. } = ev {
                let _ = conn.send(*message);
            }
        },
    )
    .unwrap();
    let (client, rx) =
        Client::connect_channel(&url(server.port()), ClientOptions::new().deflate(true)).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    assert!(
        client.extensions().contains("permessage-deflate"),
        "{}",
        client.extensions()
    );
    // max_connections=1 holds while this client is open: a second one is
    // refused with HTTP 503.
    let err = Client::connect(&url(server.port()), ClientOptions::new(), |_: &Event| {})
        .err()
        .expect("a connection over max_connections must be refused");
    assert_eq!(err.code(), Code::Status, "{}", err);
    assert_eq!(err.http_status(), Some(503), "{}", err);
    // Over the server's max_message_size: it fails the connection with 1009.
    client.send_text(&"x".repeat(100)).unwrap();
    assert!(matches!(next_main(&rx), OwnedEvent::Close { code: 1009, .. }));
    // Its slot is free again once the server has seen it close.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        match connect(&url(server.port()), |_: &Event| {}) {
            Ok(_) => break,
            Err(e) if e.http_status() == Some(503) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("no room after the first connection closed: {}", e),
        }
    }
}

#[test]
fn dropping_a_client_while_its_handler_runs_waits_for_the_handler() {
    let server = echo_server();
    let (entered_tx, entered_rx) = mpsc::channel();
    let entered_tx = Mutex::new(entered_tx);
    let finished = Arc::new(AtomicUsize::new(0));
    let f2 = finished.clone();
    let client = connect(&url(server.port()), move |ev: &Event| {
        if let Event::Message { .. } = ev {
            let _ = entered_tx.lock().unwrap().send(());
            std::thread::sleep(Duration::from_millis(50));
            f2.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    client.send_text("slow").unwrap();
    entered_rx.recv_timeout(WAIT).expect("handler entered");
    drop(client); // from another thread, mid-callback
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the handler ran to completion first"
    );
}

#[test]
fn a_message_sent_in_fragments_arrives_whole() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.send_fragment("one, ", false).unwrap();
    // Continuation bytes need not be valid UTF-8 on their own: "✓" split.
    client.send_fragment(&"two ✓".as_bytes()[..5], false).unwrap();
    client.send_fragment(&"two ✓".as_bytes()[5..], true).unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("one, two ✓".into()))
    );
    client.send_fragment(&[1u8, 2][..], false).unwrap();
    client.send_fragment(&[3u8][..], true).unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Binary(vec![1, 2, 3]))
    );
}

/// A self-signed certificate for localhost, made with openssl (None without it).
fn self_signed() -> Option<(String, String, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("wirehub-rs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return None;
    }
    Some((
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
        dir,
    ))
}

#[test]
fn wss_works_with_a_server_certificate_and_refuses_an_untrusted_one() {
    // Never a silent pass: scripts/install-deps.sh installs the openssl tool,
    // so a missing one is a broken setup, reported as a failure.
    let (cert, key, dir) =
        self_signed().expect("openssl could not make a self-signed certificate (is it installed?)");
    let server = Server::listen(ServerOptions::new().tls(&cert, &key), |ev: &Event| {
        if let Event::Message { conn, message, .. } = ev {
            let _ = conn.send(*message);
        }
    })
    .unwrap();
    let u = format!("wss://127.0.0.1:{}/", server.port());
    let err = Client::connect(&u, ClientOptions::new(), |_: &Event| {})
        .err()
        .expect("untrusted");
    assert_eq!(err.code(), Code::Tls, "{}", err);
    for opts in [
        ClientOptions::new().tls_ca_file(&cert),
        ClientOptions::new().tls_insecure(true),
    ] {
        let (client, rx) = Client::connect_channel(&u, opts).unwrap();
        assert_eq!(next(&rx), OwnedEvent::Open);
        client.send_text("secure").unwrap();
        assert_eq!(
            next_main(&rx),
            OwnedEvent::Message(OwnedMessage::Text("secure".into()))
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------------------------
// Options, raw handles and flow control.

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {}",
            what
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn as_raw_is_the_c_handle_and_sys_calls_through_it_act_on_the_connection() {
    let server = echo_server();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    let raw = client.as_raw();
    assert!(!raw.is_null());
    assert_eq!(raw as usize, client.id());
    assert_eq!(unsafe { sys::wh_conn_remote_port(raw) }, server.port() as i32);
    let rc = unsafe { sys::wh_conn_send(raw, b"raw".as_ptr() as *const _, 3, sys::WH_TEXT) };
    assert_eq!(rc, sys::WH_SENT);
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("raw".into()))
    );
}

#[test]
fn hub_listen_runs_several_servers_on_one_hub_and_events_name_their_server() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let hub = Hub::new(HubOptions::default(), move |ev: &Event| match ev {
        Event::Open { server: Some(s), .. } => {
            let _ = tx.lock().unwrap().send(s.port());
        }
        Event::Message { conn, message, .. } => {
            let _ = conn.send(*message);
        }
        _ => {}
    })
    .unwrap();
    let a = hub.listen(&ServerOptions::new()).unwrap();
    let b = hub.listen(&ServerOptions::new().host("127.0.0.1")).unwrap();
    assert_ne!(a.port(), b.port());
    for s in [&a, &b] {
        let (client, crx) = Client::connect_channel(&url(s.port()), ClientOptions::new()).unwrap();
        assert_eq!(next(&crx), OwnedEvent::Open);
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), s.port());
        client.send_text("on one hub").unwrap();
        assert_eq!(
            next_main(&crx),
            OwnedEvent::Message(OwnedMessage::Text("on one hub".into()))
        );
    }
    // Both servers live on the hub they were listened on.
    assert_eq!(
        a.hub().connect("nope", &ClientOptions::new()).unwrap_err().code(),
        Code::Url
    );
    let err = hub.listen(&ServerOptions::new().port(a.port())).err().unwrap();
    assert_eq!(err.code(), Code::AddrInUse);
}

#[test]
fn backlog_sets_the_listen_queue_length() {
    let server = Server::listen(ServerOptions::new().backlog(7), |ev: &Event| {
        if let Event::Message { conn, message, .. } = ev {
            let _ = conn.send(*message);
        }
    })
    .unwrap();
    // For a listening socket `ss` reports the backlog as Send-Q.
    let port = format!(":{}", server.port());
    match std::process::Command::new("ss")
        .args(["-Hltn", "sport", "=", &port])
        .output()
    {
        Ok(o) if o.status.success() => {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let send_q: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(send_q.get(2).copied(), Some("7"), "ss: {}", out);
        }
        _ => eprintln!("no `ss`: backlog checked by serving only"),
    }
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.send_text("queued up").unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("queued up".into()))
    );
}

#[test]
fn the_server_picks_the_subprotocol_by_its_own_preference_without_a_hook() {
    let server = Server::listen(
        ServerOptions::new().subprotocols("chat, superchat"),
        |_: &Event| {},
    )
    .unwrap();
    let u = url(server.port());
    let c = Client::connect(
        &u,
        ClientOptions::new().subprotocols("superchat, chat"),
        |_: &Event| {},
    )
    .unwrap();
    assert_eq!(c.subprotocol(), "chat", "the server's order wins");
    let c = Client::connect(
        &u,
        ClientOptions::new().subprotocols("v2, superchat"),
        |_: &Event| {},
    )
    .unwrap();
    assert_eq!(c.subprotocol(), "superchat");
    let c = Client::connect(&u, ClientOptions::new(), |_: &Event| {}).unwrap();
    assert_eq!(c.subprotocol(), "", "nothing offered, nothing picked");
    // Offered protocols the server does not speak: it answers with none,
    // which a client that asked for one refuses.
    let err = Client::connect(&u, ClientOptions::new().subprotocols("mqtt"), |_: &Event| {})
        .err()
        .expect("no common subprotocol");
    assert_eq!(err.code(), Code::Handshake, "{}", err);
}

#[test]
fn origin_is_sent_as_the_origin_header() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(ServerOptions::new().upgrade_hook(true), move |ev: &Event| {
        if let Event::Upgrade { request, .. } = ev {
            let _ = tx.lock().unwrap().send(request.header("Origin"));
            request.accept(None).unwrap();
        }
    })
    .unwrap();
    let u = url(server.port());
    let _c = Client::connect(
        &u,
        ClientOptions::new().origin("https://app.example"),
        |_: &Event| {},
    )
    .unwrap();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap().as_deref(),
        Some("https://app.example")
    );
    let _c = Client::connect(&u, ClientOptions::new(), |_: &Event| {}).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), None, "no origin by default");
    let err = Client::connect(&u, ClientOptions::new().origin("a\0b"), |_: &Event| {})
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[test]
fn open_timeout_fails_a_connect_whose_server_never_answers_with_timed_out() {
    // Accepts the TCP connection, then says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mute = std::thread::spawn(move || {
        let held = listener.accept();
        let _ = done_rx.recv_timeout(WAIT);
        drop(held);
    });
    let start = std::time::Instant::now();
    let err = Client::connect(
        &url(port),
        ClientOptions::new().open_timeout(Duration::from_millis(200)),
        |_: &Event| {},
    )
    .err()
    .expect("a timeout");
    let took = start.elapsed();
    let _ = done_tx.send(());
    mute.join().unwrap();
    assert_eq!(err.code(), Code::TimedOut, "{}", err);
    assert!(err.to_string().contains("WH_ETIMEDOUT"), "{}", err);
    assert!(took >= Duration::from_millis(150), "gave up early: {:?}", took);
    assert!(
        took < Duration::from_secs(5),
        "the 200 ms timeout took {:?}",
        took
    );
}

#[test]
fn client_limits_fail_a_connection_whose_incoming_message_is_too_big_with_1009() {
    let server = echo_server();
    let limits = Limits {
        max_message_size: 64,
        ..Default::default()
    };
    let (client, rx) =
        Client::connect_channel(&url(server.port()), ClientOptions::new().limits(limits)).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    client.send_text(&"s".repeat(64)).unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("s".repeat(64)))
    );
    // The limit is on what arrives: sending 65 bytes is fine, the echo is not.
    client.send_text(&"b".repeat(65)).unwrap();
    match next_main(&rx) {
        OwnedEvent::Close { code, error, .. } => {
            assert_eq!(code, 1009);
            assert_eq!(error, Some(Code::TooBig));
        }
        e => panic!("{:?}", e),
    }
}

#[test]
fn limits_with_max_buffered_below_high_water_are_invalid_arguments() {
    let bad = Limits {
        high_water: 1 << 20,
        max_buffered: 1 << 10,
        ..Default::default()
    };
    let err = Server::listen(ServerOptions::new().limits(bad.clone()), |_: &Event| {})
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err);
    let server = echo_server();
    let err = Client::connect(
        &url(server.port()),
        ClientOptions::new().limits(bad),
        |_: &Event| {},
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err);
}

#[test]
fn sends_past_high_water_are_queued_drain_follows_and_past_max_buffered_are_dropped() {
    // The server stops reading, so the client's sends pile up.
    let peer = Arc::new(Mutex::new(None::<Connection>));
    let p2 = peer.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| {
        if let Event::Open { conn, .. } = ev {
            conn.pause().unwrap();
            *p2.lock().unwrap() = Some((*conn).clone());
        }
    })
    .unwrap();
    let limits = Limits {
        high_water: 64 << 10,
        max_buffered: 1 << 20,
        ..Default::default()
    };
    let (client, rx) =
        Client::connect_channel(&url(server.port()), ClientOptions::new().limits(limits)).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    wait_until("the server's open", || peer.lock().unwrap().is_some());

    let chunk = vec![0x5au8; 32 << 10];
    let (mut queued, mut dropped) = (0, None);
    let deadline = std::time::Instant::now() + WAIT;
    for _ in 0..100_000 {
        match client.send_binary(&chunk) {
            Ok(SendStatus::Sent) => {}
            Ok(SendStatus::Queued) => queued += 1,
            Err(e) => {
                dropped = Some(e);
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "never dropped");
    }
    assert!(queued > 0, "a send above high water says Queued");
    let e = dropped.expect("a send above max_buffered is dropped");
    assert_eq!(e.code(), Code::Dropped, "{}", e);
    let b = client.buffered().unwrap();
    assert!(b <= 1 << 20, "buffered {} is above max_buffered", b);
    // Dropped means dropped: the connection is still open and usable.
    assert!(client.send_binary(&[]).is_ok());

    // Once the peer reads again the buffer empties and Drain is reported.
    peer.lock().unwrap().as_ref().unwrap().resume().unwrap();
    loop {
        match next(&rx) {
            OwnedEvent::Drain => break,
            OwnedEvent::Close { .. } => panic!("closed instead of draining"),
            _ => {}
        }
    }
    wait_until("the buffer to empty", || client.buffered().unwrap() <= 16 << 10);
    assert_eq!(client.send_text("after drain").unwrap(), SendStatus::Sent);
}

#[test]
fn ping_interval_pings_a_silent_peer_and_its_pong_keeps_the_connection_open() {
    let pongs = Arc::new(AtomicUsize::new(0));
    let p2 = pongs.clone();
    let limits = Limits {
        ping_interval: Some(Duration::from_millis(150)),
        ..Default::default()
    };
    let server = Server::listen(ServerOptions::new().limits(limits), move |ev: &Event| match ev {
        Event::Pong { .. } => {
            p2.fetch_add(1, Ordering::SeqCst);
        }
        Event::Message { conn, message, .. } => {
            let _ = conn.send(*message);
        }
        _ => {}
    })
    .unwrap();
    let (client, rx) = Client::connect_channel(&url(server.port()), ClientOptions::new()).unwrap();
    assert_eq!(next(&rx), OwnedEvent::Open);
    let mut pings = 0;
    while pings < 3 {
        match next(&rx) {
            OwnedEvent::Ping(_) => pings += 1,
            e => panic!("only pings while silent, got {:?}", e),
        }
    }
    wait_until("the server to see pongs", || pongs.load(Ordering::SeqCst) >= 2);
    client.send_text("still open").unwrap();
    assert_eq!(
        next_main(&rx),
        OwnedEvent::Message(OwnedMessage::Text("still open".into()))
    );
}

#[test]
fn reuse_port_lets_two_servers_listen_on_one_port() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    let first = Server::listen(ServerOptions::new().reuse_port(true), move |ev: &Event| {
        if let Event::ServerClosed = ev {
            let _ = closed_tx.lock().unwrap().send(());
        }
    })
    .unwrap();
    let port = first.port();
    let opened = Arc::new(AtomicUsize::new(0));
    let o2 = opened.clone();
    let second = Server::listen(
        ServerOptions::new().reuse_port(true).port(port),
        move |ev: &Event| {
            if let Event::Open { .. } = ev {
                o2.fetch_add(1, Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    assert_eq!(second.port(), port);
    // Without the option the port is taken.
    let err = Server::listen(ServerOptions::new().port(port), |_: &Event| {})
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::AddrInUse);
    // With the first one gone, the second still serves the port.
    first.close(Duration::from_secs(1)).unwrap();
    closed_rx.recv_timeout(WAIT).expect("the first server closed");
    let c = connect(&url(port), |_: &Event| {}).unwrap();
    wait_until("the second server's open", || opened.load(Ordering::SeqCst) == 1);
    assert_eq!(second.connections(), 1);
    drop(c);
}
