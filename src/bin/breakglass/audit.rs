//! `breakglass audit verify|tail|rotate-key`: the operator's view of an audit trail.
//!
//! All checking is the library's (`breakglass::audit::verify_chain`); this file owns only the
//! arguments, where keys and anchors come from (`--key-file`, else `BREAKGLASS_AUDIT_KEY`;
//! `--anchor`, and the anchors in the `state_dir` or Redis store that `BREAKGLASS_*` names), and
//! the exit statuses: 0 intact, 1 the chain is broken (the first broken line is printed), 2
//! usage, the file or key cannot be read, or the file is keyed and no key was given, 3 no
//! tampering found but a record was torn by a crash, 4 the chain ends before an anchor or
//! disagrees with it (records were cut from its end or rewritten). It must never print a key.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use breakglass::audit::{self, AnchorCheck, Head, KeyUsed, Record, VerifyError};
use zeroize::Zeroizing;

use crate::out;

pub(crate) const USAGE: &str = "\
usage: breakglass audit verify FILE [--key-file KEY_FILE]... [--anchor SEQ:MAC]
       breakglass audit tail [FILE] [-n N] [-f] [--event NAME]
       breakglass audit rotate-key --new-key-file NEW_KEY_FILE [--key-file KEY_FILE]

verify      checks the whole chain of FILE, its rotated predecessors (FILE.SEQ) first. Each
            key is a KEY_FILE's content (one trailing newline removed; give one per key the
            chain was written under), else $BREAKGLASS_AUDIT_KEY, else none. The chain's end is
            compared with --anchor (a head copied from an alarm) and with the anchors kept in
            the state_dir or Redis store that BREAKGLASS_* names.
            Exit status: 0 intact; 1 broken (the first broken record is printed); 2 usage, the
            file or a key cannot be read, or the file is keyed and no key was given; 3 no
            tampering, but a record was torn by a crash mid-write; 4 the file ends before an
            anchor or disagrees with it (records were cut from its end, or it was rewritten).
tail        prints the last N records (default 20) of FILE (default $BREAKGLASS_AUDIT_LOG), one
            a line, oldest first, only those of event NAME with --event; with -f it then
            follows the file, across rotations, until stopped. It does not verify them.
rotate-key  appends to $BREAKGLASS_AUDIT_LOG a record, under the current key (KEY_FILE, else
            $BREAKGLASS_AUDIT_KEY), that binds the new key: NEW_KEY_FILE's content, or a new
            random key written there (0600) when it does not exist. Then set audit_key to the
            new key and restart the service; keep the old key to verify older records.
";

