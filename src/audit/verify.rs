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
//! The key may change along the chain: a bound `audit_key_changed` record names the next key
//! by a proof only that key can make; an unbound one (a process started with another key) is
//! accepted under a key the operator gave, and listed. A file that starts with
//! `audit_rotated` continues a rotated file; given its predecessors first, they are one chain.
//! An anchor (a head kept outside the file) catches a cut tail, which the chain alone cannot.
//!
//! Safe, pure logic over bytes; it must never stop at a problem without saying which line, and
//! never report a missing key as tampering.

use super::record::{binds, bound_proof, Record, GENESIS, KEY_CHANGED, ROTATED, UNBOUND_DETAIL};

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
    /// A key change to no key that no writer with a key could have made: records from here
    /// could have been written by anyone.
    UnboundToNoKey,
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
            Broken::UnboundToNoKey => f.write_str(
                "the chain switches to no key without a binding record: a process without \
                 audit_key wrote here, or the records from here were forged",
            ),
        }
    }
}

/// Why a file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read the audit file: {0}")]
    Io(String),
    /// The chain breaks at `line` (1-based) of file `file` (0-based, oldest first); everything
    /// before it verifies.
    #[error("line {line}: {why}")]
    Broken {
        /// Which of the files given, oldest first.
        file: usize,
        /// The first line that does not verify.
        line: usize,
        /// That line's text (lossy UTF-8, without its newline).
        text: String,
        /// What is wrong with it.
        why: Broken,
    },
    /// The records from `line` of file `file` are under a key that was not given: not
    /// evidence of tampering, the check needs the key.
    #[error("line {line}: this file is keyed: give --key-file")]
    NeedsKey {
        /// Which of the files given, oldest first.
        file: usize,
        /// The first record that needs the key.
        line: usize,
    },
}

/// Which key a run of records is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    /// No key: plain SHA-256.
    None,
    /// The given key at this index.
    Given(usize),
}

/// How the chain's end compares with an anchor kept outside the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AnchorCheck {
    /// No anchor was given.
    #[default]
    NotGiven,
    /// The record at the anchor's `seq` has the anchor's `mac`.
    Matches,
    /// The chain ends before the anchor's `seq`: records were cut from its end.
    EndsBefore {
        /// The anchor's `seq`.
        anchor: u64,
        /// The chain's last `seq`.
        last: u64,
    },
    /// The record at the anchor's `seq` has another `mac`: the chain was rewritten.
    Disagrees {
        /// The anchor's `seq`.
        seq: u64,
    },
    /// The anchor's record is in a rotated file that was not given.
    NotCovered {
        /// The anchor's `seq`.
        seq: u64,
        /// The first `seq` checked.
        first: u64,
    },
}

impl AnchorCheck {
    /// The anchor shows that the file was cut or rewritten.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            AnchorCheck::EndsBefore { .. } | AnchorCheck::Disagrees { .. }
        )
    }
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
    /// The chain starts after a rotation at this `seq` (the rotated file was not given).
    pub continues_after: Option<u64>,
    /// Each run of records under one key: its first `seq` and the key.
    pub segments: Vec<(u64, KeyUsed)>,
    /// `seq`s of key changes whose writer did not know the previous key (a process started with
    /// another `audit_key`); the record is under a key that was given.
    pub unbound: Vec<u64>,
    /// The anchor's verdict.
    pub anchor: AnchorCheck,
}

impl Report {
    /// No torn or truncated record either.
    pub fn is_clean(&self) -> bool {
        self.torn.is_empty() && self.truncated_last.is_none()
    }
}

/// The key of the next record, as the chain so far says.
enum NextKey {
    /// Not known yet: the first record decides among the candidates.
    Unknown,
    /// Known.
    Is(KeyUsed),
    /// A bound key change names a key that was not given.
    Missing,
}

