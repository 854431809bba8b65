//! The checks' DNS: mail-auth's hickory resolver, asking `mail.dns_resolver` or the
//! system's servers, and what its errors mean for a check.

use std::net::SocketAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{DnsError, Error, MessageAuthenticator};

/// A resolver for `server` (None: /etc/resolv.conf), or why none could be made.
pub fn build(server: Option<SocketAddr>) -> Result<MessageAuthenticator, String> {
    let built = match server {
        None => MessageAuthenticator::new_system_conf(),
        Some(addr) => {
            let mut name_server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut name_server.connections {
                connection.port = addr.port();
            }
            let mut options = ResolverOpts::default();
            // A server of its own answers from its zones; retrying elsewhere is pointless.
            options.timeout = Duration::from_secs(5);
            options.attempts = 1;
            MessageAuthenticator::new(
                ResolverConfig::from_name_servers(vec![name_server]),
                options,
            )
        }
    };
    built.map_err(|e| format!("no DNS resolver: {e}"))
}

/// What a failed lookup means.
pub enum Failed {
    /// The name has no such record (NXDOMAIN, or no record of the type).
    Missing,
    /// A record is there but is not one of the kind asked for (or does not parse).
    Unusable(String),
    /// The DNS did not answer, or answered with an error: nothing can be concluded.
    Unreachable(String),
}

pub fn classify(error: Error) -> Failed {
    match error {
        Error::Dns(DnsError::RecordNotFound(code))
            if code == ResponseCode::NXDomain || code == ResponseCode::NoError =>
        {
            Failed::Missing
        }
        Error::Dns(DnsError::RecordNotFound(code)) => {
            Failed::Unreachable(format!("the DNS server answered {code}"))
        }
        Error::Dns(DnsError::Resolver(e)) => Failed::Unreachable(e),
        Error::Io(e) => Failed::Unreachable(e),
        other => Failed::Unusable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn resolver(text: &str) -> Result<Option<String>, String> {
        let mut config = Config::default();
        config.mail.dns_resolver = text.into();
        config
            .dns_resolver()
            .map(|a| a.map(|a| a.to_string()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_resolver_setting_takes_an_address_with_an_optional_port() {
        assert_eq!(resolver(""), Ok(None));
        assert_eq!(resolver("192.0.2.53"), Ok(Some("192.0.2.53:53".into())));
        assert_eq!(
            resolver("127.0.0.1:5353"),
            Ok(Some("127.0.0.1:5353".into()))
        );
        assert_eq!(
            resolver("2001:db8::53"),
            Ok(Some("[2001:db8::53]:53".into()))
        );
        assert_eq!(resolver("[::1]:5353"), Ok(Some("[::1]:5353".into())));
        let bad = resolver("dns.example.com").unwrap_err();
        assert!(bad.contains("mail.dns_resolver"), "{bad}");
    }
}
