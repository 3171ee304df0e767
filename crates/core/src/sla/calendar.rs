//! Business time: which instants count towards an SLA, and arithmetic over them.
//!
//! A desk's clock runs only in its opening hours, on its work days, in its
//! own time zone, and not on holidays (but on the weekend days a holiday
//! schedule turns into work days, 调休). Everything here is a pure function of
//! the calendar and UTC instants; the time zone is applied day by day, so a
//! daylight-saving change shortens or lengthens that one day, as it does for
//! the people at the desk.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest span walked day by day. Mail dates can be absurd (year 2099,
/// year 1970); a target further away than this is reported at the bound
/// instead of looping for a long time.
const MAX_DAYS: i64 = 3 * 366;

/// One opening window of a work day, in minutes after local midnight
/// (`end` may be 1440 for "until midnight").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

/// The first day of the precomputed table (see [`DayTable`]).
const TABLE_FIRST: (i32, u32, u32) = (2000, 1, 1);
/// Days in the table: 2000 to about 2100.
const TABLE_DAYS: i64 = 36_600;

/// Business seconds before each day, from [`TABLE_FIRST`] on: makes the
/// business time between any two instants O(1) instead of a walk over every
/// day between them (a board of cases open for months would otherwise walk
/// thousands of days per page).
#[derive(Debug)]
struct DayTable {
    first: NaiveDate,
    /// `prefix[k]`: open seconds from the table's first midnight to the
    /// start of day `k`; one more entry than days.
    prefix: Vec<i64>,
}

/// When the desk is open.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    tz: Tz,
    /// Monday first.
    work_days: [bool; 7],
    windows: Vec<Window>,
    holidays: BTreeSet<NaiveDate>,
    /// Days worked although they fall on a day off (a holiday schedule's
    /// make-up days).
    make_up_days: BTreeSet<NaiveDate>,
    /// Built on first use and shared by clones.
    table: Arc<OnceLock<DayTable>>,
}

impl BusinessCalendar {
    /// A calendar that is open at all times (a 24×7 priority).
    pub fn always(tz: Tz) -> Self {
        Self {
            tz,
            work_days: [true; 7],
            windows: vec![Window {
                start: 0,
                end: 24 * 60,
            }],
            holidays: BTreeSet::new(),
            make_up_days: BTreeSet::new(),
            table: Arc::default(),
        }
    }

