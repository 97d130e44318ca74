//! The `breakglass` program, run as a user runs it: `hash-password` from stdin, `check-config`
//! on complete, incomplete and refused environments, and the command line itself.
//!
//! Every child gets an environment without the caller's `BREAKGLASS_*` variables (the Makefile
//! exports one), so the results never depend on the shell the tests run from. The terminal
//! path of `hash-password` is exercised by the pty test at the end, when `script` exists.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use breakglass::login::StoredHash;

const BIN: &str = env!("CARGO_BIN_EXE_breakglass");

/// The program with no inherited `BREAKGLASS_*` and `env` set.
fn breakglass(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BREAKGLASS_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn run_with_stdin(args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut child = breakglass(args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_with_stdin(args, env, b"")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A valid hash for configurations, made once.
fn stored_phc() -> &'static str {
    static PHC: OnceLock<String> = OnceLock::new();
    PHC.get_or_init(|| breakglass::login::hash_password(b"check-config password").unwrap())
}

#[test]
fn hash_password_from_stdin_makes_a_hash_that_checks_it() {
    let out = run_with_stdin(&["hash-password"], &[], b"correct horse battery\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // Only the PHC string and its newline on stdout.
    let phc = stdout.strip_suffix('\n').unwrap();
    assert!(!phc.contains('\n'));
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let stored = StoredHash::parse(phc).unwrap();
    assert!(stored.check(b"correct horse battery").is_ok());
    assert!(stored.check(b"correct horse batterY").is_err());
    assert!(stored.check(b"correct horse battery\n").is_err());
    assert!(!text(&out.stderr).contains("correct horse"));
}

#[test]
fn hash_password_strips_the_newline_only_and_reads_one_line() {
    // Surrounding spaces are part of the password; the second line is not.
    let out = run_with_stdin(&["hash-password"], &[], b" two words \nsecond line\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = StoredHash::parse(text(&out.stdout).trim_end_matches('\n')).unwrap();
    assert!(stored.check(b" two words ").is_ok());
    assert!(stored.check(b"two words").is_err());
    // No newline at the end of input is fine too.
    let out = run_with_stdin(&["hash-password"], &[], b"no newline");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = StoredHash::parse(text(&out.stdout).trim_end_matches('\n')).unwrap();
    assert!(stored.check(b"no newline").is_ok());
}

#[test]
fn hash_password_refuses_empty_and_unusable_passwords() {
    for input in [&b""[..], b"\n", b"\nsecond line\n", b"nul\0byte\n"] {
        let out = run_with_stdin(&["hash-password"], &[], input);
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        assert!(out.stdout.is_empty(), "{input:?}: {}", text(&out.stdout));
        assert!(!out.stderr.is_empty());
    }
    let long = vec![b'a'; 5000];
    let out = run_with_stdin(&["hash-password"], &[], &long);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("longer than"),
        "{}",
        text(&out.stderr)
    );
}

/// Everything the login flow needs, with secrets in every place one can hide.
fn complete_env(phc: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "BREAKGLASS_MAILER",
            "smtps://breakglass:Sm7pS3cret@mail.example.com".into(),
        ),
        (
            "BREAKGLASS_FROM_EMAIL",
            "Break Glass <breakglass@example.com>".into(),
        ),
        ("BREAKGLASS_OTP_EMAIL", "oncall@example.com".into()),
        (
            "BREAKGLASS_ALERT_EMAILS",
            "security@example.com, sre@example.com".into(),
        ),
        (
            "BREAKGLASS_ALERT_WEBHOOK_URL",
            "https://hooks.example.com/services/T0K3Nw3bh00k?key=Qu3ryS3cret".into(),
        ),
        ("BREAKGLASS_ALERT_WEBHOOK_SECRET", "W3bh00kS3cret".into()),
        ("BREAKGLASS_PASSWORD_HASH", phc.into()),
        (
            "BREAKGLASS_ALLOWED_IPS",
            "192.0.2.0/24, 2001:db8::/32".into(),
        ),
        (
            "BREAKGLASS_SLOT_URL",
            "rediss://bg:R3disS3cret@redis.example.com:6380/2".into(),
        ),
    ]
}

fn check(env: &[(&'static str, String)]) -> (Option<i32>, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(&["check-config"], &env);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn line<'a>(stdout: &'a str, item: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&format!("{item}:")))
        })
        .unwrap_or_else(|| panic!("no {item} line in:\n{stdout}"))
}

#[test]
fn check_config_complete_environment_passes_and_shows_no_secret() {
    let phc = stored_phc();
    let (code, stdout, stderr) = check(&complete_env(phc));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    let hash_part = phc.rsplit('$').next().unwrap();
    let salt = phc.rsplit('$').nth(1).unwrap();
    for secret in [
        phc,
        hash_part,
        salt,
        "Sm7pS3cret",
        "T0K3Nw3bh00k",
        "Qu3ryS3cret",
        "W3bh00kS3cret",
        "R3disS3cret",
    ] {
        assert!(!all.contains(secret), "{secret:?} shown in:\n{all}");
    }
    assert!(line(&stdout, "password_hash").starts_with("OK"), "{stdout}");
    assert!(line(&stdout, "password_hash").contains("argon2id"));
    assert_eq!(
        line(&stdout, "mailer"),
        "OK       mailer: smtps://mail.example.com:465"
    );
    assert!(line(&stdout, "from_email").starts_with("OK"));
    assert!(line(&stdout, "otp_email").starts_with("OK"));
    let alert = line(&stdout, "alert channel");
    assert!(alert.starts_with("OK"), "{alert}");
    assert!(alert.contains("2 recipient(s)") && alert.contains("https://hooks.example.com:443"));
    assert_eq!(
        line(&stdout, "allowed_ips"),
        "OK       allowed_ips: 192.0.2.0/24, 2001:db8::/32"
    );
    let slot = line(&stdout, "slot_url");
    assert!(
        slot.starts_with("INFO") && slot.contains("redis.example.com:6380"),
        "{slot}"
    );
    assert!(
        !stdout.contains("MISSING") && !stdout.contains("ERROR"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_each_missing_piece() {
    // Nothing at all.
    let (code, stdout, _) = check(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    for item in [
        "password_hash",
        "mailer",
        "from_email",
        "otp_email",
        "alert channel",
    ] {
        assert!(
            line(&stdout, item).starts_with("MISSING"),
            "{item}: {stdout}"
        );
    }
    let allowed = line(&stdout, "allowed_ips");
    assert!(allowed.starts_with("WARNING") && allowed.contains("only 127.0.0.1 and ::1"));
    assert!(line(&stdout, "slot_url").contains("in-process"));

    // Alert emails without a mailer are no channel; an empty allow-list lets no one in.
    let env = vec![
        ("BREAKGLASS_PASSWORD_HASH", stored_phc().to_owned()),
        ("BREAKGLASS_ALERT_EMAILS", "security@example.com".to_owned()),
        ("BREAKGLASS_OTP_EMAIL", "oncall@example.com".to_owned()),
        ("BREAKGLASS_ALLOWED_IPS", String::new()),
        ("BREAKGLASS_MAILR", "smtp://u:M41lrPw@h".to_owned()),
    ];
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(line(&stdout, "password_hash").starts_with("OK"));
    assert!(line(&stdout, "otp_email").starts_with("OK"));
    assert!(line(&stdout, "mailer").starts_with("MISSING"));
    assert!(line(&stdout, "from_email").starts_with("MISSING"));
    assert!(line(&stdout, "alert_emails").starts_with("WARNING"));
    assert!(line(&stdout, "alert channel").starts_with("MISSING"));
    assert_eq!(
        line(&stdout, "allowed_ips"),
        "ERROR    allowed_ips: set but empty: no one can log in"
    );
    let typo = line(&stdout, "environment");
    assert!(
        typo.contains("BREAKGLASS_MAILR") && !stdout.contains("M41lrPw"),
        "{typo}"
    );

    // The webhook alone is an alert channel.
    let mut env = complete_env(stored_phc());
    env.retain(|(k, _)| *k != "BREAKGLASS_ALERT_EMAILS" && *k != "BREAKGLASS_ALERT_WEBHOOK_SECRET");
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(line(&stdout, "alert_webhook_secret").starts_with("WARNING"));
}

#[test]
fn check_config_bad_value_exits_2_with_the_reason() {
    let mut env = complete_env(stored_phc());
    env.push(("BREAKGLASS_OTP_TTL_SECONDS", "0".into()));
    let (code, stdout, stderr) = check(&env);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("otp_ttl_seconds: must be from 1 to 86400"),
        "{stderr}"
    );

    let (code, _, stderr) = check(&[("BREAKGLASS_PASSWORD_HASH", "hunter2-in-plain-text".into())]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("password_hash"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let (code, _, stderr) = check(&[(
        "BREAKGLASS_MAILER",
        "smtp://user:Pl41nPw@mail.example.com?tls=opportunistic".into(),
    )]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("mailer:"), "{stderr}");
    assert!(!stderr.contains("Pl41nPw"), "{stderr}");
}

#[test]
fn command_line() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("breakglass {}\n", env!("CARGO_PKG_VERSION"))
    );
    for help in [&["--help"][..], &["help"]] {
        let out = run(help, &[]);
        assert!(out.status.success());
        let stdout = text(&out.stdout);
        assert!(stdout.contains("hash-password") && stdout.contains("check-config"));
    }
    for bad in [
        &["frobnicate"][..],
        &[],
        &["check-config", "extra"],
        &["hash-password", "pw"],
    ] {
        let out = run(bad, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        assert!(text(&out.stderr).contains("usage:"), "{bad:?}");
    }
}

#[test]
fn a_hash_that_cannot_be_written_is_a_failure() {
    // `> hash.txt` on a full disk must not look like success.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let mut child = breakglass(&["hash-password"], &[])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot write the hash"));
}

/// Writes an audit file of `n` records under `key` with the library's appender.
fn audit_file(name: &str, n: usize, key: Option<&[u8]>) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("bg-cli-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    for i in 0..n {
        let e = breakglass::audit::Entry {
            time: "2026-12-03T08:00:00.000000Z".into(),
            event: "login_failed",
            id: None,
            ip: "192.0.2.1".into(),
            host: "h".into(),
            pid: 1,
            detail: format!("attempt {i}"),
        };
        breakglass::audit::append(&p, key, &e, false).unwrap();
    }
    p
}

#[test]
fn audit_verify_exits_by_what_it_finds_and_reads_the_key_from_a_file_or_the_environment() {
    let p = audit_file("verify", 5, Some(b"s3cret key"));
    let f = p.to_str().unwrap();
    let key_file = p.with_extension("key");
    std::fs::write(&key_file, b"s3cret key\n").unwrap();
    let k = key_file.to_str().unwrap();

    let out = run(&["audit", "verify", f, "--key-file", k], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK: 5 records"));
    assert!(!text(&out.stdout).contains("s3cret"));
    let out = run(
        &["audit", "verify", f],
        &[("BREAKGLASS_AUDIT_KEY", "s3cret key")],
    );
    assert_eq!(out.status.code(), Some(0));
    // No key: not tampering, the check needs the key. The wrong one: broken at line 1.
    let out = run(&["audit", "verify", f], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("this file is keyed: give --key-file"));
    std::fs::write(p.with_extension("wrong"), b"other key").unwrap();
    let w = p.with_extension("wrong");
    let out = run(
        &["audit", "verify", f, "--key-file", w.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("line 1: mac mismatch"));
    let _ = std::fs::remove_file(&w);

    // An edit in the middle: the first broken record is printed.
    let data = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, data.replacen("attempt 2", "attempt X", 1)).unwrap();
    let out = run(&["audit", "verify", f, "--key-file", k], &[]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("line 3: mac mismatch") && shown.contains("attempt X"),
        "{shown}"
    );

    // A torn last line: truncated, not tampering.
    std::fs::write(&p, &data[..data.len() - 20]).unwrap();
    let out = run(&["audit", "verify", f, "--key-file", k], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("truncated last record at line 5"));

    // Usage and unreadable input.
    assert_eq!(run(&["audit", "verify"], &[]).status.code(), Some(2));
    let out = run(&["audit", "verify", "/nonexistent/audit.log"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&key_file);
}

#[test]
fn audit_tail_prints_the_last_records_readably() {
    let p = audit_file("tail", 30, None);
    let f = p.to_str().unwrap();
    let out = run(&["audit", "tail", f, "-n", "2"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("#29 2026-12-03T08:00:00.000000Z login_failed ip=192.0.2.1"));
    assert!(lines[1].contains("detail=\"attempt 29\""));
    let out = run(&["audit", "tail"], &[("BREAKGLASS_AUDIT_LOG", f)]);
    assert_eq!(text(&out.stdout).lines().count(), 20, "20 by default");
    let _ = std::fs::remove_file(&p);
}

#[test]
fn check_config_judges_the_audit_trail_and_writes_nothing_to_it() {
    let dir = std::env::temp_dir().join(format!("bg-cli-check-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.log");
    let mut env = complete_env(stored_phc());
    env.push(("BREAKGLASS_AUDIT_LOG", log.display().to_string()));
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(line(&stdout, "audit_log").starts_with("OK"), "{stdout}");
    assert!(
        line(&stdout, "audit_key").starts_with("WARNING"),
        "{stdout}"
    );
    assert!(!log.exists(), "check-config wrote to the audit trail");

    // A directory that does not exist is refused at configure, with the reason.
    let missing = dir.join("no-such-dir/audit.log");
    let mut env = complete_env(stored_phc());
    env.push(("BREAKGLASS_AUDIT_LOG", missing.display().to_string()));
    env.push(("BREAKGLASS_AUDIT_KEY", "k3yS3cret".into()));
    let (code, stdout, stderr) = check(&env);
    assert_eq!(code, Some(2), "{stdout}");
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("cannot be used"), "{all}");
    assert!(!all.contains("k3yS3cret"));
    // A file this user cannot append to: every login would be refused while audit_required
    // is on; only a warning with it off. The probe leaves nothing behind.
    std::fs::create_dir(&log).unwrap();
    let mut env = complete_env(stored_phc());
    env.push(("BREAKGLASS_AUDIT_LOG", log.display().to_string()));
    let (code, stdout, _) = check(&env);
    assert_eq!(
        code,
        Some(2),
        "a directory at the path is refused at configure: {stdout}"
    );
    std::fs::remove_dir(&log).unwrap();
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "the probe is removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "integration/hookserver.rs"]
#[allow(dead_code)]
mod hookserver;

#[test]
fn drill_prints_a_line_per_channel_and_fails_when_one_does() {
    use hookserver::{Answer, HookServer};
    let ok = HookServer::always(Answer::Status(200, "{}"));
    let slack = HookServer::always(Answer::Status(200, "ok"));
    let url = ok.url("/hook");
    let list = format!("slack={}", slack.url("/services/T/B/SECRETPATH"));
    let out = run(
        &["drill"],
        &[
            ("BREAKGLASS_ALERT_WEBHOOK_URL", &url),
            ("BREAKGLASS_ALERT_WEBHOOKS", &list),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("DELIVERED") && lines[0].contains("webhook json"));
    assert!(lines[1].starts_with("DELIVERED") && lines[1].contains("webhook slack"));
    assert!(
        !stdout.contains("SECRETPATH"),
        "URLs are redacted: {stdout}"
    );
    let body: serde_json::Value = serde_json::from_str(&ok.requests()[0].body).unwrap();
    assert_eq!(body["event"], "break_glass_drill");

    let refusing = HookServer::always(Answer::Status(400, r#"{"errors":["bad routing key"]}"#));
    let list = format!("pagerduty={}", refusing.url("/v2/enqueue"));
    let out = run(
        &["drill"],
        &[
            ("BREAKGLASS_ALERT_WEBHOOK_URL", &url),
            ("BREAKGLASS_ALERT_WEBHOOKS", &list),
            ("BREAKGLASS_PAGERDUTY_ROUTING_KEY", "KEYVALUE123"),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let refused = stdout
        .lines()
        .find(|l| l.starts_with("REFUSED"))
        .expect("a REFUSED line");
    assert!(
        refused.contains("webhook pagerduty")
            && refused.contains("HTTP 400: {\"errors\":[\"bad routing key\"]}"),
        "{refused}"
    );
    assert!(!stdout.contains("KEYVALUE123"));

    // Nothing configured, and bad usage.
    let out = run(&["drill"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("alert channel"));
    assert_eq!(
        run(&["drill", "--timeout-ms", "x"], &[]).status.code(),
        Some(2)
    );
    let out = run(
        &["drill"],
        &[("BREAKGLASS_ALERT_WEBHOOKS", "teams=http://x")],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn drill_reads_an_env_file_without_a_shell_and_applies_only_its_keys() {
    use hookserver::{Answer, HookServer};
    let hook = HookServer::always(Answer::Status(200, "{}"));
    let dir = std::env::temp_dir().join(format!("bg-drill-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("breakglass.env");
    // What a service's env file holds: an unquoted argon2 hash (a shell would expand
    // `$argon2id`, `$v` ...), comments, `export`, quotes, and a `$` in the receiver's URL that
    // must reach the receiver as it is written.
    let env_file = format!(
        "# break-glass service\n\
         BREAKGLASS_PASSWORD_HASH={phc}\n\
         \n\
         export BREAKGLASS_ALERT_WEBHOOK_URL={url}\n\
         BREAKGLASS_ALERT_WEBHOOK_SECRET='s3cr$t'\n\
         BREAKGLASS_ALLOWED_IPS=not-an-address\n\
         OTHER_SERVICE_VAR=$(rm -rf /)\n",
        phc = stored_phc(),
        url = hook.url("/hook/$HOME/$argon2id$v=19"),
    );
    std::fs::write(&file, env_file).unwrap();
    let path = file.to_str().unwrap();
    // A refused key the drill does not use, in the environment too: it must not stop it.
    let out = run(
        &["drill", "--env-file", path],
        &[("BREAKGLASS_MAX_ATTEMPTS", "not a number")],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("DELIVERED"), "{stdout}");
    let got = hook.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook/$HOME/$argon2id$v=19");
    assert!(!stdout.contains("s3cr") && !text(&out.stderr).contains("s3cr"));

    // A refused key the drill does use is still refused, named by its key (never its value).
    std::fs::write(
        &file,
        "BREAKGLASS_ALERT_WEBHOOKS=teams=http://x/SECRETPATH\n",
    )
    .unwrap();
    let out = run(&["drill", "--env-file", path], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("BREAKGLASS_ALERT_WEBHOOKS"), "{stderr}");
    assert!(!stderr.contains("SECRETPATH"), "{stderr}");
    // A line that is not NAME=VALUE, and a missing file: usage errors with the place.
    std::fs::write(&file, "# ok\nBREAKGLASS_MAILER\n").unwrap();
    let out = run(&["drill", "--env-file", path], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("breakglass.env:2"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let out = run(&["drill", "--env-file", path], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read --env-file"));
}

#[test]
fn check_config_lists_every_receiver_and_needs_a_routing_key_for_pagerduty() {
    let mut env = complete_env(stored_phc());
    env.push((
        "BREAKGLASS_ALERT_WEBHOOKS",
        "slack=https://hooks.slack.com/services/T/B/SL4CKT0K3N pagerduty=https://events.pagerduty.com/v2/enqueue".into(),
    ));
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        line(&stdout, "pagerduty_routing_key").starts_with("ERROR"),
        "{stdout}"
    );
    let alert = line(&stdout, "alert channel");
    assert!(
        alert.contains("webhook slack https://hooks.slack.com:443")
            && alert.contains("webhook pagerduty https://events.pagerduty.com:443"),
        "{alert}"
    );
    assert!(!stdout.contains("SL4CKT0K3N"));
    env.push(("BREAKGLASS_PAGERDUTY_ROUTING_KEY", "R0UT1NGK3Y".into()));
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("R0UT1NGK3Y"));
}

/// The newest code email's code in `outbox` (after the queue is flushed).
fn code_from(outbox: &std::path::Path) -> String {
    breakglass::flush(std::time::Duration::from_secs(30)).unwrap();
    const MARK: &str = "one-time code is: ";
    let mut codes = Vec::new();
    for entry in std::fs::read_dir(outbox).unwrap() {
        let path = entry.unwrap().path();
        let mail = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(i) = mail.find(MARK) {
            codes.push(mail[i + MARK.len()..i + MARK.len() + 6].to_string());
        }
        std::fs::remove_file(path).unwrap();
    }
    assert_eq!(codes.len(), 1, "want one code email");
    codes.pop().unwrap()
}

fn line_of<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The lockouts and the session are made by this process through the library, on a state_dir
/// in a temporary directory; `status`, `unlock` and `session end` run as the operator runs
/// them, with the same directory in their environment, and their effect is read back through
/// the library here and in the audit file the tool writes.
#[test]
fn status_unlock_and_session_end_act_on_the_shared_state_dir() {
    use breakglass::login;
    let base = std::env::temp_dir().join(format!("bg-cli-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("outbox")).unwrap();
    let state = base.join("state");
    let audit = base.join("audit.log");
    let state_s = state.to_str().unwrap();
    let mailer = format!("file://{}", base.join("outbox").display());
    let settings: [(&str, &str); 9] = [
        ("state_dir", state_s),
        ("password_hash", stored_phc()),
        ("allowed_ips", "10.0.0.0/8"),
        ("max_attempts", "5"),
        ("max_global_failures", "3"),
        ("lockout_seconds", "900"),
        ("mailer", &mailer),
        ("from_email", "bg@example.com"),
        ("otp_email", "admin@example.com"),
    ];
    for (k, v) in settings {
        breakglass::configure(k, Some(v)).unwrap();
    }
    let env: Vec<(&str, &str)> = vec![
        ("BREAKGLASS_STATE_DIR", state_s),
        ("BREAKGLASS_MAX_GLOBAL_FAILURES", "3"),
        ("BREAKGLASS_AUDIT_LOG", audit.to_str().unwrap()),
    ];
    let pw = b"check-config password";

    // 10.0.0.1 locks itself with five wrong passwords.
    for _ in 0..5 {
        assert_eq!(
            login::begin(Some(b"10.0.0.1"), b"wrong"),
            Err(breakglass::Error::WrongPassword)
        );
    }
    // 10.0.0.3 logs in: a session.
    login::begin(Some(b"10.0.0.3"), pw).unwrap();
    let code = code_from(&base.join("outbox"));
    let token = login::complete(Some(b"10.0.0.3"), Some(code.as_bytes())).unwrap();
    login::session_check(token.as_bytes()).unwrap();
    // 10.0.0.2 passes the password three times and guesses wrong: every login is locked.
    for _ in 0..3 {
        login::begin(Some(b"10.0.0.2"), pw).unwrap();
        code_from(&base.join("outbox"));
        assert_eq!(
            login::complete(Some(b"10.0.0.2"), Some(b"abcdef")),
            Err(breakglass::Error::Invalid)
        );
    }
    assert!(matches!(
        login::begin(Some(b"10.0.0.4"), pw),
        Err(breakglass::Error::LockedOut(_))
    ));

    let out = run(&["status"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        line_of(&stdout, "store:"),
        [format!("store: state_dir {state_s}")]
    );
    assert_eq!(line_of(&stdout, "code:"), ["code: none pending"]);
    assert!(line_of(&stdout, "session:")[0].starts_with("session: active, started "));
    assert_eq!(
        line_of(&stdout, "overall:"),
        ["overall: 3 wrong code(s) in the last 900 s (limit 3)"]
    );
    let global = line_of(&stdout, "overall lockout:");
    assert!(global[0].contains("EVERY LOGIN LOCKED"), "{stdout}");
    let locked = line_of(&stdout, "locked:");
    assert_eq!(locked.len(), 1, "{stdout}");
    assert!(locked[0].starts_with("locked: 10.0.0.1 (") && locked[0].ends_with(" s left)"));
    let failing = line_of(&stdout, "failures:").join("\n");
    assert!(failing.contains("failures: 10.0.0.1 5 of 5"), "{stdout}");
    assert!(failing.contains("failures: 10.0.0.2 3 of 5"), "{stdout}");

    // One address: its lockout only.
    let out = run(&["unlock", "10.0.0.1"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "unlocked 10.0.0.1\n");
    assert_eq!(
        login::attempts_left(b"10.0.0.1"),
        Ok(0),
        "everyone is still locked"
    );
    let stdout = text(&run(&["status"], &env).stdout);
    assert_eq!(line_of(&stdout, "locked:"), ["locked: none"], "{stdout}");
    assert!(line_of(&stdout, "overall lockout:")[0].contains("LOCKED"));

    // --all: the overall lockout too; then a code is pending (its age only).
    let out = run(&["unlock", "--all"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(login::attempts_left(b"10.0.0.1"), Ok(5));
    login::begin(Some(b"10.0.0.4"), pw).unwrap();
    let code = code_from(&base.join("outbox"));
    let out = run(&["status"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(
        line_of(&stdout, "overall lockout:"),
        ["overall lockout: none"]
    );
    assert_eq!(line_of(&stdout, "failures:"), ["failures: none"]);
    assert!(line_of(&stdout, "code:")[0].starts_with("code: pending, issued "));
    assert!(!stdout.contains(&code) && !text(&out.stderr).contains(&code));

    // The session, ended by the operator, is refused with the reason.
    let out = run(&["session", "end"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ended the active session\n");
    assert_eq!(
        login::session_check(token.as_bytes()),
        Err(breakglass::Error::NoSession("the session was ended"))
    );
    let out = run(&["session", "end"], &env);
    assert_eq!(text(&out.stdout), "no session was active\n");
    let stdout = text(&run(&["status"], &env).stdout);
    assert_eq!(line_of(&stdout, "session:"), ["session: none active"]);

    // The tool's actions are in the trail.
    let trail = std::fs::read_to_string(&audit).unwrap();
    let resets: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("attempts_reset"))
        .collect();
    assert_eq!(resets.len(), 2, "{trail}");
    assert!(
        resets[0].contains("10.0.0.1 unlocked by the operator"),
        "{trail}"
    );
    assert!(
        resets[1].contains("every address and the overall limit"),
        "{trail}"
    );
    assert_eq!(
        trail
            .lines()
            .filter(|l| l.contains("session_ended") && l.contains("ended by the operator"))
            .count(),
        1,
        "{trail}"
    );
    assert!(!trail.contains(&code));
    breakglass::config::reset();
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn status_unlock_and_session_end_refuse_in_process_state_and_bad_usage() {
    for args in [
        &["status"][..],
        &["unlock", "10.0.0.1"],
        &["unlock", "--all"],
        &["session", "end"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("lives inside the service")
                && err.contains("BREAKGLASS_STATE_DIR")
                && err.contains("BREAKGLASS_SLOT_URL"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    for args in [
        &["unlock"][..],
        &["unlock", "not-an-address"],
        &["unlock", "10.0.0.1", "--all"],
        &["session"],
        &["session", "start"],
        &["status", "extra"],
    ] {
        assert_eq!(run(args, &[]).status.code(), Some(2), "{args:?}");
    }
    // A refused environment is a usage error, not a state one.
    let out = run(&["status"], &[("BREAKGLASS_STATE_DIR", "relative/dir")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("absolute"));
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bg-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn recovery_codes_new_prints_the_codes_once_and_writes_only_hashes_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("recovery-new");
    let file = dir.join("codes");
    let path = file.display().to_string();
    let out = run(
        &["recovery-codes", "new"],
        &[("BREAKGLASS_RECOVERY_CODES_FILE", &path)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let codes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.len() == 19 && l.matches('-').count() == 3)
        .collect();
    assert_eq!(codes.len(), 10, "ten by default: {stdout}");
    let stored = std::fs::read_to_string(&file).unwrap();
    for c in &codes {
        assert!(!stored.contains(c) && !stored.contains(&c.replace('-', "")));
        assert!(!text(&out.stderr).contains(c));
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let set = breakglass::recovery::CodesFile::load(&file).unwrap();
    assert_eq!(set.find(codes[9].as_bytes()), Some(9));

    // -n, and a new set replaces the old one entirely.
    let out = run(&["recovery-codes", "new", "-n", "3", "--file", &path], &[]);
    assert_eq!(out.status.code(), Some(0));
    let set = breakglass::recovery::CodesFile::load(&file).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.find(codes[0].as_bytes()), None);

    // Usage errors, and a symlink is never written through.
    assert_eq!(run(&["recovery-codes"], &[]).status.code(), Some(2));
    assert_eq!(
        run(&["recovery-codes", "new", "-n", "0", "--file", &path], &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["recovery-codes", "new"], &[]).status.code(), Some(2));
    let link = dir.join("link");
    std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
    let out = run(
        &[
            "recovery-codes",
            "new",
            "--file",
            &link.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("elsewhere").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_refuses_a_missing_outbox_and_judges_the_recovery_codes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("recovery-check");
    let phc = stored_phc();
    let mut env = complete_env(phc);
    env.retain(|(k, _)| *k != "BREAKGLASS_SLOT_URL" && *k != "BREAKGLASS_MAILER");

    // A file:// outbox whose directory does not exist: an ERROR (the flow cannot work).
    let mut e = env.clone();
    e.push((
        "BREAKGLASS_MAILER",
        format!("file://{}", dir.join("missing").display()),
    ));
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ERROR") && l.contains("mailer:") && l.contains("outbox")),
        "{stdout}"
    );
    // A directory no one can create a file in, root included: an ERROR too.
    let mut e = env.clone();
    e.push(("BREAKGLASS_MAILER", "file:///proc".into()));
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ERROR") && l.contains("not writable by this user")),
        "{stdout}"
    );
    env.push(("BREAKGLASS_MAILER", format!("file://{}", dir.display())));
    let (code, stdout, _) = check(&env);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(line(&stdout, "recovery_codes_file").starts_with("INFO"));

    // Missing, wrong mode, a symlink: ERROR with the reason.
    let file = dir.join("codes");
    let mut e = env.clone();
    e.push(("BREAKGLASS_RECOVERY_CODES_FILE", file.display().to_string()));
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        line(&stdout, "recovery_codes_file").starts_with("ERROR"),
        "{stdout}"
    );
    breakglass::recovery::write_new(&file, 2).unwrap();
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(0), "{stdout}");
    let l = line(&stdout, "recovery_codes_file");
    assert!(
        l.starts_with("WARNING") && l.contains("fewer than 3"),
        "{stdout}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        line(&stdout, "recovery_codes_file").contains("writable by group"),
        "{stdout}"
    );
    breakglass::recovery::write_new(&file, 5).unwrap();
    let (code, stdout, _) = check(&e);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        line(&stdout, "recovery_codes_file").starts_with("OK"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn drill_sends_a_code_email_and_fails_naming_it_when_the_mailer_is_dead() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = hookserver::HookServer::always(hookserver::Answer::Status(200, "{}"));
    let url = hook.url("/hook");
    let mailer = format!("smtp://127.0.0.1:{dead}?tls=opportunistic");
    let env = [
        ("BREAKGLASS_ALERT_WEBHOOK_URL", url.as_str()),
        ("BREAKGLASS_MAILER", mailer.as_str()),
        ("BREAKGLASS_FROM_EMAIL", "bg@example.com"),
        ("BREAKGLASS_OTP_EMAIL", "oncall@example.com"),
        ("BREAKGLASS_DELIVERY_TIMEOUT_MS", "1000"),
    ];
    let out = run(&["drill"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let code_line = stdout
        .lines()
        .find(|l| l.contains("code email oncall@example.com"))
        .unwrap_or_else(|| panic!("no code email channel: {stdout}"));
    assert!(code_line.starts_with("UNREACHABLE"), "{code_line}");
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("DELIVERED") && l.contains("webhook json")));

    // A mailer that answers: the [DRILL] code email arrives in the outbox, with no code.
    let dir = scratch("drill-outbox");
    let mailer = format!("file://{}", dir.display());
    let env = [
        ("BREAKGLASS_MAILER", mailer.as_str()),
        ("BREAKGLASS_FROM_EMAIL", "bg@example.com"),
        ("BREAKGLASS_OTP_EMAIL", "oncall@example.com"),
    ];
    let out = run(&["drill"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let mails: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: [DRILL]") && mails[0].contains("To: oncall@example.com"));
    assert!(!mails[0].contains("one-time code is"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_and_unlock_on_a_damaged_state_file_fail_naming_it_and_change_nothing() {
    let dir = std::env::temp_dir().join(format!("bg-cli-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let state = dir.join("state");
    std::fs::write(&state, b"garbage\n").unwrap();
    let env = [("BREAKGLASS_STATE_DIR", dir.to_str().unwrap())];
    for args in [&["status"][..], &["unlock", "--all"], &["session", "end"]] {
        let out = run(args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(state.to_str().unwrap()), "{err}");
        assert!(out.stdout.is_empty());
    }
    // Never "repaired" into an empty state, which would lift every limit.
    assert_eq!(std::fs::read(&state).unwrap(), b"garbage\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
