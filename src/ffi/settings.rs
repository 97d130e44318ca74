//! Exports for configuration: `bg_configure`, `bg_configure_from_env`.

use std::ffi::c_char;

use super::cstr::{self, CInput};
use super::panic::guard;
use super::status::{bg_status, map_error, refuse_argument, status_of};

/// Longest key accepted, in bytes.
const MAX_KEY: usize = 64;
/// Longest value accepted, in bytes (a long alert_emails list fits).
const MAX_VALUE: usize = 65_536;

/// Sets the configuration key `key` to `value`; `value == NULL` restores the key's default.
///
/// The keys, their types, bounds and defaults are those `bg_config_key` describes (and
/// README's "Configuration" table, which a test checks against it).
///
/// Returns `BG_ERR_NULL` when `key` is NULL, and `BG_ERR_ARGUMENT` for an unknown key, bad
/// UTF-8, an over-long string or a bad value; then nothing changes, and `bg_last_error` says
/// why. Values are copied; the
/// strings are only read during the call. Thread-safe; a setting applies to codes generated
/// and deliveries queued after the call.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `key` and `value` are each NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bg_configure(key: *const c_char, value: *const c_char) -> bg_status {
    guard(|| {
        let key = match unsafe { cstr::read_str(key, MAX_KEY, "the key") } {
            Ok(k) => k,
            Err(e) => return map_error(&e),
        };
        let value = match unsafe { cstr::read(value, MAX_VALUE) } {
            CInput::Null => None,
            CInput::TooLong(_) => {
                return refuse_argument(&format!(
                    "{key}: the value is longer than {MAX_VALUE} bytes"
                ))
            }
            CInput::Text(b) => match std::str::from_utf8(b) {
                Ok(v) => Some(v),
                Err(_) => return refuse_argument(&format!("{key}: the value is not UTF-8")),
            },
        };
        let result = crate::configure(key, value);
        if let Err(e) = &result {
            log::warn!("bg_configure({key}): {e}");
        }
        status_of(result)
    })
}

/// Applies `BREAKGLASS_<KEY>` (the key in upper case, e.g. `BREAKGLASS_OTP_TTL_SECONDS`) for
/// every key that `bg_configure` accepts and the environment sets. All of them apply, or, when
/// any is bad (`BG_ERR_ARGUMENT`), none. Thread-safe, but reads the environment: do not call it
/// while another thread changes the environment.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_configure_from_env() -> bg_status {
    guard(|| {
        let result = crate::configure_from_env();
        if let Err(e) = &result {
            log::warn!("bg_configure_from_env: {e}");
        }
        status_of(result)
    })
}