    /// `windows` must be sorted and not overlap (see [`parse_hours`]).
    pub fn new(
        tz: Tz,
        work_days: [bool; 7],
        windows: Vec<Window>,
        holidays: BTreeSet<NaiveDate>,
        make_up_days: BTreeSet<NaiveDate>,
    ) -> Self {
        Self {
            tz,
            work_days,
            windows,
            holidays,
            make_up_days,
            table: Arc::default(),
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Business minutes in one ordinary work day: what `1d` means.
    pub fn day_minutes(&self) -> i64 {
        self.windows
            .iter()
            .map(|w| i64::from(w.end - w.start))
            .sum()
    }

    pub fn is_work_day(&self, date: NaiveDate) -> bool {
        if self.make_up_days.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date)
            && self.work_days[date.weekday().num_days_from_monday() as usize]
    }

    /// The opening windows of a local date, as UTC instants.
    fn open_spans(&self, date: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
        let open = self.is_work_day(date);
        self.windows
            .iter()
            .filter(move |_| open)
            .map(move |w| (self.instant(date, w.start), self.instant(date, w.end)))
    }

    /// Local `date` at `minute` after midnight, as UTC. A local time that
    /// does not exist (skipped by a daylight-saving change) is taken as the
    /// first instant after the gap.
    fn instant(&self, date: NaiveDate, minute: u32) -> DateTime<Utc> {
        let day = date + Duration::days(i64::from(minute / (24 * 60)));
        let minute = minute % (24 * 60);
        let local = day.and_time(
            NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or(NaiveTime::MIN),
        );
        for shift in 0..=3 {
            let candidate = local + Duration::minutes(30 * shift);
            if let Some(t) = self.tz.from_local_datetime(&candidate).earliest() {
                return t.with_timezone(&Utc);
            }
        }
        Utc.from_utc_datetime(&local)
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn table(&self) -> &DayTable {
        self.table.get_or_init(|| {
            let (y, m, d) = TABLE_FIRST;
            let first = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
            let mut prefix = Vec::with_capacity(TABLE_DAYS as usize + 1);
            let mut total = 0;
            prefix.push(total);
            for date in first.iter_days().take(TABLE_DAYS as usize) {
                total += self
                    .open_spans(date)
                    .map(|(open, close)| (close - open).num_seconds().max(0))
                    .sum::<i64>();
                prefix.push(total);
            }
            DayTable { first, prefix }
        })
    }

    /// Business seconds from the table's start to `t`; `None` outside it.
    fn cumulative(&self, t: DateTime<Utc>) -> Option<i64> {
        let table = self.table();
        let date = self.local_date(t);
        let day = usize::try_from((date - table.first).num_days()).ok()?;
        let before = *table.prefix.get(day)?;
        table.prefix.get(day + 1)?;
        let within: i64 = self
            .open_spans(date)
            .map(|(open, close)| (t.min(close) - open).num_seconds().max(0))
            .sum();
        Some(before + within)
    }

    /// Business seconds between two instants; negative when `to` is before `from`.
    pub fn seconds_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to < from {
            return -self.seconds_between(to, from);
        }
        if let (Some(a), Some(b)) = (self.cumulative(from), self.cumulative(to)) {
            return b - a;
        }
        let first = self.local_date(from);
        let last = self.local_date(to).min(first + Duration::days(MAX_DAYS));
        let mut total = 0;
        let mut date = first;
        while date <= last {
            for (open, close) in self.open_spans(date) {
                let start = open.max(from);
                let end = close.min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
            date += Duration::days(1);
        }
        total
    }

    /// Whole business minutes between two instants, rounded towards zero.
    pub fn minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        self.seconds_between(from, to) / 60
    }

    /// The instant `seconds` business seconds after `from`. Zero gives
    /// `from` itself, even outside opening hours: nothing is left to wait for.
    pub fn add_seconds(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        if seconds <= 0 {
            return from;
        }
        if let Some(start) = self.cumulative(from) {
            let table = self.table();
            let target = start + seconds;
            // The day whose opening hours hold the target: the last day
            // that starts with less than `target` behind it.
            let next = table.prefix.partition_point(|p| *p < target);
            if next >= 1 && next < table.prefix.len() {
                let date = table.first + Duration::days(next as i64 - 1);
                let mut left = target - table.prefix[next - 1];
                for (open, close) in self.open_spans(date) {
                    let available = (close - open).num_seconds();
                    if available >= left {
                        return open + Duration::seconds(left);
                    }
                    left -= available;
                }
            }
        }
        self.walk_seconds(from, seconds)
    }

    /// `add_seconds` by walking the days, for instants outside the table.
    fn walk_seconds(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        let mut left = seconds;
        let first = self.local_date(from);
        let mut date = first;
        while date <= first + Duration::days(MAX_DAYS) {
            for (open, close) in self.open_spans(date) {
                let start = open.max(from);
                if close <= start {
                    continue;
                }
                let available = (close - start).num_seconds();
                if available >= left {
                    return start + Duration::seconds(left);
                }
                left -= available;
            }
            date += Duration::days(1);
        }
        from + Duration::days(MAX_DAYS)
    }
}

/// The first instant of a local date in `tz` (the first after a gap, if
/// midnight itself was skipped by a daylight-saving change).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    (0..=3)
        .find_map(|half_hours| {
            let local = date.and_time(NaiveTime::MIN) + Duration::minutes(30 * half_hours);
            tz.from_local_datetime(&local).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)))
}

/// Parses opening hours: `"09:00-18:00"`, or several windows separated by
/// commas (`"09:00-12:00, 13:30-18:00"`, a lunch break). `24:00` closes at
/// midnight.
pub fn parse_hours(text: &str) -> Result<Vec<Window>, String> {
    let mut windows = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not a window like 09:00-18:00"))?;
        let start = parse_clock(a.trim())?;
        let end = parse_clock(b.trim())?;
        if end <= start {
            return Err(format!("{part:?} closes before it opens"));
        }
        windows.push(Window { start, end });
    }
    if windows.is_empty() {
        return Err("no opening window given".into());
    }
    windows.sort_by_key(|w| w.start);
    if windows.windows(2).any(|pair| pair[1].start < pair[0].end) {
        return Err(format!("{text:?} has overlapping windows"));
    }
    Ok(windows)
}

