//! Checking a whole audit file: the chain rule, record by record, from the first line.
//!
//! A file is intact when every line is a record in canonical form, its `seq` is one more than
//! the previous record's (1 for the first), its `prev` is the previous record's `mac`
//! ([`GENESIS`] for the first) and its `mac` is right under the key. Two shapes are not
//! tampering but are still reported, because a crash mid-write leaves them:
//! - a last line without its newline: the "truncated last record";
//! - a line that is not a record, followed by a record that chains onto the record before it:
//!   a torn record that a later writer closed with a newline (see `file`).
//!
//! Safe, pure logic over bytes; it must never stop at a problem without saying which line.

use super::record::{Record, GENESIS};

/// What went wrong at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Not a record, and the chain does not continue past it.
    NotARecord,
    /// A record, but not written in canonical form (edited by hand?).
    NotCanonical,
    /// `seq` is not the previous record's plus one.
    Seq {
        /// What it should be.
        expected: u64,
        /// What it is.
        found: u64,
    },
    /// `prev` is not the previous record's `mac` (a record before it was removed, changed or
    /// moved).
    Prev,
    /// `mac` does not match (the record was changed, or the key is wrong or missing).
    Mac,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::NotARecord => f.write_str("not an audit record, and the chain breaks there"),
            Broken::NotCanonical => f.write_str("the record is not in canonical form"),
            Broken::Seq { expected, found } => write!(f, "seq is {found}, expected {expected}"),
            Broken::Prev => f.write_str(
                "prev is not the previous record's mac (a record was removed, changed or moved)",
            ),
            Broken::Mac => {
                f.write_str("mac mismatch (the record was changed, or the key is wrong or missing)")
            }
        }
    }
}

/// Why a file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read the audit file: {0}")]
    Io(String),
    /// The chain breaks at `line` (1-based); everything before it verifies.
    #[error("line {line}: {why}")]
    Broken {
        /// The first line that does not verify.
        line: usize,
        /// That line's text (lossy UTF-8, without its newline).
        text: String,
        /// What is wrong with it.
        why: Broken,
    },
}

/// The result of a check that found no tampering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Records that verify.
    pub records: u64,
    /// The last record's `seq` (0: no record).
    pub last_seq: u64,
    /// Lines (1-based) of torn records that later writers closed; the chain continues past
    /// each.
    pub torn: Vec<usize>,
    /// The line (1-based) of a last record without its newline: cut short by a crash mid-write.
    pub truncated_last: Option<usize>,
}

impl Report {
    /// No torn or truncated record either.
    pub fn is_clean(&self) -> bool {
        self.torn.is_empty() && self.truncated_last.is_none()
    }
}

