//! The file named by `recovery_codes_file`: argon2id hashes of a set of recovery codes, one
//! salt for the whole file.
//!
//! Format (text, one item a line):
//!
//! ```text
//! breakglass-recovery-codes v1
//! argon2id m=19456,t=2,p=1
//! salt <base64 of 16 random bytes>
//! <base64 of a 32-byte hash>        (one line per code, in the order they were printed)
//! ```
//!
//! One salt per file means a typed code costs one hash, compared with every stored hash in
//! constant time, whatever the number of codes. The parameters are the library's bounded ones
//! (those of `hash-password`; a file is refused when they exceed the password bounds). The set's
//! identity ([`FileId`]) is the SHA-256 of the file, so a new set never inherits the old set's
//! used codes. The file is written 0600 with `O_NOFOLLOW` to a temporary name in the same
//! directory and renamed over the old one: a reader sees the old set or the new, never a mix.
//! It must never hold or log a code.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use rand::rngs::SysRng;
use rand::TryRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::code;

const MAGIC: &str = "breakglass-recovery-codes v1";
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;
/// Codes `recovery-codes new` makes unless told otherwise.
pub const DEFAULT_COUNT: u32 = 10;
/// Most codes in one set (and the bound on what a file may hold).
pub const MAX_COUNT: u32 = 100;
/// Largest file read: far above `MAX_COUNT` lines.
const MAX_FILE_BYTES: u64 = 16 * 1024;

/// The identity of one set of codes: the SHA-256 of its file.
pub type FileId = [u8; 32];

/// A loaded set of code hashes.
pub struct CodesFile {
    params: Params,
    salt: [u8; SALT_BYTES],
    hashes: Vec<[u8; HASH_BYTES]>,
    id: FileId,
}

impl std::fmt::Debug for CodesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodesFile({} hashes)", self.hashes.len())
    }
}

fn hasher(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_code(params: &Params, salt: &[u8], canonical: &str) -> Result<[u8; HASH_BYTES], String> {
    let mut out = [0u8; HASH_BYTES];
    hasher(params.clone())
        .hash_password_into(canonical.as_bytes(), salt, &mut out)
        .map_err(|e| format!("hashing failed: {e}"))?;
    Ok(out)
}

impl CodesFile {
    /// The set's identity.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Codes in the set.
    pub fn len(&self) -> u32 {
        self.hashes.len() as u32
    }

    /// Whether the set holds no code.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The index of the code `typed` is (after normalisation), if any. One hash, compared with
    /// every stored hash without stopping early.
    pub fn find(&self, typed: &[u8]) -> Option<u32> {
        let canonical = code::normalise(typed)?;
        let h = Zeroizing::new(hash_code(&self.params, &self.salt, &canonical).ok()?);
        let mut found: Option<u32> = None;
        for (i, stored) in self.hashes.iter().enumerate() {
            if bool::from(stored.ct_eq(&h[..])) {
                found = Some(i as u32);
            }
        }
        found
    }

    /// Reads and checks the file at `path`: a regular file (not a symlink, opened with
    /// `O_NOFOLLOW`), not writable by group or others, in the format above.
    pub fn load(path: &Path) -> Result<CodesFile, String> {
        let shown = path.display();
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| format!("{shown}: cannot open: {e}"))?;
        let meta = f
            .metadata()
            .map_err(|e| format!("{shown}: cannot stat: {e}"))?;
        mode_problem(&meta).map_or(Ok(()), |why| Err(format!("{shown}: {why}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!("{shown}: larger than {MAX_FILE_BYTES} bytes"));
        }
        let mut text = String::new();
        (&mut f)
            .take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{shown}: cannot read: {e}"))?;
        Self::parse(&text).map_err(|why| format!("{shown}: {why}"))
    }

    fn parse(text: &str) -> Result<CodesFile, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!(
                "not a recovery codes file (first line is not {MAGIC:?})"
            ));
        }
        let params = lines
            .next()
            .and_then(|l| l.strip_prefix("argon2id "))
            .ok_or("the second line must be the argon2id parameters")
            .and_then(|p| {
                parse_params(p).ok_or("argon2id parameters unreadable or out of bounds")
            })?;
        let salt: [u8; SALT_BYTES] = lines
            .next()
            .and_then(|l| l.strip_prefix("salt "))
            .and_then(|s| B64.decode(s).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or("the third line must be the salt")?;
        let mut hashes = Vec::new();
        for l in lines {
            let h: [u8; HASH_BYTES] = B64
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or("a hash line is damaged")?;
            hashes.push(h);
        }
        if hashes.is_empty() || hashes.len() > MAX_COUNT as usize {
            return Err(format!("must hold 1 to {MAX_COUNT} hashes"));
        }
        Ok(CodesFile {
            params,
            salt,
            hashes,
            id: crate::digest::sha256(&[text.as_bytes()]),
        })
    }
}