fn usage(why: &str) -> ExitCode {
    eprintln!("breakglass audit: {why}");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

pub(crate) fn run(args: &[String]) -> ExitCode {
    match args.split_first() {
        Some((cmd, rest)) if cmd == "verify" => verify(rest),
        Some((cmd, rest)) if cmd == "tail" => tail(rest),
        Some((cmd, rest)) if cmd == "rotate-key" => rotate_key(rest),
        Some((cmd, _)) if cmd == "help" || cmd == "--help" || cmd == "-h" => {
            let _ = out(USAGE);
            ExitCode::SUCCESS
        }
        Some((cmd, _)) => usage(&format!("unknown command {cmd:?}")),
        None => usage("which command?"),
    }
}

/// A key file's content, one trailing newline removed.
fn read_key(path: &str) -> Result<Zeroizing<Vec<u8>>, ExitCode> {
    match std::fs::read(path) {
        Ok(mut bytes) => {
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
            }
            Ok(Zeroizing::new(bytes))
        }
        Err(e) => {
            eprintln!("breakglass audit: cannot read the key file {path}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn env_key() -> Option<Zeroizing<Vec<u8>>> {
    std::env::var_os("BREAKGLASS_AUDIT_KEY")
        .filter(|v| !v.is_empty())
        .map(|v| Zeroizing::new(v.into_encoded_bytes()))
}

/// The anchors that `BREAKGLASS_*` names for the audit file `file`, each with its source.
fn configured_anchors(file: &Path) -> Vec<(String, Head)> {
    let has_store = ["BREAKGLASS_STATE_DIR", "BREAKGLASS_SLOT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !has_store {
        return Vec::new();
    }
    let s = match breakglass::config::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("breakglass audit verify: BREAKGLASS_* is refused, so its anchors are not read: {e}");
            return Vec::new();
        }
    };
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    match audit::read_anchors(&s, &abs) {
        Ok(found) => found
            .into_iter()
            .map(|(src, h)| (src.to_string(), h))
            .collect(),
        Err(e) => {
            eprintln!("breakglass audit verify: cannot read the anchor: {e}");
            Vec::new()
        }
    }
}

fn verify(args: &[String]) -> ExitCode {
    let mut file = None;
    let mut key_files = Vec::new();
    let mut anchors: Vec<(String, Head)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--key-file" => match it.next() {
                Some(k) => key_files.push(k.clone()),
                None => return usage("--key-file needs a file"),
            },
            "--anchor" => match it.next().map(|v| v.parse::<Head>()) {
                Some(Ok(h)) => anchors.push(("--anchor".into(), h)),
                Some(Err(why)) => return usage(&format!("--anchor: {why}")),
                None => return usage("--anchor needs SEQ:MAC"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s:?}")),
            s if file.is_none() => file = Some(s.to_owned()),
            _ => return usage("one FILE only"),
        }
    }
    let Some(file) = file else {
        return usage("verify needs a FILE");
    };
    let mut keys: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for k in &key_files {
        match read_key(k) {
            Ok(key) => keys.push(key),
            Err(code) => return code,
        }
    }
    if keys.is_empty() {
        keys.extend(env_key());
    }
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let files = audit::chain_files(Path::new(&file));
    anchors.extend(configured_anchors(Path::new(&file)));
    let name = |i: usize| files[i].display().to_string();
    // One check per anchor (they normally agree); without one, a single check.
    let mut runs: Vec<Option<(String, Head)>> = anchors.into_iter().map(Some).collect();
    if runs.is_empty() {
        runs.push(None);
    }
    let mut text = String::new();
    let mut status = 0u8;
    for run in &runs {
        let r = match audit::verify_chain(&files, &key_refs, run.as_ref().map(|(_, h)| h.clone())) {
            Ok(r) => r,
            Err(VerifyError::Io(e)) => {
                eprintln!("breakglass audit verify: {e}");
                return ExitCode::from(2);
            }
            Err(VerifyError::NeedsKey { file, line }) => {
                eprintln!(
                    "breakglass audit verify: {} line {line}: this file is keyed: give --key-file \
                     (one for each key it was written under)",
                    name(file)
                );
                return ExitCode::from(2);
            }
            Err(VerifyError::Broken {
                file,
                line,
                text,
                why,
            }) => {
                let _ = out(&format!(
                    "BROKEN: {} line {line}: {why}\n  {}\nEverything before line {line} verifies.\n",
                    name(file),
                    breakglass::text::escape_controls(&text)
                ));
                return ExitCode::from(1);
            }
        };
        if run.is_none() || std::ptr::eq(run, &runs[0]) {
            text.push_str(&summary(&r, &files, key_refs.len()));
        }
        if let Some((src, h)) = run {
            let (line, failed) = anchor_line(&r.anchor, src, h);
            text.push_str(&line);
            if failed {
                status = 4;
            }
        } else {
            text.push_str(
                "NOTE: no anchor to compare with: records cut from the end cannot be seen (set \
                 state_dir or slot_url, or give --anchor SEQ:MAC from an alarm)\n",
            );
        }
        if status == 0 && !r.is_clean() {
            status = 3;
        }
    }
    if out(&text).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::from(status)
}

