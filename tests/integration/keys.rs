//! The configuration key table as the C ABI exports it, `bg_last_error`, and the README's
//! table checked against the library's.

use std::ffi::{c_char, CStr};

use breakglass::ffi::bg_status::*;
use breakglass::ffi::keys::{bg_config_key, bg_config_key_count, bg_config_key_info};
use breakglass::ffi::last_error::bg_last_error;

use super::{configure, serial};

struct KeyInfo {
    name: String,
    kind: String,
    default: Option<String>,
    min: u64,
    max: u64,
}

fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

fn keys() -> Vec<KeyInfo> {
    (0..bg_config_key_count())
        .map(|i| {
            let mut info = std::mem::MaybeUninit::<bg_config_key_info>::uninit();
            assert_eq!(unsafe { bg_config_key(i, info.as_mut_ptr()) }, BG_OK);
            let info = unsafe { info.assume_init() };
            assert!(!text(info.doc).unwrap().is_empty());
            KeyInfo {
                name: text(info.name).unwrap(),
                kind: text(info.kind).unwrap(),
                default: text(info.default_value),
                min: info.min,
                max: info.max,
            }
        })
        .collect()
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 1100];
    let st = unsafe { bg_last_error(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(st, BG_OK);
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_key_table_is_exported_and_its_defaults_are_accepted() {
    let _g = serial();
    let keys = keys();
    assert!(keys.len() >= 13);
    let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), keys.len(), "duplicate key names");
    for k in &keys {
        match k.kind.as_str() {
            "integer" => {
                assert!(k.min <= k.max, "{}", k.name);
                let d: u64 = k.default.as_deref().unwrap().parse().unwrap();
                assert!((k.min..=k.max).contains(&d), "{}", k.name);
                // The bounds are the ones configure enforces.
                assert_eq!(
                    configure(&k.name, Some(&(k.max + 1).to_string())),
                    BG_ERR_ARGUMENT
                );
                assert_eq!(configure(&k.name, Some(&k.max.to_string())), BG_OK);
                assert_eq!(configure(&k.name, Some(&k.min.to_string())), BG_OK);
            }
            "boolean" | "string" | "secret" | "email_list" => assert_eq!((k.min, k.max), (0, 0)),
            other => panic!("{}: unknown kind {other}", k.name),
        }
        if let Some(d) = &k.default {
            assert_eq!(configure(&k.name, Some(d)), BG_OK, "{}", k.name);
        }
        assert_eq!(configure(&k.name, None), BG_OK);
    }
    let mut info = std::mem::MaybeUninit::<bg_config_key_info>::uninit();
    assert_eq!(
        unsafe { bg_config_key(bg_config_key_count(), info.as_mut_ptr()) },
        BG_ERR_ARGUMENT
    );
    assert_eq!(
        unsafe { bg_config_key(0, std::ptr::null_mut()) },
        BG_ERR_NULL
    );
}

#[test]
fn the_readme_table_matches_the_library() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let strip = |c: &str| {
                c.trim_matches(|ch| ch == '|' || ch == ' ' || ch == '`')
                    .to_owned()
            };
            (strip(cells[0]), strip(cells[1]))
        })
        .collect();
    let keys = keys();
    let readme_names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    let lib_names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        readme_names, lib_names,
        "README's table lists other keys, or in another order"
    );
    for ((name, default), k) in rows.iter().zip(&keys) {
        match &k.default {
            Some(d) => assert_eq!(default, d, "README's default for {name}"),
            None => assert!(
                default.starts_with("unset"),
                "README's default for {name}: {default}"
            ),
        }
    }
}

#[test]
fn last_error_says_why_and_belongs_to_the_latest_call() {
    let _g = serial();
    assert_eq!(configure("otp_ttl_seconds", Some("0")), BG_ERR_ARGUMENT);
    assert_eq!(
        last_error(),
        "invalid argument: otp_ttl_seconds: must be from 1 to 86400"
    );
    assert_eq!(configure("no_such_key", Some("1")), BG_ERR_ARGUMENT);
    assert_eq!(last_error(), "invalid argument: unknown configuration key");
    // A refused secret is never echoed.
    assert_eq!(
        configure(
            "mailer",
            Some("smtp://bob:hunter2@127.0.0.1?tls=opportunistic")
        ),
        BG_ERR_ARGUMENT
    );
    let why = last_error();
    assert!(
        why.contains("tls=required") && !why.contains("hunter2"),
        "{why}"
    );
    // A zero-length buffer is refused without a write; a short one gets a cut, terminated text.
    let mut buf = [b'x' as c_char; 8];
    assert_eq!(
        unsafe { bg_last_error(buf.as_mut_ptr(), 0) },
        BG_ERR_BUFFER_TOO_SMALL
    );
    assert!(buf.iter().all(|&c| c == b'x' as c_char));
    assert_eq!(
        unsafe { bg_last_error(buf.as_mut_ptr(), buf.len()) },
        BG_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes(),
        b"invalid"
    );
    assert_eq!(
        unsafe { bg_last_error(std::ptr::null_mut(), 8) },
        BG_ERR_NULL
    );
    // Another thread has its own text.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
    // A successful call clears it.
    assert_eq!(configure("otp_ttl_seconds", None), BG_OK);
    assert_eq!(last_error(), "");
}