/// Checks one chain that may span several files (a file and its rotated predecessors), fed
/// oldest first, under the keys given (none, one, or one per key the file was written under).
pub struct Verifier<'k> {
    keys: Vec<&'k [u8]>,
    anchor: Option<super::record::Head>,
    anchor_mac: Option<String>,
    first_seq: Option<u64>,
    prev_mac: String,
    next: NextKey,
    file: usize,
    report: Report,
}

impl<'k> Verifier<'k> {
    /// A check under `keys` (tried in order), comparing with `anchor` at the end.
    pub fn new(keys: Vec<&'k [u8]>, anchor: Option<super::record::Head>) -> Self {
        Verifier {
            keys,
            anchor,
            anchor_mac: None,
            first_seq: None,
            prev_mac: GENESIS.to_owned(),
            next: NextKey::Unknown,
            file: 0,
            report: Report::default(),
        }
    }

    fn key(&self, k: KeyUsed) -> Option<&'k [u8]> {
        match k {
            KeyUsed::None => None,
            KeyUsed::Given(i) => Some(self.keys[i]),
        }
    }

    /// The given keys, then no key.
    fn candidates(&self) -> impl Iterator<Item = KeyUsed> {
        (0..self.keys.len())
            .map(KeyUsed::Given)
            .chain(std::iter::once(KeyUsed::None))
    }

    fn broken(&self, line: usize, text: String, why: Broken) -> VerifyError {
        VerifyError::Broken {
            file: self.file,
            line,
            text,
            why,
        }
    }

    /// Checks the mac of `rec` and says which key it is under.
    fn key_of(
        &mut self,
        rec: &Record,
        line: usize,
        text: &dyn Fn() -> String,
    ) -> Result<KeyUsed, VerifyError> {
        let needs_key = |v: &Self| {
            if v.keys.is_empty() {
                VerifyError::NeedsKey { file: v.file, line }
            } else {
                v.broken(line, text(), Broken::Mac)
            }
        };
        match self.next {
            NextKey::Missing => Err(VerifyError::NeedsKey {
                file: self.file,
                line,
            }),
            NextKey::Unknown => {
                let found = self
                    .candidates()
                    .find(|&k| rec.compute_mac(self.key(k)) == rec.mac);
                let k = found.ok_or_else(|| needs_key(self))?;
                self.report.segments.push((rec.seq, k));
                Ok(k)
            }
            NextKey::Is(k) if rec.compute_mac(self.key(k)) == rec.mac => Ok(k),
            NextKey::Is(_) if rec.event == KEY_CHANGED && rec.detail == UNBOUND_DETAIL => {
                // A writer with another key: accepted only under a key the operator gave.
                let given = (0..self.keys.len())
                    .map(KeyUsed::Given)
                    .find(|&k| rec.compute_mac(self.key(k)) == rec.mac);
                match given {
                    Some(k) => {
                        self.report.unbound.push(rec.seq);
                        self.report.segments.push((rec.seq, k));
                        Ok(k)
                    }
                    None if rec.compute_mac(None) == rec.mac => {
                        Err(self.broken(line, text(), Broken::UnboundToNoKey))
                    }
                    None => Err(needs_key(self)),
                }
            }
            NextKey::Is(_) => Err(self.broken(line, text(), Broken::Mac)),
        }
    }

    /// Checks the next file's bytes.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), VerifyError> {
        // A line that is not a record, waiting to see whether the chain continues past it.
        let mut pending_junk: Option<(usize, String)> = None;
        let mut rest = data;
        let mut lineno = 0;
        self.report.truncated_last = None;
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
                    return Err(self.broken(jl, jt, Broken::NotARecord));
                }
                self.report.truncated_last = Some(lineno);
                break;
            }
            let Some(rec) = Record::parse(line) else {
                if let Some((jl, jt)) = pending_junk {
                    // Two in a row cannot come from one crash and one later writer.
                    return Err(self.broken(jl, jt, Broken::NotARecord));
                }
                pending_junk = Some((lineno, text()));
                continue;
            };
            let first = self.first_seq.is_none();
            // The first record checked may continue a rotated file that was not given.
            let starts_after_rotation = first && rec.event == ROTATED && rec.seq > 1;
            if rec.prev != self.prev_mac && !starts_after_rotation {
                if let Some((jl, jt)) = pending_junk.take() {
                    return Err(self.broken(jl, jt, Broken::NotARecord));
                }
                return Err(self.broken(lineno, text(), Broken::Prev));
            }
            if let Some((jl, _)) = pending_junk.take() {
                self.report.torn.push(jl);
            }
            let expected = if starts_after_rotation {
                self.report.continues_after = Some(rec.seq - 1);
                rec.seq
            } else {
                self.report.last_seq + 1
            };
            if rec.seq != expected {
                return Err(self.broken(
                    lineno,
                    text(),
                    Broken::Seq {
                        expected,
                        found: rec.seq,
                    },
                ));
            }
            if rec.line().as_bytes() != [line, b"\n"].concat().as_slice() {
                return Err(self.broken(lineno, text(), Broken::NotCanonical));
            }
            let k = self.key_of(&rec, lineno, &text)?;
            self.next = if bound_proof(&rec).is_some() {
                match self.candidates().find(|&c| binds(&rec, self.key(c))) {
                    Some(c) => {
                        self.report.segments.push((rec.seq + 1, c));
                        NextKey::Is(c)
                    }
                    None => NextKey::Missing,
                }
            } else {
                NextKey::Is(k)
            };
            if self.anchor.as_ref().is_some_and(|a| a.seq == rec.seq) {
                self.anchor_mac = Some(rec.mac.clone());
            }
            self.first_seq.get_or_insert(rec.seq);
            self.prev_mac = rec.mac;
            self.report.records += 1;
            self.report.last_seq = rec.seq;
        }
        if let Some((jl, jt)) = pending_junk {
            // A complete line that is not a record at the very end: nothing continues past it,
            // and a crash cannot leave a newline after a torn record by itself.
            return Err(self.broken(jl, jt, Broken::NotARecord));
        }
        self.file += 1;
        Ok(())
    }

    /// The verdict, with the anchor's.
    pub fn finish(mut self) -> Result<Report, VerifyError> {
        if let Some(a) = &self.anchor {
            let first = self.first_seq.unwrap_or(1);
            self.report.anchor = if self.report.last_seq < a.seq {
                AnchorCheck::EndsBefore {
                    anchor: a.seq,
                    last: self.report.last_seq,
                }
            } else if a.seq < first {
                AnchorCheck::NotCovered { seq: a.seq, first }
            } else if self.anchor_mac.as_deref() == Some(a.mac.as_str()) {
                AnchorCheck::Matches
            } else {
                AnchorCheck::Disagrees { seq: a.seq }
            };
        }
        Ok(self.report)
    }
}