/// What a check found, beyond the anchor.
fn summary(r: &audit::Report, files: &[PathBuf], keys: usize) -> String {
    let mut text = String::new();
    if let Some(seq) = r.continues_after {
        text.push_str(&format!(
            "NOTE: the chain starts after a rotation at seq {seq}; the rotated file is not here, \
             so what came before is not checked\n"
        ));
    }
    if r.segments.len() > 1 || (keys > 1 && !r.segments.is_empty()) {
        for (seq, k) in &r.segments {
            let which = match k {
                KeyUsed::None => "no key".to_owned(),
                KeyUsed::Given(i) => format!("key #{}", i + 1),
            };
            text.push_str(&format!("KEY: from seq {seq}: {which}\n"));
        }
    }
    for seq in &r.unbound {
        text.push_str(&format!(
            "NOTE: seq {seq}: a writer with another key continued the chain without binding it \
             (a process started with another audit_key)\n"
        ));
    }
    for line in &r.torn {
        text.push_str(&format!(
            "TORN: line {line} is a record cut short by a crash; the chain continues past it\n"
        ));
    }
    if let Some(line) = r.truncated_last {
        text.push_str(&format!(
            "TRUNCATED: truncated last record at line {line} (a crash mid-write); the records \
             before it verify\n"
        ));
    }
    if r.is_clean() {
        text.push_str(&format!(
            "OK: {} records, the chain is intact (last seq {}, {} file(s))\n",
            r.records,
            r.last_seq,
            files.iter().filter(|f| f.exists()).count()
        ));
    } else {
        text.push_str(&format!(
            "{} records verify, no tampering found (last seq {})\n",
            r.records, r.last_seq
        ));
    }
    text
}

/// The anchor's verdict as a line, and whether it failed.
fn anchor_line(a: &AnchorCheck, src: &str, h: &Head) -> (String, bool) {
    match a {
        AnchorCheck::Matches => (format!("ANCHOR: seq {} from {src} matches\n", h.seq), false),
        AnchorCheck::EndsBefore { anchor, last } => (
            format!(
                "CUT: the chain ends at seq {last}, before the anchor's seq {anchor} (from \
                 {src}): records were removed from its end\n"
            ),
            true,
        ),
        AnchorCheck::Disagrees { seq } => (
            format!(
                "REWRITTEN: the record at seq {seq} is not the one the anchor (from {src}) \
                 names: the chain was rewritten\n"
            ),
            true,
        ),
        AnchorCheck::NotCovered { seq, first } => (
            format!(
                "NOTE: the anchor's seq {seq} (from {src}) is before the first record checked \
                 ({first}): give the rotated file to check it\n"
            ),
            false,
        ),
        AnchorCheck::NotGiven => (String::new(), false),
    }
}

