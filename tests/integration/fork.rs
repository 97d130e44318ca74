//! `fork()` while the library's globals are being initialised or held: the child can still
//! generate, verify, alert to a local webhook and log.
//!
//! Each scenario runs in a fresh copy of this test binary (it changes `SSL_CERT_FILE`, which
//! the other tests of this process must not see), started by the outer test with a lifetime
//! bound; every child it forks has a watchdog (`alarm`), so a hang is a failure, never a stuck
//! test run.

use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakglass::ffi::bg_status;

use super::hookserver::{Answer, HookServer};

const SCENARIO_VAR: &str = "BG_FORK_SCENARIO";

/// Runs `name` (an ignored test of this module) in a fresh process and checks it passed.
fn run_scenario(name: &str) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("fork::{name}"),
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(SCENARIO_VAR, "1")
        .spawn()
        .unwrap();
    let born = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if born.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scenario {name} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "scenario {name} failed: {status}");
}

static LOGGED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_log(_level: i32, _message: *const c_char, _user: *mut c_void) {
    LOGGED.fetch_add(1, Ordering::SeqCst);
}

fn configure(key: &str, value: &str) -> bg_status {
    let (k, v) = (CString::new(key).unwrap(), CString::new(value).unwrap());
    unsafe { breakglass::ffi::settings::bg_configure(k.as_ptr(), v.as_ptr()) }
}

/// What a child does after the fork; its exit code names the first step that failed.
fn child_body(hook_url: &str, ip: &str) -> i32 {
    // A watchdog: a child stuck on an inherited lock or a half-done initialisation is killed.
    unsafe { libc::alarm(20) };
    // Fresh roots for the child: the parent's loader may be stuck on a FIFO forever.
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    if configure("alert_webhook_url", hook_url) != bg_status::BG_OK {
        return 2;
    }
    let Ok(code) = breakglass::generate() else {
        return 3;
    };
    if breakglass::verify(code.as_str().as_bytes()).is_err() {
        return 4;
    }
    breakglass::alert(Some(ip.as_bytes()));
    if breakglass::flush(Duration::from_secs(15)).is_err() {
        return 5;
    }
    // Logging: a refused value is logged at warn level through the callback.
    let before = LOGGED.load(Ordering::SeqCst);
    if configure("otp_ttl_seconds", "0") == bg_status::BG_OK {
        return 6;
    }
    if LOGGED.load(Ordering::SeqCst) == before {
        return 7;
    }
    0
}

/// Forks, runs `child_body` in the child and returns its exit status (bounded).
fn fork_and_check(hook_url: &str, ip: &str) -> i32 {
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let rc = child_body(hook_url, ip);
        unsafe { libc::_exit(rc) };
    }
    assert!(pid > 0, "fork failed");
    let born = Instant::now();
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if born.elapsed() > Duration::from_secs(30) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return -1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    }
}

/// The parent's side of a scenario, or `None` when this process is not running one: a
/// receiver answering 200, the counting logger, and the webhook pointed at `/parent`.
fn scenario_parent() -> Option<HookServer> {
    std::env::var_os(SCENARIO_VAR)?;
    let hook = HookServer::always(Answer::Status(200, "ok"));
    set_logger();
    assert_eq!(
        configure("alert_webhook_url", &hook.url("/parent")),
        bg_status::BG_OK
    );
    Some(hook)
}

fn set_logger() {
    let st = breakglass::ffi::delivery::bg_set_logger(Some(count_log), std::ptr::null_mut(), 2);
    assert_eq!(st, bg_status::BG_OK);
}

/// The webhook's trust roots are being loaded (from a FIFO no one writes, so the loader is
/// stuck in the middle) when the process forks: the child can still alert to a local webhook.
#[test]
fn a_child_forked_while_the_trust_roots_load_can_alert() {
    run_scenario("scenario_roots_loading");
}

#[test]
#[ignore = "run by a_child_forked_while_the_trust_roots_load_can_alert in its own process"]
fn scenario_roots_loading() {
    let Some(hook) = scenario_parent() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("bg-fork-roots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("roots.pem");
    let path = CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    std::env::set_var("SSL_CERT_FILE", &fifo);
    // A delivery thread starts loading the roots and blocks reading the FIFO.
    breakglass::alert(Some(b"192.0.2.1"));
    let born = Instant::now();
    let writer = loop {
        // Opening the write end without blocking succeeds once a reader has it open.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
        if fd >= 0 {
            break fd;
        }
        assert!(
            born.elapsed() < Duration::from_secs(20),
            "no thread started loading the roots"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let rc = fork_and_check(&hook.url("/child"), "192.0.2.2");
    // Let the parent's loader finish (end of file: no roots) and its alert go out.
    unsafe { libc::close(writer) };
    assert_eq!(
        rc, 0,
        "the child failed at step {rc} (-14: hung, killed by its watchdog)"
    );
    assert!(hook.wait_for(2, Duration::from_secs(20)));
    let paths: Vec<String> = hook.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "/child"), "{paths:?}");
    assert!(breakglass::flush(Duration::from_secs(20)).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Children forked while other threads configure, generate, verify, alert, log and take
/// the login limiter's lock can do all of that themselves.
#[test]
fn children_forked_while_every_global_is_busy_can_work() {
    run_scenario("scenario_everything_busy");
}

#[test]
#[ignore = "run by children_forked_while_every_global_is_busy_can_work in its own process"]
fn scenario_everything_busy() {
    let Some(hook) = scenario_parent() else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..4)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match n {
                        0 => {
                            let _ = configure("otp_ttl_seconds", "600");
                            let _ = configure("otp_ttl_seconds", "bad");
                        }
                        1 => {
                            if let Ok(code) = breakglass::generate() {
                                let _ = breakglass::verify(code.as_str().as_bytes());
                            }
                        }
                        2 => {
                            let _ = breakglass::login::attempts_left(b"192.0.2.9");
                            breakglass::alert(Some(b"192.0.2.1"));
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        _ => {
                            let _ = breakglass::flush(Duration::ZERO);
                            set_logger();
                        }
                    }
                }
            })
        })
        .collect();
    for n in 0..20 {
        let rc = fork_and_check(&hook.url(&format!("/child{n}")), "192.0.2.2");
        assert_eq!(
            rc, 0,
            "child {n} failed at step {rc} (-14: hung, killed by its watchdog)"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    let paths: Vec<String> = hook.requests().into_iter().map(|r| r.path).collect();
    for n in 0..20 {
        assert!(
            paths.contains(&format!("/child{n}")),
            "child {n}: {paths:?}"
        );
    }
    assert!(breakglass::flush(Duration::from_secs(30)).is_ok());
}