/// Checks the chain in `data` (a whole file) under `key`.
pub fn verify_bytes(data: &[u8], key: Option<&[u8]>) -> Result<Report, VerifyError> {
    let mut v = Verifier::new(key.into_iter().collect(), None);
    v.feed(data)?;
    v.finish()
}

/// Checks the chain of the file at `path` under `key`.
pub fn verify_file(path: &std::path::Path, key: Option<&[u8]>) -> Result<Report, VerifyError> {
    verify_chain(
        &[path.to_owned()],
        &key.into_iter().collect::<Vec<_>>(),
        None,
    )
}

/// Checks `files` (oldest first: rotated predecessors, then the file) as one chain under
/// `keys`, and compares its end with `anchor`.
pub fn verify_chain(
    files: &[std::path::PathBuf],
    keys: &[&[u8]],
    anchor: Option<super::record::Head>,
) -> Result<Report, VerifyError> {
    let mut v = Verifier::new(keys.to_vec(), anchor);
    for f in files {
        let data =
            std::fs::read(f).map_err(|e| VerifyError::Io(format!("{}: {e}", f.display())))?;
        v.feed(&data)?;
    }
    v.finish()
}

/// The rotated predecessors of the audit file `path` that still exist, oldest first, then
/// `path` itself (see `file` for their names).
pub fn chain_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = super::file::rotated_files(path);
    out.push(path.to_owned());
    out
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
        // Without any key, a keyed file is not called tampered: the check needs the key.
        assert_eq!(
            check(&lines, None),
            Err(VerifyError::NeedsKey { file: 0, line: 1 })
        );
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

    /// A record after `prev` with `seq`, under `key`.
    fn rec(seq: u64, prev: &str, event: &str, detail: String, key: Option<&[u8]>) -> Record {
        let mut r = Record {
            seq,
            time: "2026-12-03T08:00:00.000000Z".into(),
            event: event.into(),
            id: None,
            ip: String::new(),
            host: "h".into(),
            pid: 7,
            detail,
            prev: prev.into(),
            mac: String::new(),
        };
        r.mac = r.compute_mac(key);
        r
    }

    /// An unkeyed record, a bound change to `k1`, two records under `k1`, a bound change to
    /// `k2`, one record under `k2`.
    fn rekeyed() -> Vec<Record> {
        use crate::audit::record::{binding_proof, bound_detail};
        let mut out = vec![rec(1, GENESIS, "config_changed", "audit_log".into(), None)];
        let bind =
            |seq, prev: &str, next: &[u8]| bound_detail(&binding_proof(Some(next), seq, prev));
        let p = out[0].mac.clone();
        out.push(rec(2, &p, KEY_CHANGED, bind(2, &p, b"k1"), None));
        for seq in 3..=4 {
            let p = out.last().unwrap().mac.clone();
            out.push(rec(seq, &p, "login_failed", "x".into(), Some(b"k1")));
        }
        let p = out.last().unwrap().mac.clone();
        out.push(rec(5, &p, KEY_CHANGED, bind(5, &p, b"k2"), Some(b"k1")));
        let p = out.last().unwrap().mac.clone();
        out.push(rec(6, &p, "login_failed", "y".into(), Some(b"k2")));
        out
    }

    fn bytes(recs: &[Record]) -> Vec<u8> {
        recs.iter()
            .map(Record::line)
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn each_segment_is_checked_with_its_own_key_whatever_the_order_of_keys() {
        let data = bytes(&rekeyed());
        for keys in [vec![&b"k1"[..], b"k2"], vec![b"k2", b"k1"]] {
            let mut v = Verifier::new(keys.clone(), None);
            v.feed(&data).unwrap();
            let r = v.finish().unwrap();
            assert_eq!(r.last_seq, 6);
            let k1 = keys.iter().position(|k| *k == b"k1").unwrap();
            assert_eq!(
                r.segments,
                [
                    (1, KeyUsed::None),
                    (3, KeyUsed::Given(k1)),
                    (6, KeyUsed::Given(1 - k1))
                ]
            );
        }
        // Without the keys: the check needs them, it does not call the file tampered.
        let mut v = Verifier::new(vec![], None);
        assert_eq!(
            v.feed(&data),
            Err(VerifyError::NeedsKey { file: 0, line: 3 })
        );
        let mut v = Verifier::new(vec![b"k1"], None);
        assert_eq!(
            v.feed(&data),
            Err(VerifyError::NeedsKey { file: 0, line: 6 })
        );
        // A forged record in a keyed segment is still tampering.
        let mut recs = rekeyed();
        recs[3] = rec(
            4,
            &recs[2].mac.clone(),
            "login_failed",
            "forged".into(),
            None,
        );
        let mut v = Verifier::new(vec![b"k1", b"k2"], None);
        assert!(matches!(
            v.feed(&bytes(&recs)),
            Err(VerifyError::Broken {
                line: 4,
                why: Broken::Mac,
                ..
            })
        ));
    }

    #[test]
    fn an_unbound_change_is_accepted_under_a_given_key_only() {
        let mut recs = chain(2, Some(b"old"))
            .iter()
            .map(|l| Record::parse(l.trim_end().as_bytes()).unwrap())
            .collect::<Vec<_>>();
        let p = recs[1].mac.clone();
        recs.push(rec(3, &p, KEY_CHANGED, UNBOUND_DETAIL.into(), Some(b"new")));
        let p = recs[2].mac.clone();
        recs.push(rec(4, &p, "login_failed", "x".into(), Some(b"new")));
        let mut v = Verifier::new(vec![b"old", b"new"], None);
        v.feed(&bytes(&recs)).unwrap();
        assert_eq!(v.finish().unwrap().unbound, vec![3]);
        // To no key: anyone could have written it.
        let p = recs[1].mac.clone();
        recs[2] = rec(3, &p, KEY_CHANGED, UNBOUND_DETAIL.into(), None);
        recs.truncate(3);
        let mut v = Verifier::new(vec![b"old"], None);
        assert!(matches!(
            v.feed(&bytes(&recs)),
            Err(VerifyError::Broken {
                line: 3,
                why: Broken::UnboundToNoKey,
                ..
            })
        ));
    }

    #[test]
    fn a_rotated_file_is_one_chain_with_its_predecessor_and_checks_alone_from_its_rotation() {
        let old = chain(3, Some(b"k"));
        let last = Record::parse(old[2].trim_end().as_bytes()).unwrap();
        let first = rec(
            4,
            &last.mac,
            ROTATED,
            "continues after seq 3".into(),
            Some(b"k"),
        );
        let next = rec(5, &first.mac, "login_failed", "z".into(), Some(b"k"));
        let new = bytes(&[first, next.clone()]);
        let mut v = Verifier::new(vec![b"k"], None);
        v.feed(old.concat().as_bytes()).unwrap();
        v.feed(&new).unwrap();
        let r = v.finish().unwrap();
        assert_eq!((r.records, r.last_seq, r.continues_after), (5, 5, None));
        let r = verify_bytes(&new, Some(b"k")).unwrap();
        assert_eq!((r.records, r.continues_after), (2, Some(3)));
        // Only a rotation record may start mid-chain.
        assert_eq!(
            broken_at(verify_bytes(next.line().as_bytes(), Some(b"k"))),
            (1, Broken::Prev)
        );
    }

    #[test]
    fn an_anchor_catches_a_cut_tail_and_a_rewrite() {
        let lines = chain(5, Some(b"k"));
        let fourth = Record::parse(lines[3].trim_end().as_bytes()).unwrap();
        let anchor = super::super::record::Head {
            seq: 4,
            mac: fourth.mac.clone(),
        };
        let check = |n: usize, anchor: &super::super::record::Head| {
            let mut v = Verifier::new(vec![b"k"], Some(anchor.clone()));
            v.feed(lines[..n].concat().as_bytes()).unwrap();
            v.finish().unwrap().anchor
        };
        assert_eq!(check(5, &anchor), AnchorCheck::Matches);
        assert_eq!(check(4, &anchor), AnchorCheck::Matches);
        // The chain alone cannot see these cuts; the anchor does.
        assert!(verify_bytes(lines[..3].concat().as_bytes(), Some(b"k"))
            .unwrap()
            .is_clean());
        assert_eq!(
            check(3, &anchor),
            AnchorCheck::EndsBefore { anchor: 4, last: 3 }
        );
        assert_eq!(
            check(0, &anchor),
            AnchorCheck::EndsBefore { anchor: 4, last: 0 }
        );
        let other = super::super::record::Head {
            seq: 4,
            mac: "0".repeat(64),
        };
        assert_eq!(check(5, &other), AnchorCheck::Disagrees { seq: 4 });
        assert!(check(3, &anchor).failed() && !check(5, &anchor).failed());
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
