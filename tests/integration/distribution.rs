//! Codes are six digits and uniform: each digit position passes a chi-square test.

use super::{generate, serial};

/// Chi-square critical value for 9 degrees of freedom at p = 0.0001: a correct generator fails
/// a position about once in ten thousand runs.
const CRITICAL: f64 = 33.72;

#[test]
fn every_digit_position_is_uniform() {
    let _g = serial();
    const N: usize = 300_000;
    let mut counts = [[0u64; 10]; 6];
    for _ in 0..N {
        let code = generate();
        assert_eq!(code.len(), 6);
        for (pos, b) in code.bytes().enumerate() {
            assert!(b.is_ascii_digit(), "{code}");
            counts[pos][(b - b'0') as usize] += 1;
        }
    }
    breakglass::clear().unwrap();
    let expected = N as f64 / 10.0;
    for (pos, row) in counts.iter().enumerate() {
        let chi2: f64 = row
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(
            chi2 < CRITICAL,
            "digit {pos}: chi-square {chi2:.2} over {CRITICAL} ({row:?})"
        );
    }
}
