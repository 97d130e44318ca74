//! Reading C strings and writing C buffers, with bounds.
//!
//! Every string from C is scanned for its NUL up to a fixed limit, so an over-long input is
//! refused (or cut) without reading further. Nothing here keeps a pointer past the call.

use std::ffi::c_char;

/// A string argument as read from C.
pub enum CInput<'a> {
    /// The pointer was NULL.
    Null,
    /// The bytes before the NUL.
    Text(&'a [u8]),
    /// No NUL within the limit: the first `limit` bytes.
    TooLong(&'a [u8]),
}

/// Reads at most `limit` bytes of the NUL-terminated string at `ptr`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string (the C contract of every `const char *`
/// argument); bytes after its NUL are never read.
pub unsafe fn read<'a>(ptr: *const c_char, limit: usize) -> CInput<'a> {
    if ptr.is_null() {
        return CInput::Null;
    }
    let bytes = ptr.cast::<u8>();
    let mut len = 0;
    // SAFETY: each byte read lies at or before the string's NUL, which the caller guarantees.
    while len < limit && unsafe { *bytes.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are initialised and, by contract, outlive this call.
    let text = unsafe { std::slice::from_raw_parts(bytes, len) };
    // SAFETY: the byte at `len` is read only when `len == limit`, that is when none of the first
    // `limit` bytes was the NUL: the string, whose NUL the caller guarantees, then reaches at
    // least to index `limit`, so that byte is part of it.
    if len == limit && unsafe { *bytes.add(len) } != 0 {
        CInput::TooLong(text)
    } else {
        CInput::Text(text)
    }
}

/// Reads a required UTF-8 string: NULL, an over-long string and bad UTF-8 are errors.
///
/// # Safety
/// As for [`read`].
pub unsafe fn read_str<'a>(ptr: *const c_char, limit: usize, what: &str) -> crate::Result<&'a str> {
    use crate::Error;
    match unsafe { read(ptr, limit) } {
        CInput::Null => Err(Error::Null),
        CInput::TooLong(_) => Err(Error::Argument(format!(
            "{what} is longer than {limit} bytes"
        ))),
        CInput::Text(b) => {
            std::str::from_utf8(b).map_err(|_| Error::Argument(format!("{what} is not UTF-8")))
        }
    }
}
