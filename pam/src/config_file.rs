//! The module's configuration file: `BREAKGLASS_<KEY>=value` lines, the names
//! `bg_configure_from_env` reads, applied to the library once per process and content.
//!
//! Read without a shell: no quoting, no expansion, no `export`; the value is the rest of the
//! line after the first `=`, with surrounding blanks trimmed. `#` comment lines and blank lines
//! are skipped. The file must be a regular file owned by root and not writable by group or
//! others, or it is refused (a user who could write it could set the password hash).
//!
//! It must never log a value: only key names and line numbers reach an error text.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

use zeroize::Zeroizing;

/// The largest file read (a config is a few hundred bytes; more is a mistake).
const MAX_BYTES: u64 = 64 * 1024;

/// The keys that make the login state host-wide (one of them is required).
const HOST_WIDE: [&str; 2] = ["state_dir", "slot_url"];

/// The `(key, value)` pairs of a file's text, in order; the error names a line, never a value.
pub fn parse(text: &str) -> Result<Vec<(&'static str, Zeroizing<String>)>, String> {
    let mut out: Vec<(&'static str, Zeroizing<String>)> = Vec::new();
    let mut seen = HashSet::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not NAME=value", n + 1))?;
        let name = name.trim_end();
        let key = key_of(name).ok_or_else(|| {
            format!(
                "line {}: {:?} is not a BREAKGLASS_* configuration key",
                n + 1,
                name.chars().take(64).collect::<String>()
            )
        })?;
        if !seen.insert(key) {
            return Err(format!("line {}: {name} is set twice", n + 1));
        }
        out.push((key, Zeroizing::new(value.trim().to_owned())));
    }
    Ok(out)
}

/// The key a `BREAKGLASS_*` name stands for: the same names `bg_configure_from_env` reads,
/// from the library's one key table.
fn key_of(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("BREAKGLASS_")?;
    breakglass::config::KEYS
        .iter()
        .map(|k| k.name)
        .find(|k| k.to_ascii_uppercase() == rest)
}

/// Reads the file, refusing one that someone other than root could have written.
pub fn read(path: &Path) -> Result<Zeroizing<String>, String> {
    let shown = path.display();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("config {shown}: {e}"))?;
    let m = f.metadata().map_err(|e| format!("config {shown}: {e}"))?;
    if !m.file_type().is_file() {
        return Err(format!("config {shown}: not a regular file"));
    }
    if m.uid() != 0 {
        return Err(format!(
            "config {shown}: owned by uid {}, not root: refused",
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "config {shown}: writable by group or others (mode {:o}): refused",
            m.mode() & 0o7777
        ));
    }
    if m.len() > MAX_BYTES {
        return Err(format!("config {shown}: larger than {MAX_BYTES} bytes"));
    }
    let mut text = Zeroizing::new(String::new());
    f.by_ref()
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("config {shown}: {e}"))?;
    Ok(text)
}

/// The text last applied in this process (`None`: nothing, or a failed application).
static APPLIED: Mutex<Option<Zeroizing<String>>> = Mutex::new(None);

/// Reads, checks and applies `path`. Unchanged text is not applied again (each application is
/// a `config_changed` record in the audit trail). Changed text starts from the defaults, so a
/// line removed from the file is a key restored to its default.
pub fn load(path: &Path) -> Result<(), String> {
    let text = read(path)?;
    let pairs = parse(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
    if !pairs
        .iter()
        .any(|(k, v)| HOST_WIDE.contains(k) && !v.is_empty())
    {
        return Err(format!(
            "config {}: neither BREAKGLASS_STATE_DIR nor BREAKGLASS_SLOT_URL is set: every \
             sshd connection is a process of its own, so in-process state would give each one \
             fresh attempt limits",
            path.display()
        ));
    }
    let mut applied = APPLIED.lock().unwrap_or_else(|e| e.into_inner());
    if applied.as_ref().is_some_and(|t| **t == *text) {
        return Ok(());
    }
    *applied = None;
    breakglass::config::reset();
    for (key, value) in &pairs {
        breakglass::configure(key, Some(value)).map_err(|e| {
            format!(
                "config {}: BREAKGLASS_{}: {e}",
                path.display(),
                key.to_ascii_uppercase()
            )
        })?;
    }
    *applied = Some(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_no_expansion() {
        let pairs = parse(
            "# comment\n\n  BREAKGLASS_PASSWORD_HASH=$argon2id$v=19$m=19456,t=2,p=1$abc$def \n\
             BREAKGLASS_SLOT_URL=redis://127.0.0.1:6379/0\n",
        )
        .unwrap();
        assert_eq!(pairs[0].0, "password_hash");
        assert_eq!(&*pairs[0].1, "$argon2id$v=19$m=19456,t=2,p=1$abc$def");
        assert_eq!(pairs[1].0, "slot_url");
    }

    #[test]
    fn refusals_name_the_line_not_the_value() {
        let e = parse("BREAKGLASS_NOPE=s3cret").unwrap_err();
        assert!(e.contains("line 1") && e.contains("BREAKGLASS_NOPE") && !e.contains("s3cret"));
        assert!(parse("export BREAKGLASS_MAILER=x").is_err());
        assert!(parse("breakglass_mailer=x").is_err());
        assert!(parse("just text").unwrap_err().contains("line 1"));
        let e = parse("BREAKGLASS_MAILER=a\nBREAKGLASS_MAILER=b").unwrap_err();
        assert!(e.contains("line 2") && e.contains("twice"));
    }

    #[test]
    fn every_library_key_has_its_name() {
        for k in breakglass::config::KEYS {
            let name = format!("BREAKGLASS_{}", k.name.to_ascii_uppercase());
            assert_eq!(key_of(&name), Some(k.name));
        }
    }
}
