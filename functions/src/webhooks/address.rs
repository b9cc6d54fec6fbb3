//! Where a webhook may point: not at the deployment's own networks. A URL whose host
//! resolves to a loopback, private, link-local (cloud metadata), shared, multicast or
//! reserved address is refused, unless its host is listed in `CALLBACK_ALLOWED_HOSTS`
//! (`host[:port]`, comma-separated: a deployment's own receiver, the tests'). The rule is
//! applied when the task is submitted and again to the addresses a call connects to
//! (a name may resolve elsewhere by then).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `CALLBACK_ALLOWED_HOSTS`: hosts (and ports) webhooks may reach whatever they resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<(String, Option<u16>)>);

impl AllowedHosts {
    /// `host[:port],…`; an IPv6 host in brackets (`[::1]:8080`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| format!("{entry:?}: the port is not a number"))?;
                    (h, Some(port))
                }
                _ => (entry, None),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.contains(['/', '@', ' ']) {
                return Err(format!("{entry:?} is not host[:port]"));
            }
            hosts.push((host.to_ascii_lowercase(), port));
        }
        Ok(Self(hosts))
    }

    /// Whether `host` (as a URL names it, lowercase, IPv6 without brackets) is listed
    /// for `port`; `Some(false)` when it is listed for other ports only.
    pub fn allows(&self, host: &str, port: u16) -> Option<bool> {
        let mut listed = false;
        for (h, p) in &self.0 {
            if h == host {
                listed = true;
                if p.is_none_or(|p| p == port) {
                    return Some(true);
                }
            }
        }
        listed.then_some(false)
    }

    /// Whether `host` is listed at all (for any port).
    pub fn lists(&self, host: &str) -> bool {
        self.0.iter().any(|(h, _)| h == host)
    }
}

/// Why a webhook may not connect to `ip`, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = if a == 0 {
        "this network"
    } else if ip.is_loopback() {
        "loopback"
    } else if a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168) {
        "private"
    } else if a == 169 && b == 254 {
        "link-local (cloud metadata)"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier NAT)"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol assignments"
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        "documentation"
    } else if a == 198 && (18..20).contains(&b) {
        "benchmarking"
    } else if a >= 224 {
        "multicast or reserved"
    } else {
        return None;
    };
    Some(why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) reach the IPv4 address.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) && !(s[5] == 0 && s[6] == 0) {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    // Local-use NAT64 (64:ff9b:1::/48): a deployment's own translator, wherever it leads.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("local-use NAT64");
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2]));
    }
    let why = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique local (private, cloud metadata)"
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        "link-local"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo"
    } else {
        return None;
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_deployments_own_networks_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.192",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(
                forbidden(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
    }

    #[test]
    fn public_addresses_are_not() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip} is public");
        }
    }

    #[test]
    fn allowed_hosts_name_hosts_and_ports() {
        let allowed =
            AllowedHosts::parse(" Receiver.internal:9000, 127.0.0.1 ,[::1]:8080").unwrap();
        assert_eq!(allowed.allows("receiver.internal", 9000), Some(true));
        assert_eq!(allowed.allows("receiver.internal", 22), Some(false));
        assert_eq!(allowed.allows("127.0.0.1", 1), Some(true));
        assert_eq!(allowed.allows("::1", 8080), Some(true));
        assert_eq!(allowed.allows("example.com", 443), None);
        assert!(allowed.lists("receiver.internal"));
        assert!(AllowedHosts::parse("a:b").is_err());
        assert!(AllowedHosts::parse("user@host").is_err());
        assert_eq!(AllowedHosts::parse("").unwrap(), AllowedHosts::default());
    }
}
