//! The properties the fuzz targets check, shared with `tests/integration/fuzz_corpus.rs`, which
//! replays every corpus and regression input through the same functions under `cargo test`.
//! Each function panics when a property is broken.

use std::ffi::{c_char, CString};

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::{delivery, settings, slot};

/// `data` as C sees it: the bytes up to the first NUL, then a NUL.
pub fn c_string(data: &[u8]) -> CString {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    CString::new(&data[..end]).expect("no NUL before `end`")
}

/// Turns the library's log records off (the fuzzers feed it many bad values, each logged).
pub fn quiet() {
    assert_eq!(
        delivery::bg_set_logger(None, std::ptr::null_mut(), 0),
        BG_OK
    );
}

/// Restores the default logger.
pub fn unquiet() {
    assert_eq!(
        delivery::bg_set_logger(None, std::ptr::null_mut(), 2),
        BG_OK
    );
}

fn generate() -> [u8; 6] {
    let mut buf = [0 as c_char; 7];
    let st = unsafe { slot::bg_generate(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(st, BG_OK);
    assert_eq!(buf[6], 0);
    let mut code = [0u8; 6];
    for (d, &c) in code.iter_mut().zip(&buf[..6]) {
        *d = c as u8;
        assert!(d.is_ascii_digit(), "bg_generate wrote {buf:?}");
    }
    code
}

/// `verify`: issue a code, then `bg_verify` the input (as a C string). A leading `=` is
/// replaced by the issued code, so the matching path is fuzzed too.
///
/// Property: the status is `BG_OK` or `BG_INVALID` (a code was just issued, with the default
/// TTL), `BG_OK` exactly when the input equals the code, and the code is consumed either way.
pub fn check_verify(data: &[u8]) {
    assert_eq!(settings_reset("otp_ttl_seconds"), BG_OK);
    let code = generate();
    let input: Vec<u8> = match data.split_first() {
        Some((b'=', rest)) => code.iter().chain(rest).copied().collect(),
        _ => data.to_vec(),
    };
    let c = c_string(&input);
    let st = unsafe { slot::bg_verify(c.as_ptr()) };
    let matches = c.as_bytes() == code;
    match st {
        BG_OK => assert!(matches, "bg_verify({:?}) gave OK for code {:?}", c, code),
        BG_INVALID => assert!(!matches, "bg_verify(the code itself) gave INVALID"),
        other => panic!("bg_verify({c:?}) gave {other:?}"),
    }
    let again = CString::new(code.to_vec()).unwrap();
    assert_eq!(
        unsafe { slot::bg_verify(again.as_ptr()) },
        BG_NO_PENDING_OTP,
        "the pending code survived a verify"
    );
}

fn settings_reset(key: &str) -> bg_status {
    let k = CString::new(key).unwrap();
    unsafe { settings::bg_configure(k.as_ptr(), std::ptr::null()) }
}

/// Restores every configuration key to its default.
pub fn reset_config() {
    for key in breakglass::config::KEYS.iter().map(|k| k.name) {
        assert_eq!(settings_reset(key), BG_OK, "resetting {key}");
    }
}

/// `configure`: the input split at its first NUL or `=` into a key and a value (no separator:
/// a NULL value), both as C strings, through `bg_configure`.
///
/// Property: the status is `BG_OK`, `BG_ERR_ARGUMENT` or `BG_ERR_NULL`, never a panic
/// (`BG_ERR_INTERNAL`); an unknown key is never `BG_OK`.
pub fn check_configure(data: &[u8]) {
    let (key, value) = match data.iter().position(|&b| b == 0 || b == b'=') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let key = c_string(key);
    let value = value.map(c_string);
    let st = unsafe {
        settings::bg_configure(
            key.as_ptr(),
            value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
        )
    };
    assert!(
        matches!(st, BG_OK | BG_ERR_ARGUMENT | BG_ERR_NULL),
        "bg_configure({key:?}, {value:?}) gave {st:?}"
    );
    let known = key
        .to_str()
        .is_ok_and(|k| breakglass::config::find_key(k).is_some());
    if !known {
        assert_ne!(st, BG_OK, "bg_configure accepted the unknown key {key:?}");
    }
    if st == BG_OK {
        assert_eq!(settings_reset(key.to_str().unwrap()), BG_OK);
    }
}

fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// `alert_payload`: untrusted `ip` bytes through `Alert::new`, its JSON and `escape_controls`.
///
/// Property: the JSON parses, is an object with exactly the seven documented keys, and carries
/// the (lossily decoded, possibly cut) ip unchanged; input over either bound is cut and marked,
/// input within both is not; every text meant for an email has no control character.
pub fn check_alert_payload(data: &[u8]) {
    use breakglass::notify::{
        escape_controls, Alert, EVENT_ID_LEN, MAX_IP_BYTES, MAX_IP_CHARS, TRUNCATED_MARK,
    };
    let dropped = data.first().map_or(0, |&b| u64::from(b) % 4);
    let alert = Alert::new(Some(data), dropped);
    let json: serde_json::Value = serde_json::from_str(&alert.json()).expect("the JSON parses");
    let obj = json.as_object().expect("the JSON is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "audit_head",
            "event",
            "id",
            "ip",
            "message",
            "severity",
            "timestamp"
        ]
    );
    assert_eq!(obj["id"].as_str().map(str::len), Some(EVENT_ID_LEN));
    assert_eq!(obj["event"], "break_glass_login");
    assert_eq!(obj["severity"], "critical");
    assert_eq!(obj["ip"].as_str(), Some(alert.ip.as_str()));

    let lossy = String::from_utf8_lossy(data);
    if data.len() > MAX_IP_BYTES || lossy.chars().count() > MAX_IP_CHARS {
        let kept = alert
            .ip
            .strip_suffix(TRUNCATED_MARK)
            .expect("a cut ip is marked");
        assert!(kept.chars().count() <= MAX_IP_CHARS);
        assert!(lossy.starts_with(kept) || data.len() > MAX_IP_BYTES);
    } else {
        assert_eq!(alert.ip, lossy);
    }
    for text in [
        escape_controls(&lossy),
        alert.ip_escaped.clone(),
        alert.summary(&alert.ip_escaped),
    ] {
        assert!(
            !has_control(&text),
            "a control character survived: {text:?}"
        );
    }
}
