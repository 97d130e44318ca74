//! Every export with good and bad arguments, called directly.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::{delivery, panic, settings, slot};

use super::{configure, generate, serial, verify};

#[test]
fn verify_outcomes_and_consumption() {
    let _g = serial();
    assert_eq!(slot::bg_clear(), BG_OK);
    assert_eq!(verify("000000"), BG_NO_PENDING_OTP);
    let code = generate();
    assert_eq!(verify(&code), BG_OK);
    assert_eq!(verify(&code), BG_NO_PENDING_OTP);
    for bad in ["", "12345", "1234567", " 123456", "12345\n", "12a456"] {
        let code = generate();
        assert_eq!(verify(bad), BG_INVALID, "{bad:?}");
        assert_eq!(verify(&code), BG_NO_PENDING_OTP);
    }
    // Non-UTF-8 bytes.
    let code = generate();
    let raw = [
        0xffu8 as c_char,
        0xfeu8 as c_char,
        0x31,
        0x32,
        0x33,
        0x34,
        0,
    ];
    assert_eq!(unsafe { slot::bg_verify(raw.as_ptr()) }, BG_INVALID);
    assert_eq!(verify(&code), BG_NO_PENDING_OTP);
    // NULL is an error, and consumes.
    let code = generate();
    assert_eq!(unsafe { slot::bg_verify(std::ptr::null()) }, BG_ERR_NULL);
    assert_eq!(verify(&code), BG_NO_PENDING_OTP);
}

#[test]
fn generate_rejects_bad_buffers_and_leaves_the_pending_code() {
    let _g = serial();
    let code = generate();
    let mut small = [b'x' as c_char; 6];
    assert_eq!(
        unsafe { slot::bg_generate(std::ptr::null_mut(), 7) },
        BG_ERR_NULL
    );
    assert_eq!(
        unsafe { slot::bg_generate(small.as_mut_ptr(), 6) },
        BG_ERR_BUFFER_TOO_SMALL
    );
    assert!(small.iter().all(|&c| c == b'x' as c_char));
    assert_eq!(verify(&code), BG_OK);
}

