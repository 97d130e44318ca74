//! The one-time code itself: six ASCII digits that wipe themselves when dropped.
//!
//! Owns generation (from the OS random source, without modulo bias), parsing of submitted
//! codes, and the constant-time comparison. It must never format a code into `Debug` output or
//! a log line: the only way to read the digits is [`Otp::as_str`].

use rand::rngs::SysRng;
use rand::TryRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Number of digits in a code.
pub const OTP_LEN: usize = 6;

/// Codes are uniform over 0..CODE_SPACE.
const CODE_SPACE: u32 = 1_000_000;

/// The largest multiple of CODE_SPACE that fits in a u32; draws at or above it are rejected so
/// that every code is exactly as likely as every other.
const REJECT_FROM: u32 = u32::MAX - (u32::MAX % CODE_SPACE);
const _: () = assert!(REJECT_FROM % CODE_SPACE == 0 && u32::MAX - REJECT_FROM < CODE_SPACE);

/// A six-digit one-time code. Wiped from memory when dropped.
#[derive(Clone)]
pub struct Otp([u8; OTP_LEN]);

impl Drop for Otp {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Otp {
    /// Draws a fresh code from the operating system's CSPRNG.
    ///
    /// Each draw goes to the kernel (getrandom), so no generator state exists that a `fork()`
    /// could duplicate into two processes.
    pub fn generate() -> Result<Otp> {
        loop {
            let draw = SysRng
                .try_next_u32()
                .map_err(|_| Error::Internal("the OS random source failed"))?;
            if draw < REJECT_FROM {
                return Ok(Otp::from_number(draw % CODE_SPACE));
            }
        }
    }

    fn from_number(mut n: u32) -> Otp {
        let mut digits = [b'0'; OTP_LEN];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        n.zeroize();
        Otp(digits)
    }

    /// Accepts exactly six ASCII digits and nothing else (no sign, space or newline).
    pub fn parse(input: &[u8]) -> Option<Otp> {
        let digits: [u8; OTP_LEN] = input.try_into().ok()?;
        if digits.iter().all(u8::is_ascii_digit) {
            Some(Otp(digits))
        } else {
            None
        }
    }

    /// The digits, for writing into the caller's buffer or an email body.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8; OTP_LEN] {
        &self.0
    }

    /// Compares in time independent of where the codes differ.
    pub fn ct_eq(&self, other: &Otp) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for Otp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Otp(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_six_ascii_digits() {
        assert!(Otp::parse(b"012345").is_some());
        for bad in [
            &b""[..],
            b"12345",
            b"1234567",
            b" 123456",
            b"12345\n",
            b"12345a",
            b"\xff\xfe\xfd\xfc\xfb\xfa",
            "１２３４５６".as_bytes(),
        ] {
            assert!(Otp::parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn from_number_pads_with_zeros() {
        assert_eq!(Otp::from_number(42).as_str(), "000042");
        assert_eq!(Otp::from_number(999_999).as_str(), "999999");
    }

    #[test]
    fn debug_never_shows_digits() {
        let code = Otp::parse(b"987654").unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }

    #[test]
    fn ct_eq_matches_equality() {
        let a = Otp::parse(b"111111").unwrap();
        assert!(a.ct_eq(&Otp::parse(b"111111").unwrap()));
        assert!(!a.ct_eq(&Otp::parse(b"111112").unwrap()));
    }
}
