//! What a Rust user would write instead of the library's slot: a code from one OS draw, six
//! digits, one pending code under a std Mutex. The baseline of `slot.rs` and
//! `generate_ratio.rs` (included by both with `#[path]`).

use std::sync::Mutex;

use rand::rngs::SysRng;
use rand::TryRng;

/// The one pending code.
pub static PENDING: Mutex<Option<[u8; 6]>> = Mutex::new(None);

/// Draws a code (rejection sampling, as the library does) and makes it the pending one.
pub fn generate() -> [u8; 6] {
    let n = loop {
        let x = SysRng.try_next_u32().unwrap();
        if x < 4_294_000_000 {
            break x % 1_000_000;
        }
    };
    let mut code = *b"000000";
    let mut m = n;
    for d in code.iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    *PENDING.lock().unwrap() = Some(code);
    code
}