#[test]
fn sixteen_threads_one_winner() {
    let _g = serial();
    for _ in 0..300 {
        let code = Arc::new(generate());
        let barrier = Arc::new(Barrier::new(16));
        let results: Vec<bg_status> = (0..16)
            .map(|_| {
                let (code, barrier) = (code.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    verify(&code)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|&&s| s == BG_OK).count(), 1);
        assert!(results
            .iter()
            .all(|&s| s == BG_OK || s == BG_NO_PENDING_OTP));
    }
}

#[test]
fn configure_errors_change_nothing() {
    let _g = serial();
    assert_eq!(
        unsafe { settings::bg_configure(std::ptr::null(), std::ptr::null()) },
        BG_ERR_NULL
    );
    assert_eq!(configure("nope", Some("1")), BG_ERR_ARGUMENT);
    assert_eq!(configure("otp_ttl_seconds", Some("1")), BG_OK);
    assert_eq!(configure("otp_ttl_seconds", Some("0")), BG_ERR_ARGUMENT);
    assert_eq!(breakglass::config::current().otp_ttl.as_secs(), 1);
    let long_key = "k".repeat(100);
    assert_eq!(configure(&long_key, Some("1")), BG_ERR_ARGUMENT);
    let bad_utf8 = [0xc3u8 as c_char, 0x28, 0];
    let key = CString::new("from_email").unwrap();
    assert_eq!(
        unsafe { settings::bg_configure(key.as_ptr(), bad_utf8.as_ptr()) },
        BG_ERR_ARGUMENT
    );
    assert_eq!(configure("otp_ttl_seconds", None), BG_OK);
    assert_eq!(breakglass::config::current().otp_ttl.as_secs(), 600);
}

#[test]
fn a_panic_is_caught_and_the_library_stays_usable() {
    let _g = serial();
    let code = generate();
    let st: bg_status = panic::guard(|| panic!("injected"));
    assert_eq!(st, BG_ERR_INTERNAL);
    let s: *const c_char = panic::guard(|| panic!("injected"));
    assert!(!s.is_null());
    assert_eq!(verify(&code), BG_OK);
    assert_eq!(verify(&generate()), BG_OK);
}

#[test]
fn stats_and_send_argument_errors() {
    let _g = serial();
    assert_eq!(
        unsafe { delivery::bg_get_stats(std::ptr::null_mut()) },
        BG_ERR_NULL
    );
    let mut stats = delivery::bg_stats::default();
    assert_eq!(unsafe { delivery::bg_get_stats(&mut stats) }, BG_OK);
    assert_eq!(
        unsafe { delivery::bg_send_otp(std::ptr::null()) },
        BG_ERR_NULL
    );
    let c = CString::new("1234567").unwrap();
    assert_eq!(
        unsafe { delivery::bg_send_otp(c.as_ptr()) },
        BG_ERR_ARGUMENT
    );
    let c = CString::new("123456").unwrap();
    assert_eq!(
        unsafe { delivery::bg_send_otp(c.as_ptr()) },
        BG_ERR_NOT_CONFIGURED
    );
    assert_eq!(unsafe { delivery::bg_alert(std::ptr::null()) }, BG_OK);
    assert_eq!(delivery::bg_flush(5000), BG_OK);
}

struct Capture {
    lines: Mutex<Vec<(i32, String)>>,
}

unsafe extern "C" fn capture(level: i32, msg: *const c_char, user: *mut c_void) {
    let cap = unsafe { &*(user as *const Capture) };
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    cap.lines.lock().unwrap().push((level, text));
}

static CALLS_AFTER_DETACH: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn counting(_: i32, _: *const c_char, _: *mut c_void) {
    CALLS_AFTER_DETACH.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn the_logger_gets_records_but_never_the_code() {
    let _g = serial();
    let cap = Box::new(Capture {
        lines: Mutex::new(Vec::new()),
    });
    let user = &*cap as *const Capture as *mut c_void;
    assert_eq!(
        delivery::bg_set_logger(Some(capture), user, 9),
        BG_ERR_ARGUMENT
    );
    assert_eq!(delivery::bg_set_logger(Some(capture), user, 5), BG_OK);

    let code = generate();
    let c = CString::new(code.clone()).unwrap();
    assert_eq!(
        unsafe { delivery::bg_send_otp(c.as_ptr()) },
        BG_ERR_NOT_CONFIGURED
    );
    assert_eq!(configure("otp_ttl_seconds", Some("zero")), BG_ERR_ARGUMENT);
    assert_eq!(
        unsafe { delivery::bg_alert(c"203.0.113.9".as_ptr()) },
        BG_OK
    );
    assert_eq!(verify(&code), BG_OK);
    {
        let lines = cap.lines.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 1 && m.contains("no alert channel")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 2 && m.contains("otp_ttl_seconds")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|(_, m)| !m.contains(&code)), "{lines:?}");
    }

    assert_eq!(configure("dev_otp_log", Some("true")), BG_OK);
    let code = generate();
    let c = CString::new(code.clone()).unwrap();
    assert_eq!(
        unsafe { delivery::bg_send_otp(c.as_ptr()) },
        BG_ERR_NOT_CONFIGURED
    );
    assert!(cap
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == 2 && m.contains(&code)));
    assert_eq!(configure("dev_otp_log", None), BG_OK);
    slot::bg_clear();

    // Once replaced, the old callback is never called again.
    assert_eq!(
        delivery::bg_set_logger(Some(counting), std::ptr::null_mut(), 5),
        BG_OK
    );
    let seen = cap.lines.lock().unwrap().len();
    unsafe { delivery::bg_alert(c"198.51.100.1".as_ptr()) };
    assert_eq!(cap.lines.lock().unwrap().len(), seen);
    assert!(CALLS_AFTER_DETACH.load(Ordering::SeqCst) > 0);
    assert_eq!(
        delivery::bg_set_logger(None, std::ptr::null_mut(), 0),
        BG_OK
    );
    let n = CALLS_AFTER_DETACH.load(Ordering::SeqCst);
    unsafe { delivery::bg_alert(c"198.51.100.1".as_ptr()) };
    assert_eq!(CALLS_AFTER_DETACH.load(Ordering::SeqCst), n);
    drop(cap);
    assert_eq!(
        delivery::bg_set_logger(None, std::ptr::null_mut(), 2),
        BG_OK
    );
}

#[test]
fn status_names_accept_any_integer() {
    let name = |s: i32| {
        unsafe { CStr::from_ptr(breakglass::ffi::bg_status_str(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(BG_EXPIRED as i32), "expired");
    assert_eq!(name(BG_NO_PENDING_OTP as i32), "no pending otp");
    assert_eq!(name(-7), "unknown status");
    assert_eq!(name(i32::MAX), "unknown status");
}

/// `password_hash` through the C ABI: a bcrypt cost above the cap (14) is refused with the
/// reason in `bg_last_error`; the cap itself is accepted, at once (nothing is hashed), while
/// another thread keeps generating codes.
#[test]
fn bcrypt_cost_is_capped_at_the_boundary() {
    let _s = serial();
    let hash =
        |cost: u32| format!("$2b${cost:02}$abcdefghijklmnopqrstuOABCDEFGHIJKLMNOPQRSTUVWXYZ0123e");
    assert_eq!(configure("password_hash", Some(&hash(15))), BG_ERR_ARGUMENT);
    let mut why = [0 as c_char; 1025];
    assert_eq!(
        unsafe { breakglass::ffi::last_error::bg_last_error(why.as_mut_ptr(), why.len()) },
        BG_OK
    );
    let why = unsafe { CStr::from_ptr(why.as_ptr()) }.to_string_lossy();
    assert!(
        why.contains("password_hash") && why.contains("at most 14"),
        "{why}"
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let generated = Arc::new(AtomicUsize::new(0));
    let generator = {
        let (stop, generated) = (stop.clone(), generated.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = generate();
                generated.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while generated.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    assert_eq!(configure("password_hash", Some(&hash(14))), BG_OK);
    stop.store(true, Ordering::Relaxed);
    generator.join().unwrap();
    assert_eq!(configure("password_hash", None), BG_OK);
}
