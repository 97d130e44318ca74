//! The whole login through the C ABI, on a file outbox: password, code from the outbox, token,
//! session, the alarm, and each denial with the status and failure count it must give.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::delivery;
use breakglass::ffi::login::*;

use super::{begin, complete, configure, left, serial};

struct Outbox(PathBuf, std::cell::RefCell<Vec<PathBuf>>);

impl Outbox {
    fn new(tag: &str) -> Outbox {
        let dir = std::env::temp_dir().join(format!("bg-login-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Outbox(dir, Default::default())
    }

    fn mails(&self) -> Vec<String> {
        assert_eq!(delivery::bg_flush(10_000), BG_OK);
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .filter(|t| t.contains("Subject:"))
            .collect()
    }

    /// The code in the one code email not read before.
    fn code(&self) -> String {
        assert_eq!(delivery::bg_flush(10_000), BG_OK);
        let mut seen = self.1.borrow_mut();
        let mut codes = Vec::new();
        for e in std::fs::read_dir(&self.0).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if seen.contains(&path) || !text.contains("one-time code is: ") {
                continue;
            }
            let at = text.find("one-time code is: ").unwrap() + "one-time code is: ".len();
            codes.push(text[at..at + 6].to_owned());
            seen.push(path);
        }
        assert_eq!(codes.len(), 1, "one new code email");
        codes.pop().unwrap()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup(outbox: &Outbox, password: &str) {
    breakglass::login::reset_all();
    assert_eq!(breakglass::ffi::slot::bg_clear(), BG_OK);
    let hash = breakglass::login::hash_password(password.as_bytes()).unwrap();
    for (k, v) in [
        ("mailer", format!("file://{}", outbox.0.display())),
        ("from_email", "bg@example.com".into()),
        ("otp_email", "oncall@example.com".into()),
        ("alert_emails", "ops@example.com".into()),
        ("password_hash", hash),
        ("allowed_ips", "192.0.2.0/24, 2001:db8::/32".into()),
    ] {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
}

fn teardown() {
    for k in [
        "mailer",
        "from_email",
        "otp_email",
        "alert_emails",
        "password_hash",
        "allowed_ips",
        "max_attempts",
        "max_global_failures",
    ] {
        assert_eq!(configure(k, None), BG_OK);
    }
    breakglass::login::reset_all();
}

fn session(token: &str) -> bg_status {
    let t = CString::new(token).unwrap();
    unsafe { bg_session_check(t.as_ptr()) }
}

#[test]
fn password_code_session_and_alarm() {
    let _g = serial();
    let outbox = Outbox::new("flow");
    setup(&outbox, "correct horse battery staple");
    assert_eq!(begin("192.0.2.10", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(left("192.0.2.10"), 4);
    assert!(outbox.mails().is_empty(), "no code for a wrong password");
    assert_eq!(begin("192.0.2.10", "correct horse battery staple"), BG_OK);
    let code = outbox.code();
    let (st, token) = complete("192.0.2.10", &code);
    assert_eq!(st, BG_OK);
    assert_eq!(token.len(), BG_SESSION_TOKEN_BUF_LEN - 1);
    assert_eq!(left("192.0.2.10"), 5, "success forgets the failures");
    assert_eq!(session(&token), BG_OK);
    assert_eq!(session("not-the-token"), BG_NO_SESSION);
    // The alarm went out, with the address, and without the code or the token.
    let mails = outbox.mails();
    let alert: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("[BREAK-GLASS]"))
        .collect();
    assert_eq!(alert.len(), 1);
    assert!(
        alert[0].contains("192.0.2.10") && !alert[0].contains(&code) && !alert[0].contains(&token)
    );
    // A second login replaces the session.
    assert_eq!(begin("192.0.2.11", "correct horse battery staple"), BG_OK);
    let (st, token2) = complete("192.0.2.11", &outbox.code());
    assert_eq!(st, BG_OK);
    assert_eq!(session(&token), BG_NO_SESSION);
    assert_eq!(session(&token2), BG_OK);
    let t = CString::new(token2.clone()).unwrap();
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_OK);
    assert_eq!(session(&token2), BG_NO_SESSION);
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_NO_SESSION);
    teardown();
}

#[test]
fn denials_in_order_and_lockout() {
    let _g = serial();
    let outbox = Outbox::new("deny");
    setup(&outbox, "pw");
    // Not allowed, malformed: refused before anything else, not counted.
    assert_eq!(begin("198.51.100.1", "pw"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin("192.0.2.1 ", "pw"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin("::ffff:198.51.100.1", "pw"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin("::ffff:192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(
        left("192.0.2.1"),
        4,
        "the IPv4-mapped form counts against the IPv4 address"
    );
    // Wrong codes count too, and the fifth failure locks.
    assert_eq!(begin("192.0.2.1", "pw"), BG_OK);
    assert_eq!(complete("192.0.2.1", "000000x").0, BG_INVALID);
    assert_eq!(complete("192.0.2.1", "123456").0, BG_NO_PENDING_OTP);
    assert_eq!(begin("192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(begin("192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(left("192.0.2.1"), 0);
    // Locked: even the right password is refused, and no code is sent.
    let before = outbox.mails().len();
    assert_eq!(begin("192.0.2.1", "pw"), BG_LOCKED_OUT);
    assert_eq!(outbox.mails().len(), before);
    // An operator's reset lifts it.
    let i = c"192.0.2.1";
    assert_eq!(unsafe { bg_reset_attempts(i.as_ptr()) }, BG_OK);
    assert_eq!(left("192.0.2.1"), 5);
    // Arguments.
    let mut tok = [0 as c_char; 8];
    assert_eq!(
        unsafe { bg_login_complete(i.as_ptr(), c"123456".as_ptr(), tok.as_mut_ptr(), tok.len()) },
        BG_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        unsafe { bg_login_begin(std::ptr::null(), c"pw".as_ptr()) },
        BG_ERR_NULL
    );
    assert_eq!(
        unsafe { bg_login_begin(i.as_ptr(), std::ptr::null()) },
        BG_ERR_NULL
    );
    assert_eq!(unsafe { bg_session_check(std::ptr::null()) }, BG_ERR_NULL);
    let mut n = 0u32;
    assert_eq!(
        unsafe { bg_attempts_left(c"nonsense".as_ptr(), &mut n) },
        BG_ERR_ARGUMENT
    );
    assert_eq!(
        unsafe { bg_attempts_left(i.as_ptr(), std::ptr::null_mut()) },
        BG_ERR_NULL
    );
    teardown();
}

#[test]
fn rotating_addresses_cannot_outguess_the_global_limit() {
    let _g = serial();
    let outbox = Outbox::new("global");
    setup(&outbox, "pw");
    assert_eq!(configure("max_global_failures", Some("7")), BG_OK);
    assert_eq!(breakglass::ffi::slot::bg_clear(), BG_OK);
    let mut evaluated = 0;
    // An attacker with a whole /32 of IPv6 (and /64s to spare) guessing codes.
    for n in 0..200u32 {
        let ip = format!("2001:db8:{:x}:{:x}::1", n >> 16, n & 0xffff);
        match complete(&ip, "123456").0 {
            BG_NO_PENDING_OTP | BG_INVALID => evaluated += 1,
            BG_LOCKED_OUT => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(evaluated, 7, "guesses evaluated before the global lockout");
    // Everyone is locked out now, the right password included.
    assert_eq!(begin("192.0.2.50", "pw"), BG_LOCKED_OUT);
    let mut why = [0 as c_char; 256];
    unsafe { breakglass::ffi::last_error::bg_last_error(why.as_mut_ptr(), why.len()) };
    let why = unsafe { CStr::from_ptr(why.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        why.contains("every break-glass login is locked out"),
        "{why}"
    );
    teardown();
}
