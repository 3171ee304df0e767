//! The period report: how the desk did between two instants.
//!
//! Every target counts once, in the period where it was decided: when it
//! was met (in time or late), or, if it never was, when its budget ran out.
//! A target still within its budget at the end of the period is not decided
//! yet and does not count.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::{CaseSla, Clock, SlaPolicies, TargetKind};

/// Median and 90th percentile of first-response times, in business minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseTimes {
    pub count: usize,
    pub median_minutes: Option<i64>,
    pub p90_minutes: Option<i64>,
}

impl ResponseTimes {
    fn from_minutes(mut minutes: Vec<i64>) -> Self {
        minutes.sort_unstable();
        ResponseTimes {
            count: minutes.len(),
            median_minutes: percentile(&minutes, 50),
            p90_minutes: percentile(&minutes, 90),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The figures of one group of cases (a priority, an owner, a week).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub opened: usize,
    pub closed: usize,
    pub first_response: ResponseTimes,
    /// First responses decided in the period, and how many were in time.
    pub first_responses_decided: usize,
    pub first_responses_met: usize,
    /// Every target decided in the period, and how many were met in time.
    pub targets_decided: usize,
    pub targets_met: usize,
    /// Share of decided targets met in time, in percent.
    pub met_pct: Option<f64>,
    pub first_response_met_pct: Option<f64>,
    pub breaches: usize,
}

#[derive(Debug, Default)]
struct Tally {
    opened: usize,
    closed: usize,
    first_response_minutes: Vec<i64>,
    first_decided: usize,
    first_met: usize,
    decided: usize,
    met: usize,
}

impl Tally {
    fn figures(self) -> Figures {
        let pct = |met: usize, of: usize| {
            (of > 0).then(|| (1000.0 * met as f64 / of as f64).round() / 10.0)
        };
        Figures {
            opened: self.opened,
            closed: self.closed,
            first_response: ResponseTimes::from_minutes(self.first_response_minutes),
            first_responses_decided: self.first_decided,
            first_responses_met: self.first_met,
            targets_decided: self.decided,
            targets_met: self.met,
            met_pct: pct(self.met, self.decided),
            first_response_met_pct: pct(self.first_met, self.first_decided),
            breaches: self.decided - self.met,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Week {
    /// The Monday the week starts on, in the desk's time zone.
    pub starts: NaiveDate,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    #[serde(flatten)]
    pub total: Figures,
    pub by_priority: Vec<Group>,
    pub by_owner: Vec<Group>,
    pub weeks: Vec<Week>,
}

/// When a clock was decided, and whether in time.
fn decided(clock: &Clock) -> Option<(DateTime<Utc>, bool)> {
    match clock.met_at {
        Some(at) => Some((at, clock.used_secs <= clock.budget_secs)),
        None if clock.used_secs > clock.budget_secs || clock.running_since.is_some() => {
            Some((clock.due, false))
        }
        None => None,
    }
}

/// The report over `[from, to)`. `cases` must be evaluated as of `to`.
pub fn report(
    cases: &[CaseSla],
    policies: &SlaPolicies,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Report {
    let tz = policies.time_zone;
    let in_period = |t: DateTime<Utc>| from <= t && t < to;
    let week_of = |t: DateTime<Utc>| {
        let date = t.with_timezone(&tz).date_naive();
        date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
    };
    let mut total = Tally::default();
    let mut by_priority: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_owner: BTreeMap<String, Tally> = BTreeMap::new();
    let mut weeks: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
    let mut week = week_of(from);
    while week <= week_of(to - Duration::seconds(1)) && weeks.len() < 520 {
        weeks.insert(week, Tally::default());
        week += Duration::days(7);
    }

    for case in cases {
        let owner = case.owner.clone().unwrap_or_else(|| "(nobody)".into());
        let mut tallies = |at: DateTime<Utc>, f: &dyn Fn(&mut Tally)| {
            f(&mut total);
            f(by_priority.entry(case.priority.clone()).or_default());
            f(by_owner.entry(owner.clone()).or_default());
            if let Some(w) = weeks.get_mut(&week_of(at)) {
                f(w);
            }
        };
        if let Some(started) = case.started_at.filter(|t| in_period(*t)) {
            tallies(started, &|t| t.opened += 1);
        }
        if let Some(closed) = case.closed_at.filter(|t| in_period(*t)) {
            tallies(closed, &|t| t.closed += 1);
        }
        for (kind, clock) in case.clocks() {
            let Some((at, in_time)) = decided(clock).filter(|(at, _)| in_period(*at)) else {
                continue;
            };
            let is_first = kind == TargetKind::FirstResponse;
            let minutes = clock.used_secs / 60;
            tallies(at, &|t| {
                t.decided += 1;
                t.met += usize::from(in_time);
                if is_first {
                    t.first_decided += 1;
                    t.first_met += usize::from(in_time);
                    if clock.met_at.is_some() {
                        t.first_response_minutes.push(minutes);
                    }
                }
            });
        }
    }
    let groups = |map: BTreeMap<String, Tally>| {
        map.into_iter()
            .map(|(name, tally)| Group {
                name,
                figures: tally.figures(),
            })
            .collect()
    };
    Report {
        from,
        to,
        time_zone: tz.name().to_string(),
        total: total.figures(),
        by_priority: groups(by_priority),
        by_owner: groups(by_owner),
        weeks: weeks
            .into_iter()
            .map(|(starts, tally)| Week {
                starts,
                figures: tally.figures(),
            })
            .collect(),
    }
}

/// The report's groups as CSV (one row per week, priority and owner), for
/// a spreadsheet.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "group,name,opened,closed,first_response_median_min,first_response_p90_min,first_responses_met,first_responses_decided,targets_met,targets_decided,met_pct\n",
    );
    let mut row = |group: &str, name: &str, f: &Figures| {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{group},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(name),
            f.opened,
            f.closed,
            opt(f.first_response.median_minutes),
            opt(f.first_response.p90_minutes),
            f.first_responses_met,
            f.first_responses_decided,
            f.targets_met,
            f.targets_decided,
            f.met_pct.map(|p| format!("{p:.1}")).unwrap_or_default(),
        ));
    };
    row("total", "all", &report.total);
    for w in &report.weeks {
        row("week", &w.starts.to_string(), &w.figures);
    }
    for g in &report.by_priority {
        row("priority", &g.name, &g.figures);
    }
    for g in &report.by_owner {
        row("owner", &g.name, &g.figures);
    }
    out
}

/// Quotes a CSV field when it needs it, and defuses a leading formula
/// character, since owners' names come from mail addresses.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::super::evaluate;
    use super::super::tests_support::*;
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
    }

