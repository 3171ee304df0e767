//! SLA policies from `[sla]` in config.toml: the targets of each priority
//! and the calendar their clock runs on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use super::calendar::{self, BusinessCalendar};
use crate::domain::Stage;
use crate::mail::subject::StageWords;
use serde::Deserialize;

/// A length of business time as written in the config: `4h`, `2d`, `90m`,
/// `1d4h`. A day is one ordinary work day of the calendar it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessDuration {
    pub days: i64,
    pub minutes: i64,
}

impl BusinessDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a duration like 30m, 4h, 2d or 1d4h");
        let mut out = BusinessDuration {
            days: 0,
            minutes: 0,
        };
        let mut number = String::new();
        let mut any = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: i64 = number.parse().map_err(|_| bad())?;
            number.clear();
            match c.to_ascii_lowercase() {
                'd' => out.days += n,
                'h' => out.minutes += n * 60,
                'm' => out.minutes += n,
                _ => return Err(bad()),
            }
            any = true;
        }
        if !number.is_empty() || !any || out.days > 3650 || out.minutes > 3650 * 1440 {
            return Err(bad());
        }
        Ok(out)
    }

    pub fn seconds_on(&self, calendar: &BusinessCalendar) -> i64 {
        (self.days * calendar.day_minutes() + self.minutes) * 60
    }
}

/// The targets of one priority, in business seconds of its calendar.
#[derive(Debug, Clone)]
pub struct Policy {
    pub priority: String,
    pub calendar: BusinessCalendar,
    /// From the case's first mail to the desk's first response.
    pub first_response: i64,
    /// From a customer mail (after the first response) to the desk's answer.
    pub update: i64,
    /// Business time the case may wait on the desk, in all, until resolved.
    pub resolution: i64,
}

/// Everything the SLA engine needs from the config.
#[derive(Debug, Clone)]
pub struct SlaPolicies {
    pub by_priority: BTreeMap<String, Policy>,
    /// Used for a case whose subject names no known priority.
    pub default_priority: String,
    /// A target counts as at risk once this share of it is used.
    pub at_risk: f64,
    /// The stage of the desk's first response.
    pub first_response_stage: Stage,
    /// The stage of a reassignment to a new engineer.
    pub reassignment_stage: Stage,
    pub time_zone: Tz,
}

