//! Chat client, scriptable through stdin/stdout:
//!
//!     cargo run --example chat_client -- ws://127.0.0.1:8080/
//!
//! Each stdin line is sent as a text message (without its line end); each
//! message received is printed as one line (binary ones as `<binary N bytes>`).
//! At the end of stdin it closes with 1000 and waits for the server's close;
//! when the server closes, it exits.
//!
//! Exit status: 0 after a clean close, 1 if the connection failed or ended
//! abnormally, 2 on bad usage.
use std::io::{BufRead, Write};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use wirehub::{Client, ClientOptions, OwnedEvent, OwnedMessage};

const CLOSE_WAIT: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 1 || args[0].starts_with('-') {
        eprintln!("usage: chat_client ws://HOST:PORT/PATH");
        std::process::exit(2);
    }
    let url = &args[0];
    let (client, events) = match Client::connect_channel(url, ClientOptions::new()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat_client: {}", e);
            std::process::exit(1);
        }
    };
    let client = std::sync::Arc::new(client);
    let stdin_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = stdin_done.clone();

    // stdin is read on its own thread so that messages print while it blocks.
    let sender = client.clone();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("chat_client: stdin: {}", e);
                    break;
                }
            };
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if let Err(e) = sender.send_text(line) {
                if e.code() == wirehub::Code::Closed {
                    return;
                }
                eprintln!("chat_client: {}", e);
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = sender.close(1000, "");
    });

    let stdout = std::io::stdout();
    let mut closing_since: Option<Instant> = None;
    let code = loop {
        let ev = match events.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => {
                // The close handshake has its own timeout in the engine; this
                // is a last resort so the process never hangs.
                if stdin_done.load(std::sync::atomic::Ordering::SeqCst) {
                    let t = *closing_since.get_or_insert_with(Instant::now);
                    if t.elapsed() > CLOSE_WAIT {
                        break 1;
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break 1,
        };
        let mut out = stdout.lock();
        match ev {
            OwnedEvent::Message(OwnedMessage::Text(t)) => {
                let _ = writeln!(out, "{}", t);
                let _ = out.flush();
            }
            OwnedEvent::Message(OwnedMessage::Binary(b)) => {
                let _ = writeln!(out, "<binary {} bytes>", b.len());
                let _ = out.flush();
            }
            OwnedEvent::Close {
                code,
                reason,
                error,
            } => {
                if let Some(e) = error {
                    eprintln!(
                        "chat_client: connection ended: {} ({} {})",
                        e.description(),
                        code,
                        reason
                    );
                    break 1;
                }
                break 0;
            }
            _ => {}
        }
    };
    std::process::exit(code);
}
