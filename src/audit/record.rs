//! One audit record: its fields, its canonical bytes, its MAC, and its line in the file.
//!
//! The canonical bytes of a record are the compact JSON object of its fields without `mac`,
//! keys in exactly this order: `seq`, `time`, `event`, `id`, `ip`, `host`, `pid`, `detail`,
//! `prev`; strings escaped as serde_json writes them, numbers as plain integers, a missing
//! `id` as `null`. The line in the file is the same object with `,"mac":"<hex>"` before the
//! closing brace, and a newline. The MAC is HMAC-SHA256 keyed with `audit_key` (plain SHA-256
//! without a key) over the previous record's `mac` as 64 ASCII hex digits followed by this
//! record's canonical bytes; the first record's previous `mac` is [`GENESIS`].
//!
//! Pure logic: no I/O. It must never take a code, a password or a session token as a field
//! (the callers in `audit` only pass event names, addresses, ids and fixed texts).

/// The `prev` of the first record in a file: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest `ip` kept, in characters; longer text is cut and marked.
pub const MAX_IP_CHARS: usize = crate::text::MAX_IP_CHARS;
/// Longest `detail` kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 512;

/// One record as it stands in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1 for the first record of a file, then one more than the previous record's.
    pub seq: u64,
    /// RFC 3339 UTC, microseconds.
    pub time: String,
    /// What happened, e.g. `login_succeeded` (see `audit::Event`).
    pub event: String,
    /// The alert's event id, where there is one.
    pub id: Option<String>,
    /// The client's address as given (bounded), or "" when the event has none.
    pub ip: String,
    /// This machine's host name.
    pub host: String,
    /// The writing process.
    pub pid: u32,
    /// A fixed-form explanation (which check refused, which channel, which key).
    pub detail: String,
    /// The previous record's `mac` ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's MAC, 64 lowercase hex digits.
    pub mac: String,
}

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

impl Record {
    /// The canonical bytes: see the module documentation.
    pub fn canonical(&self) -> String {
        format!(
            "{{\"seq\":{},\"time\":{},\"event\":{},\"id\":{},\"ip\":{},\"host\":{},\"pid\":{},\
             \"detail\":{},\"prev\":{}}}",
            self.seq,
            js(&self.time),
            js(&self.event),
            self.id.as_deref().map_or_else(|| "null".to_owned(), js),
            js(&self.ip),
            js(&self.host),
            self.pid,
            js(&self.detail),
            js(&self.prev),
        )
    }

    /// The MAC this record should carry, under `key`.
    pub fn compute_mac(&self, key: Option<&[u8]>) -> String {
        mac_over(key, &self.prev, self.canonical().as_bytes())
    }

    /// The line in the file, newline included.
    pub fn line(&self) -> String {
        let mut c = self.canonical();
        c.pop();
        format!("{c},\"mac\":{}}}\n", js(&self.mac))
    }

    /// Reads a line (without its newline). `None`: not a record in this format.
    pub fn parse(line: &[u8]) -> Option<Record> {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        let o = v.as_object()?;
        if o.len() != 10 {
            return None;
        }
        let s = |k: &str| o.get(k)?.as_str().map(str::to_owned);
        Some(Record {
            seq: o.get("seq")?.as_u64()?,
            time: s("time")?,
            event: s("event")?,
            id: match o.get("id")? {
                serde_json::Value::Null => None,
                other => Some(other.as_str()?.to_owned()),
            },
            ip: s("ip")?,
            host: s("host")?,
            pid: u32::try_from(o.get("pid")?.as_u64()?).ok()?,
            detail: s("detail")?,
            prev: s("prev")?,
            mac: s("mac")?,
        })
    }

    /// A one-line, human-readable form (for `breakglass audit tail`); control characters in
    /// the untrusted fields are escaped.
    pub fn readable(&self) -> String {
        let esc = crate::text::escape_controls;
        let mut out = format!("#{} {} {}", self.seq, self.time, self.event);
        if !self.ip.is_empty() {
            out.push_str(&format!(" ip={}", esc(&self.ip)));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!(" id={}", esc(id)));
        }
        out.push_str(&format!(" host={} pid={}", esc(&self.host), self.pid));
        if !self.detail.is_empty() {
            out.push_str(&format!(" detail=\"{}\"", esc(&self.detail)));
        }
        out
    }
}

/// HMAC-SHA256 (or SHA-256 without a key) over `prev` and `canonical`, as hex.
pub fn mac_over(key: Option<&[u8]>, prev: &str, canonical: &[u8]) -> String {
    let parts: [&[u8]; 2] = [prev.as_bytes(), canonical];
    let bytes = match key {
        Some(k) => crate::digest::hmac_sha256(k, &parts),
        None => crate::digest::sha256(&parts),
    };
    crate::text::hex(bytes)
}

/// The event of a record that changes the chain's key: written under the key in force before
/// it; the records after it are under the next key. Its `detail` is `bound: next key <proof>`
/// (the writer knew both keys) or `unbound: …` (a writer found the previous record under
/// another key: a process started with another `audit_key`).
pub const KEY_CHANGED: &str = "audit_key_changed";
/// The event of the first record of a file that continues a rotated one: its `prev` and `seq`
/// continue the previous file's chain.
pub const ROTATED: &str = "audit_rotated";
/// The `detail` of a key change whose writer did not know the previous key.
pub const UNBOUND_DETAIL: &str = "unbound: the previous record is under another key";
const BOUND_PREFIX: &str = "bound: next key ";

