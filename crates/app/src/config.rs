//! Settings: `config.toml`, its defaults, and the environment overrides.
//!
//! Every setting has a default, so casebot runs with no file at all (the
//! embedded defaults: a Maildir at `mail/` and a SQLite file at
//! `data/casebot.db`). Unknown keys are rejected rather than ignored: a typo in
//! a key would otherwise silently fall back to a default, which is the worst
//! kind of configuration bug. Secrets never live in the file; settings that
//! need one name the environment variable that holds it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use casebot_analysis::config::{AnalysisConfig, DownloadConfig};
pub use casebot_core::domain::DeskConfig;
pub use casebot_core::mail::parse::IngestConfig;
pub use casebot_core::mail::subject::GrammarConfig;
pub use casebot_core::sla::policy::{SlaConfig, TargetsConfig};
pub use casebot_drafting::config::{DraftingConfig, PortalConfig};
pub use casebot_store::{DB_ENV, StoreConfig};

/// The environment variable that overrides `web.listen` (empty: no web desk).
pub const LISTEN_ENV: &str = "CASEBOT_LISTEN";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The message from `toml` already names the line, column and key.
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The whole configuration, as read from `config.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    #[serde(rename = "mailbox")]
    pub mailboxes: Vec<MailboxConfig>,
    pub desk: DeskConfig,
    pub grammar: GrammarConfig,
    pub ingest: IngestConfig,
    pub analysis: AnalysisConfig,
    pub drafting: DraftingConfig,
    pub outbox: OutboxConfig,
    pub sla: SlaConfig,
    pub web: WebConfig,
    pub log: LogConfig,
    pub retention: RetentionConfig,
    pub notify: NotifyConfig,
    /// Where the file was read from; relative paths are resolved against its folder.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One watched mailbox. `casebot serve` watches every one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// A short name used in logs and as the source of the mails it yields.
    pub name: String,
    pub kind: MailboxKind,
    /// Maildir folder (kind = "maildir"); relative to the config file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Maildir: how often `new/` is scanned. IMAP: how often a server
    /// without IDLE is polled. Seconds.
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// IMAP server (kind = "imap").
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// `tls` (implicit, port 993), `starttls` (143), or `plain` (no
    /// encryption: only for a server on loopback).
    #[serde(default = "default_imap_security")]
    pub security: SmtpSecurity,
    /// `password` (LOGIN with the password of `password_env`) or `oauth2`
    /// (an access token from `[mailbox.oauth2]`, SASL XOAUTH2 or OAUTHBEARER).
    #[serde(default)]
    pub auth: AuthKind,
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    /// Environment variables holding the IMAP login (with OAuth2, the
    /// user is the mailbox's address).
    #[serde(default = "default_imap_user_env")]
    pub username_env: String,
    #[serde(default = "default_imap_password_env")]
    pub password_env: String,
    /// Folders watched, each on its own connection.
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// Use IDLE when the server offers it (else poll).
    #[serde(default = "default_true")]
    pub idle: bool,
    /// IDLE is renewed after this many seconds (servers drop it at 30 min).
    #[serde(default = "default_idle_renew_secs")]
    pub idle_renew_secs: u64,
    /// Mails fetched per round trip during a catch-up.
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: usize,
    /// A PEM file with extra CA certificates to trust (a company CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where replies are stored after sending (IMAP APPEND with \Seen);
    /// empty: not stored.
    #[serde(default = "default_sent_folder")]
    pub sent_folder: String,
    /// Longest wait between two reconnection attempts, in seconds.
    #[serde(default = "default_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
    /// A flag set on every mail once it is filed (a keyword such as
    /// `$CasebotFiled`, or `\Seen`); empty: flags are never touched.
    #[serde(default)]
    pub handled_keyword: Option<String>,
    /// A server folder that gets a copy of every mail casebot quarantines
    /// (created if missing; the original stays where it is); empty: none.
    #[serde(default)]
    pub quarantine_folder: Option<String>,
}

/// How casebot logs in to a mail server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    #[default]
    Password,
    OAuth2,
}

/// An OAuth2 sign-in: the provider, the app's registration, the grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// `microsoft` (login.microsoftonline.com), `microsoft-china`
    /// (21Vianet, login.chinacloudapi.cn), `google`, or `custom` with
    /// `token_url` and `device_url`.
    pub provider: OAuthProvider,
    /// The Microsoft tenant (its id or domain; `organizations` for any).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// `client_credentials` (app-only access to a mailbox, a service
    /// principal) or `device_code` (a person signs in once with
    /// `casebot mailbox login NAME`; the refresh token is kept).
    pub flow: OAuthFlow,
    pub client_id: String,
    /// The environment variable holding the client secret (empty: a public
    /// client, as device sign-in may use).
    #[serde(default)]
    pub client_secret_env: String,
    /// Scopes; empty: the provider's for IMAP and SMTP in this flow.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_url: String,
    #[serde(default)]
    pub device_url: String,
    /// The environment variable holding the key that encrypts the stored
    /// refresh token (device sign-in refuses to store one without it).
    #[serde(default = "default_token_key_env")]
    pub token_key_env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OAuthProvider {
    Microsoft,
    MicrosoftChina,
    Google,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthFlow {
    ClientCredentials,
    DeviceCode,
}

impl OAuth2Config {
    fn validate(&self) -> Result<(), String> {
        if self.client_id.trim().is_empty() {
            return Err("oauth2.client_id is empty".into());
        }
        if self.provider == OAuthProvider::Custom {
            if self.token_url.is_empty() {
                return Err("provider = \"custom\" needs token_url".into());
            }
            if self.flow == OAuthFlow::DeviceCode && self.device_url.is_empty() {
                return Err(
                    "provider = \"custom\" with flow = \"device_code\" needs device_url".into(),
                );
            }
        }
        if self.provider == OAuthProvider::Google && self.flow == OAuthFlow::ClientCredentials {
            return Err("Google has no client-credentials grant for mail (it needs a service account with domain-wide delegation); use flow = \"device_code\" with your own scopes, or a custom provider".into());
        }
        for url in [&self.token_url, &self.device_url] {
            if !url.is_empty() && url::Url::parse(url).is_err() {
                return Err(format!("{url:?} is not a URL"));
            }
        }
        Ok(())
    }
}

fn default_tenant() -> String {
    "organizations".into()
}
fn default_token_key_env() -> String {
    "CASEBOT_TOKEN_KEY".into()
}

fn default_poll_secs() -> u64 {
    2
}
fn default_imap_security() -> SmtpSecurity {
    SmtpSecurity::Tls
}
fn default_imap_user_env() -> String {
    "CASEBOT_IMAP_USER".into()
}
fn default_imap_password_env() -> String {
    "CASEBOT_IMAP_PASSWORD".into()
}
fn default_folders() -> Vec<String> {
    vec!["INBOX".into()]
}
fn default_true() -> bool {
    true
}
fn default_idle_renew_secs() -> u64 {
    25 * 60
}
fn default_fetch_batch() -> usize {
    200
}
fn default_sent_folder() -> String {
    "Sent".into()
}
fn default_reconnect_max_secs() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    Maildir,
    Imap,
}

/// The web desk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Where `casebot serve` serves the desk; empty: no web desk.
    pub listen: String,
    /// A login lasts this long without use, in hours.
    pub session_idle_hours: u64,
    /// Mark the session cookie `Secure` (set when a TLS proxy fronts the desk).
    pub secure_cookies: bool,
    /// The SLA board reloads itself this often, in seconds.
    pub board_refresh_secs: u64,
    /// The environment variable holding a bearer token that lets a
    /// Prometheus scraper read `/metrics` without a login; unset: none can.
    pub metrics_token_env: String,
    /// The language of the desk for those who chose none (`zh-CN`, `en`);
    /// each person may switch to their own.
    pub language: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            session_idle_hours: 12,
            secure_cookies: false,
            board_refresh_secs: 30,
            metrics_token_env: "CASEBOT_METRICS_TOKEN".into(),
            language: "zh-CN".into(),
        }
    }
}

/// Notifications to the desk's people: what each channel carries by
/// default (each person may choose otherwise), batching, quiet hours and
/// retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Off: nothing is queued or sent.
    pub enabled: bool,
    /// Notices of one window of this many seconds go out together, one
    /// message per person and channel.
    pub batch_secs: u64,
    /// Hold notices outside the business hours of `[sla]` until they open.
    pub quiet_hours: bool,
    /// Topics that go out in quiet hours too.
    pub urgent: Vec<String>,
    /// First retry after a failed delivery, in seconds; doubled each time.
    pub retry_initial_secs: u64,
    pub retry_max_secs: u64,
    /// Attempts before a notice is marked `failed`.
    pub max_attempts: u32,
    /// How often the SLA and the mailboxes are looked at, in seconds.
    pub check_secs: u64,
    /// The desk's address as people open it (`https://casebot.example.com`);
    /// notices link to the case there. Empty: no links.
    pub desk_url: String,
    pub email: EmailChannelConfig,
    #[serde(rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_secs: 20,
            quiet_hours: true,
            urgent: Vec::new(),
            retry_initial_secs: 30,
            retry_max_secs: 1800,
            max_attempts: 8,
            check_secs: 60,
            desk_url: String::new(),
            email: EmailChannelConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

