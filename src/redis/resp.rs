//! RESP2, the Redis wire format, for the shared slot: commands out, bounded replies in.
//!
//! Owns the encoding of a command (an array of bulk strings) and the reply parser with its
//! bounds: one reply is at most [`MAX_REPLY_BYTES`] on the wire, an array has at most
//! [`MAX_ARRAY_LEN`] elements, arrays nest at most [`MAX_DEPTH`] deep, and a status, error or
//! length line is at most [`MAX_LINE`] bytes. It must never buffer more than that for a reply,
//! never allocate by a length it has not checked against what is left, and never keep the bytes
//! of a reply (they may hold a code) once the reply is parsed: the read buffer is wiped.

use std::fmt;
use std::io::{self, Read};

use zeroize::{Zeroize, Zeroizing};

/// The most one reply may take on the wire, framing included.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The most elements one array reply may have (the slot's largest is three).
pub(crate) const MAX_ARRAY_LEN: usize = 16;
/// How deep arrays may nest (the slot's replies are flat).
pub(crate) const MAX_DEPTH: usize = 4;
/// The longest line (type byte, text or length, CRLF).
pub(crate) const MAX_LINE: usize = 4096;

/// Room for one whole line, and for reads in useful chunks.
const BUF_LEN: usize = 2 * MAX_LINE;

