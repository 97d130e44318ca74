//! The library's logger, pointed at syslog(3) with facility authpriv: where an operator reads
//! why a break-glass login was refused or could not run. The client only ever sees
//! "Break-glass login denied.".
//!
//! It must never write to stdout or stderr (they belong to the host, e.g. sshd's client
//! channel), and never call `openlog` (the host's ident and options stay as the host set them).

use std::ffi::{c_char, c_void};

unsafe extern "C" fn to_syslog(level: i32, message: *const c_char, _user: *mut c_void) {
    let prio = match level {
        1 => libc::LOG_ERR,
        2 => libc::LOG_WARNING,
        3 => libc::LOG_INFO,
        _ => libc::LOG_DEBUG,
    };
    // SAFETY: a constant format and the library's NUL-terminated message.
    unsafe {
        libc::syslog(
            libc::LOG_AUTHPRIV | prio,
            c"pam_breakglass: %s".as_ptr(),
            message,
        )
    };
}

/// Routes the library's log (and the module's, which uses the same `log` logger) to syslog at
/// info level, or debug with the `debug` argument. Called at every entry point, before anything
/// else can log: the library's default logger writes to stderr.
pub fn install(debug: bool) {
    let level = if debug { 4 } else { 3 };
    let _ = breakglass::ffi::logger::set(Some(to_syslog), std::ptr::null_mut(), level);
}
