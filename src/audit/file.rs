//! Appending one record to an audit file that several processes may share, rotating it, and
//! keeping a reserve of space for it.
//!
//! Each append opens the file with `O_APPEND | O_NOFOLLOW` (created 0600; a symlink or a
//! non-regular file is refused), takes an exclusive `flock` on it, checks that the path still
//! names the file it locked (another writer may have rotated it meanwhile: then it starts
//! over), reads the last record from the end of the file, writes the new line(s) with one
//! `write` call, optionally `fdatasync`s and reports the new head, and lets the lock go. The
//! lock makes read-last-mac + append one step for every cooperating writer (threads of this
//! process too: each append is its own open file description); the single `O_APPEND` write
//! keeps a line whole even next to a writer that does not lock. A file whose last line lacks
//! its newline (a crash mid-write) gets that newline first, in the same write, so the torn
//! record stays visible on a line of its own and the new record chains onto the last whole
//! record.
//!
//! Keys: when the last record is not under the writer's key (a process started with another
//! `audit_key`), an unbound `audit_key_changed` record under the writer's key goes first; a
//! caller that knows both keys asks for a bound one instead (`rekey`).
//!
//! Rotation: when a record would take the file past `max_bytes`, the file is hard-linked to
//! `NAME.SEQ` (SEQ: its last `seq`, 12 digits), a new file whose first record is
//! `audit_rotated` (chained to the old file's last `mac`) is written beside it and renamed over
//! the path, all under the old file's lock. Reserve: after each append, space past the end of
//! the file is kept allocated (`FALLOC_FL_KEEP_SIZE`) up to `reserve` bytes, so records still
//! fit when the filesystem is otherwise full.
//!
//! It holds no lock of the library's (nothing for the fork handlers) and must never write a
//! line in two `write` calls, never seek, and never truncate the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{
    binding_proof, bound_detail, continues_under, Head, Record, GENESIS, KEY_CHANGED, ROTATED,
    UNBOUND_DETAIL,
};

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The file could not be opened or created (a symlink at the path is refused).
    #[error("cannot open the audit log: {0}")]
    Open(std::io::Error),
    /// The path names something other than a regular file.
    #[error("the audit log is not a regular file")]
    NotRegular,
    /// `flock` failed.
    #[error("cannot lock the audit log: {0}")]
    Lock(std::io::Error),
    /// The end of the file could not be read.
    #[error("cannot read the audit log: {0}")]
    Read(std::io::Error),
    /// The write failed.
    #[error("cannot write the audit log: {0}")]
    Write(std::io::Error),
    /// The write was cut short (disk full?): the line is torn.
    #[error("the audit record was cut short ({written} of {len} bytes)")]
    Short {
        /// Bytes written.
        written: usize,
        /// Bytes of the line.
        len: usize,
    },
    /// `fdatasync` failed: the record may not be on disk.
    #[error("cannot sync the audit log: {0}")]
    Sync(std::io::Error),
    /// The file could not be rotated.
    #[error("cannot rotate the audit log: {0}")]
    Rotate(std::io::Error),
}

/// What a new record says; the chain fields are filled in under the lock.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// The event's name.
    pub event: &'static str,
    /// The alert's event id, if any.
    pub id: Option<String>,
    /// The client's address (bounded), or "".
    pub ip: String,
    /// The host name.
    pub host: String,
    /// The writing process.
    pub pid: u32,
    /// A fixed-form explanation (bounded).
    pub detail: String,
}

/// How one append is made.
#[derive(Default)]
pub struct Options<'a> {
    /// The key the record is written under.
    pub key: Option<&'a [u8]>,
    /// `fdatasync` before returning (and report the head to `on_head`).
    pub sync: bool,
    /// Rotate before the file would grow past this many bytes; 0: never.
    pub max_bytes: u64,
    /// Bytes kept allocated past the end of the file; 0: none.
    pub reserve: u64,
    /// First write a bound key change from `key` to this key; the entry is under it.
    pub rekey: Option<Option<&'a [u8]>>,
    /// Called with the new head after a synced append, still under the file's lock (so heads
    /// reach it in chain order).
    pub on_head: Option<&'a dyn Fn(&Head)>,
    /// A record written just before the entry, in the same write (and the same sync).
    pub held: Option<&'a Entry>,
}

