//! IP networks in the configuration (`guard.allow_only`, `guard.deny`,
//! `server.trusted_proxies`): parsed once, when the configuration is read.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP network; a bare address is a single-host network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net(pub IpNet);

impl Net {
    pub fn parse(entry: &str) -> Result<Net, String> {
        let entry = entry.trim();
        if let Ok(net) = entry.parse::<IpNet>() {
            return Ok(Net(net.trunc()));
        }
        entry
            .parse::<std::net::IpAddr>()
            .map(|ip| Net(IpNet::from(ip)))
            .map_err(|_| format!("{entry:?} is neither an IP address nor a CIDR network"))
    }
}

impl Serialize for Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Net, D::Error> {
        let text = String::deserialize(d)?;
        Net::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The networks of a list.
pub fn nets(list: &[Net]) -> Vec<IpNet> {
    list.iter().map(|n| n.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_networks() {
        assert_eq!(
            Net::parse("10.1.2.3/8").unwrap().0.to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            Net::parse(" 2001:db8::1 ").unwrap().0.to_string(),
            "2001:db8::1/128"
        );
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("example.com").is_err());
    }
}
