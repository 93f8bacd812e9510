//! sys.rs mirrors capi/wirehub.h by hand: this checks it against the C
//! compiler. A small C program built against the header prints the size,
//! alignment and field offsets of every struct and the value of every
//! constant; each must equal what Rust computes for the declarations in sys.rs.
use std::collections::BTreeMap;
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

use wirehub::sys::*;

/// `offset_of!` for the crate's minimum Rust (1.63), where std has none.
macro_rules! offset {
    ($t:ty, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        #[allow(unused_unsafe)]
        let field = unsafe { std::ptr::addr_of!((*base).$f) };
        field as usize - base as usize
    }};
}

/// (C expression, Rust's value) pairs, keyed by a label.
#[derive(Default)]
struct Expect {
    items: Vec<(String, String, i128)>,
}

impl Expect {
    fn add(&mut self, label: String, c_expr: String, rust: i128) {
        self.items.push((label, c_expr, rust));
    }
}

/// Size, alignment and each field's offset. A Rust field `type_` is C's `type`.
macro_rules! layout {
    ($e:expr, $t:ident { $($f:ident),* $(,)? }) => {{
        let t = stringify!($t);
        $e.add(format!("sizeof({})", t), format!("sizeof({})", t), size_of::<$t>() as i128);
        $e.add(format!("alignof({})", t), format!("_Alignof({})", t), align_of::<$t>() as i128);
        let mut fields = 0usize;
        $(
            let c = stringify!($f).trim_end_matches('_');
            $e.add(format!("{}.{}", t, c), format!("offsetof({}, {})", t, c), offset!($t, $f) as i128);
            fields += 1;
        )*
        assert!(fields > 0);
    }};
}

macro_rules! constants {
    ($e:expr, $($c:ident),* $(,)?) => {{
        $( $e.add(stringify!($c).to_string(), stringify!($c).to_string(), $c as i128); )*
    }};
}

fn expected() -> Expect {
    let mut e = Expect::default();
    layout!(
        e,
        wh_event {
            type_,
            flags,
            conn,
            server,
            request,
            data,
            len,
            code,
            error,
            status,
            headers,
            headers_len,
            user_data,
        }
    );
    layout!(
        e,
        wh_hub_options {
            size,
            io_threads,
            event_mode,
            on_event,
            user_data,
            flags
        }
    );
    layout!(
        e,
        wh_deflate_options {
            enabled,
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
            level,
            mem_level,
            threshold,
        }
    );
    layout!(
        e,
        wh_limits {
            max_message_size,
            max_header_bytes,
            high_water,
            low_water,
            max_buffered,
            handshake_timeout_ms,
            close_timeout_ms,
            ping_interval_ms,
            ping_timeout_ms,
        }
    );
    layout!(
        e,
        wh_tls_options {
            cert_file,
            key_file,
            ca_file,
            insecure,
            server_name
        }
    );
    layout!(
        e,
        wh_server_options {
            size,
            host,
            port,
            backlog,
            flags,
            subprotocols,
            max_connections,
            limits,
            deflate,
            tls,
            user_data,
            max_handshakes,
            idle_timeout_ms,
            message_timeout_ms,
            max_memory,
        }
    );
    layout!(
        e,
        wh_client_options {
            size,
            subprotocols,
            headers,
            origin,
            limits,
            deflate,
            tls,
            user_data,
            idle_timeout_ms,
            message_timeout_ms,
        }
    );
    layout!(
        e,
        wh_broker_options {
            size,
            url,
            prefix,
            ca_file,
            insecure,
            connect_timeout_ms,
            max_pending,
        }
    );
    layout!(
        e,
        wh_broker_stats {
            size,
            connected,
            channels,
            published,
            received,
            dropped,
            malformed,
            reconnects,
        }
    );
    constants!(
        e,
        WH_ABI_VERSION,
        WH_OK,
        WH_EINVAL,
        WH_ENOMEM,
        WH_ECLOSED,
        WH_EDROPPED,
        WH_ESTATE,
        WH_EADDRINUSE,
        WH_ERESOLVE,
        WH_ECONNREFUSED,
        WH_ETIMEDOUT,
        WH_EHANDSHAKE,
        WH_ETLS,
        WH_EIO,
        WH_EPROTO,
        WH_EUTF8,
        WH_ETOOBIG,
        WH_ELIMIT,
        WH_EURL,
        WH_ENOTSUP,
        WH_EAGAIN,
        WH_ESHUTDOWN,
        WH_ECLOSECODE,
        WH_EPINGTIMEOUT,
        WH_ESTATUS,
        WH_EADDR,
        WH_EACCES,
        WH_ERESET,
        WH_EINTERNAL,
        WH_EIDLE,
        WH_EBUDGET,
        WH_EMFILE,
        WH_EBROKER,
        WH_CLOSE_NORMAL,
        WH_CLOSE_GOING_AWAY,
        WH_CLOSE_PROTOCOL_ERROR,
        WH_CLOSE_UNSUPPORTED_DATA,
        WH_CLOSE_NO_STATUS,
        WH_CLOSE_ABNORMAL,
        WH_CLOSE_INVALID_DATA,
        WH_CLOSE_POLICY,
        WH_CLOSE_TOO_BIG,
        WH_CLOSE_MANDATORY_EXTENSION,
        WH_CLOSE_INTERNAL_ERROR,
        WH_CLOSE_SERVICE_RESTART,
        WH_CLOSE_TRY_AGAIN_LATER,
        WH_CLOSE_BAD_GATEWAY,
        WH_EV_OPEN,
        WH_EV_MESSAGE,
        WH_EV_PING,
        WH_EV_PONG,
        WH_EV_CLOSE,
        WH_EV_DRAIN,
        WH_EV_UPGRADE,
        WH_EV_HTTP,
        WH_EV_SERVER_CLOSED,
        WH_EV_ERROR,
        WH_EV_BATCH_END,
        WH_HUB_BATCH_END,
        WH_TEXT,
        WH_BINARY,
        WH_COMPRESSED,
        WH_NO_COMPRESS,
        WH_COMPRESS,
        WH_MORE,
        WH_BORROW,
        WH_EVENTS_CALLBACK,
        WH_EVENTS_QUEUE,
        WH_EVENTS_HOST,
        WH_SERVER_UPGRADE_HOOK,
        WH_SERVER_HTTP,
        WH_SERVER_IPV6_ONLY,
        WH_SERVER_REUSE_PORT,
        WH_SERVER_NO_LISTEN,
        WH_SERVER_SKIP_UTF8,
        WH_SERVER_RAW_UPGRADE,
        WH_SERVER_NO_AUTO_PONG,
        WH_SERVER_BARE_CLOSE,
        WH_SERVER_WS_DEFLATE_ANSWER,
        WH_CLIENT_SKIP_UTF8,
        WH_CLIENT_NO_AUTO_PONG,
        WH_CLIENT_WS_DEFLATE_ANSWER,
        WH_CLIENT_BARE_CLOSE,
        WH_CLIENT_HOST_MASK,
        WH_SENT,
        WH_QUEUED,
    );
    e
}