/// Appends `entry` to the file at `path`, chained under `key`; with `sync`, the record is on
/// disk (`fdatasync`) before this returns. Returns the record written.
pub fn append(
    path: &Path,
    key: Option<&[u8]>,
    entry: &Entry,
    sync: bool,
) -> Result<Record, AppendError> {
    append_with(
        path,
        entry,
        &Options {
            key,
            sync,
            ..Options::default()
        },
    )
}

/// Opens the audit file for appending without following a symlink at `path`.
pub fn open(path: &Path) -> std::io::Result<File> {
    // `append(true)` is O_APPEND: every write lands at the end, whatever others wrote.
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Appends `entry` as `opts` says; returns the record written.
pub fn append_with(path: &Path, entry: &Entry, opts: &Options<'_>) -> Result<Record, AppendError> {
    append_both(path, entry, opts).map(|(_, r)| r)
}

/// [`append_with`], returning the record of `opts.held` too.
pub fn append_both(
    path: &Path,
    entry: &Entry,
    opts: &Options<'_>,
) -> Result<(Option<Record>, Record), AppendError> {
    // A writer that finds the file rotated away under it starts over; a few rounds are plenty
    // (each rotation moves the file by `max_bytes`).
    let mut rounds = 0;
    loop {
        let file = open(path).map_err(AppendError::Open)?;
        let meta = file.metadata().map_err(AppendError::Open)?;
        if !meta.is_file() {
            return Err(AppendError::NotRegular);
        }
        let _lock = crate::sys::flock_exclusive(&file).map_err(AppendError::Lock)?;
        let same = std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
        if same || rounds >= 8 {
            return append_locked(path, &file, entry, opts);
        }
        rounds += 1;
    }
}

/// [`append_with`] once `file` is locked and still the one at `path`.
fn append_locked(
    path: &Path,
    file: &File,
    entry: &Entry,
    opts: &Options<'_>,
) -> Result<(Option<Record>, Record), AppendError> {
    let tail = last_record(file).map_err(AppendError::Read)?;
    let mut chain = Chain {
        seq: tail.seq,
        prev: tail.mac.clone(),
        key: opts.key,
        out: Vec::new(),
    };
    if let Some(last) = &tail.record {
        if !continues_under(last, opts.key) {
            chain.push(entry, KEY_CHANGED, UNBOUND_DETAIL.to_owned());
        }
    }
    if let Some(next) = opts.rekey.filter(|_| tail.record.is_some()) {
        let proof = binding_proof(next, chain.seq + 1, &chain.prev);
        chain.push(entry, KEY_CHANGED, bound_detail(&proof));
        chain.key = next;
    } else if let Some(next) = opts.rekey {
        // An empty file has no chain to bind: it simply starts under the new key.
        chain.key = next;
    }
    let mut head_lines = Vec::with_capacity(512);
    if tail.torn {
        head_lines.push(b'\n');
    }
    for r in &chain.out {
        head_lines.extend_from_slice(r.line().as_bytes());
    }
    let size = file.metadata().map_err(AppendError::Read)?.len();
    let entry_len = entry_len_estimate(entry) + opts.held.map_or(0, entry_len_estimate);
    let rotate = opts.max_bytes > 0
        && chain.seq > 0
        && size + (head_lines.len() + entry_len) as u64 > opts.max_bytes;
    let last = if rotate {
        // Key changes stay in the old file, so the new one starts with its rotation record.
        if !head_lines.is_empty() {
            write_whole(file, &head_lines)?;
        }
        let old_last = chain.seq;
        chain.out.clear();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        chain.push(
            entry,
            ROTATED,
            format!(
                "continues {}.{old_last:012} after seq {old_last}",
                name.as_deref().unwrap_or("")
            ),
        );
        let held = opts.held.map(|h| chain.push_entry(h));
        let rec = chain.push_entry(entry);
        let bytes: String = chain.out.iter().map(Record::line).collect();
        rotate_to(path, file, old_last, bytes.as_bytes(), opts)?;
        (held, rec)
    } else {
        let held = opts.held.map(|h| chain.push_entry(h));
        let rec = chain.push_entry(entry);
        if let Some(h) = &held {
            head_lines.extend_from_slice(h.line().as_bytes());
        }
        head_lines.extend_from_slice(rec.line().as_bytes());
        write_whole(file, &head_lines)?;
        if opts.sync {
            file.sync_data().map_err(AppendError::Sync)?;
        }
        keep_reserve(file, opts.reserve);
        (held, rec)
    };
    if opts.sync {
        if let Some(f) = opts.on_head {
            f(&Head {
                seq: last.1.seq,
                mac: last.1.mac.clone(),
            });
        }
    }
    Ok(last)
}

/// Records being chained for one append.
struct Chain<'a> {
    seq: u64,
    prev: String,
    key: Option<&'a [u8]>,
    out: Vec<Record>,
}