/// Checks the chain in `data` (a whole file) under `key`.
pub fn verify_bytes(data: &[u8], key: Option<&[u8]>) -> Result<Report, VerifyError> {
    let mut report = Report::default();
    let mut prev_mac = GENESIS.to_owned();
    // A line that is not a record, waiting to see whether the chain continues past it.
    let mut pending_junk: Option<(usize, String)> = None;
    let mut rest = data;
    let mut lineno = 0;
    while !rest.is_empty() {
        lineno += 1;
        let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let l = &rest[..i];
                rest = &rest[i + 1..];
                (l, true)
            }
            None => {
                let l = rest;
                rest = &[];
                (l, false)
            }
        };
        let text = || String::from_utf8_lossy(line).into_owned();
        if !complete {
            // A crash mid-write: whatever it is, it is the last line and has no newline.
            if let Some((jl, jt)) = pending_junk.take() {
                return Err(VerifyError::Broken {
                    line: jl,
                    text: jt,
                    why: Broken::NotARecord,
                });
            }
            report.truncated_last = Some(lineno);
            break;
        }
        let Some(rec) = Record::parse(line) else {
            if let Some((jl, jt)) = pending_junk {
                // Two in a row cannot come from one crash and one later writer.
                return Err(VerifyError::Broken {
                    line: jl,
                    text: jt,
                    why: Broken::NotARecord,
                });
            }
            pending_junk = Some((lineno, text()));
            continue;
        };
        let fail = |why| {
            Err(VerifyError::Broken {
                line: lineno,
                text: text(),
                why,
            })
        };
        if rec.prev != prev_mac {
            if let Some((jl, jt)) = pending_junk.take() {
                return Err(VerifyError::Broken {
                    line: jl,
                    text: jt,
                    why: Broken::NotARecord,
                });
            }
            return fail(Broken::Prev);
        }
        if let Some((jl, _)) = pending_junk.take() {
            report.torn.push(jl);
        }
        let expected = report.last_seq + 1;
        if rec.seq != expected {
            return fail(Broken::Seq {
                expected,
                found: rec.seq,
            });
        }
        if rec.line().as_bytes() != [line, b"\n"].concat().as_slice() {
            return fail(Broken::NotCanonical);
        }
        if rec.compute_mac(key) != rec.mac {
            return fail(Broken::Mac);
        }
        prev_mac = rec.mac;
        report.records += 1;
        report.last_seq = rec.seq;
    }
    if let Some((jl, jt)) = pending_junk {
        // A complete line that is not a record at the very end: nothing continues past it,
        // and a crash cannot leave a newline after a torn record by itself.
        return Err(VerifyError::Broken {
            line: jl,
            text: jt,
            why: Broken::NotARecord,
        });
    }
    Ok(report)
}

