//! `bg_generate` against one OS draw plus a mutex, measured in turns: blocks of each case
//! alternate, so that the machine's drift (other tenants, frequency changes) falls on every
//! case alike. divan (`benches/slot.rs`) runs one bench after the other, and on a shared
//! machine the ratio of two of its medians moved from 1.16 to 1.37 between runs.
//!
//! `cargo bench --bench generate_ratio` (run by `make bench`); `-- --smoke` runs a few blocks.

use std::ffi::c_char;
use std::hint::black_box;
use std::time::Instant;

use breakglass::ffi::bg_status::BG_OK;
use breakglass::ffi::slot::bg_generate;

#[path = "shared/hand_rolled.rs"]
mod hand_rolled;

fn c_abi() -> [c_char; 7] {
    let mut buf = [0 as c_char; 7];
    assert_eq!(unsafe { bg_generate(buf.as_mut_ptr(), buf.len()) }, BG_OK);
    buf
}

/// Mean nanoseconds per call of `f` over `n` calls.
fn block<T>(n: u32, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (blocks, per_block) = if smoke { (3, 100) } else { (300, 2000) };
    // One-time set-up (fork handlers, logger, default settings) outside the figures.
    c_abi();
    breakglass::generate().unwrap();
    hand_rolled::generate();
    let (mut c, mut safe, mut hand) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        hand.push(block(per_block, hand_rolled::generate));
        c.push(block(per_block, c_abi));
        safe.push(block(per_block, || breakglass::generate().unwrap()));
    }
    let (c, safe, hand) = (median(&mut c), median(&mut safe), median(&mut hand));
    println!("generate_c_abi_ns {c:.1}");
    println!("generate_safe_api_ns {safe:.1}");
    println!("generate_hand_rolled_ns {hand:.1}");
    println!("generate_ratio_c_abi {:.2}", c / hand);
    println!("generate_ratio_safe_api {:.2}", safe / hand);
    println!("generate_blocks {blocks} x {per_block}");
}
