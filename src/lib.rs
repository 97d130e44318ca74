//! libbreakglass: the second factor and the alarm of an emergency ("break-glass") login.
//!
//! It issues a six-digit one-time code held in one slot (in this process, or in Redis/Valkey
//! for a fleet of replicas), verifies it at most once, expires it after a TTL, emails it to the
//! break-glass address, and after a successful break-glass login raises the alarm by email and
//! webhook, on background threads.
//!
//! The safe Rust API is below; the C ABI (`bg_*`, see `include/breakglass.h`) lives in [`ffi`]
//! and is a thin shell over it. The Rust API leaves logging to the host's `log` logger.
//!
//! ```no_run
//! breakglass::configure("mailer", Some("file:///var/spool/breakglass")).unwrap();
//! let code = breakglass::generate().unwrap();
//! assert!(breakglass::verify(code.as_str().as_bytes()).is_ok());
//! breakglass::alert(Some(b"203.0.113.7"));
//! breakglass::flush(std::time::Duration::from_secs(30)).unwrap();
//! ```

#![warn(missing_docs)]
// `unsafe` lives only in the FFI shell and the OS modules (`sys`, `fork`, `sync`), each allowed below.
#![deny(unsafe_code)]

pub mod audit;
pub mod config;
mod digest;
mod error;
#[allow(unsafe_code)]
pub mod ffi;
#[allow(unsafe_code)]
mod fork;
pub mod login;
mod net;
pub mod notify;
pub mod otp;
#[cfg(feature = "redis")]
mod redis;
#[allow(unsafe_code)]
mod sync;
#[allow(unsafe_code)]
mod sys;
pub mod text;

pub use error::{Error, Result};
pub use login::recovery;
pub use notify::{alert, flush, send_otp, stats, Stats};
pub use otp::{clear, generate, verify, Otp};

/// Sets `key` to `value` (`None`: its default) and records the change of a security key in
/// the audit trail. A bad key or value changes nothing. See [`config::configure`].
pub fn configure(key: &str, value: Option<&str>) -> Result<()> {
    audit::config_changed(&config::configure(key, value)?);
    Ok(())
}

/// Applies every `BREAKGLASS_<KEY>` the environment sets, all or none, and records the
/// changes in the audit trail. See [`config::configure_from_env`].
pub fn configure_from_env() -> Result<()> {
    audit::config_changed(&config::configure_from_env()?);
    Ok(())
}

/// The crate's version, as `bg_version` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
