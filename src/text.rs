//! Text helpers every layer shares: making untrusted text safe to show, bounding it and marking
//! the cut, hex, and strict decimal numbers.
//!
//! Owns the bounds on untrusted input (`MAX_IP_BYTES`, `MAX_IP_CHARS`) and the mark a cut text
//! ends with. A leaf: it imports nothing from the crate, and must never log, allocate beyond
//! its result, or hide that it cut something.

/// Longest `ip` input read, in bytes; longer input is cut (on a character boundary) and marked.
pub const MAX_IP_BYTES: usize = 1024;
/// Longest `ip` text kept, in characters; longer input is cut and marked.
pub const MAX_IP_CHARS: usize = 256;
/// What follows a cut `ip`, whichever bound cut it.
pub const TRUNCATED_MARK: &str = "...(truncated)";
/// `bytes` lossily decoded and bounded: at most [`MAX_IP_BYTES`] bytes of input (a character
/// split by that bound is dropped whole) and [`MAX_IP_CHARS`] characters, followed by
/// [`TRUNCATED_MARK`] when either bound cut something.
pub fn bounded_input(bytes: &[u8]) -> String {
    let mut cut = false;
    let mut input = bytes;
    if input.len() > MAX_IP_BYTES {
        cut = true;
        input = &input[..MAX_IP_BYTES];
        // Back off to the start of a UTF-8 sequence that the byte bound split, so the cut
        // does not show up as a replacement character.
        let lead = input
            .iter()
            .rposition(|&b| b & 0xc0 != 0x80)
            .filter(|&i| input.len() - i <= 4);
        if let Some(i) = lead {
            let needed = match input[i] {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            if input.len() - i < needed {
                input = &input[..i];
            }
        }
    }
    let text = String::from_utf8_lossy(input);
    let mut out: String = if text.chars().count() > MAX_IP_CHARS {
        cut = true;
        text.chars().take(MAX_IP_CHARS).collect()
    } else {
        text.into_owned()
    };
    if cut {
        out.push_str(TRUNCATED_MARK);
    }
    out
}

/// Replaces every control character (CR, LF, NUL, DEL, C1, ...) with a visible `\u{..}`.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to `max` characters, marked with [`TRUNCATED_MARK`] when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push_str(TRUNCATED_MARK);
    cut
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    ::hex::encode(bytes)
}

/// A strict decimal number: one or more ASCII digits and nothing else (no sign, no spaces, no
/// `_`), at most `u64::MAX`.
pub fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_strict() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b"-1",
            b" 1",
            b"1 ",
            b"1_0",
            b"1e3",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_and_bounded() {
        assert_eq!(hex([0u8, 0xab, 0xff]), "00abff");
        assert_eq!(bounded("abcd", 4), "abcd");
        assert_eq!(bounded("abcde", 4), format!("abcd{TRUNCATED_MARK}"));
    }
}
