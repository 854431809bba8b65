//! URLs in the configuration (`webhooks.url`, `passwords.breach_api`): parsed once, when the
//! configuration is read, and used as parsed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a service is: `http://` or `https://`, host, port, path; with the text it was
/// written as. The default is no URL at all ([`HttpUrl::is_set`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path and query, "/" at least.
    pub path: String,
    text: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let uri: hyper::Uri = url.parse().map_err(|_| "is not a URL".to_string())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("names no host")?;
        if authority.as_str().contains('@') {
            return Err("must not carry a user name or password".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("names no host".into());
        }
        Ok(HttpUrl {
            tls,
            host: host.to_string(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            text: url.to_string(),
        })
    }

    /// Whether a URL was given.
    pub fn is_set(&self) -> bool {
        !self.text.is_empty()
    }

    /// Whether what is sent cannot be read on the way: TLS, or a loopback address.
    pub fn private(&self) -> bool {
        self.tls
            || self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The `Host` header.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }

    /// The URL without its query (which may carry a token), for logs.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let path = self.path.split('?').next().unwrap_or("/");
        format!("{scheme}://{}{path}", self.authority())
    }
}

/// Written as the text it was read from.
impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Read and parsed at once: a bad URL is a configuration error naming its key. An empty
/// string is no URL.
impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HttpUrl, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(HttpUrl::default());
        }
        HttpUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        let t = HttpUrl::parse("https://app.example.com/hooks?x=1").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/hooks?x=1"));
        assert_eq!(t.authority(), "app.example.com");
        let t = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (false, 8080, "/"));
        assert_eq!(t.authority(), "127.0.0.1:8080");
        let t = HttpUrl::parse("http://[::1]:81/x").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority()),
            ("::1", "[::1]:81".to_string())
        );
        for bad in [
            "ftp://x/",
            "app.example.com/hooks",
            "https:///x",
            "http://u:p@h/",
            "",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
