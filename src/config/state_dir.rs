//! `state_dir`: the directory that holds the login state of every process of this host.
//!
//! Owns the checks made when the key is set: an absolute path; created 0700 when missing (its
//! parent must exist); refused when it is a symbolic link, not a directory, not owned by the
//! effective user, or writable by group or others (anyone who can write there could reset
//! every limit). It must never follow a link, and never change the mode of a directory it did
//! not create.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Checks (and creates) `text` as the state directory.
pub fn prepare(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err("must be an absolute path".into());
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        Ok(_) => {}
    }
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if m.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    if !m.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let me = crate::sys::euid();
    if m.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by this user (uid {me})",
            path.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            m.mode() & 0o777
        ));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_links_loose_modes_and_relative_paths_and_creates_0700() {
        let base = std::env::temp_dir().join(format!("bg-state-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        let fresh = base.join("fresh");
        prepare(fresh.to_str().unwrap()).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let link = base.join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(prepare(link.to_str().unwrap())
            .unwrap_err()
            .contains("symbolic link"));
        let loose = base.join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare(loose.to_str().unwrap())
            .unwrap_err()
            .contains("writable"));
        assert!(prepare("relative/dir").is_err());
        assert!(prepare(base.join("no/such/parent").to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
