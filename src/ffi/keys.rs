//! `bg_config_key_count` / `bg_config_key`: the configuration key table, for bindings and tools.
//!
//! Converts the table in `config::keys` into C strings once. It must never describe a value
//! that was set: only names, types, bounds and defaults.

use std::ffi::{c_char, CString};

use super::panic::run;
use super::status::{bg_status, refuse, refuse_argument};
use crate::config::{Kind, KEYS};
use crate::error::Error;
use crate::fork::Lazy;

/// One configuration key, as `bg_config_key` describes it. Every string is static: valid for
/// the life of the process, never to be freed.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct bg_config_key_info {
    /// The name `bg_configure` takes (the environment variable is `BREAKGLASS_` + its upper case).
    pub name: *const c_char,
    /// "integer", "boolean", "string", "secret" (never logged) or "email_list".
    pub kind: *const c_char,
    /// The default as `bg_configure` would take it, or NULL when the key is unset by default.
    pub default_value: *const c_char,
    /// For "integer" keys, the smallest accepted value; 0 otherwise.
    pub min: u64,
    /// For "integer" keys, the largest accepted value; 0 otherwise.
    pub max: u64,
    /// One line of English describing the key.
    pub doc: *const c_char,
}

struct Strings {
    name: CString,
    kind: CString,
    default: Option<CString>,
    doc: CString,
}

static TABLE: Lazy<Vec<Strings>> = Lazy::new(|| {
    let c = |s: &str| CString::new(s).expect("the key table has no NUL bytes");
    KEYS.iter()
        .map(|k| Strings {
            name: c(k.name),
            kind: c(k.kind.name()),
            default: k.default.map(c),
            doc: c(k.doc),
        })
        .collect()
});

/// How many configuration keys there are: valid indexes for `bg_config_key` are 0 to this
/// minus one. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
#[no_mangle]
pub extern "C" fn bg_config_key_count() -> usize {
    run(|| KEYS.len())
}

/// Describes configuration key number `index` into `*out` (caller-owned).
///
/// Returns `BG_ERR_NULL` when `out` is NULL and `BG_ERR_ARGUMENT` when `index` is not below
/// `bg_config_key_count()`; `*out` is then untouched. Thread-safe.
///
/// Not async-signal-safe: never call it from a signal handler (it takes locks and
/// allocates, so it can deadlock there).
///
/// # Safety
/// `out` is NULL or points to a writable `bg_config_key_info`.
#[no_mangle]
pub unsafe extern "C" fn bg_config_key(index: usize, out: *mut bg_config_key_info) -> bg_status {
    run(|| {
        if out.is_null() {
            return refuse(Error::Null, "bg_config_key: out is NULL");
        }
        let (Some(key), Some(strings)) = (KEYS.get(index), TABLE.get(index)) else {
            return refuse_argument("bg_config_key: index is not below bg_config_key_count()");
        };
        let (min, max) = match key.kind {
            Kind::Integer { min, max } => (min, max),
            _ => (0, 0),
        };
        let info = bg_config_key_info {
            name: strings.name.as_ptr(),
            kind: strings.kind.as_ptr(),
            default_value: strings
                .default
                .as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr()),
            min,
            max,
            doc: strings.doc.as_ptr(),
        };
        // SAFETY: `out` is non-NULL and, by contract, points to a writable bg_config_key_info.
        unsafe { out.write(info) };
        bg_status::BG_OK
    })
}
