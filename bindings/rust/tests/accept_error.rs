//! `Event::Error`: a server-level error that does not stop the server. Here
//! accept() fails because the process is out of file descriptors.
//! (Its own test binary: it exhausts the process's descriptors for a moment,
//! which would break tests running in parallel.)
#![cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
))]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::raw::c_int;
use std::os::unix::io::AsRawFd;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use wirehub::*;

const WAIT: Duration = Duration::from_secs(10);
const RLIMIT_NOFILE: c_int = 7; // on the architectures above

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: c_int, rlim: *mut Rlimit) -> c_int;
    fn setrlimit(resource: c_int, rlim: *const Rlimit) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
}

/// Uses up every free descriptor but the ones it gives back; restores all on drop.
struct Exhausted {
    fds: Vec<c_int>,
    old: Rlimit,
}

impl Exhausted {
    fn new() -> Exhausted {
        let mut old = Rlimit { cur: 0, max: 0 };
        assert_eq!(unsafe { getrlimit(RLIMIT_NOFILE, &mut old) }, 0);
        // A low soft limit keeps the number of dups small.
        let low = Rlimit {
            cur: old.cur.min(256),
            max: old.max,
        };
        assert_eq!(unsafe { setrlimit(RLIMIT_NOFILE, &low) }, 0);
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut fds = Vec::new();
        loop {
            let fd = unsafe { dup(null.as_raw_fd()) };
            if fd < 0 {
                break;
            }
            fds.push(fd);
            assert!(fds.len() < 100_000);
        }
        drop(null);
        Exhausted { fds, old }
    }
    fn give_back(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(fd) = self.fds.pop() {
                unsafe { close(fd) };
            }
        }
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        let n = self.fds.len();
        self.give_back(n);
        unsafe { setrlimit(RLIMIT_NOFILE, &self.old) };
    }
}

#[test]
fn a_failed_accept_is_reported_as_an_error_event_and_the_server_keeps_serving() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::listen(ServerOptions::new(), move |ev: &Event| match ev {
        Event::Error { error } => {
            let _ = tx.lock().unwrap().send(error.clone());
        }
        Event::Message { conn, message, .. } => {
            let _ = conn.send(*message);
        }
        _ => {}
    })
    .unwrap();
    let addr = format!("127.0.0.1:{}", server.port());

    let mut out_of_fds = Exhausted::new();
    out_of_fds.give_back(1); // exactly one, for the connecting socket
    let stream = TcpStream::connect(&addr);
    let error = rx.recv_timeout(WAIT);
    drop(out_of_fds);

    let mut stream = stream.expect("connect with the one free descriptor");
    let error = error.expect("an Error event while accept() has no descriptor");
    assert_eq!(error.code(), Code::Io, "{}", error);
    assert!(error.message().contains("accept failed"), "{}", error);

    // With descriptors free again the waiting connection is accepted.
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("the handshake answer"), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{}", head);
    // And new clients are served as before.
    let (client, crx) = Client::connect_channel(&format!("ws://{}/", addr), ClientOptions::new()).unwrap();
    assert_eq!(crx.recv_timeout(WAIT).unwrap(), OwnedEvent::Open);
    client.send_text("after the error").unwrap();
    loop {
        match crx.recv_timeout(WAIT).unwrap() {
            OwnedEvent::Message(m) => {
                assert_eq!(m, OwnedMessage::Text("after the error".into()));
                break;
            }
            OwnedEvent::Close { .. } => panic!("closed"),
            _ => {}
        }
    }
}