/// Notices by mail to each person's address, through `[outbox]` (its SMTP
/// relay, or its folder with the file transport), never in a customer thread.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailChannelConfig {
    pub enabled: bool,
    /// The topics it carries for someone who chose nothing.
    pub events: Vec<String>,
}

impl Default for EmailChannelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            events: all_topics(),
        }
    }
}

fn all_topics() -> Vec<String> {
    casebot_core::notify::Topic::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .collect()
}

/// A chat group's incoming webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The channel's name, as people choose it.
    pub name: String,
    pub format: WebhookFormat,
    /// The environment variable holding the webhook's URL (it carries the
    /// group's key, so it is a secret).
    pub url_env: String,
    /// The environment variable holding the signing secret (DingTalk's
    /// 加签, Feishu's 签名校验, an HMAC header for `generic`); empty: unsigned.
    #[serde(default)]
    pub secret_env: String,
    /// The topics it carries for someone who chose nothing.
    #[serde(default = "all_topics")]
    pub events: Vec<String>,
    #[serde(default = "webhook_timeout")]
    pub timeout_secs: u64,
}

fn webhook_timeout() -> u64 {
    10
}

/// The message format a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// casebot's own JSON (`{"person", "notices": [...]}`).
    Generic,
    /// WeCom (企业微信) group robot.
    Wecom,
    /// DingTalk (钉钉) custom robot.
    Dingtalk,
    /// Feishu / Lark custom bot.
    Feishu,
    /// Microsoft Teams incoming webhook (Workflows), an Adaptive Card.
    Teams,
}

