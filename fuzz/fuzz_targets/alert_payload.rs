#![no_main]
//! Fuzz target `alert_payload`: see `fuzz/checks.rs` (`check_alert_payload`) for the property checked.

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(checks::quiet);
    checks::check_alert_payload(data);
});
