//! Hot path from Rust, with divan: the C exports and the safe API, next to what a Rust user
//! would write instead (a code from the OS generator, compared with `subtle`, under a std Mutex).
//! `make bench` runs it; results go into BENCHMARKS.md.

use std::ffi::c_char;

use breakglass::ffi::slot::{bg_generate, bg_verify};
use subtle::ConstantTimeEq;

#[path = "shared/hand_rolled.rs"]
mod hand_rolled;

fn main() {
    // The library's one-time set-up (fork handlers, logger, default settings) happens on the
    // first call; its cost is in BENCHMARKS.md's start-up figures, not here. (The generates
    // also have a fixed sample size: divan sizes samples from the first one, and a slow first
    // call left c_abi_generate at one call per sample, each carrying the timer's own cost.)
    let _ = ffi_code();
    let _ = breakglass::verify(b"000000");
    divan::main();
}

fn ffi_code() -> [c_char; 7] {
    let mut buf = [0 as c_char; 7];
    assert_eq!(
        unsafe { bg_generate(buf.as_mut_ptr(), buf.len()) },
        breakglass::ffi::bg_status::BG_OK
    );
    buf
}

#[divan::bench(sample_size = 800)]
fn c_abi_generate() -> [c_char; 7] {
    ffi_code()
}

#[divan::bench]
fn c_abi_verify(bencher: divan::Bencher) {
    bencher
        .with_inputs(ffi_code)
        .bench_local_refs(|code| unsafe { bg_verify(code.as_ptr()) });
}

#[divan::bench(sample_size = 800)]
fn safe_api_generate() -> breakglass::Otp {
    breakglass::generate().unwrap()
}

#[divan::bench]
fn safe_api_verify(bencher: divan::Bencher) {
    bencher
        .with_inputs(|| breakglass::generate().unwrap())
        .bench_local_refs(|code| breakglass::verify(code.as_str().as_bytes()));
}

#[divan::bench(sample_size = 800)]
fn hand_rolled_generate_mutex_getrandom() -> [u8; 6] {
    hand_rolled::generate()
}

#[divan::bench]
fn hand_rolled_verify_mutex_subtle(bencher: divan::Bencher) {
    bencher
        .with_inputs(hand_rolled::generate)
        .bench_local_refs(|code| {
            let pending = hand_rolled::PENDING.lock().unwrap().take();
            pending.is_some_and(|p| bool::from(p.ct_eq(code)))
        });
}
