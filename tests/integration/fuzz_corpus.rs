//! Replays the fuzzers' seed corpora (fuzz/corpus/<target>/) and any saved crash inputs
//! (fuzz/regressions/<target>/) through the same checks the fuzz targets run (fuzz/checks.rs),
//! so every corpus file and every past crash is a regression test under `cargo test`.
//! The alert inputs are also delivered end to end to a file outbox, and no email may gain a
//! header from them.

use std::path::{Path, PathBuf};

use super::serial;

#[path = "../../fuzz/checks.rs"]
mod checks;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs broke a property: {failures:?}",
        failures.len(),
        files.len()
    );
}

#[test]
fn verify_corpus() {
    let _g = serial();
    checks::quiet();
    replay("verify", checks::check_verify);
    checks::reset_config();
    checks::unquiet();
}

#[test]
fn configure_corpus() {
    let _g = serial();
    checks::quiet();
    replay("configure", checks::check_configure);
    checks::reset_config();
    checks::unquiet();
}

#[test]
fn alert_payload_corpus() {
    replay("alert_payload", checks::check_alert_payload);
}

#[test]
fn alert_payload_corpus_reaches_the_outbox_without_new_headers() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("bg-fuzz-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("file://{}", dir.display());
    breakglass::configure("mailer", Some(&url)).unwrap();
    breakglass::configure("from_email", Some("bg@example.com")).unwrap();
    breakglass::configure("alert_emails", Some("ops@example.com")).unwrap();

    let files = inputs("alert_payload");
    for path in &files {
        breakglass::alert(Some(&std::fs::read(path).unwrap()));
    }
    breakglass::flush(std::time::Duration::from_secs(30)).unwrap();

    let mut mails = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        if !text.contains("Subject:") {
            continue;
        }
        mails += 1;
        let headers = text.split("\r\n\r\n").next().unwrap();
        let names: Vec<String> = headers
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
            .collect();
        assert_eq!(names.iter().filter(|n| *n == "to").count(), 1, "{headers}");
        for bad in ["bcc", "cc", "reply-to"] {
            assert!(!names.iter().any(|n| n == bad), "{headers}");
        }
    }
    assert_eq!(mails, files.len(), "one alert email per input");
    checks::reset_config();
    std::fs::remove_dir_all(&dir).unwrap();
}