/// One parsed reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Status(String),
    /// `-text`: the server refused the command.
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` and n bytes (`None`: the null bulk string). Wiped when dropped.
    Bulk(Option<Zeroizing<Vec<u8>>>),
    /// `*n` and n replies (`None`: the null array).
    Array(Option<Vec<Reply>>),
}

/// Why no reply could be read. Shows no reply content.
#[derive(Debug)]
pub enum WireError {
    /// The stream failed (a timeout included).
    Io(io::Error),
    /// The peer closed the connection before the reply was complete.
    Closed,
    /// The reply would exceed [`MAX_REPLY_BYTES`] or a line [`MAX_LINE`].
    TooLarge,
    /// An array longer than [`MAX_ARRAY_LEN`].
    TooLong,
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not RESP2.
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) if e.kind() == io::ErrorKind::TimedOut => f.write_str("timed out"),
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Closed => f.write_str("connection closed by the server"),
            WireError::TooLarge => write!(f, "reply larger than {MAX_REPLY_BYTES} bytes"),
            WireError::TooLong => write!(f, "array reply longer than {MAX_ARRAY_LEN}"),
            WireError::TooDeep => write!(f, "array reply nested deeper than {MAX_DEPTH}"),
            WireError::Malformed(why) => write!(f, "malformed reply ({why})"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

/// A command as RESP: an array of bulk strings. Wiped when dropped (arguments may hold a code).
pub fn encode(args: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let size: usize = args.iter().map(|a| a.len() + 16).sum::<usize>() + 16;
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads replies from `R` through a small buffer of its own, within the bounds above.
pub struct ReplyReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl<R> Drop for ReplyReader<R> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl<R: Read> ReplyReader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> Self {
        ReplyReader {
            inner,
            buf: vec![0u8; BUF_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream underneath, for writing commands.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Whether bytes beyond the last reply arrived: the stream is then out of step.
    pub fn has_unread(&self) -> bool {
        self.pos < self.end
    }

    /// Reads one whole reply of at most [`MAX_REPLY_BYTES`].
    #[cfg(test)]
    pub fn read_reply(&mut self) -> Result<Reply, WireError> {
        self.read_reply_within(MAX_REPLY_BYTES)
    }

    /// Reads one whole reply of at most `limit` bytes on the wire (the login state's script,
    /// whose reply is the state itself, allows more than [`MAX_REPLY_BYTES`]).
    pub fn read_reply_within(&mut self, limit: usize) -> Result<Reply, WireError> {
        let mut budget = limit;
        let reply = self.value(&mut budget, 0);
        if self.pos == self.end {
            // Nothing left to keep: wipe what the reply passed through.
            self.buf[..self.end].zeroize();
            self.pos = 0;
            self.end = 0;
        }
        reply
    }

    fn value(&mut self, budget: &mut usize, depth: usize) -> Result<Reply, WireError> {
        let line = Zeroizing::new(self.line(budget)?);
        let (&kind, rest) = line
            .split_first()
            .ok_or(WireError::Malformed("empty line"))?;
        match kind {
            b'+' => Ok(Reply::Status(String::from_utf8_lossy(rest).into_owned())),
            b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
            b':' => Ok(Reply::Int(integer(rest)?)),
            b'$' => match length(rest)? {
                None => Ok(Reply::Bulk(None)),
                Some(n) => self.bulk(budget, n).map(|b| Reply::Bulk(Some(b))),
            },
            b'*' => match length(rest)? {
                None => Ok(Reply::Array(None)),
                Some(n) if n > MAX_ARRAY_LEN => Err(WireError::TooLong),
                Some(_) if depth >= MAX_DEPTH => Err(WireError::TooDeep),
                Some(n) => {
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.value(budget, depth + 1)?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
            },
            _ => Err(WireError::Malformed("unknown reply type")),
        }
    }

    /// A line without its CRLF, charged to `budget`.
    fn line(&mut self, budget: &mut usize) -> Result<Vec<u8>, WireError> {
        loop {
            let pending = &self.buf[self.pos..self.end];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let n = i + 1;
                if n > MAX_LINE {
                    return Err(WireError::TooLarge);
                }
                charge(budget, n)?;
                let raw = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                if n < 2 || raw[n - 2] != b'\r' {
                    return Err(WireError::Malformed("line not ended by CRLF"));
                }
                return Ok(raw[..n - 2].to_vec());
            }
            if pending.len() >= MAX_LINE || pending.len() >= *budget {
                return Err(WireError::TooLarge);
            }
            self.fill()?;
        }
    }

    /// `n` bytes and their CRLF, charged to `budget` before anything is allocated.
    fn bulk(&mut self, budget: &mut usize, n: usize) -> Result<Zeroizing<Vec<u8>>, WireError> {
        charge(budget, n.checked_add(2).ok_or(WireError::TooLarge)?)?;
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        while out.len() < n {
            if self.pos == self.end {
                self.fill()?;
            }
            let take = (n - out.len()).min(self.end - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
        }
        while self.end - self.pos < 2 {
            self.fill()?;
        }
        if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
            return Err(WireError::Malformed("bulk string not ended by CRLF"));
        }
        self.pos += 2;
        Ok(out)
    }

    /// Reads more after what is buffered, moving it to the front first.
    fn fill(&mut self) -> Result<(), WireError> {
        if self.pos > 0 {
            let len = self.end - self.pos;
            self.buf.copy_within(self.pos..self.end, 0);
            self.buf[len..self.end].zeroize();
            self.pos = 0;
            self.end = len;
        }
        if self.end == self.buf.len() {
            // Cannot happen within the bounds above; never mistake it for the end of stream.
            return Err(WireError::TooLarge);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WireError::Io(e)),
            }
        }
    }
}

fn charge(budget: &mut usize, n: usize) -> Result<(), WireError> {
    *budget = budget.checked_sub(n).ok_or(WireError::TooLarge)?;
    Ok(())
}

/// `-?[0-9]+` that fits an i64; nothing else (no `+`, no spaces, no empty text).
fn integer(text: &[u8]) -> Result<i64, WireError> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(WireError::Malformed("not an integer"));
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(WireError::Malformed("integer out of range"))
}

/// A bulk or array length: -1 is null, other negatives are malformed.
fn length(text: &[u8]) -> Result<Option<usize>, WireError> {
    match integer(text)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| WireError::Malformed("negative length")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, WireError> {
        ReplyReader::new(bytes).read_reply()
    }

    fn bulk(b: &[u8]) -> Reply {
        Reply::Bulk(Some(Zeroizing::new(b.to_vec())))
    }

    /// Hands out one byte per read, as a trickling peer would.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((&b, rest)) if !buf.is_empty() => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            &encode(&[b"EVALSHA", b"ab", b"1", b"k\r\n"])[..],
            b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$3\r\nk\r\n\r\n"
        );
    }

    #[test]
    fn every_reply_type_parses() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-NOSCRIPT x\r\n").unwrap(),
            Reply::Error("NOSCRIPT x".into())
        );
        assert_eq!(parse(b":-42\r\n").unwrap(), Reply::Int(-42));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"$0\r\n\r\n").unwrap(), bulk(b""));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Array(None));
        let take = b"*3\r\n$18\r\nv1:123456:1:600000\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n";
        let want = Reply::Array(Some(vec![
            bulk(b"v1:123456:1:600000"),
            bulk(b"1700000000"),
            bulk(b"123456"),
        ]));
        assert_eq!(parse(take).unwrap(), want);
        // The same bytes one at a time, as a slow peer sends them.
        assert_eq!(ReplyReader::new(OneByte(take)).read_reply().unwrap(), want);
    }

    #[test]
    fn replies_in_sequence_and_leftovers() {
        let mut r = ReplyReader::new(&b":1\r\n:2\r\n"[..]);
        assert_eq!(r.read_reply().unwrap(), Reply::Int(1));
        assert!(r.has_unread());
        assert_eq!(r.read_reply().unwrap(), Reply::Int(2));
        assert!(!r.has_unread());
        assert!(matches!(r.read_reply(), Err(WireError::Closed)));
    }

    #[test]
    fn oversize_bulk_is_refused_before_reading_it() {
        // The peer need not send the bytes: the length alone is refused.
        assert!(matches!(parse(b"$65535\r\n"), Err(WireError::TooLarge)));
        assert!(matches!(
            parse(b"$9223372036854775807\r\n"),
            Err(WireError::TooLarge)
        ));
        // Just inside the bound it is read.
        let n = MAX_REPLY_BYTES - 2 - "$65528\r\n".len();
        let mut ok = format!("${n}\r\n").into_bytes();
        ok.extend(std::iter::repeat_n(b'x', n));
        ok.extend_from_slice(b"\r\n");
        assert_eq!(ok.len(), MAX_REPLY_BYTES);
        assert!(matches!(parse(&ok), Ok(Reply::Bulk(Some(b))) if b.len() == n));
        // One more byte and the whole reply is too large.
        let mut over = format!("${}\r\n", n + 1).into_bytes();
        over.extend(std::iter::repeat_n(b'x', n + 1));
        over.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&over), Err(WireError::TooLarge)));
    }

    #[test]
    fn the_bound_covers_the_whole_reply_not_each_part() {
        // Sixteen 8 KiB strings: each fits, together they do not.
        let mut many = format!("*{MAX_ARRAY_LEN}\r\n").into_bytes();
        for _ in 0..MAX_ARRAY_LEN {
            many.extend_from_slice(b"$8192\r\n");
            many.extend(std::iter::repeat_n(b'y', 8192));
            many.extend_from_slice(b"\r\n");
        }
        assert!(matches!(parse(&many), Err(WireError::TooLarge)));
    }

    #[test]
    fn endless_lines_are_cut_at_the_line_bound() {
        let long = vec![b'a'; 1 << 20];
        let mut line = b"+".to_vec();
        line.extend_from_slice(&long);
        assert!(matches!(parse(&line), Err(WireError::TooLarge)));
        let mut digits = b":".to_vec();
        digits.extend(std::iter::repeat_n(b'1', 1 << 20));
        assert!(matches!(parse(&digits), Err(WireError::TooLarge)));
        // A line that ends, but only after the bound (it fits the read buffer).
        let mut over = b"-".to_vec();
        over.extend(std::iter::repeat_n(b'e', MAX_LINE + 100));
        over.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&over), Err(WireError::TooLarge)));
        let mut at = b"-".to_vec();
        at.extend(std::iter::repeat_n(b'e', MAX_LINE - 3));
        at.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&at), Ok(Reply::Error(e)) if e.len() == MAX_LINE - 3));
    }

    #[test]
    fn huge_array_counts_are_refused() {
        assert!(matches!(parse(b"*17\r\n"), Err(WireError::TooLong)));
        assert!(matches!(
            parse(b"*2147483647\r\n:1\r\n:1\r\n"),
            Err(WireError::TooLong)
        ));
        assert!(parse(b"*16\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        assert!(parse(b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n").is_ok());
        assert!(matches!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),
            Err(WireError::TooDeep)
        ));
        let endless = b"*1\r\n".repeat(100_000);
        assert!(matches!(parse(&endless), Err(WireError::TooDeep)));
    }

    #[test]
    fn negative_lengths_other_than_null_are_malformed() {
        for bad in [&b"$-2\r\n"[..], b"*-2\r\n", b"$-9223372036854775808\r\n"] {
            assert!(
                matches!(parse(bad), Err(WireError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            &b"hello\r\n"[..],
            b"\r\n",
            b"+OK\n",
            b":+5\r\n",
            b": 5\r\n",
            b":\r\n",
            b":-\r\n",
            b":99999999999999999999\r\n",
            b"$3\r\nabcXY",
            b"$x\r\n",
            b"%1\r\n", // RESP3 map
            b">1\r\n", // RESP3 push
            b"_\r\n",  // RESP3 null
        ] {
            assert!(
                matches!(parse(bad), Err(WireError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(parse(b"$5\r\nab"), Err(WireError::Closed)));
        assert!(matches!(parse(b""), Err(WireError::Closed)));
    }
}
