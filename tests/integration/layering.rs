//! The library's layering, checked: every `crate::…` edge between the top-level modules of
//! `src/` (outside their unit tests) must be in [`ALLOWED`], and [`ALLOWED`] itself must point
//! one way (no cycle), so the next change cannot quietly bring a circle back.
//!
//! Bottom to top: `error`, `text`, `digest` (leaves) · `sync`, `sys`, `fork` (the OS) · `config` (plain data: the
//! key table, the value parsers, the snapshot) · `net` · `redis` · `otp` · `audit` · `notify` ·
//! `login` · the crate root's entry points (`configure`, which also records the change in the
//! audit trail) · `ffi`. A module may use any module below it, never one above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every allowed edge `from -> to`. `crate` stands for the crate root's own items.
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("text", &[]),
    ("digest", &[]),
    ("sync", &[]),
    ("sys", &["error"]),
    ("fork", &["sync"]),
    ("config", &["error", "text", "sys", "fork"]),
    ("net", &["error", "sys", "fork"]),
    (
        "redis",
        &["error", "text", "digest", "sys", "fork", "config", "net"],
    ),
    (
        "otp",
        &[
            "error", "text", "sync", "sys", "fork", "config", "net", "redis",
        ],
    ),
    (
        "audit",
        &[
            "error", "text", "digest", "sync", "sys", "fork", "config", "redis",
        ],
    ),
    (
        "notify",
        &[
            "error", "text", "digest", "sys", "fork", "config", "net", "otp", "audit",
        ],
    ),
    (
        "login",
        &[
            "error", "text", "digest", "sync", "sys", "fork", "config", "redis", "otp", "audit",
            "notify",
        ],
    ),
    (
        "crate",
        &["error", "config", "audit", "notify", "otp", "login"],
    ),
    (
        "ffi",
        &[
            "crate", "error", "text", "sync", "sys", "fork", "config", "otp", "audit", "notify",
            "login",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests (a trailing `#[cfg(test)] mod tests`) and without
/// comments (doc links may name any module).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after each `crate::`, including every name of a `crate::{a, b::c}`
/// group.
fn targets(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `breakglass::crate::` cannot occur; skip `$crate::` in macros.
        if code[..i].ends_with('$') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "bin" && n != "lib.rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// What the crate root re-exports (`pub use error::{Error, Result};`): name -> its module, so
/// that `crate::Error` counts as an edge to `error`.
fn root_reexports(src: &Path) -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !name.is_empty() {
                out.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    out
}

/// Every edge in `src/`, as `from -> {to: first file that makes it}`.
fn edges() -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let reexports = root_reexports(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        if first == "bin" {
            continue;
        }
        let from = if first == "lib.rs" {
            "crate".to_owned()
        } else {
            first.trim_end_matches(".rs").to_owned()
        };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for to in targets(&code) {
            let to = if mods.contains(&to) {
                to
            } else {
                reexports
                    .get(&to)
                    .cloned()
                    .unwrap_or_else(|| "crate".to_owned())
            };
            if to != from {
                out.entry((from.clone(), to))
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    out
}

#[test]
fn every_edge_points_down() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let bad: Vec<String> = edges()
        .into_iter()
        .filter(|((from, to), _)| {
            !allowed
                .get(from.as_str())
                .is_some_and(|tos| tos.contains(&to.as_str()))
        })
        .map(|((from, to), file)| format!("{from} -> {to} (in src/{file})"))
        .collect();
    assert!(
        bad.is_empty(),
        "edges not in tests/integration/layering.rs ALLOWED (a module may only use the ones \
         below it):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_allowed_edges_form_no_cycle() {
    // Each module may only name modules listed before it.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (from, tos) in ALLOWED {
        for to in *tos {
            assert!(
                seen.contains(to),
                "{from} -> {to}: {to} is not below {from}"
            );
        }
        seen.insert(from);
    }
}

#[test]
fn every_module_is_placed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let placed: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    for m in modules(&src) {
        assert!(
            placed.contains(m.as_str()),
            "src/{m} has no place in ALLOWED"
        );
    }
}

#[test]
fn the_parser_sees_groups_and_paths() {
    let code = "use crate::{config::Settings, fork::Lazy};\nlet x = crate::text::hex(b);\n\
                // crate::ffi in a comment\n";
    let t = targets(&code_of(code));
    assert_eq!(
        t.into_iter().collect::<Vec<_>>(),
        ["config", "fork", "text"]
    );
}