/// Checks the chain of the file at `path` under `key`.
pub fn verify_file(path: &std::path::Path, key: Option<&[u8]>) -> Result<Report, VerifyError> {
    let data = std::fs::read(path).map_err(|e| VerifyError::Io(e.to_string()))?;
    verify_bytes(&data, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` chained records under `key`, as file bytes, and their lines.
    fn chain(n: u64, key: Option<&[u8]>) -> Vec<String> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut r = Record {
                    seq,
                    time: "2026-12-03T08:00:00.000000Z".into(),
                    event: "login_failed".into(),
                    id: (seq % 2 == 0).then(|| format!("{seq:032x}")),
                    ip: "192.0.2.7".into(),
                    host: "h".into(),
                    pid: 7,
                    detail: format!("attempt {seq}"),
                    prev: prev.clone(),
                    mac: String::new(),
                };
                r.mac = r.compute_mac(key);
                prev = r.mac.clone();
                r.line()
            })
            .collect()
    }

    fn check(lines: &[String], key: Option<&[u8]>) -> Result<Report, VerifyError> {
        verify_bytes(lines.concat().as_bytes(), key)
    }

    fn broken_at(r: Result<Report, VerifyError>) -> (usize, Broken) {
        match r {
            Err(VerifyError::Broken { line, why, .. }) => (line, why),
            other => panic!("expected a break, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_chain_verifies_with_its_key_only() {
        let lines = chain(5, Some(b"key"));
        let r = check(&lines, Some(b"key")).unwrap();
        assert_eq!((r.records, r.last_seq), (5, 5));
        assert!(r.is_clean());
        assert_eq!(broken_at(check(&lines, Some(b"other"))), (1, Broken::Mac));
        assert_eq!(broken_at(check(&lines, None)), (1, Broken::Mac));
        assert_eq!(check(&[], None).unwrap(), Report::default());
        assert_eq!(check(&chain(3, None), None).unwrap().records, 3);
    }

    #[test]
    fn an_edit_breaks_the_chain_at_the_edited_record() {
        let mut lines = chain(5, Some(b"k"));
        lines[2] = lines[2].replace("192.0.2.7", "192.0.2.8");
        assert_eq!(broken_at(check(&lines, Some(b"k"))), (3, Broken::Mac));
        // Recomputing the edited record's mac without the key does not help: the key is needed.
        let mut lines = chain(5, Some(b"k"));
        let mut r = Record::parse(lines[2].trim_end().as_bytes()).unwrap();
        r.detail = "nothing to see".into();
        r.mac = r.compute_mac(None);
        lines[2] = r.line();
        assert_eq!(broken_at(check(&lines, Some(b"k"))), (3, Broken::Mac));
        // With the right mac for the edit, the next record no longer chains onto it.
        r.mac = r.compute_mac(Some(b"k"));
        lines[2] = r.line();
        assert_eq!(broken_at(check(&lines, Some(b"k"))), (4, Broken::Prev));
        // Reformatting (same content, other spacing) is not canonical.
        let mut lines = chain(3, None);
        lines[1] = lines[1].replacen(",", ", ", 1);
        assert_eq!(broken_at(check(&lines, None)), (2, Broken::NotCanonical));
    }

    #[test]
    fn a_deletion_breaks_the_chain_where_the_record_was() {
        let mut lines = chain(5, None);
        lines.remove(1);
        assert_eq!(broken_at(check(&lines, None)), (2, Broken::Prev));
        // Deleting the first record too.
        let mut lines = chain(5, None);
        lines.remove(0);
        assert_eq!(broken_at(check(&lines, None)), (1, Broken::Prev));
        // Deleting the last record cannot be seen from the file alone (see SECURITY.md), but
        // the next writer continues from the record before it, so seq never repeats.
        let mut lines = chain(5, None);
        lines.pop();
        assert_eq!(check(&lines, None).unwrap().last_seq, 4);
    }

    #[test]
    fn a_reorder_breaks_the_chain() {
        let mut lines = chain(5, None);
        lines.swap(1, 3);
        assert_eq!(broken_at(check(&lines, None)), (2, Broken::Prev));
        // A record replaced by junk is not a torn record: the chain does not continue.
        let mut lines = chain(5, None);
        lines[2] = "garbage\n".into();
        assert_eq!(broken_at(check(&lines, None)), (3, Broken::NotARecord));
    }

    #[test]
    fn a_torn_last_line_is_reported_as_truncated_not_as_tampering() {
        let lines = chain(4, None);
        let mut data = lines.concat().into_bytes();
        data.truncate(data.len() - 30);
        let r = verify_bytes(&data, None).unwrap();
        assert_eq!(r.truncated_last, Some(4));
        assert_eq!(r.records, 3);
        // Cut right after a newline: nothing is torn.
        let data = lines[..3].concat();
        assert!(verify_bytes(data.as_bytes(), None).unwrap().is_clean());
    }

    #[test]
    fn a_torn_record_closed_by_a_later_writer_is_reported_and_the_chain_continues() {
        let full = chain(4, None);
        // Record 3 was cut by a crash; the next writer closed the line and wrote a new
        // record 3 chained onto record 2.
        let mut lines = chain(2, None);
        lines.push(format!("{}\n", &full[2][..40]));
        lines.push(full[2].clone());
        let r = check(&lines, None).unwrap();
        assert_eq!(r.torn, vec![3]);
        assert_eq!((r.records, r.last_seq), (3, 3));
        // Two junk lines in a row are not a crash.
        lines.insert(2, "junk\n".into());
        assert_eq!(broken_at(check(&lines, None)), (3, Broken::NotARecord));
        // Neither is a complete junk line at the end.
        let mut lines = chain(2, None);
        lines.push("junk\n".into());
        assert_eq!(broken_at(check(&lines, None)), (3, Broken::NotARecord));
    }

    #[test]
    fn a_wrong_seq_is_named() {
        let mut lines = chain(3, None);
        let mut r = Record::parse(lines[1].trim_end().as_bytes()).unwrap();
        r.seq = 7;
        r.mac = r.compute_mac(None);
        lines[1] = r.line();
        assert_eq!(
            broken_at(check(&lines, None)),
            (
                2,
                Broken::Seq {
                    expected: 2,
                    found: 7
                }
            )
        );
    }
}
