//! The bounded download client for log links found in mail.
//!
//! A link in a customer's mail is untrusted input that makes the desk's
//! machine open a connection, so every fetch is bounded: only allow-listed
//! hosts, only http(s), never a private, loopback or link-local address
//! (checked on the resolved addresses, so a public name that resolves to
//! 127.0.0.1 is refused too) unless the network is explicitly allowed, every
//! redirect checked like the first address, and limits on size and time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{DownloadConfig, Network};

/// Why a link was not fetched.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("not a valid http(s) link: {0}")]
    BadUrl(String),
    #[error("host {0} is not in analysis.download.allowed_hosts")]
    HostNotAllowed(String),
    #[error(
        "{host} is {address}, a {what} address: refused (see analysis.download.allowed_networks)"
    )]
    PrivateAddress {
        host: String,
        address: IpAddr,
        what: &'static str,
    },
    #[error("download larger than the limit of {limit_mb} MiB")]
    TooLarge { limit_mb: u64 },
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("download failed: {0}")]
    Network(String),
}

/// The IANA special-purpose address registries (IPv4 and IPv6, as of
/// 2025): none of these is a public host a link in a mail may lead to.
const SPECIAL_PURPOSE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (Teredo, ORCHID, …)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 SIDs"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

static SPECIAL: std::sync::LazyLock<Vec<(Network, &'static str)>> =
    std::sync::LazyLock::new(|| {
        SPECIAL_PURPOSE
            .iter()
            .filter_map(|(net, what)| Some((Network::parse(net).ok()?, *what)))
            .collect()
    });

/// What kind of non-public address `ip` is, if it is one. An IPv6 address
/// that carries an IPv4 one (mapped, 6to4) is judged by the IPv4 one too.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    if let IpAddr::V6(v6) = ip {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return restricted(IpAddr::V4(v4));
        }
        let s = v6.segments();
        if s[0] == 0x2002 {
            let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
            if let Some(what) = restricted(IpAddr::V4(v4)) {
                return Some(what);
            }
        }
    }
    SPECIAL
        .iter()
        .find(|(net, _)| net.contains(ip))
        .map(|(_, what)| *what)
}

/// The checks every address goes through, shared by the resolver and the
/// redirect policy.
#[derive(Debug, Clone)]
struct Guard {
    allowed_hosts: Vec<String>,
    networks: Vec<Network>,
}

impl Guard {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == pattern,
            }
        })
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), FetchError> {
        match restricted(ip) {
            Some(what) if !self.networks.iter().any(|n| n.contains(ip)) => {
                Err(FetchError::PrivateAddress {
                    host: host.to_string(),
                    address: ip,
                    what,
                })
            }
            _ => Ok(()),
        }
    }

    fn check_url(&self, url: &reqwest::Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(format!("{url} (only http and https)")));
        }
        let host = match url.host() {
            Some(h) => h,
            None => return Err(FetchError::BadUrl(url.to_string())),
        };
        let name = match host {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if !self.host_allowed(&name) {
            return Err(FetchError::HostNotAllowed(name));
        }
        // An address in the URL never reaches the resolver: check it here.
        match host {
            url::Host::Ipv4(ip) => self.check_ip(&name, IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => self.check_ip(&name, IpAddr::V6(ip)),
            url::Host::Domain(_) => Ok(()),
        }
    }
}

/// Resolves names and drops every address the guard refuses.
struct GuardedResolver(Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check_ip(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(e) => Box::new(e),
                    None => format!("{host} has no address").into(),
                };
                return Err(error);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A finished download, spooled to an anonymous temporary file.
#[derive(Debug)]
pub struct Download {
    pub file: std::fs::File,
    pub name: String,
    pub bytes: u64,
    pub final_url: String,
}

/// The download client. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    max_bytes: u64,
    timeout_secs: u64,
}

