//! The audit chain's head kept outside the audit file: the anchor that makes a cut tail
//! visible (a hash chain alone cannot show one: any prefix of a chain verifies).
//!
//! After every synced record, its `seq` and `mac` are written (still under the audit file's
//! lock, so anchors only move forward) to `audit-anchor` in `state_dir` (0600, `O_NOFOLLOW`,
//! a temp file renamed over the old one, so a reader sees the old or the new anchor, never
//! half of one) and, when `slot_url` is set, to the Redis key `<slot_key>:audit-anchor:<host>`.
//! `breakglass audit verify` reads them back. Alarms carry the last head this process anchored
//! (see `super::last_head`).
//!
//! A failure to write an anchor is counted and logged at most once a second; it never blocks
//! a record or a login. It must never hold the audit key or any secret: a head is a `seq` and a
//! public `mac`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::record::Head;
use crate::config::Settings;

/// The anchor file's name inside `state_dir`.
pub const FILE_NAME: &str = "audit-anchor";

/// Anchors that could not be written.
pub(super) static FAILED: super::failures::Failures = super::failures::Failures::new();

/// The anchor's text: the audit file it belongs to and the head, one JSON line.
fn text(log: &Path, head: &Head) -> String {
    let mut t = serde_json::json!({
        "log": log.to_string_lossy(),
        "seq": head.seq,
        "mac": head.mac,
    })
    .to_string();
    t.push('\n');
    t
}

/// Reads an anchor's text: `None` when it is not one, or belongs to another audit file.
fn parse(bytes: &[u8], log: &Path) -> Option<Head> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if v.get("log")?.as_str()? != log.to_string_lossy() {
        return None;
    }
    let head = Head {
        seq: v.get("seq")?.as_u64()?,
        mac: v.get("mac")?.as_str()?.to_owned(),
    };
    // Same rules as `--anchor`.
    head.to_string().parse().ok()
}

/// The Redis key of this host's anchor.
fn redis_key(s: &Settings) -> String {
    format!("{}:audit-anchor:{}", s.slot.key, crate::sys::hostname())
}

/// Writes `head` of the audit file `log` to every anchor store `s` names.
pub(super) fn write(s: &Settings, log: &Path, head: &Head) {
    let body = text(log, head);
    if let Some(dir) = &s.state_dir {
        if let Err(e) = write_file(dir, body.as_bytes()) {
            failed(&format!("{}: {e}", dir.join(FILE_NAME).display()));
        }
    }
    #[cfg(feature = "redis")]
    if let Some(url) = &s.slot.url {
        let key = redis_key(s);
        let slot = crate::redis::script::Runner::new(url, &s.slot);
        let r = slot.session("audit anchor SET", true, |conn, _| {
            match conn.call(&[b"SET", key.as_bytes(), body.as_bytes()])? {
                crate::redis::resp::Reply::Status(_) => Ok(()),
                crate::redis::resp::Reply::Error(e) => {
                    Err(crate::redis::conn::SessionError::refused("SET", &e))
                }
                _ => Err(crate::redis::conn::SessionError::Unexpected(
                    "unexpected reply to SET",
                )),
            }
        });
        if let Err(e) = r {
            failed(&format!("Redis: {e}"));
        }
    }
}

/// Replaces `dir/audit-anchor` with `body`, atomically.
fn write_file(dir: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE_NAME}.{}", crate::sys::pid()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let done = f
        .write_all(body)
        .and_then(|()| std::fs::rename(&tmp, dir.join(FILE_NAME)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn failed(what: &str) {
    if let Some(total) = FAILED.note() {
        log::error!(
            "audit: cannot write the audit anchor to {what} ({total} failed since the library \
             was loaded)"
        );
    }
}

/// Where an anchor was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `state_dir/audit-anchor`.
    File(PathBuf),
    /// The Redis key.
    Redis(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Redis(k) => write!(f, "Redis key {k}"),
        }
    }
}

/// The anchors of the audit file `log` that the settings `s` name: each with where it came
/// from; an anchor store that cannot be read is an error naming it (never "no anchor").
pub fn read(s: &Settings, log: &Path) -> Result<Vec<(Source, Head)>, String> {
    let mut out = Vec::new();
    if let Some(dir) = &s.state_dir {
        let p = dir.join(FILE_NAME);
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p)
        {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut bytes)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                if let Some(h) = parse(&bytes, log) {
                    out.push((Source::File(p), h));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    #[cfg(feature = "redis")]
    if let Some(url) = &s.slot.url {
        let key = redis_key(s);
        let slot = crate::redis::script::Runner::new(url, &s.slot);
        let got = slot
            .session("audit anchor GET", true, |conn, _| {
                match conn.call(&[b"GET", key.as_bytes()])? {
                    crate::redis::resp::Reply::Bulk(b) => Ok(b.map(|b| b.to_vec())),
                    crate::redis::resp::Reply::Error(e) => {
                        Err(crate::redis::conn::SessionError::refused("GET", &e))
                    }
                    _ => Err(crate::redis::conn::SessionError::Unexpected(
                        "unexpected reply to GET",
                    )),
                }
            })
            .map_err(|e| e.to_string())?;
        if let Some(h) = got.and_then(|b| parse(&b, log)) {
            out.push((Source::Redis(key), h));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_is_written_atomically_and_read_back_for_its_own_log_only() {
        let dir = std::env::temp_dir().join(format!("bg-anchor-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Settings {
            state_dir: Some(dir.clone()),
            ..Settings::default()
        };
        let log = Path::new("/var/log/bg/audit.log");
        let head = Head {
            seq: 9,
            mac: "ab".repeat(32),
        };
        write(&s, log, &head);
        let got = read(&s, log).unwrap();
        assert_eq!(got, vec![(Source::File(dir.join(FILE_NAME)), head)]);
        assert!(read(&s, Path::new("/other.log")).unwrap().is_empty());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A symlink in its place is neither followed on reading nor written through.
        std::fs::remove_file(dir.join(FILE_NAME)).unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join(FILE_NAME)).unwrap();
        assert!(read(&s, log).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
