//! `audit_log`'s path: checked when the key is set, so a trail is never written through a
//! link or into a directory others can change.
//!
//! Owns the rule: the directory must be owned by the effective user or root and not writable by
//! group or others; the file, when it exists, must be a regular file (never a symbolic link)
//! owned by the effective user or root. It must never create or open anything.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Refuses an audit file path whose directory another user could use to redirect or pre-create
/// it: the directory must exist, be owned by the effective user or root, and not be writable by
/// group or others; a symlink or a non-regular file at the path itself is refused too.
pub fn check_path(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| "must name a file in a directory".to_owned())?;
    let m = std::fs::metadata(dir)
        .map_err(|e| format!("its directory {} cannot be used: {e}", dir.display()))?;
    if !m.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let euid = crate::sys::euid();
    if m.uid() != euid && m.uid() != 0 {
        return Err(format!(
            "its directory {} is owned by uid {}, not by this user ({euid}) or root",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "its directory {} is writable by group or others (mode {:o})",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(f) if f.file_type().is_symlink() => Err("it is a symlink".to_owned()),
        Ok(f) if !f.is_file() => Err("it is not a regular file".to_owned()),
        Ok(f) if f.uid() != euid && f.uid() != 0 => Err(format!(
            "it is owned by uid {}, not by this user ({euid}) or root",
            f.uid()
        )),
        _ => Ok(()),
    }
}
