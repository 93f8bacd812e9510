//! Echo server: every message goes back to its sender with the same type.
//!
//!     cargo run --example echo_server -- [--host 127.0.0.1] [--port 8080]
//!
//! Prints `listening on ws://HOST:PORT` once ready (port 0 picks a free one)
//! and serves until killed.
use wirehub::{Event, Server, ServerOptions};

fn main() {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => usage(&format!("invalid port '{}'", v)),
            },
            _ => usage(&format!("unexpected argument '{}'", a)),
        }
    }

    let options = ServerOptions::new().host(&host).port(port);
    let server = match Server::listen(options, |ev: &Event| match ev {
        Event::Message { conn, message, .. } => {
            // Closed: the peer is gone; its close event follows.
            if let Err(e) = conn.send(*message) {
                if e.code() != wirehub::Code::Closed {
                    eprintln!("echo_server: send: {}", e);
                }
            }
        }
        Event::Error { error } => eprintln!("echo_server: {}", error),
        _ => {}
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo_server: {}", e);
            std::process::exit(1);
        }
    };
    println!("listening on ws://{}:{}", host, server.port());
    loop {
        std::thread::park();
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "echo_server: {}\nusage: echo_server [--host HOST] [--port PORT]",
        msg
    );
    std::process::exit(2);
}
