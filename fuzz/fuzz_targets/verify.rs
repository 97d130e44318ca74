#![no_main]
//! Fuzz target `verify`: see `fuzz/checks.rs` (`check_verify`) for the property checked.

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(checks::quiet);
    checks::check_verify(data);
});