/// Why a file's owner or mode is wrong for a file of hashes, if it is.
pub fn mode_problem(meta: &std::fs::Metadata) -> Option<String> {
    if !meta.file_type().is_file() {
        return Some("not a regular file".into());
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "mode {mode:04o}: writable by group or others (anyone who can write it can add a \
             code); chmod 600"
        ));
    }
    None
}

fn parse_params(text: &str) -> Option<Params> {
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for part in text.split(',') {
        let (k, v) = part.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return None,
        }
    }
    let (m, t, p) = (m?, t?, p?);
    if !crate::login::password::argon2_within_bounds(m, t, p) {
        return None;
    }
    Params::new(m, t, p, Some(HASH_BYTES)).ok()
}

/// Makes `count` new codes, writes their hashes to `path` (replacing any set there, atomically)
/// and returns the codes, for the caller to show once.
pub fn write_new(path: &Path, count: u32) -> Result<Vec<Zeroizing<String>>, String> {
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!("the number of codes must be from 1 to {MAX_COUNT}"));
    }
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("{shown}: must be an absolute path"));
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err(format!(
                "{shown}: is a symbolic link; refusing to replace it"
            ));
        }
    }
    let params = Params::DEFAULT;
    let mut salt = [0u8; SALT_BYTES];
    SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| "the OS random source failed".to_owned())?;
    let mut codes = Vec::with_capacity(count as usize);
    let mut text = format!(
        "{MAGIC}\nargon2id m={},t={},p={}\nsalt {}\n",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        B64.encode(salt)
    );
    for _ in 0..count {
        let c = code::generate().map_err(|e| e.to_string())?;
        let canonical =
            code::normalise(c.as_bytes()).ok_or("a generated code did not read back")?;
        text.push_str(&B64.encode(hash_code(&params, &salt, &canonical)?));
        text.push('\n');
        codes.push(c);
    }
    replace(path, text.as_bytes()).map_err(|e| format!("{shown}: {e}"))?;
    Ok(codes)
}

/// Writes `bytes` to a new 0600 file next to `path` and renames it over `path`.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tag = [0u8; 8];
    let _ = SysRng.try_fill_bytes(&mut tag);
    let tmp = dir.join(format!(".{name}.{}.tmp", u64::from_be_bytes(tag)));
    let written = (|| {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bg-recovery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_new_set_verifies_each_code_once_and_replaces_the_old() {
        let d = dir("roundtrip");
        let path = d.join("codes");
        let codes = write_new(&path, 3).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        for c in &codes {
            assert!(!text.contains(c.as_str()) && !text.contains(&c.replace('-', "")));
        }
        let set = CodesFile::load(&path).unwrap();
        assert_eq!(set.len(), 3);
        for (i, c) in codes.iter().enumerate() {
            assert_eq!(set.find(c.as_bytes()), Some(i as u32));
            assert_eq!(
                set.find(c.to_lowercase().replace('-', " ").as_bytes()),
                Some(i as u32)
            );
        }
        assert_eq!(set.find(b"0000-0000-0000-0000"), None);
        assert_eq!(set.find(b"123456"), None);
        let again = write_new(&path, 2).unwrap();
        let set2 = CodesFile::load(&path).unwrap();
        assert_ne!(set.id(), set2.id());
        assert_eq!(set2.find(codes[0].as_bytes()), None);
        assert_eq!(set2.find(again[1].as_bytes()), Some(1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let d = dir("bad");
        let path = d.join("codes");
        write_new(&path, 1).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(CodesFile::load(&path).unwrap_err().contains("writable"));
        let link = d.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(CodesFile::load(&link).is_err());
        assert!(write_new(&link, 1).unwrap_err().contains("symbolic link"));
        for bad in [
            "",
            "breakglass-recovery-codes v1\nargon2id m=999999999,t=2,p=1\nsalt AAAAAAAAAAAAAAAAAAAAAA\nAAAA\n",
            "breakglass-recovery-codes v1\nargon2id m=19456,t=2,p=1\nsalt AAAAAAAAAAAAAAAAAAAAAA\n",
            "breakglass-recovery-codes v1\nargon2id m=19456,t=2,p=1\nsalt AAAAAAAAAAAAAAAAAAAAAA\nnot base64\n",
        ] {
            assert!(CodesFile::parse(bad).is_err(), "{bad}");
        }
        assert!(write_new(&path, 0).is_err());
        assert!(write_new(&path, MAX_COUNT + 1).is_err());
        assert!(write_new(Path::new("relative"), 1).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
