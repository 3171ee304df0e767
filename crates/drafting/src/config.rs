//! `[drafting]`: templates, language, and what the templates may not
//! hard-code (the engineer, the upload portal, per-case credentials).

use std::path::PathBuf;

use serde::Deserialize;

/// Drafted replies: templates, language, and what the templates may not
/// hard-code (the engineer, the upload portal, per-case credentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DraftingConfig {
    /// The templates folder (relative to the config file). When the default
    /// folder is missing, the copy built into the binary is used.
    pub templates_dir: PathBuf,
    /// `auto` (the customer's language: Chinese text gives zh-CN, or zh-TW
    /// when it is written in Traditional characters, else en),
    /// `zh-CN` or `en`.
    pub language: String,
    /// The one reply prefix before the partner's subject (never stacked).
    pub reply_prefix: String,
    /// Who signs when the case's owner is no desk account (no owner yet,
    /// or an address without an account).
    pub engineer_name: String,
    /// Whose name signs a reply someone other than the case's owner
    /// approves: `owner` keeps the owner's, `approver` puts the approver's.
    pub sign_as: SignAs,
    /// Lines under the engineer's name in the signature (team, phone).
    pub signature_lines: Vec<String>,
    /// Most recipients (To and Cc together) a reply goes to; the rest of a
    /// mail's list is left out and the draft says how many.
    pub max_recipients: usize,
    /// The log collector the customer runs (a file name shown in the scope mail).
    pub log_collector: String,
    /// A case waiting on the customer this many business days (the
    /// priority's business hours) gets the archive notice drafted; 0: never.
    pub archive_after: u32,
    /// Per priority (`P1 = 3`), instead of `archive_after`.
    pub archive_after_priority: std::collections::BTreeMap<String, u32>,
    pub portal: PortalConfig,
}

/// Whose signature a reply carries when another engineer approves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignAs {
    /// The case owner's, who the customer deals with.
    #[default]
    Owner,
    /// The approver's, who answers for the text.
    Approver,
}

impl Default for DraftingConfig {
    fn default() -> Self {
        Self {
            templates_dir: PathBuf::from("templates"),
            language: "auto".into(),
            reply_prefix: "Re: ".into(),
            engineer_name: "Desk Engineer".into(),
            sign_as: SignAs::Owner,
            signature_lines: vec!["Windows Servicing Support Desk".into()],
            max_recipients: 50,
            log_collector: "LogCollector.zip".into(),
            archive_after: 5,
            archive_after_priority: Default::default(),
            portal: PortalConfig::default(),
        }
    }
}

/// The upload portal the customer sends logs through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Its address, quoted in the scope mail.
    pub url: String,
    /// The per-case user name; `{case}` is the case number in lower case.
    pub username: String,
    /// Environment variable holding the secret that per-case passwords are
    /// derived from (HMAC-SHA256 of the case number, so the portal can derive
    /// the same). Unset: the mail says the password comes separately.
    pub secret_env: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            url: "https://upload.example.com/".into(),
            username: "{case}".into(),
            secret_env: "CASEBOT_PORTAL_SECRET".into(),
        }
    }
}

impl DraftingConfig {
    /// Checks the settings; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !matches!(self.language.as_str(), "auto" | "zh-CN" | "zh-TW" | "en") {
            return Err((
                "drafting.language".into(),
                format!("{:?} is not auto, zh-CN, zh-TW or en", self.language),
            ));
        }
        Ok(())
    }
}