impl NotifyConfig {
    /// Each channel's name and the topics it carries by default.
    pub fn channel_defaults(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<casebot_core::notify::Topic>>
    {
        let topics = |words: &[String]| {
            words
                .iter()
                .filter_map(|w| casebot_core::notify::Topic::parse(w))
                .collect()
        };
        let mut out = std::collections::BTreeMap::new();
        if self.email.enabled {
            out.insert("email".to_string(), topics(&self.email.events));
        }
        for w in &self.webhooks {
            out.insert(w.name.clone(), topics(&w.events));
        }
        out
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let topics = |key: &str, words: &[String]| {
            for w in words {
                if casebot_core::notify::Topic::parse(w).is_none() {
                    return Err((
                        key.to_string(),
                        format!(
                            "{w:?} is not a notification topic ({})",
                            all_topics().join(", ")
                        ),
                    ));
                }
            }
            Ok(())
        };
        topics("notify.urgent", &self.urgent)?;
        topics("notify.email.events", &self.email.events)?;
        if self.max_attempts == 0 {
            return Err(("notify.max_attempts".into(), "must be at least 1".into()));
        }
        let mut names = std::collections::HashSet::from(["email"]);
        for w in &self.webhooks {
            let ok = !w.name.is_empty()
                && w.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok || !names.insert(w.name.as_str()) {
                return Err((
                    "notify.webhook.name".into(),
                    format!(
                        "{:?}: a webhook needs a name of its own (letters, digits, - and _; not \"email\")",
                        w.name
                    ),
                ));
            }
            if w.url_env.trim().is_empty() {
                return Err((
                    "notify.webhook.url_env".into(),
                    format!(
                        "webhook {:?} needs the environment variable of its URL",
                        w.name
                    ),
                ));
            }
            topics("notify.webhook.events", &w.events)?;
        }
        Ok(())
    }
}

/// Opt-in removal of old evidence. Off unless a number of days is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// The raw mails (and with them the attachments) of cases resolved or
    /// archived and unchanged for this many days are removed once a day by
    /// `casebot serve`; the cases, their messages as read, analyses, drafts
    /// and events stay. 0 keeps everything.
    pub raw_mail_days: u32,
}