impl SlaPolicies {
    /// Builds the policies; `base_dir` resolves a relative holiday calendar.
    /// Errors name the key and what is wrong with it.
    pub fn from_config(
        sla: &SlaConfig,
        time_zone: &str,
        base_dir: &Path,
    ) -> Result<Self, (String, String)> {
        let tz: Tz = time_zone.parse().map_err(|_| {
            (
                "desk.time_zone".to_string(),
                format!("unknown time zone {time_zone:?}"),
            )
        })?;
        let key = |k: &str| format!("sla.{k}");
        let windows =
            calendar::parse_hours(&sla.business_hours).map_err(|m| (key("business_hours"), m))?;
        let work_days =
            calendar::parse_work_days(&sla.work_days).map_err(|m| (key("work_days"), m))?;
        let mut holidays = std::collections::BTreeSet::new();
        for entry in &sla.holidays {
            holidays.extend(calendar::parse_dates(entry).map_err(|m| (key("holidays"), m))?);
        }
        if let Some(path) = &sla.holiday_calendar {
            let path = base_dir.join(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    key("holiday_calendar"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            holidays.extend(
                calendar::parse_icalendar(&text)
                    .map_err(|m| (key("holiday_calendar"), format!("{}: {m}", path.display())))?,
            );
        }
        let mut make_up = std::collections::BTreeSet::new();
        for entry in &sla.make_up_days {
            make_up.extend(calendar::parse_dates(entry).map_err(|m| (key("make_up_days"), m))?);
        }
        let business = BusinessCalendar::new(tz, work_days, windows, holidays, make_up);
        if !(0.0..=1.0).contains(&sla.at_risk) || sla.at_risk == 0.0 {
            return Err((
                key("at_risk"),
                format!("{} is not a share between 0 and 1", sla.at_risk),
            ));
        }
        let mut by_priority = BTreeMap::new();
        for (priority, targets) in &sla.priorities {
            let at = |k: &str| format!("sla.priorities.{priority}.{k}");
            by_priority.insert(
                priority.to_ascii_uppercase(),
                policy(priority, targets, &business, tz).map_err(|(k, m)| (at(&k), m))?,
            );
        }
        let default_priority = sla.default_priority.to_ascii_uppercase();
        if !by_priority.contains_key(&default_priority) {
            return Err((
                key("default_priority"),
                format!("{default_priority:?} has no [sla.priorities.{default_priority}] table"),
            ));
        }
        Ok(Self {
            by_priority,
            default_priority,
            at_risk: sla.at_risk,
            first_response_stage: stage(&sla.first_response_stage, "first_response_stage")?,
            reassignment_stage: stage(&sla.reassignment_stage, "reassignment_stage")?,
            time_zone: tz,
        })
    }

    /// The policy of a priority tag (`P2`, `p2`), else the default one.
    pub fn policy_for(&self, priority: Option<&str>) -> &Policy {
        priority
            .and_then(|p| self.by_priority.get(&p.trim().to_ascii_uppercase()))
            .unwrap_or_else(|| &self.by_priority[&self.default_priority])
    }
}

fn policy(
    priority: &str,
    targets: &TargetsConfig,
    business: &BusinessCalendar,
    tz: Tz,
) -> Result<Policy, (String, String)> {
    let calendar = match targets.hours.as_str() {
        "business" => business.clone(),
        "always" => BusinessCalendar::always(tz),
        other => {
            return Err((
                "hours".into(),
                format!("{other:?} is not \"business\" or \"always\""),
            ));
        }
    };
    let duration = |k: &str, text: &str| {
        BusinessDuration::parse(text)
            .map(|d| d.seconds_on(&calendar))
            .map_err(|m| (k.to_string(), m))
    };
    Ok(Policy {
        priority: priority.to_ascii_uppercase(),
        first_response: duration("first_response", &targets.first_response)?,
        update: duration("update", &targets.update)?,
        resolution: duration("resolution", &targets.resolution)?,
        calendar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        let d = |s: &str| BusinessDuration::parse(s).unwrap();
        assert_eq!(
            d("4h"),
            BusinessDuration {
                days: 0,
                minutes: 240
            }
        );
        assert_eq!(
            d("2d"),
            BusinessDuration {
                days: 2,
                minutes: 0
            }
        );
        assert_eq!(
            d("1d4h30m"),
            BusinessDuration {
                days: 1,
                minutes: 270
            }
        );
        for bad in ["", "4", "h", "4x", "-4h", "4 h"] {
            assert!(BusinessDuration::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_day_is_a_work_day_of_the_calendar() {
        let config = SlaConfig::default();
        let policies = SlaPolicies::from_config(&config, "Asia/Shanghai", Path::new(".")).unwrap();
        let p2 = policies.policy_for(Some("p2"));
        // Default P2: resolution 5d of 9 h days.
        assert_eq!(p2.resolution, 5 * 9 * 3600);
        assert_eq!(
            policies.policy_for(Some("P9")).priority,
            policies.default_priority
        );
        assert_eq!(
            policies.policy_for(None).priority,
            policies.default_priority
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let config = SlaConfig {
            business_hours: "9-18".into(),
            ..SlaConfig::default()
        };
        let (key, _) =
            SlaPolicies::from_config(&config, "Asia/Shanghai", Path::new(".")).unwrap_err();
        assert_eq!(key, "sla.business_hours");
        let mut config = SlaConfig::default();
        config.priorities.get_mut("P1").unwrap().update = "soon".into();
        let (key, message) =
            SlaPolicies::from_config(&config, "Asia/Shanghai", Path::new(".")).unwrap_err();
        assert_eq!(key, "sla.priorities.P1.update");
        assert!(message.contains("soon"));
        let config = SlaConfig {
            holiday_calendar: Some("no-such.ics".into()),
            ..SlaConfig::default()
        };
        let (key, _) =
            SlaPolicies::from_config(&config, "Asia/Shanghai", Path::new(".")).unwrap_err();
        assert_eq!(key, "sla.holiday_calendar");
    }
}

/// Service levels: the targets per priority and the calendar they run on.
/// See `sla` for what each target measures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// Opening hours of a work day in the desk's time zone, e.g.
    /// `"09:00-18:00"` or `"09:00-12:00, 13:30-18:00"`.
    pub business_hours: String,
    pub work_days: Vec<String>,
    /// Days off: `"2026-10-01"` or a range `"2026-10-01..2026-10-07"`.
    pub holidays: Vec<String>,
    /// An iCalendar file whose all-day events are days off as well.
    pub holiday_calendar: Option<PathBuf>,
    /// Days off that a holiday schedule turns into work days (调休).
    pub make_up_days: Vec<String>,
    /// Share of a target used from which it counts as at risk.
    pub at_risk: f64,
    /// The priority of a case whose subject names none.
    pub default_priority: String,
    /// A stage's name (`first_response`) or one of its default words (初次响应).
    pub first_response_stage: String,
    pub reassignment_stage: String,
    /// `[sla.priorities.P1]` … with `first_response`, `update`, `resolution`.
    pub priorities: std::collections::BTreeMap<String, TargetsConfig>,
}

/// The targets of one priority, as durations of business time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsConfig {
    pub first_response: String,
    pub update: String,
    pub resolution: String,
    /// `business` (the desk's hours) or `always` (around the clock).
    #[serde(default = "default_hours")]
    pub hours: String,
}

fn default_hours() -> String {
    "business".into()
}

impl Default for SlaConfig {
    fn default() -> Self {
        let targets = |first: &str, update: &str, resolution: &str| TargetsConfig {
            first_response: first.into(),
            update: update.into(),
            resolution: resolution.into(),
            hours: default_hours(),
        };
        Self {
            business_hours: "09:00-18:00".into(),
            work_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            holidays: Vec::new(),
            holiday_calendar: None,
            make_up_days: Vec::new(),
            at_risk: 0.8,
            default_priority: "P3".into(),
            first_response_stage: Stage::FirstResponse.as_str().into(),
            reassignment_stage: Stage::Reassigned.as_str().into(),
            priorities: [
                ("P1", targets("1h", "2h", "2d")),
                ("P2", targets("4h", "1d", "5d")),
                ("P3", targets("1d", "2d", "10d")),
                ("P4", targets("2d", "3d", "20d")),
            ]
            .into_iter()
            .map(|(p, t)| (p.to_string(), t))
            .collect(),
        }
    }
}

impl SlaConfig {
    /// Checks the calendar and every target as the engine would read them
    /// (`base_dir` resolves the holiday calendar's path); the error names
    /// the key.
    pub fn validate(&self, time_zone: &str, base_dir: &Path) -> Result<(), (String, String)> {
        SlaPolicies::from_config(self, time_zone, base_dir).map(drop)
    }
}

impl SlaConfig {
    /// The stage that hands a case to a new engineer (drafting asks too).
    /// The configuration was checked when it was loaded.
    pub fn reassignment(&self) -> Stage {
        stage(&self.reassignment_stage, "reassignment_stage").unwrap_or(Stage::Reassigned)
    }
}

/// A configured stage: its name, or one of its default words.
fn stage(value: &str, key: &str) -> Result<Stage, (String, String)> {
    StageWords::default().stage_of(value).ok_or_else(|| {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        (
            format!("sla.{key}"),
            format!("{value:?} is no stage; one of {}", names.join(", ")),
        )
    })
}