impl Chain<'_> {
    /// Chains a record of `event` with `detail`, from `e`'s time, host and pid only.
    fn push(&mut self, e: &Entry, event: &'static str, detail: String) -> Record {
        self.push_entry(&Entry {
            event,
            id: None,
            ip: String::new(),
            detail,
            ..e.clone()
        })
    }

    fn push_entry(&mut self, e: &Entry) -> Record {
        let mut rec = Record {
            seq: self.seq + 1,
            time: e.time.clone(),
            event: e.event.to_owned(),
            id: e.id.clone(),
            ip: e.ip.clone(),
            host: e.host.clone(),
            pid: e.pid,
            detail: e.detail.clone(),
            prev: self.prev.clone(),
            mac: String::new(),
        };
        rec.mac = rec.compute_mac(self.key);
        self.seq = rec.seq;
        self.prev = rec.mac.clone();
        self.out.push(rec.clone());
        rec
    }
}

/// About how long `e`'s line will be (for the rotation decision only).
fn entry_len_estimate(e: &Entry) -> usize {
    300 + e.detail.len() * 2 + e.ip.len() * 2 + e.host.len() + e.id.as_ref().map_or(0, String::len)
}

/// One `write` of the whole buffer.
fn write_whole(file: &File, bytes: &[u8]) -> Result<(), AppendError> {
    // One write for the whole line: O_APPEND makes it land in one piece.
    let written = (&*file).write(bytes).map_err(AppendError::Write)?;
    if written != bytes.len() {
        return Err(AppendError::Short {
            written,
            len: bytes.len(),
        });
    }
    Ok(())
}

/// Tops up the space kept allocated past the end of `file` to `reserve` bytes when less than
/// half of it is left. A full filesystem refuses the top-up: the records then use what is left.
fn keep_reserve(file: &File, reserve: u64) {
    if reserve == 0 {
        return;
    }
    if let Ok(m) = file.metadata() {
        let allocated = m.blocks() * 512;
        if allocated < m.len() + reserve / 2 {
            let _ = crate::sys::fallocate_keep_size(file, m.len(), reserve);
        }
    }
}

/// The name a rotated file gets: `NAME.SEQ`, SEQ its last record's, 12 digits so that names
/// sort in chain order.
fn rotated_name(path: &Path, last_seq: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{last_seq:012}"));
    PathBuf::from(name)
}

/// The rotated files of `path` that exist, oldest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let seq = n.strip_prefix(&prefix)?;
            (seq.len() == 12 && seq.bytes().all(|b| b.is_ascii_digit())).then(|| e.path())
        })
        .collect();
    out.sort();
    out
}

