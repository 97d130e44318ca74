//! The committed header is exactly what build.rs generates, and is well formed.

const COMMITTED: &str = include_str!("../../include/breakglass.h");
const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/breakglass.h"));

/// Functions in the C API: a new export must be counted here on purpose.
const FUNCTIONS: usize = 23;

/// A function declaration in the generated header.
fn is_function(line: &str) -> bool {
    !line.starts_with(char::is_whitespace)
        && !line.starts_with("typedef")
        && line.contains("bg_")
        && line.ends_with(");")
}

#[test]
fn committed_header_matches_the_generated_one() {
    assert!(
        COMMITTED == GENERATED,
        "include/breakglass.h differs from what build.rs generates: run `make header` and commit it"
    );
}

#[test]
fn header_version_matches_the_crate() {
    let line = format!(
        "#define BREAKGLASS_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(COMMITTED.contains(&line), "missing: {line}");
    let v = unsafe { std::ffi::CStr::from_ptr(breakglass::ffi::bg_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_macro_is_namespaced() {
    for line in COMMITTED.lines().filter(|l| l.starts_with("#define")) {
        let name = line.split_whitespace().nth(1).unwrap();
        assert!(
            name.starts_with("BG_") || name.starts_with("BREAKGLASS_"),
            "{name} leaks into the C namespace"
        );
    }
}

#[test]
fn every_function_and_status_is_documented() {
    let lines: Vec<&str> = COMMITTED.lines().collect();
    let mut functions = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_fn = is_function(line);
        let is_status = line.trim_start().starts_with("BG_") && line.contains(" = ");
        if is_fn || is_status {
            functions += usize::from(is_fn);
            assert!(lines[i - 1].trim() == "*/", "undocumented: {line}");
        }
    }
    assert_eq!(functions, FUNCTIONS, "the C API has {FUNCTIONS} functions");
}

#[test]
fn every_function_says_it_is_not_async_signal_safe() {
    // A host that calls into the library from a signal handler can deadlock on its locks or
    // its allocator: every function's own documentation must say so, not just the preamble.
    let lines: Vec<&str> = COMMITTED.lines().collect();
    let mut functions = 0;
    for (i, line) in lines.iter().enumerate() {
        if !is_function(line) {
            continue;
        }
        functions += 1;
        let start = lines[..i]
            .iter()
            .rposition(|l| l.trim_start().starts_with("/**"))
            .expect("documented");
        let doc = lines[start..i].join(" ");
        assert!(
            doc.contains("Not async-signal-safe"),
            "{line} does not say it is not async-signal-safe"
        );
    }
    assert_eq!(functions, FUNCTIONS);
    assert!(COMMITTED.contains("none is async-signal-safe"));
}

#[test]
fn bg_stats_has_the_counters_fields_in_order() {
    let body = COMMITTED
        .split("typedef struct bg_stats {")
        .nth(1)
        .expect("bg_stats in the header")
        .split("} bg_stats;")
        .next()
        .unwrap();
    let fields: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("uint64_t "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(fields, breakglass::Stats::FIELDS);
}
