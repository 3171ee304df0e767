//! The desk itself: who its engineers are and the time zone it works in.
//! Direction, reply headers and the SLA calendar all read it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Addresses of the desk's engineers (and the desk's shared address).
    pub engineer_addresses: Vec<String>,
    /// Whole domains whose senders are engineers.
    pub engineer_domains: Vec<String>,
    /// IANA time zone of the desk (business hours, reports).
    pub time_zone: String,
}

impl Default for DeskConfig {
    fn default() -> Self {
        Self {
            engineer_addresses: vec!["support@example.com".into()],
            engineer_domains: vec!["desk.example.com".into()],
            time_zone: "Asia/Shanghai".into(),
        }
    }
}

impl DeskConfig {
    /// Checks the settings; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err((
                "desk.time_zone".into(),
                format!("unknown time zone {:?}", self.time_zone),
            ));
        }
        Ok(())
    }
}