    #[test]
    fn a_week_of_cases_in_figures() {
        let p = policies(|_| {});
        let cases: Vec<CaseSla> = [
            // Answered in 1 h by alice, then resolved.
            case(
                "P2",
                &[
                    "2026-11-23T09:00:00+08:00 customer",
                    "2026-11-23T10:00:00+08:00 engineer:alice",
                    "2026-11-24T10:00:00+08:00 customer resolution",
                ],
            ),
            // Answered in 6 h by bob: late.
            case(
                "P2",
                &[
                    "2026-11-24T09:00:00+08:00 customer",
                    "2026-11-24T15:00:00+08:00 engineer:bob",
                ],
            ),
            // Never answered: its first response breaches on Wednesday.
            case("P3", &["2026-11-24T09:00:00+08:00 customer"]),
        ]
        .iter()
        .filter_map(|tl| evaluate(tl, &p, Some(t("2026-11-30T00:00:00+08:00"))))
        .collect();
        let r = report(
            &cases,
            &p,
            t("2026-11-23T00:00:00+08:00"),
            t("2026-11-30T00:00:00+08:00"),
        );
        assert_eq!((r.total.opened, r.total.closed), (3, 1));
        assert_eq!(r.total.first_response.count, 2);
        assert_eq!(r.total.first_response.median_minutes, Some(60));
        assert_eq!(r.total.first_response.p90_minutes, Some(360));
        assert_eq!(
            (r.total.first_responses_met, r.total.first_responses_decided),
            (1, 3)
        );
        let p2 = r.by_priority.iter().find(|g| g.name == "P2").unwrap();
        assert_eq!(p2.figures.first_response_met_pct, Some(50.0));
        let nobody = r.by_owner.iter().find(|g| g.name == "(nobody)").unwrap();
        assert_eq!(nobody.figures.breaches, 1);
        assert_eq!(r.weeks.len(), 1);
        assert_eq!(r.weeks[0].starts.to_string(), "2026-11-23");
        let csv = to_csv(&r);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("total,all,3,1,60,360,1,3,")
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
