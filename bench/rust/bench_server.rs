//! The benchmark server on the Rust binding (mirror of bench/bench_server.c).
//!
//!     bench_server echo|broadcast PORT
//!
//! echo: every message goes back to its sender with the same type.
//! broadcast: every message goes to every open connection, sender included.
//! Listens on 127.0.0.1:PORT until killed. Like the C one: callback mode, one
//! I/O thread, the event's borrowed bytes handed straight to send/broadcast.
use wirehub::{Code, Event, Server, ServerOptions};

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}
extern "C" {
    fn getrlimit(resource: i32, rl: *mut RLimit) -> i32;
    fn setrlimit(resource: i32, rl: *const RLimit) -> i32;
}

/// connect-5k holds 5000 sockets; a soft limit of 1024 would measure the limit.
fn raise_fd_limit() {
    const RLIMIT_NOFILE: i32 = 7; // Linux
    let mut rl = RLimit { cur: 0, max: 0 };
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut rl) == 0 && rl.cur < rl.max {
            rl.cur = rl.max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 || (args[0] != "echo" && args[0] != "broadcast") {
        eprintln!("usage: bench_server echo|broadcast PORT");
        std::process::exit(2);
    }
    let port: u16 = match args[1].parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("bench_server: invalid port '{}'", args[1]);
            std::process::exit(2);
        }
    };
    raise_fd_limit();
    let broadcast = args[0] == "broadcast";
    let options = ServerOptions::new()
        .host("127.0.0.1")
        .port(port)
        .backlog(4096);
    let result = Server::listen(options, move |ev: &Event| match ev {
        Event::Message {
            conn,
            message,
            server,
        } => {
            if broadcast {
                if let Some(server) = server {
                    if let Err(e) = server.broadcast(*message, None) {
                        if e.code() != Code::Shutdown {
                            eprintln!("bench: broadcast: {}", e);
                        }
                    }
                }
            } else if let Err(e) = conn.send(*message) {
                // A dropped echo would fake the figures: end that connection.
                if e.code() != Code::Closed {
                    eprintln!("bench: send: {}", e);
                    let _ = conn.terminate();
                }
            }
        }
        Event::Error { error } => eprintln!("bench: server error: {}", error),
        _ => {}
    });
    let server = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench_server: {}", e);
            std::process::exit(1);
        }
    };
    println!(
        "listening on ws://127.0.0.1:{} ({})",
        server.port(),
        args[0]
    );
    loop {
        std::thread::park();
    }
}
