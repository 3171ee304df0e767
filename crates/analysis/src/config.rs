//! `[analysis]`: where the rules live, how far a bundle may go, and which
//! links may be fetched.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Log analysis: where the rules live and how far a bundle may go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// The rules folder (relative to the config file).
    pub rules_dir: PathBuf,
    /// Language of explanations and next steps in reports: `zh-CN` or `en`.
    pub language: String,
    /// Two failure lines further apart than this (in seconds) are not one
    /// chain: the decisive error is looked for in the chain that ends in the
    /// final failure.
    pub chain_gap_secs: u64,
    /// Findings kept per analysis (the most recent ones win); noise is only counted.
    pub max_findings: usize,
    /// Largest single log or archive member, in MiB (uncompressed).
    pub max_file_mb: u64,
    /// Largest total of everything read from one bundle, in MiB (uncompressed).
    pub max_total_mb: u64,
    /// Most entries read from one bundle, nested archives included.
    pub max_entries: u64,
    /// Highest compression ratio accepted for an archive member.
    pub max_ratio: u64,
    /// Deepest nesting of archives inside archives.
    pub max_depth: u32,
    /// Wall time the analysis of one mail's logs may take, in seconds;
    /// what is left after it is not read and the mail's analysis says so.
    pub time_limit_secs: u64,
    pub download: DownloadConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            rules_dir: PathBuf::from("rules"),
            language: "zh-CN".into(),
            chain_gap_secs: 600,
            max_findings: 20_000,
            max_file_mb: 4096,
            max_total_mb: 8192,
            max_entries: 20_000,
            max_ratio: 200,
            max_depth: 4,
            time_limit_secs: 180,
            download: DownloadConfig::default(),
        }
    }
}

/// Links found in mail are fetched only from these hosts, within these bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadConfig {
    /// Host names that may be fetched: `files.example.com`, or `*.example.com`
    /// for any subdomain. Empty: links are listed but never fetched.
    pub allowed_hosts: Vec<String>,
    /// Private, loopback or link-local networks that may still be reached
    /// (CIDR, e.g. `10.20.0.0/16`); every other such address is refused.
    pub allowed_networks: Vec<String>,
    /// Largest download, in MiB.
    pub max_mb: u64,
    /// Whole download, in seconds.
    pub timeout_secs: u64,
    /// TCP and TLS connect, in seconds.
    pub connect_timeout_secs: u64,
    /// Redirects followed (each one checked like the first address).
    pub max_redirects: usize,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_networks: Vec::new(),
            max_mb: 512,
            timeout_secs: 300,
            connect_timeout_secs: 10,
            max_redirects: 5,
        }
    }
}

impl AnalysisConfig {
    /// Checks what loading would only find out later; the error names the
    /// key and what is wrong with it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !matches!(self.language.as_str(), "zh-CN" | "en") {
            return Err((
                "analysis.language".into(),
                format!("{:?} is not zh-CN or en", self.language),
            ));
        }
        for net in &self.download.allowed_networks {
            Network::parse(net)
                .map_err(|message| ("analysis.download.allowed_networks".into(), message))?;
        }
        Ok(())
    }
}

/// A CIDR network from `allowed_networks` (ipnet does the arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(ipnet::IpNet);

impl Network {
    /// `10.0.0.0/8`, `fd00::/8` or a single address.
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Network(net));
        }
        match text.parse::<IpAddr>() {
            Ok(addr) => Ok(Network(addr.into())),
            Err(_) if text.contains('/') => Err(format!(
                "{text:?} is not a network (an address, then /0..=32 for IPv4 or /0..=128 for IPv6)"
            )),
            Err(_) => Err(format!("{text:?} is not an address or network")),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}
