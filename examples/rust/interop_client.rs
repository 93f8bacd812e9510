//! The Rust client of tests/interop (see tests/interop/README.md):
//!
//!     interop_client URL NAME COMPRESS
//!
//! Connects (offering permessage-deflate if COMPRESS is 1), prints
//! `EXTENSIONS <ext or ->` and `READY`, waits for `GO <total>` on stdin, sends
//! its five messages (printing `SENT <T|B> <length> <sha256>` for each),
//! prints `RECV ...` for each message received, closes with 1000 once it has
//! received `<total>`, and prints `DONE` after a clean close.
use std::io::{BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};

use wirehub::{Client, ClientOptions, Connection, Event, Limits, Message};

const MIB: usize = 1 << 20;

#[derive(Default)]
struct State {
    received: i64,
    total: i64,
    closed: bool,
    failed: bool,
    conn: Option<Connection>,
}

fn emit(line: &str) {
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{}", line);
    let _ = out.flush();
}

fn digest(what: &str, text: bool, data: &[u8]) {
    let hex: String = sha256(data).iter().map(|b| format!("{:02x}", b)).collect();
    emit(&format!(
        "{} {} {} {}",
        what,
        if text { 'T' } else { 'B' },
        data.len(),
        hex
    ));
}

fn fail(msg: &str) -> ! {
    eprintln!("rust_client: {}", msg);
    std::process::exit(1);
}

fn maybe_finish(s: &State) {
    if s.total >= 0 && s.received == s.total {
        if let Some(c) = &s.conn {
            let _ = c.close(1000, "done");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: interop_client URL NAME COMPRESS");
        std::process::exit(2);
    }
    let (url, name) = (&args[0], &args[1]);
    let state = Arc::new((
        Mutex::new(State {
            total: -1,
            ..Default::default()
        }),
        Condvar::new(),
    ));
    let st = state.clone();
    let options = ClientOptions::new().deflate(args[2] == "1").limits(Limits {
        max_buffered: 64 * MIB,
        ..Default::default()
    });
    let client = Client::connect(url, options, move |ev: &Event| {
        let (lock, cv) = &*st;
        match ev {
            Event::Message { message, .. } => {
                digest("RECV", message.is_text(), message.as_bytes());
                let mut s = lock.lock().unwrap();
                s.received += 1;
                maybe_finish(&s);
            }
            Event::Close { info, .. } => {
                let mut s = lock.lock().unwrap();
                s.closed = true;
                if let Some(e) = info.error {
                    s.failed = true;
                    eprintln!(
                        "rust_client: closed: {} (code {})",
                        e.description(),
                        info.code
                    );
                }
                cv.notify_all();
            }
            _ => {}
        }
    })
    .unwrap_or_else(|e| fail(&format!("connect: {}", e)));
    state.0.lock().unwrap().conn = Some(client.connection().clone());
    let ext = client.extensions();
    emit(&format!(
        "EXTENSIONS {}",
        if ext.is_empty() { "-" } else { &ext }
    ));
    emit("READY");

    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let total: i64 = match line.trim().strip_prefix("GO ").and_then(|n| n.parse().ok()) {
        Some(n) if n >= 0 => n,
        _ => fail(&format!("expected GO <total>, got {:?}", line)),
    };
    {
        let mut s = state.0.lock().unwrap();
        s.total = total;
        maybe_finish(&s);
    }

    let send = |m: Message| {
        if let Err(e) = client.send(m) {
            fail(&format!("send: {}", e));
        }
        digest("SENT", m.is_text(), m.as_bytes());
    };
    let prefix = |i: u32| format!("{}|{}|", name, i);
    send(Message::Text(&format!("{}|1|hello from {} ✓", name, name)));
    let mut b = prefix(2).into_bytes();
    b.extend(0u8..64);
    send(Message::Binary(&b));
    let mut t = prefix(3);
    let abc = b"abcdefghijklmnopqrstuvwxyz";
    let mut i = 0;
    while t.len() < MIB {
        t.push(abc[i % 26] as char);
        i += 1;
    }
    send(Message::Text(&t));
    let mut bin = prefix(4).into_bytes();
    let mut i = 0usize;
    while bin.len() < MIB {
        bin.push(((i * 31 + 7) & 255) as u8);
        i += 1;
    }
    send(Message::Binary(&bin));
    let f1 = prefix(5);
    let frags = [f1.as_str(), "part two, ", "part three ✓"];
    for (k, f) in frags.iter().enumerate() {
        if let Err(e) = client.send_fragment(*f, k == 2) {
            fail(&format!("send: {}", e));
        }
    }
    digest("SENT", true, frags.concat().as_bytes());

    let (lock, cv) = &*state;
    let mut s = lock.lock().unwrap();
    while !s.closed {
        let (g, timeout) = cv
            .wait_timeout(s, std::time::Duration::from_secs(60))
            .unwrap();
        s = g;
        if timeout.timed_out() {
            fail("no close within 60 s");
        }
    }
    let ok = !s.failed && s.received == s.total;
    let (received, total) = (s.received, s.total);
    s.conn = None;
    drop(s);
    drop(client);
    if !ok {
        fail(&format!("received {} of {}", received, total));
    }
    emit("DONE");
}

/// SHA-256 (FIPS 180-4): the crate has no dependencies, and this example
/// needs nothing more than a digest to print.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    let mut out = [0u8; 32];
    for i in 0..8 {
        out[4 * i..4 * i + 4].copy_from_slice(&h[i].to_be_bytes());
    }
    out
}