/// What a key-change record with `seq` and `prev` proves about the next key: the HMAC under
/// the next key of the record's place in the chain (so it cannot be moved to another place),
/// or "none". Binds the keys without showing either.
pub fn binding_proof(next: Option<&[u8]>, seq: u64, prev: &str) -> String {
    match next {
        None => "none".to_owned(),
        Some(k) => mac_over(
            Some(k),
            prev,
            format!("breakglass audit key binding {seq}").as_bytes(),
        ),
    }
}

/// The `detail` of a bound key change.
pub fn bound_detail(proof: &str) -> String {
    format!("{BOUND_PREFIX}{proof}")
}

/// The proof a bound key change carries (`Some("none")` for a change to no key); `None`: the
/// record is not a bound key change.
pub fn bound_proof(r: &Record) -> Option<&str> {
    if r.event != KEY_CHANGED {
        return None;
    }
    r.detail.strip_prefix(BOUND_PREFIX)
}

/// Whether `next` is the key that the bound key change `r` names.
pub fn binds(r: &Record, next: Option<&[u8]>) -> bool {
    bound_proof(r).is_some_and(|p| {
        use subtle::ConstantTimeEq;
        bool::from(
            p.as_bytes()
                .ct_eq(binding_proof(next, r.seq, &r.prev).as_bytes()),
        )
    })
}

/// Whether the record after `r` is to be written under `key`: `r` is a bound key change to
/// `key`, or `r` itself is under `key`.
pub fn continues_under(r: &Record, key: Option<&[u8]>) -> bool {
    if bound_proof(r).is_some() {
        binds(r, key)
    } else {
        r.compute_mac(key) == r.mac
    }
}

/// The head of a chain: the last record's `seq` and `mac`, as an anchor keeps it and as
/// `--anchor SEQ:MAC` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The last record's `seq`.
    pub seq: u64,
    /// The last record's `mac`.
    pub mac: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.mac)
    }
}

impl std::str::FromStr for Head {
    type Err = &'static str;

    /// `SEQ:MAC`: a decimal `seq` of at least 1 and 64 lowercase hex digits.
    fn from_str(s: &str) -> Result<Head, &'static str> {
        let (seq, mac) = s.trim().split_once(':').ok_or("expected SEQ:MAC")?;
        let seq: u64 = seq
            .parse()
            .ok()
            .filter(|&n| n > 0 && seq.bytes().all(|b| b.is_ascii_digit()))
            .ok_or("SEQ must be a whole number from 1")?;
        if mac.len() != 64 || !mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("MAC must be 64 lowercase hex digits");
        }
        Ok(Head {
            seq,
            mac: mac.to_owned(),
        })
    }
}

pub use crate::text::bounded;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record {
            seq: 1,
            time: "2026-12-03T08:00:00.000000Z".into(),
            event: "login_refused".into(),
            id: None,
            ip: "192.0.2.1\n\"x\"".into(),
            host: "h".into(),
            pid: 42,
            detail: "wrong password".into(),
            prev: GENESIS.into(),
            mac: String::new(),
        };
        r.mac = r.compute_mac(None);
        r
    }

    #[test]
    fn the_canonical_form_is_fixed_and_the_line_parses_back() {
        let r = sample();
        assert_eq!(
            r.canonical(),
            format!(
                "{{\"seq\":1,\"time\":\"2026-12-03T08:00:00.000000Z\",\"event\":\"login_refused\",\
                 \"id\":null,\"ip\":\"192.0.2.1\\n\\\"x\\\"\",\"host\":\"h\",\"pid\":42,\
                 \"detail\":\"wrong password\",\"prev\":\"{GENESIS}\"}}"
            )
        );
        let line = r.line();
        assert!(line.ends_with("\"}\n") && line.matches('\n').count() == 1);
        let back = Record::parse(line.trim_end().as_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.line(), line);
    }

    #[test]
    fn the_mac_depends_on_key_prev_and_every_field() {
        let r = sample();
        let plain = r.compute_mac(None);
        assert_eq!(plain.len(), 64);
        assert_ne!(r.compute_mac(Some(b"k")), plain);
        assert_ne!(r.compute_mac(Some(b"k")), r.compute_mac(Some(b"K")));
        let mut other = r.clone();
        other.prev = "1".repeat(64);
        assert_ne!(other.compute_mac(None), plain);
        let mut other = r.clone();
        other.pid = 43;
        assert_ne!(other.compute_mac(None), plain);
    }

    #[test]
    fn a_binding_names_the_next_key_at_its_place_only() {
        let mut r = sample();
        r.event = KEY_CHANGED.into();
        r.detail = bound_detail(&binding_proof(Some(b"new"), r.seq, &r.prev));
        assert!(binds(&r, Some(b"new")));
        assert!(!binds(&r, Some(b"old")) && !binds(&r, None));
        assert!(!r.detail.contains("new"));
        r.seq = 2;
        assert!(!binds(&r, Some(b"new")), "moved to another place");
        r.detail = bound_detail("none");
        assert!(binds(&r, None));
        let h: Head = format!("7:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!((h.seq, h.to_string()), (7, format!("7:{}", "a".repeat(64))));
        for bad in ["7", "0:aa", "x:aa", &format!("7:{}", "A".repeat(64))] {
            assert!(bad.parse::<Head>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_cuts_and_marks() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(
            bounded("abcd", 3),
            format!("abc{}", crate::text::TRUNCATED_MARK)
        );
    }
}