/// Moves the file at `path` (locked, open as `old`) aside as its rotated name and puts a new
/// file holding `first` in its place, so that the path always names a whole file.
fn rotate_to(
    path: &Path,
    old: &File,
    old_last: u64,
    first: &[u8],
    opts: &Options<'_>,
) -> Result<(), AppendError> {
    let err = AppendError::Rotate;
    let aside = rotated_name(path, old_last);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", crate::sys::pid()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let new = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(err)?;
    // The old file's reserve is given back first: on a full filesystem it is what the new
    // file's reserve is made of.
    if let Ok(m) = old.metadata() {
        let _ = crate::sys::punch_hole(
            old,
            m.len(),
            (m.blocks() * 512).saturating_sub(m.len()).max(1),
        );
    }
    let done = (|| {
        write_whole(&new, first)?;
        if opts.sync {
            new.sync_data().map_err(AppendError::Sync)?;
        }
        keep_reserve(&new, opts.reserve);
        match std::fs::hard_link(path, &aside) {
            Ok(()) => {}
            // Left by a rotation that died after its link: it is this file.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        if opts.sync {
            if let Some(dir) = path.parent() {
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
        }
        Ok(())
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

pub use crate::config::audit_path::check_path;

/// The chain's end as the next writer sees it.
struct Tail {
    seq: u64,
    mac: String,
    /// The file does not end with a newline.
    torn: bool,
    /// The last whole record.
    record: Option<Record>,
}

/// Reads backwards from the end, in growing chunks, to the last line that is a record.
fn last_record(file: &File) -> std::io::Result<Tail> {
    let len = file.metadata()?.len();
    let empty = |torn| Tail {
        seq: 0,
        mac: GENESIS.to_owned(),
        torn,
        record: None,
    };
    if len == 0 {
        return Ok(empty(false));
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    let torn = last[0] != b'\n';
    let mut chunk: u64 = 16 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = vec![0u8; (len - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        // The piece after the last newline is "" or a torn record; the piece before the first
        // newline may be the end of a line that began before this chunk.
        lines.pop();
        if start > 0 && !lines.is_empty() {
            lines.remove(0);
        }
        if let Some(r) = lines.iter().rev().find_map(|l| Record::parse(l)) {
            return Ok(Tail {
                seq: r.seq,
                mac: r.mac.clone(),
                torn,
                record: Some(r),
            });
        }
        if start == 0 {
            return Ok(empty(torn));
        }
        chunk = chunk.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            time: "2026-12-03T08:00:00.000000Z".into(),
            event: "config_changed",
            id: None,
            ip: String::new(),
            host: "h".into(),
            pid: 1,
            detail: format!("key {n} {}", "x".repeat(n % 300)),
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("bg-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn appends_chain_and_a_torn_tail_is_closed_not_glued() {
        let p = temp("unit");
        for n in 0..200 {
            let r = append(&p, Some(b"k"), &entry(n), n % 50 == 0).unwrap();
            assert_eq!(r.seq, n as u64 + 1);
        }
        let r = super::super::verify::verify_file(&p, Some(b"k")).unwrap();
        assert_eq!((r.records, r.last_seq), (200, 200));
        assert!(r.is_clean());
        // A crash mid-line, then a new writer.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":201,\"time\":\"20").unwrap();
        let r = super::super::verify::verify_file(&p, Some(b"k")).unwrap();
        assert_eq!(r.truncated_last, Some(201));
        let next = append(&p, Some(b"k"), &entry(1), false).unwrap();
        assert_eq!(next.seq, 201);
        let r = super::super::verify::verify_file(&p, Some(b"k")).unwrap();
        assert_eq!(r.torn, vec![201]);
        assert_eq!((r.records, r.last_seq, r.truncated_last), (201, 201, None));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn threads_appending_at_once_get_unique_consecutive_seqs() {
        let p = temp("threads");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        append(&p, None, &entry(n), false).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = super::super::verify::verify_file(&p, None).unwrap();
        assert_eq!((r.records, r.last_seq), (200, 200));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn an_unwritable_path_is_an_error() {
        let p = temp("notdir");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(
            append(&p.join("audit.log"), None, &entry(0), true),
            Err(AppendError::Open(_))
        ));
        let _ = std::fs::remove_file(&p);
    }
}