fn parse_clock(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a time like 09:30"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("{text:?} is not a time like 09:30"))?;
    let m: u32 = m
        .parse()
        .map_err(|_| format!("{text:?} is not a time like 09:30"))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("{text:?} is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// Parses work days: `["mon", "tue", …]` (English names or their first three
/// letters, any case) into a Monday-first mask.
pub fn parse_work_days(days: &[String]) -> Result<[bool; 7], String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut mask = [false; 7];
    for day in days {
        let lower = day.trim().to_ascii_lowercase();
        let index = NAMES
            .iter()
            .position(|n| lower.len() >= 3 && lower.starts_with(n))
            .ok_or_else(|| format!("{day:?} is not a day of the week"))?;
        mask[index] = true;
    }
    if !mask.contains(&true) {
        return Err("no work day given".into());
    }
    Ok(mask)
}

/// Parses a date or an inclusive range of dates: `2026-10-01` or
/// `2026-10-01..2026-10-07`.
pub fn parse_dates(text: &str) -> Result<Vec<NaiveDate>, String> {
    let date = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{s:?} is not a date like 2026-10-01"))
    };
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (date(a)?, date(b)?),
        None => {
            let d = date(text)?;
            (d, d)
        }
    };
    if last < first || (last - first).num_days() > 366 {
        return Err(format!("{text:?} is not a range of at most a year"));
    }
    Ok(first.iter_days().take_while(|d| *d <= last).collect())
}

/// Reads the all-day events of an iCalendar file (RFC 5545) as holidays.
/// Each VEVENT's DTSTART (a date, or the date of a date-time) up to its
/// DTEND (exclusive; one day when missing). Recurrence rules are not
/// expanded: holiday calendars published for a year list each day.
pub fn parse_icalendar(text: &str) -> Result<BTreeSet<NaiveDate>, String> {
    let mut days = BTreeSet::new();
    // Unfold: a line starting with a space or tab continues the one before.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ => lines.push((i + 1, raw.to_string())),
        }
    }
    let mut in_event = false;
    let mut start: Option<(usize, NaiveDate)> = None;
    let mut end: Option<NaiveDate> = None;
    for (line_no, line) in &lines {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n.split(';').next().unwrap_or("").to_ascii_uppercase(), v),
            None => continue,
        };
        match (name.as_str(), value.trim()) {
            ("BEGIN", "VEVENT") => {
                in_event = true;
                start = None;
                end = None;
            }
            ("END", "VEVENT") => {
                in_event = false;
                let (at, first) = start
                    .take()
                    .ok_or_else(|| format!("line {line_no}: VEVENT without DTSTART"))?;
                let last = end.take().unwrap_or(first + Duration::days(1));
                if last <= first || (last - first).num_days() > 366 {
                    return Err(format!("line {at}: DTEND is not after DTSTART"));
                }
                days.extend(first.iter_days().take_while(|d| *d < last));
            }
            ("DTSTART", v) if in_event => start = Some((*line_no, ical_date(v, *line_no)?)),
            ("DTEND", v) if in_event => end = Some(ical_date(v, *line_no)?),
            _ => {}
        }
    }
    Ok(days)
}

