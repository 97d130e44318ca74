//! `allowed_ips`: the addresses and CIDR ranges a break-glass login may come from.
//!
//! A bare address is a /32 (IPv4) or /128 (IPv6); an IPv4-mapped IPv6 entry or client is its
//! IPv4 address; an IPv4 range never matches an IPv6 client and the other way round. It must
//! never accept a malformed entry (the whole value is refused when it is set).

use std::net::IpAddr;

use ipnet::IpNet;

/// The default when `allowed_ips` is unset: this host only.
pub const DEFAULT: &str = "127.0.0.1, ::1";

/// A parsed allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parses comma-separated addresses and CIDRs; an empty list allows no one.
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let mut nets = Vec::new();
        for entry in text.split(',').map(str::trim) {
            if entry.is_empty() {
                if text.trim().is_empty() {
                    break;
                }
                return Err("an empty entry".into());
            }
            let net = match entry.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(format!("{entry:?} is not an address or CIDR range")),
                },
            };
            nets.push(normalise_net(net)?);
        }
        Ok(AllowList(nets))
    }

    /// Whether `ip` (normalised by [`normalise`], as a parsed client address is) lies in any
    /// entry.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// Whether the list allows no one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The entries as `parse` read them (IPv4-mapped ones as IPv4), comma-separated: for reports
/// such as `breakglass check-config`. Addresses are not secrets.
impl std::fmt::Display for AllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 becomes IPv4; everything else is kept.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// `::ffff:a.b.c.d/96+n` is `a.b.c.d/n`; a CIDR with host bits set is refused (a typo such as
/// `10.0.0.1/8` for `10.0.0.0/8` would otherwise silently widen or narrow the list).
fn normalise_net(net: IpNet) -> Result<IpNet, String> {
    if net.addr() != net.network() {
        return Err(format!(
            "{net} has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    if let IpNet::V6(v6) = net {
        if let IpAddr::V4(v4) = normalise(IpAddr::V6(v6.addr())) {
            if v6.prefix_len() >= 96 {
                let n = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?;
                return Ok(IpNet::V4(n));
            }
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(list: &str, ip: &str) -> bool {
        AllowList::parse(list)
            .unwrap()
            .allows(normalise(ip.parse().unwrap()))
    }

    #[test]
    fn addresses_and_ranges() {
        assert!(allows("10.0.0.0/8", "10.255.255.255"));
        assert!(!allows("10.0.0.0/8", "11.0.0.0"));
        assert!(allows("192.0.2.7", "192.0.2.7"));
        assert!(!allows("192.0.2.7", "192.0.2.8"));
        assert!(allows("2001:db8::/32", "2001:db8:ffff::1"));
        assert!(!allows("2001:db8::/32", "2001:db9::1"));
        assert!(allows("::1", "::1"));
        assert!(!allows("::1", "::2"));
        // IPv4-mapped is IPv4, in the list and in the client.
        assert!(allows("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(allows("::ffff:10.0.0.0/104", "10.1.2.3"));
        // Cross-family never matches.
        assert!(!allows("0.0.0.0/0", "2001:db8::1"));
        assert!(!allows("::/0", "10.0.0.1"));
        assert!(allows("0.0.0.0/0, ::/0", "2001:db8::1"));
        assert!(!allows("", "127.0.0.1"));
        assert!(allows(DEFAULT, "127.0.0.1") && allows(DEFAULT, "::1"));
        assert!(!allows(DEFAULT, "127.0.0.2"));
    }

    #[test]
    fn shown_as_parsed() {
        let l =
            AllowList::parse(" 10.0.0.0/8,192.0.2.7 , ::ffff:10.0.0.0/104, 2001:db8::/32").unwrap();
        assert_eq!(
            l.to_string(),
            "10.0.0.0/8, 192.0.2.7/32, 10.0.0.0/8, 2001:db8::/32"
        );
        assert_eq!(AllowList::parse("").unwrap().to_string(), "");
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "not-an-ip",
            "10.0.0.0/8,,10.1.0.0/16",
            "10.0.0.0/8,",
            "2001:db8::1/129",
            "10.0.0.0 /8",
        ] {
            assert!(AllowList::parse(bad).is_err(), "{bad:?}");
        }
    }
}
