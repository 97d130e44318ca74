//! The audit trail's append cost: one record with and without `fdatasync`, the same with the
//! reserve (`fallocate KEEP_SIZE`) and the anchor in a `state_dir` (what a library append does
//! since issue 19), and appends per second from 4 processes sharing one file (each its own
//! process, all under one `flock`).
//!
//! `cargo run --release --example audit_bench -- [DIR] [N]` (what `benches/run.sh` does, with
//! DIR on the build tree's disk: on tmpfs `fdatasync` costs nothing). `--smoke` runs it with
//! tiny counts (`make test`), so it always builds and runs. Output lines are
//! `name value unit`, as benches/report.py and run.sh read them.
//! It verifies every file it wrote, so a bench run is also a check of the chain under load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use breakglass::audit::{append, append_with, verify_file, Entry, Head, Options, RESERVE_BYTES};

const KEY: &[u8] = b"bench key";

fn entry(i: usize) -> Entry {
    Entry {
        time: "2026-12-03T08:00:00.000000Z".into(),
        event: "login_failed",
        id: None,
        ip: "192.0.2.77".into(),
        host: "bench-host".into(),
        pid: std::process::id(),
        detail: format!("code refused (invalid code) #{i}"),
    }
}

/// Median and p99 of `n` appends to a fresh file, in nanoseconds.
fn appends(path: &Path, n: usize, sync: bool) -> (f64, f64) {
    let _ = std::fs::remove_file(path);
    let mut ns: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            append(path, Some(KEY), &entry(i), sync).expect("append");
            t.elapsed().as_nanos() as f64
        })
        .collect();
    ns.sort_by(|a, b| a.total_cmp(b));
    let r = verify_file(path, Some(KEY)).expect("the bench's own chain verifies");
    assert_eq!(r.records as usize, n);
    (ns[n / 2], ns[(n * 99 / 100).min(n - 1)])
}

/// [`appends`] as the library makes them: with the reserve kept, and with `sync`, the head
/// written to `state/audit-anchor` (temp file + rename) after each record.
fn appends_anchored(path: &Path, state: &Path, n: usize, sync: bool) -> (f64, f64) {
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(state).unwrap();
    let anchor = |h: &Head| {
        // The library's own anchor writer is private; this is the same work: a 0600 temp file
        // and a rename.
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = state.join(".audit-anchor.bench");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .unwrap();
        writeln!(
            f,
            "{{\"log\":\"{}\",\"seq\":{},\"mac\":\"{}\"}}",
            path.display(),
            h.seq,
            h.mac
        )
        .unwrap();
        std::fs::rename(&tmp, state.join("audit-anchor")).unwrap();
    };
    let mut ns: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            let opts = Options {
                key: Some(KEY),
                sync,
                max_bytes: 0,
                reserve: RESERVE_BYTES,
                rekey: None,
                on_head: Some(&anchor),
                held: None,
            };
            append_with(path, &entry(i), &opts).expect("append");
            t.elapsed().as_nanos() as f64
        })
        .collect();
    ns.sort_by(|a, b| a.total_cmp(b));
    let r = verify_file(path, Some(KEY)).expect("the bench's own chain verifies");
    assert_eq!(r.records as usize, n);
    (ns[n / 2], ns[(n * 99 / 100).min(n - 1)])
}

fn child(path: &str, n: usize) {
    for i in 0..n {
        append(Path::new(path), Some(KEY), &entry(i), false).expect("append");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1], args[2].parse().unwrap());
        return;
    }
    let smoke = args.first().map(String::as_str) == Some("--smoke");
    let (dir, n) = if smoke {
        (std::env::temp_dir(), 20)
    } else {
        (
            args.first()
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            args.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000),
        )
    };
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("bg-audit-bench-{}.log", std::process::id()));

    let (med, p99) = appends(&path, n, false);
    println!("audit_append_nosync_median {med:.0} ns");
    println!("audit_append_nosync_p99 {p99:.0} ns");
    let (med, p99) = appends(&path, n.div_ceil(4), true);
    println!("audit_append_fsync_median {med:.0} ns");
    println!("audit_append_fsync_p99 {p99:.0} ns");

    let state = dir.join(format!("bg-audit-bench-state-{}", std::process::id()));
    let (med, p99) = appends_anchored(&path, &state, n, false);
    println!("audit_append_reserve_nosync_median {med:.0} ns");
    println!("audit_append_reserve_nosync_p99 {p99:.0} ns");
    let (med, p99) = appends_anchored(&path, &state, n.div_ceil(4), true);
    println!("audit_append_reserve_anchor_fsync_median {med:.0} ns");
    println!("audit_append_reserve_anchor_fsync_p99 {p99:.0} ns");
    let _ = std::fs::remove_dir_all(&state);

    let _ = std::fs::remove_file(&path);
    let per_child = n;
    let exe = std::env::current_exe().unwrap();
    let t = Instant::now();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args(["--child", path.to_str().unwrap(), &per_child.to_string()])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "an appending process failed");
    }
    let secs = t.elapsed().as_secs_f64();
    let r = verify_file(&path, Some(KEY)).expect("4 processes leave one valid chain");
    assert_eq!(r.records as usize, 4 * per_child);
    assert!(r.is_clean());
    println!(
        "audit_appends_per_s_4proc {:.0} appends/s",
        (4 * per_child) as f64 / secs
    );
    let _ = std::fs::remove_file(&path);
}
