//! The close codes and the error codes the crate exports are the C header's
//! (tests/layout.rs checks `sys` against the header itself), and a URL or an
//! option that would smuggle CR/LF into the upgrade request is refused
//! before anything is sent.
use wirehub::*;

#[test]
fn close_codes_are_the_headers_wh_close_values() {
    let named = [
        (CloseCode::NORMAL, sys::WH_CLOSE_NORMAL, 1000),
        (CloseCode::GOING_AWAY, sys::WH_CLOSE_GOING_AWAY, 1001),
        (CloseCode::PROTOCOL_ERROR, sys::WH_CLOSE_PROTOCOL_ERROR, 1002),
        (CloseCode::UNSUPPORTED_DATA, sys::WH_CLOSE_UNSUPPORTED_DATA, 1003),
        (CloseCode::NO_STATUS, sys::WH_CLOSE_NO_STATUS, 1005),
        (CloseCode::ABNORMAL, sys::WH_CLOSE_ABNORMAL, 1006),
        (CloseCode::INVALID_DATA, sys::WH_CLOSE_INVALID_DATA, 1007),
        (CloseCode::POLICY, sys::WH_CLOSE_POLICY, 1008),
        (CloseCode::TOO_BIG, sys::WH_CLOSE_TOO_BIG, 1009),
        (CloseCode::MANDATORY_EXTENSION, sys::WH_CLOSE_MANDATORY_EXTENSION, 1010),
        (CloseCode::INTERNAL_ERROR, sys::WH_CLOSE_INTERNAL_ERROR, 1011),
        (CloseCode::SERVICE_RESTART, sys::WH_CLOSE_SERVICE_RESTART, 1012),
        (CloseCode::TRY_AGAIN_LATER, sys::WH_CLOSE_TRY_AGAIN_LATER, 1013),
        (CloseCode::BAD_GATEWAY, sys::WH_CLOSE_BAD_GATEWAY, 1014),
    ];
    for (code, header, rfc) in named {
        assert_eq!(i32::from(code), header);
        assert_eq!(code, rfc);
    }
}

#[test]
fn the_hardening_error_codes_round_trip_with_their_names() {
    for (code, raw, name) in [
        (Code::Idle, sys::WH_EIDLE, "WH_EIDLE"),
        (Code::Budget, sys::WH_EBUDGET, "WH_EBUDGET"),
        (Code::TooManyFiles, sys::WH_EMFILE, "WH_EMFILE"),
        (Code::Broker, sys::WH_EBROKER, "WH_EBROKER"),
    ] {
        assert_eq!(code.raw(), raw);
        assert_eq!(Code::from_raw(raw), code);
        assert_eq!(code.name(), name);
        assert!(!code.description().is_empty());
    }
}

#[test]
fn a_url_with_cr_lf_or_a_space_in_its_path_fails_with_code_url() {
    // The path and query go into the request line: CR/LF there would forge
    // headers or a second request.
    for bad in [
        "ws://127.0.0.1:9/a\r\nX-Injected: 1",
        "ws://127.0.0.1:9/a\nb",
        "ws://127.0.0.1:9/?q=1\rb",
        "ws://127.0.0.1:9/a b",
        "ws://127.0.0.1:9/a\tb",
    ] {
        let err = connect(bad, |_: &Event| {}).err().expect(bad);
        assert_eq!(err.code(), Code::Url, "{:?}: {}", bad, err);
    }
}

#[test]
fn a_header_or_origin_with_cr_lf_fails_with_invalid_argument() {
    let opts = [
        ClientOptions::new().header("X-A", "1\r\nX-Injected: 1"),
        ClientOptions::new().header("X-A\r\nX-Injected", "1"),
        ClientOptions::new().header("X-A", "1\n"),
        ClientOptions::new().origin("http://a.test\r\nX-Injected: 1"),
        ClientOptions::new().subprotocols("v1\r\nX-Injected: 1"),
    ];
    for o in opts {
        let err = Client::connect("ws://127.0.0.1:9/", o, |_: &Event| {}).err().expect("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err);
    }
}
