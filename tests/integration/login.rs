//! The whole login through the C ABI, on a file outbox, as one suite that runs against each of
//! the three login stores (in-process, `state_dir`, a real redis-server on loopback): password,
//! code from the outbox, token, session, the alarm, each denial with the status and failure
//! count it must give, and the rules that keep outsiders from locking the admin out.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use breakglass::ffi::bg_status::{self, *};
use breakglass::ffi::delivery;
use breakglass::ffi::login::*;

use super::hookserver::{Answer, HookServer};
use super::redis_server::{redis, Server};
use super::{begin, complete, configure, left, serial};

pub struct Outbox(pub PathBuf, std::cell::RefCell<Vec<PathBuf>>);

impl Outbox {
    pub fn new(tag: &str) -> Outbox {
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
    pub fn code(&self) -> String {
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

/// The store a case runs against.
pub enum Store {
    InProcess,
    Dir(PathBuf),
    Redis(Server),
}

impl Store {
    fn make(kind: &str) -> Store {
        match kind {
            "memory" => Store::InProcess,
            "dir" => {
                let d = std::env::temp_dir().join(format!("bg-state-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&d);
                Store::Dir(d)
            }
            _ => Store::Redis(redis()),
        }
    }

    fn shared_by_processes(&self) -> bool {
        !matches!(self, Store::InProcess)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Dir(d) = self {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A cheap hash for cases that make many password checks (bcrypt at its lowest cost).
fn cheap_hash(password: &str) -> String {
    bcrypt::hash(password.as_bytes(), 4).unwrap()
}

fn setup_with(outbox: &Outbox, store: &Store, hash: String) {
    teardown();
    assert_eq!(breakglass::ffi::slot::bg_clear(), BG_OK);
    for (k, v) in [
        ("mailer", format!("file://{}", outbox.0.display())),
        ("from_email", "bg@example.com".into()),
        ("otp_email", "oncall@example.com".into()),
        ("alert_emails", "ops@example.com".into()),
        ("password_hash", hash),
        (
            "allowed_ips",
            "192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32, fe80::/10".into(),
        ),
    ] {
        assert_eq!(configure(k, Some(&v)), BG_OK, "{k}");
    }
    match store {
        Store::InProcess => {}
        Store::Dir(d) => assert_eq!(configure("state_dir", Some(d.to_str().unwrap())), BG_OK),
        Store::Redis(s) => {
            let url = format!("redis://127.0.0.1:{}", s.port);
            assert_eq!(configure("slot_url", Some(&url)), BG_OK);
            assert_eq!(configure("slot_key", Some("bgtest:otp")), BG_OK);
        }
    }
}

fn setup(outbox: &Outbox, store: &Store, password: &str) {
    setup_with(
        outbox,
        store,
        breakglass::login::hash_password(password.as_bytes()).unwrap(),
    );
}

pub fn teardown() {
    for k in [
        "mailer",
        "from_email",
        "otp_email",
        "alert_emails",
        "alert_webhook_url",
        "password_hash",
        "allowed_ips",
        "max_attempts",
        "max_global_failures",
        "lockout_seconds",
        "state_dir",
        "slot_url",
        "slot_key",
    ] {
        // Not asserted: this also runs while a failed case unwinds.
        configure(k, None);
    }
    breakglass::login::reset_all();
}

fn session(token: &str) -> bg_status {
    let t = CString::new(token).unwrap();
    unsafe { bg_session_check(t.as_ptr()) }
}

fn last_error() -> String {
    let mut why = [0 as c_char; 512];
    unsafe { breakglass::ffi::last_error::bg_last_error(why.as_mut_ptr(), why.len()) };
    unsafe { CStr::from_ptr(why.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Runs each case against each store.
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(#[test] fn $case() { super::run("memory", super::$case) })*
        }
        mod state_dir {
            $(#[test] fn $case() { super::run("dir", super::$case) })*
        }
        mod redis {
            $(#[test] fn $case() { super::run("redis", super::$case) })*
        }
    };
}

on_every_store!(
    password_code_session_and_alarm,
    denials_in_order_and_lockout,
    the_code_belongs_to_the_address_that_earned_it,
    outsiders_without_the_password_cannot_lock_the_admin_out,
    wrong_codes_after_right_passwords_lock_everyone,
    the_window_slides,
    guessing_below_the_limits_raises_the_alarm,
    the_admin_gets_in_during_a_flood_of_wrong_passwords,
    racing_completes_have_one_winner,
    racing_processes_have_one_winner,
    addresses_are_addresses,
    thousands_of_addresses_leave_the_admin_a_way_in,
    the_admin_gets_in_during_a_flood_of_code_guesses,
);

/// Restores the defaults when a case ends, also when it fails (the next case must not
/// inherit a store that no longer exists).
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        teardown();
    }
}

fn run(kind: &str, case: fn(&Store)) {
    let _g = serial();
    let store = Store::make(kind);
    let _t = Teardown;
    case(&store);
}

fn password_code_session_and_alarm(store: &Store) {
    let outbox = Outbox::new("flow");
    setup(&outbox, store, "correct horse battery staple");
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
    assert!(last_error().contains("no such session"), "{}", last_error());
    // The alarm went out, with the address, and without the code or the token.
    let mails = outbox.mails();
    let alert: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("[BREAK-GLASS] Emergency login"))
        .collect();
    assert_eq!(alert.len(), 1);
    assert!(
        alert[0].contains("192.0.2.10") && !alert[0].contains(&code) && !alert[0].contains(&token)
    );
    // A second login replaces the session, and a check of the old one says so.
    assert_eq!(begin("192.0.2.11", "correct horse battery staple"), BG_OK);
    let (st, token2) = complete("192.0.2.11", &outbox.code());
    assert_eq!(st, BG_OK);
    assert_eq!(session(&token), BG_NO_SESSION);
    assert!(last_error().contains("replaced"), "{}", last_error());
    assert_eq!(session(&token2), BG_OK);
    let t = CString::new(token2.clone()).unwrap();
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_OK);
    assert_eq!(session(&token2), BG_NO_SESSION);
    assert!(last_error().contains("ended"), "{}", last_error());
    assert_eq!(unsafe { bg_session_end(t.as_ptr()) }, BG_NO_SESSION);
}

fn denials_in_order_and_lockout(store: &Store) {
    let outbox = Outbox::new("deny");
    setup_with(&outbox, store, cheap_hash("pw"));
    // Not allowed, malformed: refused before anything else, not counted.
    assert_eq!(begin("203.0.113.1", "pw"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin("192.0.2.1 ", "pw"), BG_IP_NOT_ALLOWED);
    assert_eq!(begin("::ffff:203.0.113.1", "pw"), BG_IP_NOT_ALLOWED);
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
    // A NULL code is an argument error: nothing is checked, consumed or counted.
    let i = c"192.0.2.1";
    let mut tok = [0 as c_char; BG_SESSION_TOKEN_BUF_LEN];
    assert_eq!(
        unsafe { bg_login_complete(i.as_ptr(), std::ptr::null(), tok.as_mut_ptr(), tok.len()) },
        BG_ERR_NULL
    );
    assert_eq!(left("192.0.2.1"), 2);
    assert_eq!(begin("192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(begin("192.0.2.1", "wrong"), BG_WRONG_PASSWORD);
    assert_eq!(left("192.0.2.1"), 0);
    // Locked: even the right password is refused, and no code is sent.
    let before = outbox.mails().len();
    assert_eq!(begin("192.0.2.1", "pw"), BG_LOCKED_OUT);
    assert_eq!(outbox.mails().len(), before);
    // Another address was never affected.
    assert_eq!(left("192.0.2.2"), 5);
    // An operator's reset lifts it.
    assert_eq!(unsafe { bg_reset_attempts(i.as_ptr()) }, BG_OK);
    assert_eq!(left("192.0.2.1"), 5);
    // Arguments.
    let mut short = [0 as c_char; 8];
    assert_eq!(
        unsafe {
            bg_login_complete(
                i.as_ptr(),
                c"123456".as_ptr(),
                short.as_mut_ptr(),
                short.len(),
            )
        },
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
}

fn the_code_belongs_to_the_address_that_earned_it(store: &Store) {
    let outbox = Outbox::new("owner");
    setup_with(&outbox, store, cheap_hash("pw"));
    assert_eq!(configure("max_global_failures", Some("1")), BG_OK);
    assert_eq!(begin("192.0.2.7", "pw"), BG_OK);
    let code = outbox.code();
    // From any other address, even with the right code: no pending code for it, counted
    // against it only, not overall (max_global_failures is 1), and the code stays.
    for other in ["192.0.2.8", "2001:db8::8", "198.51.100.8"] {
        assert_eq!(complete(other, &code).0, BG_NO_PENDING_OTP, "{other}");
        assert_eq!(complete(other, "000000").0, BG_NO_PENDING_OTP, "{other}");
        assert_eq!(left(other), 3);
    }
    assert_eq!(left("192.0.2.7"), 5);
    let (st, token) = complete("192.0.2.7", &code);
    assert_eq!(st, BG_OK);
    assert_eq!(session(&token), BG_OK);
}

fn outsiders_without_the_password_cannot_lock_the_admin_out(store: &Store) {
    let outbox = Outbox::new("outsiders");
    setup_with(&outbox, store, cheap_hash("pw"));
    // Every address an outsider can use (allowed ones among them) guesses codes without
    // ever passing the password, many times over the per-address limit.
    for round in 0..3 {
        for n in 0..40u32 {
            let ip = format!("198.51.100.{n}");
            let st = complete(&ip, "123456").0;
            assert!(
                matches!(st, BG_NO_PENDING_OTP | BG_LOCKED_OUT),
                "round {round} {ip}: {st:?}"
            );
        }
    }
    // The admin is not locked out, and neither is the code they earn.
    assert_eq!(begin("192.0.2.99", "pw"), BG_OK);
    let code = outbox.code();
    for n in 0..40u32 {
        let _ = complete(&format!("198.51.100.{n}"), "111111");
    }
    let (st, _) = complete("192.0.2.99", &code);
    assert_eq!(
        st, BG_OK,
        "the outsiders neither locked nor consumed the admin's code"
    );
}

fn wrong_codes_after_right_passwords_lock_everyone(store: &Store) {
    let outbox = Outbox::new("global");
    setup_with(&outbox, store, cheap_hash("pw"));
    assert_eq!(configure("max_global_failures", Some("7")), BG_OK);
    let mut evaluated = 0;
    // Someone who has the password, rotating addresses, guessing codes.
    for n in 0..12u32 {
        let ip = format!("2001:db8:{n:x}::1");
        match begin(&ip, "pw") {
            BG_OK => {}
            BG_LOCKED_OUT => continue,
            other => panic!("{other:?}"),
        }
        let _ = outbox.code();
        match complete(&ip, "12345x").0 {
            BG_INVALID => evaluated += 1,
            BG_LOCKED_OUT => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        evaluated, 7,
        "wrong codes evaluated before the overall lockout"
    );
    // Everyone is locked out now, the right password included.
    assert_eq!(begin("192.0.2.50", "pw"), BG_LOCKED_OUT);
    assert!(
        last_error().contains("every break-glass login is locked out"),
        "{}",
        last_error()
    );
    // The operator lifts it.
    assert_eq!(
        breakglass::login::unlock_all().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(begin("192.0.2.50", "pw"), BG_OK);
}

fn the_window_slides(store: &Store) {
    let outbox = Outbox::new("slide");
    setup_with(&outbox, store, cheap_hash("pw"));
    assert_eq!(configure("lockout_seconds", Some("3")), BG_OK);
    let t0 = std::time::Instant::now();
    let at = |secs: f64| {
        let d = Duration::from_secs_f64(secs).saturating_sub(t0.elapsed());
        std::thread::sleep(d);
    };
    let mut evaluated = Vec::new();
    let attempt = |evaluated: &mut Vec<f64>| {
        if begin("192.0.2.30", "wrong") == BG_WRONG_PASSWORD {
            evaluated.push(t0.elapsed().as_secs_f64());
        }
    };
    attempt(&mut evaluated);
    at(2.0);
    for _ in 0..3 {
        attempt(&mut evaluated);
    }
    // Just after the first failure left the window: a fixed window would start afresh and
    // allow 5 more; the sliding window allows 2 more (3 remain in it), then locks.
    at(3.3);
    for _ in 0..6 {
        attempt(&mut evaluated);
    }
    assert_eq!(evaluated.len(), 6, "{evaluated:?}");
    for (i, &a) in evaluated.iter().enumerate() {
        let within = evaluated[i..].iter().filter(|&&b| b - a < 3.0).count();
        assert!(within <= 5, "{evaluated:?}");
    }
}

fn guessing_below_the_limits_raises_the_alarm(store: &Store) {
    let outbox = Outbox::new("guess");
    setup_with(&outbox, store, cheap_hash("pw"));
    let hook = HookServer::always(Answer::Status(200, "{}"));
    assert_eq!(configure("alert_webhook_url", Some(&hook.url("/"))), BG_OK);
    // One wrong code after a right password, well below every limit: the alarm goes out.
    assert_eq!(begin("192.0.2.40", "pw"), BG_OK);
    let code = outbox.code();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(complete("192.0.2.40", wrong).0, BG_INVALID);
    // More, from other addresses, within the window: no second code alarm.
    assert_eq!(begin("192.0.2.41", "pw"), BG_OK);
    let _ = outbox.code();
    assert_eq!(complete("192.0.2.41", wrong).0, BG_INVALID);
    // Wrong passwords: 4 from each of 2 addresses (8 > max_attempts 5 overall), no lockout.
    for n in 0..8 {
        let ip = format!("192.0.2.{}", 42 + n % 2);
        assert_eq!(begin(&ip, "wrong"), BG_WRONG_PASSWORD);
    }
    assert_eq!(delivery::bg_flush(10_000), BG_OK);
    let bodies: Vec<serde_json::Value> = hook
        .requests()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .filter(|b: &serde_json::Value| b["event"] == "break_glass_guessing")
        .collect();
    let kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["code", "password"], "{bodies:?}");
    assert_eq!(bodies[0]["failures"], 1);
    assert_eq!(bodies[1]["failures"], 6);
    assert_eq!(bodies[1]["addresses"], 2);
    for b in &bodies {
        assert!(!b.to_string().contains(&code) && !b.to_string().contains(wrong));
    }
}

fn the_admin_gets_in_during_a_flood_of_wrong_passwords(store: &Store) {
    let outbox = Outbox::new("flood");
    // A hash that takes a while to check, so the flood keeps the checks busy.
    setup_with(&outbox, store, bcrypt::hash(b"pw", 8).unwrap());
    assert_eq!(configure("max_attempts", Some("1000")), BG_OK);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..4u32)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ip = format!("198.51.100.{}", (t * 16 + n % 16) % 64);
                    let _ = begin(&ip, "not the password");
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let first = begin("192.0.2.77", "pw");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u32 = flood.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        first, BG_OK,
        "the admin's right password, first try, under a flood"
    );
    assert!(sent > 4, "the flood ran ({sent} attempts)");
    let (st, _) = complete("192.0.2.77", &outbox.code());
    assert_eq!(st, BG_OK);
}

fn racing_completes_have_one_winner(store: &Store) {
    let outbox = Outbox::new("race");
    setup_with(&outbox, store, cheap_hash("pw"));
    assert_eq!(begin("192.0.2.9", "pw"), BG_OK);
    let code = outbox.code();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (b, code) = (barrier.clone(), code.clone());
            std::thread::spawn(move || {
                b.wait();
                complete("192.0.2.9", &code).0
            })
        })
        .collect();
    let results: Vec<bg_status> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|&&s| s == BG_OK).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|s| matches!(s, BG_OK | BG_NO_PENDING_OTP | BG_LOCKED_OUT)));
}

/// Forks `n` children that each run `f` and exit with its status (as a number); returns them.
fn in_children(n: usize, f: impl Fn(usize) -> bg_status) -> Vec<i32> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut children = Vec::new();
    for i in 0..n {
        // SAFETY: the child only uses the library (whose fork handlers make that safe), reads
        // the pipe, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain descriptor and signal calls in the child.
            unsafe {
                libc::alarm(30);
                libc::close(fds[1]);
                let mut b = 0u8;
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            }
            let st = f(i);
            // SAFETY: ends the child without running the parent's test harness.
            unsafe { libc::_exit(st as i32) };
        }
        children.push(pid);
    }
    // SAFETY: closing our ends releases the children at once.
    unsafe {
        libc::close(fds[1]);
        libc::close(fds[0]);
    }
    children
        .into_iter()
        .map(|pid| {
            let mut status = 0;
            // SAFETY: waits for a child this test forked.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "a child died: {status}");
            libc::WEXITSTATUS(status)
        })
        .collect()
}

fn racing_processes_have_one_winner(store: &Store) {
    let outbox = Outbox::new("procs");
    setup_with(&outbox, store, cheap_hash("pw"));
    assert_eq!(begin("192.0.2.9", "pw"), BG_OK);
    let code = outbox.code();
    let outcomes = in_children(4, |_| complete("192.0.2.9", &code).0);
    if !store.shared_by_processes() {
        // In-process state would split across processes: every child is refused, none grants.
        assert!(
            outcomes.iter().all(|&s| s == BG_ERR_NOT_CONFIGURED as i32),
            "{outcomes:?}"
        );
        assert_eq!(
            complete("192.0.2.9", &code).0,
            BG_OK,
            "the parent's code is intact"
        );
        return;
    }
    let wins = outcomes.iter().filter(|&&s| s == BG_OK as i32).count();
    assert_eq!(wins, 1, "{outcomes:?}");
    let allowed = [BG_OK, BG_NO_PENDING_OTP, BG_LOCKED_OUT].map(|s| s as i32);
    assert!(outcomes.iter().all(|s| allowed.contains(s)), "{outcomes:?}");
    // The code is used up for every process, this one included.
    assert_eq!(complete("192.0.2.9", &code).0, BG_NO_PENDING_OTP);
}

fn thousands_of_addresses_leave_the_admin_a_way_in(store: &Store) {
    let outbox = Outbox::new("many");
    setup_with(&outbox, store, cheap_hash("pw"));
    // One failure from each of 3,000 /64s: a state far larger than one small reply or page.
    for n in 0..3000u32 {
        let ip = format!("2001:db8:{:x}:{:x}::1", n >> 8, n & 0xff);
        assert_eq!(complete(&ip, "123456").0, BG_NO_PENDING_OTP, "{ip}");
    }
    assert_eq!(begin("192.0.2.5", "pw"), BG_OK);
    let (st, token) = complete("192.0.2.5", &outbox.code());
    assert_eq!(st, BG_OK);
    assert_eq!(session(&token), BG_OK);
}

fn the_admin_gets_in_during_a_flood_of_code_guesses(store: &Store) {
    let outbox = Outbox::new("codeflood");
    setup_with(&outbox, store, cheap_hash("pw"));
    // Six threads without the password guess codes at full speed from 1,500 /64s, each
    // attempt a transaction on the store; the admin's two steps must still get their turn.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..6u32)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u32;
                let mut backend = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let m = t * 250 + n % 250;
                    let ip = format!("2001:db8:{:x}:{:x}::1", 0x100 + (m >> 8), m & 0xff);
                    backend += u32::from(complete(&ip, "123456").0 == BG_ERR_BACKEND);
                    n += 1;
                }
                (n, backend)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let begun = begin("192.0.2.66", "pw");
    let done = if begun == BG_OK {
        complete("192.0.2.66", &outbox.code()).0
    } else {
        begun
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, backend): (u32, u32) = flood
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, b), (n, e)| (a + n, b + e));
    assert_eq!((begun, done), (BG_OK, BG_OK), "the admin, during the flood");
    assert!(sent > 6, "the flood ran ({sent} attempts)");
    assert_eq!(
        backend, 0,
        "no attempt of the flood itself was refused for a busy store"
    );
}