/// Function-pointer types and prototypes as sys.rs transcribes them; the C
/// compiler checks each against the header (GCC/Clang builtin, no linking).
const SIGNATURES: &[(&str, &str)] = &[
    ("wh_event_cb", "void (*)(wh_hub*, const wh_event*, void*)"),
    ("wh_payload_alloc_cb", "void* (*)(size_t, void*)"),
    ("wh_watch_cb", "void (*)(int, int, void*)"),
    ("wh_mask_cb", "void (*)(wh_hub*, wh_conn*, unsigned char*, void*)"),
    (
        "__typeof__(&wh_hub_set_mask_cb)",
        "int (*)(wh_hub*, wh_mask_cb, void*)",
    ),
    (
        "__typeof__(&wh_hub_set_watch)",
        "int (*)(wh_hub*, int, wh_watch_cb, void*)",
    ),
    (
        "__typeof__(&wh_hub_poll_fd)",
        "int (*)(wh_hub*, int, wh_event*, int)",
    ),
    ("__typeof__(&wh_hub_poll)", "int (*)(wh_hub*, wh_event*, int)"),
    (
        "__typeof__(&wh_hub_set_payload_alloc)",
        "int (*)(wh_hub*, size_t, wh_payload_alloc_cb, void*)",
    ),
    (
        "__typeof__(&wh_server_set_broker)",
        "int (*)(wh_server*, const wh_broker_options*)",
    ),
    (
        "__typeof__(&wh_server_broker_stats)",
        "int (*)(wh_server*, wh_broker_stats*)",
    ),
    ("__typeof__(&wh_conn_local_address)", "const char* (*)(wh_conn*)"),
    ("__typeof__(&wh_conn_local_port)", "int (*)(wh_conn*)"),
];

fn c_program(e: &Expect) -> String {
    let mut s = String::from("#include <stddef.h>\n#include <stdio.h>\n#include \"wirehub.h\"\n");
    for (i, (a, b)) in SIGNATURES.iter().enumerate() {
        s += &format!(
            "_Static_assert(__builtin_types_compatible_p({}, {}), \"signature {}: {} is not {}\");\n",
            a, b, i, a, b
        );
    }
    s += "int main(void) {\n";
    for (label, c_expr, _) in &e.items {
        s += &format!(
            "  printf(\"%s %lld\\n\", \"{}\", (long long)({}));\n",
            label, c_expr
        );
    }
    s += "  return 0;\n}\n";
    s
}

#[test]
fn sys_structs_and_constants_match_the_c_header() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let capi = manifest.join("../../capi");
    assert!(capi.join("wirehub.h").is_file(), "no {}", capi.display());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("layout.c"), dir.join("layout"));
    let e = expected();
    std::fs::write(&src, c_program(&e)).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Werror", "-I"])
        .arg(&capi)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|err| panic!("could not run the C compiler `{}`: {}", cc, err));
    assert!(
        out.status.success(),
        "{} failed on {}:\n{}",
        cc,
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let c: BTreeMap<String, i128> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();

    let mut wrong = Vec::new();
    for (label, _, rust) in &e.items {
        match c.get(label) {
            Some(v) if v == rust => {}
            Some(v) => wrong.push(format!("{}: C {} vs Rust {}", label, v, rust)),
            None => wrong.push(format!("{}: not printed by C", label)),
        }
    }
    assert_eq!(c.len(), e.items.len());
    assert!(
        wrong.is_empty(),
        "sys.rs does not match wirehub.h:\n{}",
        wrong.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
