//! pam_breakglass.so: the break-glass login (password, emailed one-time code, alarm, audit
//! trail) as a PAM module for sshd, sudo and login, over the `breakglass` library's safe API.
//!
//! Owns the four exported entry points and their panic guard. Safe inside another program
//! running as root: no `exit`, no signal handlers, nothing written to stdout or stderr, and a
//! panic becomes `PAM_AUTHINFO_UNAVAIL`, never an unwind into C and never a grant.
//!
//! The library's delivery threads start in the process that authenticates (sshd's
//! per-connection child, or the child it forks for the PAM conversation). They send the code
//! email and the alarm; the module waits for them (bounded) before it returns, since that
//! process may `_exit` right after. Idle threads then stay until the process ends; `-z
//! nodelete` keeps their code mapped after `pam_end` unloads the module. A process forked
//! afterwards starts with no delivery threads and a fresh queue (the library's fork handlers).

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

mod args;
mod auth;
mod config_file;
mod handle;
mod logging;
mod sys;

use handle::Handle;
use sys::*;

/// The module arguments as text (non-UTF-8 ones become an unknown argument, so a refusal).
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings, as PAM passes them.
unsafe fn arg_list(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    if argv.is_null() || argc <= 0 {
        return Vec::new();
    }
    (0..argc as usize)
        .filter_map(|i| {
            // SAFETY: i < argc, per the caller's contract.
            let p = unsafe { *argv.add(i) };
            // SAFETY: a NUL-terminated string from PAM.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .collect()
}

/// Runs `f` with the handle and the arguments, turning a panic into `on_panic`.
fn guarded(
    pamh: *mut PamHandle,
    argv: Vec<String>,
    on_panic: c_int,
    f: impl FnOnce(&Handle, Vec<String>) -> c_int,
) -> c_int {
    if pamh.is_null() {
        return on_panic;
    }
    catch_unwind(AssertUnwindSafe(|| {
        logging::install(argv.iter().any(|a| a == "debug"));
        f(&Handle(pamh), argv)
    }))
    .unwrap_or_else(|_| {
        log::error!(target: "breakglass::pam", "internal error (a panic was caught)");
        on_panic
    })
}

/// Authenticates the configured break-glass user: password, emailed code.
///
/// # Safety
/// Called by libpam with a valid handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: per this function's contract.
    let list = unsafe { arg_list(argc, argv) };
    guarded(
        pamh,
        list,
        PAM_AUTHINFO_UNAVAIL,
        |h, list| match args::parse(list.iter().map(String::as_str)) {
            Ok(a) => auth::authenticate(h, &a, flags).code(),
            Err(why) => {
                log::error!(target: "breakglass::pam", "module arguments: {why}");
                if flags & PAM_SILENT == 0 {
                    let _ = h.converse(PAM_ERROR_MSG, auth::DENIED);
                }
                PAM_AUTHINFO_UNAVAIL
            }
        },
    )
}

/// Grants nothing: sshd calls it in another process than the one that authenticated, so it
/// must not depend on anything `pam_sm_authenticate` saved.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// Nothing to do: the session was started by a granted authentication.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_open_session(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// Ends the break-glass session when this process is the one that was granted it; harmless
/// otherwise.
///
/// # Safety
/// Called by libpam with a valid handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_close_session(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: per this function's contract.
    let list = unsafe { arg_list(argc, argv) };
    guarded(pamh, list, PAM_SUCCESS, |h, list| {
        // The session lives in the configured store; without a readable config there is
        // nothing this process can end.
        if let Ok(a) = args::parse(list.iter().map(String::as_str)) {
            if config_file::load(&a.config).is_ok() {
                auth::close_session(h);
            }
        }
        PAM_SUCCESS
    })
}