fn addresses_are_addresses(store: &Store) {
    let outbox = Outbox::new("addr");
    setup_with(&outbox, store, cheap_hash("pw"));
    // A zone index only on a link-local IPv6 address, and only a short interface name.
    for bad in [
        "192.0.2.1%eth0",
        "192.0.2.1%[DRILL] scheduled test, no login - ignore",
        "2001:db8::1%eth0",
        "fe80::1%eth0\n",
    ] {
        assert_eq!(begin(bad, "pw"), BG_IP_NOT_ALLOWED, "{bad:?}");
    }
    assert_eq!(begin("fe80::1%eth0", "pw"), BG_OK);
    let (st, _) = complete("fe80::1%eth0", &outbox.code());
    assert_eq!(st, BG_OK);
    // The alarm carries the canonical address, never the caller's text.
    let alert = outbox
        .mails()
        .into_iter()
        .find(|m| m.contains("[BREAK-GLASS] Emergency login"))
        .unwrap();
    assert!(
        alert.contains("fe80::1") && !alert.contains("eth0"),
        "{alert}"
    );
}

/// In-process state: a child forked from the configuring process is refused while that process
/// runs; a daemon's child whose parent (the configuring process) has exited keeps working.
#[test]
fn in_process_state_refuses_to_split_but_survives_daemonising() {
    let _g = serial();
    let outbox = Outbox::new("split");
    setup_with(&outbox, &Store::InProcess, cheap_hash("pw"));
    let refused = in_children(1, |_| begin("192.0.2.1", "pw"));
    assert_eq!(refused, [BG_ERR_NOT_CONFIGURED as i32]);
    // daemon(3): a child configures, forks once and exits; the grandchild then logs in.
    let out = outbox.0.clone();
    let daemonised = in_children(1, move |_| {
        configure("otp_ttl_seconds", Some("600"));
        let me = std::process::id() as libc::pid_t;
        // SAFETY: the intermediate child forks once more and leaves at once with _exit.
        let pid = unsafe { libc::fork() };
        if pid != 0 {
            unsafe { libc::_exit(0) };
        }
        // The grandchild: wait until the configuring process has exited (it may not have been
        // reaped yet: a zombie counts as gone).
        for _ in 0..500 {
            if unsafe { libc::getppid() } != me {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let st = begin("192.0.2.1", "pw");
        std::fs::write(out.join("grandchild-status"), format!("{}", st as i32)).unwrap();
        unsafe { libc::_exit(0) };
    });
    assert_eq!(daemonised, [0]);
    let path = outbox.0.join("grandchild-status");
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "0",
        "BG_OK in the daemon"
    );
    teardown();
}

/// `state_dir` is checked when it is set, and it and `slot_url` exclude each other.
#[test]
fn state_dir_is_checked_and_excludes_slot_url() {
    let _g = serial();
    let _t = Teardown;
    let base = std::env::temp_dir().join(format!("bg-state-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let loose = base.join("loose");
    std::fs::create_dir(&loose).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o757)).unwrap();
    assert_eq!(
        configure("state_dir", Some(loose.to_str().unwrap())),
        BG_ERR_ARGUMENT
    );
    assert!(
        last_error().contains("writable by group or others"),
        "{}",
        last_error()
    );
    assert_eq!(
        configure("state_dir", Some("relative/dir")),
        BG_ERR_ARGUMENT
    );
    let link = base.join("link");
    std::os::unix::fs::symlink(&base, &link).unwrap();
    assert_eq!(
        configure("state_dir", Some(link.to_str().unwrap())),
        BG_ERR_ARGUMENT
    );
    assert!(last_error().contains("symbolic link"), "{}", last_error());
    let good = base.join("good");
    assert_eq!(configure("state_dir", Some(good.to_str().unwrap())), BG_OK);
    assert_eq!(
        configure("slot_url", Some("redis://127.0.0.1:1")),
        BG_ERR_ARGUMENT
    );
    assert!(last_error().contains("not both"), "{}", last_error());
    assert_eq!(configure("state_dir", None), BG_OK);
    assert_eq!(configure("slot_url", Some("redis://127.0.0.1:1")), BG_OK);
    assert_eq!(
        configure("state_dir", Some(good.to_str().unwrap())),
        BG_ERR_ARGUMENT
    );
    // A damaged state file is a denial naming the file, never a fresh start.
    assert_eq!(configure("slot_url", None), BG_OK);
    assert_eq!(configure("state_dir", Some(good.to_str().unwrap())), BG_OK);
    std::fs::write(
        good.join("state"),
        "breakglass-login-state 1\nkey 4.1 1,2,3 -\n",
    )
    .unwrap();
    assert_eq!(left_status("192.0.2.1"), BG_ERR_BACKEND);
    assert!(
        last_error().contains(&good.join("state").display().to_string()),
        "{}",
        last_error()
    );
    std::fs::remove_dir_all(&base).unwrap();
}

fn left_status(ip: &str) -> bg_status {
    let i = CString::new(ip).unwrap();
    let mut n = 0;
    unsafe { bg_attempts_left(i.as_ptr(), &mut n) }
}