fn tail(args: &[String]) -> ExitCode {
    let mut file: Option<String> = None;
    let mut n = 20usize;
    let mut follow = false;
    let mut event: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => n = v,
                None => return usage("-n needs a number"),
            },
            "-f" | "--follow" => follow = true,
            "--event" => match it.next() {
                Some(e) => event = Some(e.clone()),
                None => return usage("--event needs a NAME"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s:?}")),
            s if file.is_none() => file = Some(s.to_owned()),
            _ => return usage("one FILE only"),
        }
    }
    let Some(file) = file.or_else(|| std::env::var("BREAKGLASS_AUDIT_LOG").ok()) else {
        return usage("tail needs a FILE (or BREAKGLASS_AUDIT_LOG)");
    };
    let wanted = |r: &Record| event.as_deref().is_none_or(|e| r.event == e);
    let path = Path::new(&file);
    match audit::tail_matching(path, n, &wanted) {
        Ok(records) => {
            let text: String = records.iter().map(|r| r.readable() + "\n").collect();
            if out(&text).is_err() {
                return ExitCode::from(1);
            }
        }
        Err(e) => {
            eprintln!("breakglass audit tail: {file}: {e}");
            return ExitCode::from(2);
        }
    }
    if !follow {
        return ExitCode::SUCCESS;
    }
    match follow_file(path, &wanted) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("breakglass audit tail: {file}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints the records appended to `path` from now on, following the path to each new file
/// when it is rotated: records are taken in `seq` order from the rotated files the follower
/// has not read yet, then from the new file. Returns when stdout goes away.
fn follow_file(path: &Path, wanted: &dyn Fn(&Record) -> bool) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut ino = f.metadata()?.ino();
    let mut last_seq = audit::tail(path, 1)?.first().map_or(0, |r| r.seq);
    f.seek(SeekFrom::End(0))?;
    let mut partial: Vec<u8> = Vec::new();
    // Prints the records of whole lines in `bytes` after `last_seq`; false: stdout is gone.
    let show = |bytes: &[u8], last_seq: &mut u64| -> bool {
        let mut text = String::new();
        for line in bytes.split(|&b| b == b'\n') {
            if let Some(r) = Record::parse(line) {
                if r.seq > *last_seq {
                    *last_seq = r.seq;
                    if wanted(&r) {
                        text.push_str(&r.readable());
                        text.push('\n');
                    }
                }
            }
        }
        text.is_empty() || out(&text).is_ok()
    };
    loop {
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        if !buf.is_empty() {
            partial.extend_from_slice(&buf);
            if let Some(i) = partial.iter().rposition(|&b| b == b'\n') {
                let whole: Vec<u8> = partial.drain(..=i).collect();
                if !show(&whole, &mut last_seq) {
                    return Ok(());
                }
            }
            continue;
        }
        // Rotated (or replaced): the old file has been read to its end; the files rotated
        // since are read whole, then the new one from its start. The new file is opened
        // before the rotated ones are listed: a rotation between the two then only adds one
        // more rotated file (whose records the new file's reading skips by seq), where the
        // other order read a later file's records first and passed over a whole file rotated
        // in between (CI saw 10 of 12 logins under load).
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != ino => {
                if let Ok(next) = std::fs::File::open(path) {
                    for rotated in audit::rotated_files(path) {
                        // NAME.SEQ holds records up to SEQ: the ones read already are skipped.
                        let upto = rotated
                            .extension()
                            .and_then(|e| e.to_str()?.parse::<u64>().ok())
                            .unwrap_or(u64::MAX);
                        if upto <= last_seq {
                            continue;
                        }
                        if let Ok(data) = std::fs::read(&rotated) {
                            if !show(&data, &mut last_seq) {
                                return Ok(());
                            }
                        }
                    }
                    ino = next.metadata()?.ino();
                    f = next;
                    partial.clear();
                    continue;
                }
            }
            _ => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn rotate_key(args: &[String]) -> ExitCode {
    let mut new_key_file = None;
    let mut key_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--new-key-file" => match it.next() {
                Some(k) => new_key_file = Some(k.clone()),
                None => return usage("--new-key-file needs a file"),
            },
            "--key-file" => match it.next() {
                Some(k) => key_file = Some(k.clone()),
                None => return usage("--key-file needs a file"),
            },
            s => return usage(&format!("unexpected argument {s:?}")),
        }
    }
    let Some(new_key_file) = new_key_file else {
        return usage("rotate-key needs --new-key-file");
    };
    let mut s = match breakglass::config::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("breakglass audit rotate-key: BREAKGLASS_* is refused: {e}");
            return ExitCode::from(2);
        }
    };
    if s.audit.log.is_none() {
        return usage("rotate-key needs BREAKGLASS_AUDIT_LOG");
    }
    if let Some(k) = key_file {
        match read_key(&k) {
            Ok(key) => {
                let text = String::from_utf8(key.to_vec()).unwrap_or_default();
                s.audit.key = Some(breakglass::config::Secret::new(text));
            }
            Err(code) => return code,
        }
    }
    let new_key = if Path::new(&new_key_file).exists() {
        match read_key(&new_key_file) {
            Ok(k) => k,
            Err(code) => return code,
        }
    } else {
        match new_random_key(Path::new(&new_key_file)) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("breakglass audit rotate-key: cannot write {new_key_file}: {e}");
                return ExitCode::from(2);
            }
        }
    };
    if new_key.is_empty() {
        return usage("the new key is empty");
    }
    match audit::rotate_key(&s, &new_key) {
        Ok(r) => {
            let _ = out(&format!(
                "OK: from seq {} the audit chain is under the key in {new_key_file}. Set \
                 audit_key to it and restart the service; keep the old key to verify the \
                 records before.\n",
                r.seq
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("breakglass audit rotate-key: {e}");
            ExitCode::from(1)
        }
    }
}

/// 32 random bytes from the OS as 64 hex digits, written to `path` (created 0600, never
/// through a symlink).
fn new_random_key(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut raw = Zeroizing::new([0u8; 32]);
    std::fs::File::open("/dev/urandom")?.read_exact(raw.as_mut())?;
    let hex: Zeroizing<Vec<u8>> = Zeroizing::new(
        raw.iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect(),
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(&hex)?;
    f.write_all(b"\n")?;
    Ok(hex)
}