impl Fetcher {
    pub fn new(config: &DownloadConfig) -> Result<Fetcher, String> {
        let networks = config
            .allowed_networks
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        let guard = Arc::new(Guard {
            allowed_hosts: config.allowed_hosts.clone(),
            networks,
        });
        let redirect_guard = guard.clone();
        let max_redirects = config.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
            // The whole fetch is bounded by `fetch`'s deadline; this bounds a
            // server that goes silent half-way.
            .read_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 60)))
            .no_proxy()
            .user_agent(concat!("casebot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the download client: {e}"))?;
        Ok(Fetcher {
            client,
            guard,
            max_bytes: config.max_mb.saturating_mul(1 << 20),
            timeout_secs: config.timeout_secs.max(1),
        })
    }

    /// Checks a link without fetching it (host allow-list, literal addresses).
    pub fn check(&self, link: &str) -> Result<reqwest::Url, FetchError> {
        let url = reqwest::Url::parse(link).map_err(|_| FetchError::BadUrl(link.to_string()))?;
        self.guard.check_url(&url)?;
        Ok(url)
    }

    /// Downloads `link` into a temporary file.
    pub async fn fetch(&self, link: &str) -> Result<Download, FetchError> {
        let url = self.check(link)?;
        let deadline = Duration::from_secs(self.timeout_secs);
        match tokio::time::timeout(deadline, self.fetch_checked(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout_secs)),
        }
    }

    async fn fetch_checked(&self, url: reqwest::Url) -> Result<Download, FetchError> {
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let limit_mb = self.max_bytes >> 20;
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(FetchError::TooLarge { limit_mb });
        }
        let name = file_name(&response);
        let final_url = response.url().to_string();
        let mut file = tempfile::tempfile()
            .map_err(|e| FetchError::Network(format!("temporary file: {e}")))?;
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            bytes += chunk.len() as u64;
            if bytes > self.max_bytes {
                return Err(FetchError::TooLarge { limit_mb });
            }
            std::io::Write::write_all(&mut file, &chunk)
                .map_err(|e| FetchError::Network(format!("temporary file: {e}")))?;
        }
        std::io::Seek::rewind(&mut file).map_err(|e| FetchError::Network(e.to_string()))?;
        Ok(Download {
            file,
            name,
            bytes,
            final_url,
        })
    }

    /// Finds our own refusal inside reqwest's error chain, so that the message
    /// says "private address" rather than "error sending request".
    fn classify(&self, error: reqwest::Error) -> FetchError {
        if error.is_timeout() {
            return FetchError::Timeout(self.timeout_secs);
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if let Some(ours) = e.downcast_ref::<FetchError>() {
                return ours.clone();
            }
            source = e.source();
        }
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            message = format!("{message}: {e}");
            source = e.source();
        }
        FetchError::Network(message)
    }
}

/// The name to list a download under: Content-Disposition, else the URL's last segment.
fn file_name(response: &reqwest::Response) -> String {
    let from_header = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .find_map(|p| p.trim().strip_prefix("filename="))
        })
        .map(|n| n.trim_matches('"').to_string());
    let from_url = response
        .url()
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|s| !s.is_empty());
    let name = from_header
        .or(from_url)
        .unwrap_or_else(|| "download".into());
    crate::extract::base_name(&name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_addresses() {
        for (ip, what) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), Some(what), "{ip}");
        }
        assert_eq!(restricted("93.184.216.34".parse().unwrap()), None);
        assert_eq!(restricted("2606:2800::1".parse().unwrap()), None);
    }

    #[test]
    fn every_special_purpose_range_is_refused() {
        for ip in [
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "203.0.113.9",
            "255.255.255.255",
            "64:ff9b::a00:1",
            "64:ff9b::5db8:d822",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "fec0::1",
            "::7f00:1",
            "::10.0.0.1",
            "2001::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(restricted(ip.parse().unwrap()).is_some(), "{ip}");
        }
        // 6to4 of a public address is as public as that address.
        assert_eq!(restricted("2002:5db8:d822::1".parse().unwrap()), None);
    }

    #[test]
    fn networks() {
        let n = Network::parse("10.20.0.0/16").unwrap();
        assert!(n.contains("10.20.3.4".parse().unwrap()));
        assert!(!n.contains("10.21.0.1".parse().unwrap()));
        assert!(
            Network::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nope").is_err());
    }

    #[test]
    fn host_patterns_and_literal_addresses() {
        let guard = Guard {
            allowed_hosts: vec![
                "files.example.com".into(),
                "*.example.cn".into(),
                "169.254.169.254".into(),
            ],
            networks: vec![],
        };
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(
            guard
                .check_url(&url("https://files.example.com/a.zip"))
                .is_ok()
        );
        assert!(guard.check_url(&url("https://up.example.cn/a.zip")).is_ok());
        assert_eq!(
            guard.check_url(&url("https://example.cn/a.zip")),
            Err(FetchError::HostNotAllowed("example.cn".into()))
        );
        assert!(matches!(
            guard.check_url(&url("http://169.254.169.254/latest/meta-data")),
            Err(FetchError::PrivateAddress {
                what: "link-local",
                ..
            })
        ));
        assert!(matches!(
            guard.check_url(&url("ftp://files.example.com/x")),
            Err(FetchError::BadUrl(_))
        ));
    }
}
