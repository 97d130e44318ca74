//! Integration tests of the C ABI, called from Rust: the exports, the header, code
//! distribution and a file-outbox delivery. Every test that touches the process-global state
//! holds `serial()`.

mod audit;
mod distribution;
mod drill;
mod exports;
mod fork;
mod fuzz_corpus;
mod header;
mod hookserver;
mod keys;
mod layering;
mod login;
mod login_redis;
mod outbox;
mod receivers;
mod recovery;
mod redis_server;
mod smtpserver;

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises tests that use the library's global slot, settings or logger.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `bg_generate` and returns the code.
pub fn generate() -> String {
    let mut buf = [0 as std::ffi::c_char; 7];
    let st = unsafe { breakglass::ffi::slot::bg_generate(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(st, breakglass::ffi::bg_status::BG_OK);
    let bytes: Vec<u8> = buf[..6].iter().map(|&c| c as u8).collect();
    assert_eq!(buf[6], 0);
    String::from_utf8(bytes).unwrap()
}

/// Calls `bg_verify` with `code`.
pub fn verify(code: &str) -> breakglass::ffi::bg_status {
    let c = std::ffi::CString::new(code).unwrap();
    unsafe { breakglass::ffi::slot::bg_verify(c.as_ptr()) }
}

/// Calls `bg_configure`; `None` unsets.
pub fn configure(key: &str, value: Option<&str>) -> breakglass::ffi::bg_status {
    let k = std::ffi::CString::new(key).unwrap();
    let v = value.map(|v| std::ffi::CString::new(v).unwrap());
    unsafe {
        breakglass::ffi::settings::bg_configure(
            k.as_ptr(),
            v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
        )
    }
}

/// Calls `bg_login_begin`.
pub fn begin(ip: &str, password: &str) -> breakglass::ffi::bg_status {
    let (i, p) = (
        std::ffi::CString::new(ip).unwrap(),
        std::ffi::CString::new(password).unwrap(),
    );
    unsafe { breakglass::ffi::login::bg_login_begin(i.as_ptr(), p.as_ptr()) }
}

/// Calls `bg_login_complete`; the status and the token ("" when none was written).
pub fn complete(ip: &str, code: &str) -> (breakglass::ffi::bg_status, String) {
    use breakglass::ffi::login::{bg_login_complete, BG_SESSION_TOKEN_BUF_LEN};
    let (i, c) = (
        std::ffi::CString::new(ip).unwrap(),
        std::ffi::CString::new(code).unwrap(),
    );
    let mut token = [0 as std::ffi::c_char; BG_SESSION_TOKEN_BUF_LEN];
    let st = unsafe { bg_login_complete(i.as_ptr(), c.as_ptr(), token.as_mut_ptr(), token.len()) };
    let t = unsafe { std::ffi::CStr::from_ptr(token.as_ptr()) };
    (st, t.to_str().unwrap().to_owned())
}

/// Calls `bg_attempts_left`, which must succeed.
pub fn left(ip: &str) -> u32 {
    let i = std::ffi::CString::new(ip).unwrap();
    let mut n = u32::MAX;
    let st = unsafe { breakglass::ffi::login::bg_attempts_left(i.as_ptr(), &mut n) };
    assert_eq!(st, breakglass::ffi::bg_status::BG_OK);
    n
}