/// The daemon's own log on standard error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `plain` (one line per event; colour only on a terminal) or `json`
    /// (one JSON object per line). `--log-format` overrides it.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human lines, as a journal shows them.
    #[default]
    Plain,
    /// One JSON object per line, for a log shipper.
    Json,
}

/// Sending approved replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The desk's address: From of every reply; never a recipient.
    pub from: String,
    /// Display name beside it.
    pub from_name: String,
    /// `file`: each reply is written as an .eml into `dir` (the embedded
    /// default); `smtp`: sent to `[outbox.smtp]`.
    pub transport: TransportKind,
    /// Folder of the file transport (relative to the config file).
    pub dir: PathBuf,
    pub smtp: SmtpConfig,
    /// First retry after a failed send, in seconds; doubled each time.
    pub retry_initial_secs: u64,
    /// Longest wait between two retries, in seconds.
    pub retry_max_secs: u64,
    /// Attempts before a draft is marked `failed` (an engineer may retry it).
    pub max_attempts: u32,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            from: "support@example.com".into(),
            from_name: "Windows Servicing Support".into(),
            transport: TransportKind::File,
            dir: PathBuf::from("outbox"),
            smtp: SmtpConfig::default(),
            retry_initial_secs: 30,
            retry_max_secs: 1800,
            max_attempts: 12,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `tls` (implicit TLS, port 465), `starttls` (port 587), or `plain`
    /// (no encryption: only for a relay on loopback).
    pub security: SmtpSecurity,
    /// Environment variables with the login; unset or empty: no AUTH.
    pub username_env: String,
    pub password_env: String,
    /// `password`, or `oauth2`: the access token of the IMAP mailbox named
    /// by `oauth2_mailbox` (the same account and sign-in), SASL XOAUTH2.
    pub auth: AuthKind,
    pub oauth2_mailbox: String,
    /// Connect and each command, in seconds.
    pub timeout_secs: u64,
    /// EHLO name; empty: the `from` address's domain.
    pub hello_name: String,
    /// A PEM file with extra CA certificates to trust (a relay with a
    /// company CA), relative to the config file.
    pub ca_file: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username_env: "CASEBOT_SMTP_USER".into(),
            password_env: "CASEBOT_SMTP_PASSWORD".into(),
            auth: AuthKind::Password,
            oauth2_mailbox: String::new(),
            timeout_secs: 60,
            hello_name: String::new(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Tls,
    Starttls,
    Plain,
}

impl OutboxConfig {
    /// The EHLO name: `smtp.hello_name`, else the desk's domain.
    pub fn hello(&self) -> String {
        if self.smtp.hello_name.is_empty() {
            self.domain().to_string()
        } else {
            self.smtp.hello_name.clone()
        }
    }

