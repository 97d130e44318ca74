//! Appending one record to an audit file that several processes may share.
//!
//! Each append opens the file with `O_APPEND` (created 0600), takes an exclusive `flock` on
//! it, reads the last record's `seq` and `mac` from the end of the file, writes the new line
//! with one `write` call, optionally `fdatasync`s, and lets the lock go. The lock makes
//! read-last-mac + append one step for every cooperating writer (threads of this process too:
//! each append is its own open file description); the single `O_APPEND` write keeps a line
//! whole even next to a writer that does not lock. A file whose last line lacks its newline
//! (a crash mid-write) gets that newline first, in the same write, so the torn record stays
//! visible on a line of its own and the new record chains onto the last whole record.
//!
//! It holds no lock of the library's (nothing for the fork handlers) and must never write a
//! line in two `write` calls, never seek, and never truncate the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::record::{Record, GENESIS};

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The file could not be opened or created.
    #[error("cannot open the audit log: {0}")]
    Open(std::io::Error),
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

/// Appends `entry` to the file at `path`, chained under `key`; with `sync`, the record is on
/// disk (`fdatasync`) before this returns. Returns the record written.
pub fn append(
    path: &Path,
    key: Option<&[u8]>,
    entry: &Entry,
    sync: bool,
) -> Result<Record, AppendError> {
    // `append(true)` is O_APPEND: every write lands at the end, whatever others wrote.
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(AppendError::Open)?;
    let _lock = crate::sys::flock_exclusive(&file).map_err(AppendError::Lock)?;
    let tail = last_record(&file).map_err(AppendError::Read)?;
    let mut rec = Record {
        seq: tail.seq + 1,
        time: entry.time.clone(),
        event: entry.event.to_owned(),
        id: entry.id.clone(),
        ip: entry.ip.clone(),
        host: entry.host.clone(),
        pid: entry.pid,
        detail: entry.detail.clone(),
        prev: tail.mac,
        mac: String::new(),
    };
    rec.mac = rec.compute_mac(key);
    let mut line = Vec::with_capacity(512);
    if tail.torn {
        line.push(b'\n');
    }
    line.extend_from_slice(rec.line().as_bytes());
    // One write for the whole line: O_APPEND makes it land in one piece.
    let written = (&file).write(&line).map_err(AppendError::Write)?;
    if written != line.len() {
        return Err(AppendError::Short {
            written,
            len: line.len(),
        });
    }
    if sync {
        file.sync_data().map_err(AppendError::Sync)?;
    }
    Ok(rec)
}

/// The chain's end as the next writer sees it.
struct Tail {
    seq: u64,
    mac: String,
    /// The file does not end with a newline.
    torn: bool,
}

/// Reads backwards from the end, in growing chunks, to the last line that is a record.
fn last_record(file: &File) -> std::io::Result<Tail> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail {
            seq: 0,
            mac: GENESIS.to_owned(),
            torn: false,
        });
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
                mac: r.mac,
                torn,
            });
        }
        if start == 0 {
            return Ok(Tail {
                seq: 0,
                mac: GENESIS.to_owned(),
                torn,
            });
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
