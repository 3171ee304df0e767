//! Builders shared by the SLA engine's and the report's tests: threads
//! written one line per mail.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::policy::SlaConfig;
use super::*;

pub fn policies(tweak: impl FnOnce(&mut SlaConfig)) -> SlaPolicies {
    let mut config = SlaConfig {
        holidays: vec!["2026-10-01..2026-10-07".into()],
        ..SlaConfig::default()
    };
    tweak(&mut config);
    SlaPolicies::from_config(&config, "Asia/Shanghai", Path::new(".")).unwrap()
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// `"<rfc3339> <who> [stage] [signal]"`: who is customer, engineer:NAME,
/// auto, bounce, assign:NAME, or set:STATUS (a status set by hand).
pub fn happening(line: &str) -> Happening {
    let mut parts = line.split_whitespace();
    let at = t(parts.next().unwrap());
    let who = parts.next().unwrap();
    let rest: Vec<&str> = parts.collect();
    let stage = rest
        .iter()
        .find(|w| !matches!(**w, "resolution" | "ack" | "archive" | "closure"))
        .map(|w| {
            crate::mail::subject::StageWords::default()
                .stage_of(w)
                .unwrap_or_else(|| panic!("unknown stage {w}"))
        });
    let signal = rest.iter().find_map(|w| MailSignal::parse(w));
    let mail = |direction, sender: Option<&str>| Happening::Mail {
        at,
        direction,
        signal,
        stage,
        sender: sender.map(String::from),
    };
    match who.split_once(':') {
        Some(("assign", name)) => Happening::Assigned {
            at,
            owner: name.into(),
        },
        Some(("set", status)) => Happening::StatusSet {
            at,
            status: CaseStatus::parse(status).unwrap_or_else(|| panic!("unknown status {status}")),
        },
        Some(("engineer", name)) => mail(Direction::Engineer, Some(name)),
        _ => match who {
            "customer" => mail(Direction::Customer, Some("user@example.cn")),
            "auto" => mail(Direction::Auto, Some("robot@example.cn")),
            "bounce" => mail(Direction::Bounce, None),
            other => panic!("unknown sender {other}"),
        },
    }
}

pub fn case(priority: &str, lines: &[&str]) -> Timeline {
    Timeline {
        case_row: 1,
        case_key: "CAS-00001-AAAAAA".into(),
        case_id: Some("CAS-00001-AAAAAA".into()),
        title: None,
        customer: Some("ACME".into()),
        priority: Some(priority.into()),
        happenings: lines.iter().map(|l| happening(l)).collect(),
    }
}