fn ical_date(value: &str, line_no: usize) -> Result<NaiveDate, String> {
    value
        .get(..8)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .ok_or_else(|| format!("line {line_no}: {value:?} is not an iCalendar date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai_office() -> BusinessCalendar {
        BusinessCalendar::new(
            chrono_tz::Asia::Shanghai,
            parse_work_days(&["mon", "tue", "wed", "thu", "fri"].map(String::from)).unwrap(),
            parse_hours("09:00-18:00").unwrap(),
            parse_dates("2026-10-01..2026-10-07")
                .unwrap()
                .into_iter()
                .collect(),
            parse_dates("2026-10-10").unwrap().into_iter().collect(),
        )
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_friday_afternoon_hour_ends_on_monday_morning() {
        let cal = shanghai_office();
        // Friday 2026-11-20 17:30 in Shanghai; four business hours later is
        // Monday 12:30 (30 min on Friday, 3.5 h on Monday).
        let due = cal.add_seconds(t("2026-11-20T17:30:00+08:00"), 4 * 3600);
        assert_eq!(due, t("2026-11-23T12:30:00+08:00"));
        assert_eq!(
            cal.minutes_between(t("2026-11-20T17:30:00+08:00"), due),
            240
        );
    }

    #[test]
    fn the_october_holiday_is_skipped_and_its_make_up_saturday_counts() {
        let cal = shanghai_office();
        // Wednesday 2026-09-30 17:00 + 2 h: the 1st–7th are a holiday, the
        // 8th (Thursday) is open.
        let due = cal.add_seconds(t("2026-09-30T17:00:00+08:00"), 2 * 3600);
        assert_eq!(due, t("2026-10-08T10:00:00+08:00"));
        // Friday the 9th 17:00 + 2 h lands on the make-up Saturday the 10th.
        let due = cal.add_seconds(t("2026-10-09T17:00:00+08:00"), 2 * 3600);
        assert_eq!(due, t("2026-10-10T10:00:00+08:00"));
    }

    #[test]
    fn minutes_between_is_signed_and_ignores_closed_hours() {
        let cal = shanghai_office();
        let a = t("2026-11-23T08:00:00+08:00");
        let b = t("2026-11-23T10:15:00+08:00");
        assert_eq!(cal.minutes_between(a, b), 75);
        assert_eq!(cal.minutes_between(b, a), -75);
        // Saturday to Sunday: nothing.
        assert_eq!(
            cal.minutes_between(
                t("2026-11-21T09:00:00+08:00"),
                t("2026-11-22T20:00:00+08:00")
            ),
            0
        );
    }

    #[test]
    fn an_instant_given_in_utc_counts_in_the_desk_zone() {
        let cal = shanghai_office();
        // 01:00 UTC is 09:00 in Shanghai: the desk has just opened.
        let from = t("2026-11-23T01:00:00+00:00");
        assert_eq!(cal.add_seconds(from, 3600), t("2026-11-23T10:00:00+08:00"));
        // 23:00 UTC on Sunday is Monday 07:00 in Shanghai: before opening.
        assert_eq!(
            cal.add_seconds(t("2026-11-22T23:00:00+00:00"), 60),
            t("2026-11-23T09:01:00+08:00")
        );
    }

    #[test]
    fn a_lunch_break_and_an_always_open_calendar() {
        let mut cal = shanghai_office();
        cal.windows = parse_hours("13:30-18:00, 09:00-12:00").unwrap();
        assert_eq!(cal.day_minutes(), 450);
        let due = cal.add_seconds(t("2026-11-23T11:30:00+08:00"), 3600);
        assert_eq!(due, t("2026-11-23T14:00:00+08:00"));
        let always = BusinessCalendar::always(chrono_tz::UTC);
        assert_eq!(always.day_minutes(), 1440);
        assert_eq!(
            always.add_seconds(t("2026-11-21T23:30:00Z"), 3600),
            t("2026-11-22T00:30:00Z")
        );
    }

    #[test]
    fn bad_hours_and_days_are_refused_with_the_reason() {
        assert!(
            parse_hours("18:00-09:00")
                .unwrap_err()
                .contains("closes before")
        );
        assert!(parse_hours("9-18").is_err());
        assert!(
            parse_hours("09:00-12:00,11:00-13:00")
                .unwrap_err()
                .contains("overlapping")
        );
        assert!(parse_work_days(&["funday".into()]).is_err());
        assert!(parse_dates("2026-10-07..2026-10-01").is_err());
    }

    #[test]
    fn icalendar_all_day_events_become_holidays() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:National\r\n  Day\r\nDTSTART;VALUE=DATE:20261001\r\nDTEND;VALUE=DATE:20261004\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let days = parse_icalendar(ics).unwrap();
        let listed: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            listed,
            ["2026-01-01", "2026-10-01", "2026-10-02", "2026-10-03"]
        );
        let broken = "BEGIN:VEVENT\nDTSTART:2026\nEND:VEVENT\n";
        assert!(parse_icalendar(broken).unwrap_err().starts_with("line 2:"));
    }

    #[test]
    fn the_table_agrees_with_the_day_walk() {
        let cal = shanghai_office();
        let starts = [
            "2026-09-30T17:00:00+08:00",
            "2026-11-20T17:30:00+08:00",
            "2026-11-21T03:00:00+00:00",
            "2026-11-23T08:59:59+08:00",
            "2026-11-23T18:00:00+08:00",
        ];
        for start in starts {
            for seconds in [
                1,
                59,
                3600,
                9 * 3600,
                9 * 3600 + 1,
                5 * 9 * 3600,
                97 * 3600 + 17,
            ] {
                let from = t(start);
                let fast = cal.add_seconds(from, seconds);
                assert_eq!(
                    fast,
                    cal.walk_seconds(from, seconds),
                    "{start} + {seconds} s"
                );
                assert_eq!(
                    cal.seconds_between(from, fast),
                    seconds,
                    "{start} + {seconds} s"
                );
            }
        }
        // Outside the table (before 2000) the walk answers alone.
        let old = t("1999-12-31T09:00:00+08:00");
        assert_eq!(cal.add_seconds(old, 3600), t("1999-12-31T10:00:00+08:00"));
    }

    #[test]
    fn absurd_spans_are_bounded() {
        let cal = shanghai_office();
        let from = t("1970-01-01T00:00:00Z");
        let to = t("2099-01-01T00:00:00Z");
        // Bounded: it answers, and with at most MAX_DAYS of work.
        assert!(cal.minutes_between(from, to) <= MAX_DAYS * 540);
    }
}
