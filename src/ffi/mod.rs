//! The C ABI: pointer and string conversion, status codes, the panic boundary.
//!
//! Every export is a thin shell: check its pointers, convert its strings, call the safe API,
//! map the result through `status::map_error`, all inside `panic::guard`. No logic lives here.
//! The header `include/breakglass.h` is generated from these items by cbindgen, and their
//! `///` comments are its documentation.

use std::ffi::c_char;

pub mod cstr;
pub mod delivery;
pub mod drill;
pub mod health;
pub mod keys;
pub mod last_error;
pub mod logger;
pub mod login;
pub mod panic;
pub mod settings;
pub mod slot;
pub mod status;

pub use drill::bg_drill_report_fn;
pub use logger::bg_log_fn;
pub use status::bg_status;

/// Digits in a one-time code.
pub const BG_OTP_LEN: usize = 6;
/// Size of a buffer that holds a code and its NUL terminator: pass at least this to
/// `bg_generate`.
pub const BG_OTP_BUF_LEN: usize = 7;
/// Size of a buffer that always holds `bg_last_error`'s text and its NUL terminator.
pub const BG_LAST_ERROR_BUF_LEN: usize = 1025;

/// A fixed English name for `status`, such as "expired". Accepts any integer: unknown values
/// give "unknown status".
///
/// Returns a static string: never NULL, never to be freed. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_status_str(status: i32) -> *const c_char {
    panic::run(|| status::status_name(status).as_ptr())
}

/// The library's version, such as "0.1.0"; equal to `BREAKGLASS_VERSION` in the header it was
/// built with.
///
/// Returns a static string: never NULL, never to be freed. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_version() -> *const c_char {
    panic::run(|| concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}