    /// The domain of the desk's address: Message-IDs are minted under it.
    pub fn domain(&self) -> &str {
        self.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl Config {
    /// Loads `path`. When `path` is the implicit default and does not exist,
    /// the embedded defaults are used; an explicit path must exist.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Self::parse("", path)?
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Ok(listen) = std::env::var(LISTEN_ENV) {
            config.web.listen = listen.trim().to_string();
        }
        if let Ok(url) = std::env::var(DB_ENV)
            && !url.trim().is_empty()
        {
            config.store.url = url;
        } else {
            config.store.url = config.resolve_sqlite_url(&config.store.url);
        }
        Ok(config)
    }

    /// Parses and validates the text of a config file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if config.mailboxes.is_empty() {
            config.mailboxes = vec![MailboxConfig::default_maildir()];
        }
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        config.validate(path)?;
        // The sender sees only its own section: its CA file is made whole here.
        if let Some(ca) = config.outbox.smtp.ca_file.take() {
            config.outbox.smtp.ca_file = Some(config.resolve(&ca));
        }
        // The desk's own replies come back (a copy filed when sent, Cc, the
        // Sent folder): they are the desk's, never the customer's.
        let from = config.outbox.from.to_lowercase();
        if !config
            .desk
            .engineer_addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&from))
        {
            config.desk.engineer_addresses.push(from);
        }
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_string(),
            message,
        };
        // Each section is checked by the crate it configures.
        let sections = [
            self.desk.validate(),
            self.sla.validate(&self.desk.time_zone, &self.base_dir),
            self.grammar.validate(),
            self.analysis.validate(),
            self.drafting.validate(),
            self.notify.validate(),
        ];
        for checked in sections {
            checked.map_err(|(key, message)| invalid(&key, message))?;
        }
        if self.outbox.from.parse::<lettre::Address>().is_err() || self.outbox.domain().is_empty() {
            return Err(invalid(
                "outbox.from",
                format!("{:?} is not a mail address", self.outbox.from),
            ));
        }
        if crate::i18n::UiLang::parse(&self.web.language).is_none() {
            return Err(invalid(
                "web.language",
                format!(
                    "{:?} is not a language of the desk (zh-CN, en)",
                    self.web.language
                ),
            ));
        }
        if self.outbox.smtp.auth == AuthKind::OAuth2
            && !self
                .mailboxes
                .iter()
                .any(|m| m.name == self.outbox.smtp.oauth2_mailbox && m.auth == AuthKind::OAuth2)
        {
            return Err(invalid(
                "outbox.smtp.oauth2_mailbox",
                format!(
                    "SMTP auth = \"oauth2\" takes the sign-in of an IMAP mailbox with auth = \"oauth2\"; {:?} is none",
                    self.outbox.smtp.oauth2_mailbox
                ),
            ));
        }
        if self.outbox.max_attempts == 0 {
            return Err(invalid("outbox.max_attempts", "must be at least 1".into()));
        }
        let mut names = std::collections::HashSet::new();
        for mailbox in &self.mailboxes {
            if !names.insert(mailbox.name.as_str()) {
                return Err(invalid(
                    "mailbox.name",
                    format!("two mailboxes are named {:?}", mailbox.name),
                ));
            }
            if mailbox.kind == MailboxKind::Maildir && mailbox.path.is_none() {
                return Err(invalid(
                    "mailbox.path",
                    format!("maildir mailbox {:?} needs a path", mailbox.name),
                ));
            }
            if mailbox.kind == MailboxKind::Imap {
                if mailbox.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
                    return Err(invalid(
                        "mailbox.host",
                        format!("imap mailbox {:?} needs a host", mailbox.name),
                    ));
                }
                // A login in clear text may only go to this machine.
                if mailbox.security == SmtpSecurity::Plain
                    && !is_loopback(mailbox.host.as_deref().unwrap_or(""))
                {
                    return Err(invalid(
                        "mailbox.security",
                        format!(
                            "imap mailbox {:?}: security = \"plain\" sends the password unencrypted, \
                             so it is only allowed for a server on loopback, not {:?}; use \"tls\" or \"starttls\"",
                            mailbox.name,
                            mailbox.host.as_deref().unwrap_or("")
                        ),
                    ));
                }
                match (mailbox.auth, &mailbox.oauth2) {
                    (AuthKind::OAuth2, None) => {
                        return Err(invalid(
                            "mailbox.oauth2",
                            format!(
                                "imap mailbox {:?} has auth = \"oauth2\" but no [mailbox.oauth2] (provider, flow, client_id)",
                                mailbox.name
                            ),
                        ));
                    }
                    (AuthKind::OAuth2, Some(o)) => {
                        o.validate().map_err(|m| {
                            invalid("mailbox.oauth2", format!("mailbox {:?}: {m}", mailbox.name))
                        })?;
                    }
                    _ => {}
                }
                if let Some(keyword) = mailbox.handled_keyword.as_deref()
                    && !is_imap_flag(keyword)
                {
                    return Err(invalid(
                        "mailbox.handled_keyword",
                        format!(
                            "{keyword:?} is not an IMAP flag (letters, digits, $ and the like, no spaces or brackets)"
                        ),
                    ));
                }
                if mailbox.folders.is_empty() || mailbox.fetch_batch == 0 {
                    return Err(invalid(
                        "mailbox.folders",
                        format!(
                            "imap mailbox {:?} needs a folder and a fetch_batch > 0",
                            mailbox.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Where a `maildir` mailbox lives (its `path`, `mail` by default).
    pub fn maildir_path(&self, mailbox: &MailboxConfig) -> PathBuf {
        self.resolve(mailbox.path.as_deref().unwrap_or(Path::new("mail")))
    }

    /// Resolves a path from the config file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn resolve_sqlite_url(&self, url: &str) -> String {
        match url.strip_prefix("sqlite://") {
            Some(rest) if !rest.starts_with('/') && !rest.starts_with(":memory:") => {
                format!("sqlite://{}", self.resolve(Path::new(rest)).display())
            }
            _ => url.to_string(),
        }
    }
}

/// `localhost`, or an address of the loopback network (127.0.0.0/8, ::1).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An IMAP keyword (an atom) or a system flag such as `\Seen`.
fn is_imap_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

impl MailboxConfig {
    fn default_maildir() -> Self {
        Self {
            path: Some(PathBuf::from("mail")),
            ..Self::with_defaults("local", MailboxKind::Maildir)
        }
    }

    /// A mailbox of `kind` with every setting at its default (the IMAP
    /// server is to be set by the caller).
    pub fn with_defaults(name: &str, kind: MailboxKind) -> Self {
        Self {
            name: name.into(),
            kind,
            path: None,
            poll_interval_secs: default_poll_secs(),
            host: None,
            port: None,
            security: default_imap_security(),
            auth: AuthKind::Password,
            oauth2: None,
            username_env: default_imap_user_env(),
            password_env: default_imap_password_env(),
            folders: default_folders(),
            idle: true,
            idle_renew_secs: default_idle_renew_secs(),
            fetch_batch: default_fetch_batch(),
            ca_file: None,
            sent_folder: default_sent_folder(),
            reconnect_max_secs: default_reconnect_max_secs(),
            handled_keyword: None,
            quarantine_folder: None,
        }
    }

    /// The IMAP port: the configured one, else the usual one for `security`.
    pub fn imap_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Tls => 993,
            _ => 143,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handled_keyword_must_be_an_imap_flag() {
        for good in ["$CasebotFiled", "\\Seen", "casebot-filed"] {
            assert!(is_imap_flag(good), "{good}");
        }
        for bad in ["", "two words", "(x)", "\\", "a\"b", "星"] {
            assert!(!is_imap_flag(bad), "{bad}");
        }
        let text = "[[mailbox]]\nname = \"desk\"\nkind = \"imap\"\nhost = \"imap.example.com\"\nhandled_keyword = \"filed by casebot\"\n";
        let err = Config::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("handled_keyword"), "{err}");
    }

    #[test]
    fn clear_text_imap_is_for_loopback_only() {
        let mailbox = |host: &str| {
            format!(
                "[[mailbox]]\nname = \"m\"\nkind = \"imap\"\nhost = \"{host}\"\nsecurity = \"plain\"\n"
            )
        };
        for host in ["127.0.0.1", "localhost", "::1", "127.0.0.53"] {
            assert!(
                Config::parse(&mailbox(host), Path::new("c.toml")).is_ok(),
                "{host}"
            );
        }
        for host in ["imap.example.com", "10.0.0.5", "192.0.2.1"] {
            let err = Config::parse(&mailbox(host), Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("mailbox.security") && err.contains("loopback"),
                "{err}"
            );
        }
    }

    #[test]
    fn empty_file_gives_embedded_defaults() {
        let c = Config::parse("", Path::new("config.toml")).unwrap();
        assert_eq!(c.store.url, "sqlite://data/casebot.db");
        assert_eq!(c.mailboxes.len(), 1);
        assert_eq!(c.mailboxes[0].path.as_deref(), Some(Path::new("mail")));
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let text = "[store]\nurl = \"sqlite://x.db\"\n\n[desk]\ntime_zon = \"UTC\"\n";
        let err = Config::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("time_zon"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let err = Config::parse(
            "[ingest]\nmax_message_bytes = \"big\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("line 2") && err.contains("max_message_bytes"),
            "{err}"
        );
    }

    #[test]
    fn bad_time_zone_and_bad_regex_are_named() {
        let err = Config::parse(
            "[desk]\ntime_zone = \"Mars/Olympus\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("desk.time_zone"), "{err}");
        let err = Config::parse("[grammar]\ncase_number = \"CAS-(\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("grammar.case_number"), "{err}");
    }

    #[test]
    fn relative_sqlite_path_is_resolved_against_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[store]\nurl = \"sqlite://db/x.db\"\n").unwrap();
        // The env override would win; this test only runs the resolution.
        let c = Config::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        let c = Config {
            base_dir: dir.path().to_path_buf(),
            ..c
        };
        assert_eq!(
            c.resolve_sqlite_url(&c.store.url),
            format!("sqlite://{}/db/x.db", dir.path().display())
        );
    }
}
