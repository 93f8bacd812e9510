//! Drop releases every handle: many connect/close cycles against one server
//! leave no open connection, no stray event and no file descriptor behind.
//! (Its own test binary: it counts the process's descriptors, which tests
//! running in parallel would disturb.)
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirehub::*;

const WAIT: Duration = Duration::from_secs(10);
const CYCLES: usize = 60;

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{}/", port)
}

/// Open descriptors of this process (Linux), or None where /proc is absent.
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn next(rx: &Receiver<OwnedEvent>) -> OwnedEvent {
    rx.recv_timeout(WAIT).expect("an event within 10 s")
}

fn close_event(rx: &Receiver<OwnedEvent>) -> (u16, Option<Code>) {
    loop {
        match next(rx) {
            OwnedEvent::Close { code, error, .. } => return (code, error),
            OwnedEvent::Open | OwnedEvent::Ping(_) | OwnedEvent::Pong(_) | OwnedEvent::Drain => {}
            e => panic!("unexpected {:?}", e),
        }
    }
}

#[derive(Default)]
struct Tally {
    opens: usize,
    closes: Vec<u16>,
}

#[test]
fn connect_close_cycles_return_every_count_to_zero_and_release_every_descriptor() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let t2 = tally.clone();
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| match ev {
        Event::Open { .. } => t2.lock().unwrap().opens += 1,
        Event::Close { info, .. } => t2.lock().unwrap().closes.push(info.code),
        _ => {}
    })
    .unwrap();
    // A long-lived client hub, for connections made with Hub::connect.
    let (htx, hrx) = mpsc::channel();
    let htx = Mutex::new(htx);
    let hub = Hub::new(HubOptions::default(), move |ev: &Event| {
        if let Some(o) = OwnedEvent::from_event(ev) {
            let _ = htx.lock().unwrap().send(o);
        }
    })
    .unwrap();
    let u = url(server.port());
    let baseline = open_fds();

    for i in 0..CYCLES {
        match i % 3 {
            // A Client (its own hub), closed by the application.
            0 => {
                let (c, rx) = Client::connect_channel(&u, ClientOptions::new()).unwrap();
                assert_eq!(next(&rx), OwnedEvent::Open);
                c.close(1000, "done").unwrap();
                assert_eq!(close_event(&rx), (1000, None));
            }
            // A Client simply dropped: the drop closes it with 1001.
            1 => {
                let c = connect(&u, |_: &Event| {}).unwrap();
                drop(c);
            }
            // A connection on the shared hub, its handle cloned and dropped.
            _ => {
                let conn = hub.connect(&u, &ClientOptions::new()).unwrap();
                assert_eq!(next(&hrx), OwnedEvent::Open);
                let extra = conn.clone();
                conn.close(1000, "").unwrap();
                drop(conn);
                assert_eq!(close_event(&hrx), (1000, None));
                assert_eq!(extra.send_text("late").unwrap_err().code(), Code::Closed);
            }
        }
    }

    wait_until("the server to count 0 connections", || server.connections() == 0);
    wait_until("a close event for every open", || {
        let t = tally.lock().unwrap();
        t.opens == CYCLES && t.closes.len() == CYCLES
    });
    {
        let t = tally.lock().unwrap();
        let going_away = t.closes.iter().filter(|&&c| c == 1001).count();
        let normal = t.closes.iter().filter(|&&c| c == 1000).count();
        assert_eq!(going_away, CYCLES / 3, "closes: {:?}", t.closes);
        assert_eq!(normal, CYCLES - CYCLES / 3, "closes: {:?}", t.closes);
    }
    // The shared hub saw exactly its own connections' events, nothing more.
    assert!(hrx.recv_timeout(Duration::from_millis(50)).is_err());
    // Every socket, and every dropped Client's hub (its threads' descriptors),
    // is gone: the process is back where it started.
    if let Some(before) = baseline {
        wait_until("descriptors back to the baseline", || open_fds() == Some(before));
    }
    drop(hub);
    drop(server);
}
