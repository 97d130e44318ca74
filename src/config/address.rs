//! The client address of a login attempt: parsed, normalised, and grouped for counting.
//!
//! An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address, for the allow-list and
//! the limiter alike, or one client would get two counters. IPv6 addresses are counted per /64:
//! one host usually holds a whole /64, so counting single addresses would hand it 2^64 of them.

use std::net::{IpAddr, Ipv6Addr};

/// The longest zone index accepted (Linux interface names are at most 15 bytes).
const MAX_ZONE: usize = 15;

/// A parsed, normalised client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// What the limiter counts failures against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKey {
    /// One IPv4 address.
    V4(u32),
    /// The /64 an IPv6 address lies in (its first 64 bits).
    V6(u64),
}

impl LimitKey {
    /// A stable text form, for keys in a shared store and for log lines.
    pub fn as_text(&self) -> String {
        match self {
            LimitKey::V4(a) => std::net::Ipv4Addr::from(*a).to_string(),
            LimitKey::V6(p) => {
                let net = Ipv6Addr::from((u128::from(*p)) << 64);
                format!("{net}/64")
            }
        }
    }
}

impl ClientAddr {
    /// Parses the caller's text exactly (no surrounding space): an IPv4 or IPv6 address,
    /// optionally `[v6]`. A zone index (`%eth0`) is accepted only on an IPv6 link-local address
    /// (fe80::/10), only as a short interface name, and is dropped. Anything else is `None`
    /// (and is refused as not allowed).
    pub fn parse(text: &str) -> Option<ClientAddr> {
        let t = text
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(text);
        let (t, zone) = match t.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (t, None),
        };
        let ip: IpAddr = t.parse().ok()?;
        if let Some(zone) = zone {
            let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            let name_ok = !zone.is_empty()
                && zone.len() <= MAX_ZONE
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !link_local || !name_ok {
                return None;
            }
        }
        Some(ClientAddr(normalise(ip)))
    }

    /// The canonical text of the address (never the caller's raw text): what alarms, logs and
    /// the audit trail carry.
    pub fn canonical(&self) -> String {
        self.0.to_string()
    }

    /// The limiter's key for this address.
    pub fn limit_key(&self) -> LimitKey {
        match self.0 {
            IpAddr::V4(a) => LimitKey::V4(u32::from(a)),
            IpAddr::V6(a) => LimitKey::V6((u128::from(a) >> 64) as u64),
        }
    }
}

pub use super::allowlist::normalise;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_is_v4_and_v6_groups_by_64() {
        let a = ClientAddr::parse("::ffff:10.0.0.1").unwrap();
        let b = ClientAddr::parse("10.0.0.1").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.limit_key(), b.limit_key());
        let x = ClientAddr::parse("2001:db8:1:2:aaaa::1").unwrap();
        let y = ClientAddr::parse("[2001:db8:1:2:ffff:ffff:ffff:ffff]").unwrap();
        let z = ClientAddr::parse("2001:db8:1:3::1").unwrap();
        assert_eq!(x.limit_key(), y.limit_key());
        assert_ne!(x.limit_key(), z.limit_key());
        assert_eq!(x.limit_key().as_text(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::parse("fe80::1%eth0").unwrap().0.to_string(),
            "fe80::1"
        );
        assert_eq!(
            ClientAddr::parse("[fe80::1%en0.5]").unwrap().canonical(),
            "fe80::1"
        );
        for bad in [
            "",
            "unknown",
            "10.0.0.1/8",
            "10.0.0",
            "1.2.3.4\r\n",
            "::g",
            "10.0.0.1%eth0",
            "10.0.0.1%[DRILL] scheduled test, no login - ignore",
            "2001:db8::1%eth0",
            "fe80::1%",
            "fe80::1%eth0\n",
            "fe80::1%a-very-long-interface-name",
            "::ffff:10.0.0.1%eth0",
        ] {
            assert!(ClientAddr::parse(bad).is_none(), "{bad:?}");
        }
    }
}
