//! Notifications: who is told what, and when.
//!
//! The notification stage reads the event log, the SLA snapshots and the
//! mailboxes' states; these functions decide, without I/O, which person
//! each of those concerns (a notice), which channels carry it (the
//! person's choices over the desk's defaults), and when it may go out
//! (batched into a short window, held through quiet hours). Every notice has
//! a key that names the thing it tells of, so the store can keep it to once
//! per person and channel however often the stage reads the same event.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::sla::calendar::BusinessCalendar;
use crate::sla::{CaseSla, SlaPolicies, TargetKind};

/// What a notice tells of. Stored as [`Topic::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A customer wrote in a case the person owns.
    CustomerMail,
    /// A draft in a case the person owns waits for approval.
    DraftWaiting,
    /// Someone else gave the person a case.
    Assigned,
    /// A target of the person's case has used most of its budget.
    SlaAtRisk,
    /// A target of the person's case (for a lead: any case) is overdue.
    SlaBreached,
    /// An approved reply could not be sent.
    SendFailed,
    /// A watched mailbox refuses the desk's login.
    MailboxNeedsLogin,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::CustomerMail,
        Topic::DraftWaiting,
        Topic::Assigned,
        Topic::SlaAtRisk,
        Topic::SlaBreached,
        Topic::SendFailed,
        Topic::MailboxNeedsLogin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::CustomerMail => "customer_mail",
            Topic::DraftWaiting => "draft_waiting",
            Topic::Assigned => "assigned",
            Topic::SlaAtRisk => "sla_at_risk",
            Topic::SlaBreached => "sla_breached",
            Topic::SendFailed => "send_failed",
            Topic::MailboxNeedsLogin => "mailbox_needs_login",
        }
    }

    pub fn parse(word: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == word)
    }
}

impl TryFrom<String> for Topic {
    type Error = String;
    fn try_from(word: String) -> Result<Self, String> {
        Topic::parse(&word).ok_or_else(|| format!("unknown notification topic {word:?}"))
    }
}

/// A desk account as notifications see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub lead: bool,
    pub disabled: bool,
}

/// The desk's accounts, found by the name or address a case's owner is
/// recorded under.
#[derive(Debug, Clone, Default)]
pub struct People {
    people: Vec<Person>,
    by_handle: HashMap<String, usize>,
}

impl People {
    pub fn new(people: Vec<Person>) -> Self {
        let mut by_handle = HashMap::new();
        for (i, p) in people.iter().enumerate() {
            by_handle.insert(p.name.to_lowercase(), i);
            if let Some(email) = &p.email {
                by_handle.entry(email.to_lowercase()).or_insert(i);
            }
        }
        People { people, by_handle }
    }

    /// The enabled account an owner names (by name or address).
    pub fn resolve(&self, handle: &str) -> Option<&Person> {
        self.by_handle
            .get(&handle.trim().to_lowercase())
            .map(|&i| &self.people[i])
            .filter(|p| !p.disabled)
    }

    fn leads(&self) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(|p| p.lead && !p.disabled)
    }
}

/// A case as a notice names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRef {
    pub row: i64,
    pub key: String,
    pub title: Option<String>,
    pub customer: Option<String>,
    /// Who owns it now (an account's name or address), if anyone.
    pub owner: Option<String>,
}

/// One event of the log, with the case it belongs to.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub id: i64,
    pub kind: String,
    pub case: Option<CaseRef>,
    pub detail: serde_json::Value,
}

/// The event kinds a notice can come from.
pub const EVENT_KINDS: [&str; 4] = [
    "message_filed",
    "draft_created",
    "owner_assigned",
    "draft_send_failed",
];

/// What a notice says, in facts; each channel words it in its reader's language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseRef>,
    /// The SLA target concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetKind>,
    /// When that target is (or was) due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Who did it (an assignment's author).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A mailbox (`name/folder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// The error a failed send or a refused login reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The draft concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<i64>,
}

/// One person to be told one thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub person: String,
    pub topic: Topic,
    /// Names what is told of; the same key is never told twice to a person
    /// on a channel.
    pub key: String,
    pub facts: Facts,
}

fn notice(person: &Person, topic: Topic, key: String, facts: Facts) -> Notice {
    Notice {
        person: person.name.clone(),
        topic,
        key,
        facts,
    }
}

/// The notices one logged event calls for. Nobody is told of what they did
/// themselves, and a case nobody owns tells nobody but, for a failed send,
/// the leads.
pub fn for_event(event: &LoggedEvent, people: &People) -> Vec<Notice> {
    let Some(case) = &event.case else {
        return Vec::new();
    };
    let key = format!("event:{}", event.id);
    let owner = case.owner.as_deref().and_then(|o| people.resolve(o));
    let facts = Facts {
        case: Some(case.clone()),
        ..Facts::default()
    };
    match event.kind.as_str() {
        "message_filed" if event.detail["direction"] == "customer" => owner
            .map(|p| notice(p, Topic::CustomerMail, key, facts))
            .into_iter()
            .collect(),
        "draft_created" => owner
            .map(|p| {
                let facts = Facts {
                    draft: event.detail["draft"].as_i64(),
                    ..facts
                };
                notice(p, Topic::DraftWaiting, key, facts)
            })
            .into_iter()
            .collect(),
        "owner_assigned" => {
            let assignee = event.detail["owner"]
                .as_str()
                .and_then(|o| people.resolve(o));
            let by = event.detail["by"].as_str().unwrap_or_default();
            let by_person = people.resolve(by).map(|p| p.name.as_str());
            match assignee {
                Some(p) if by_person != Some(p.name.as_str()) => {
                    let facts = Facts {
                        by: Some(by.to_string()).filter(|b| !b.is_empty()),
                        ..facts
                    };
                    vec![notice(p, Topic::Assigned, key, facts)]
                }
                _ => Vec::new(),
            }
        }
        "draft_send_failed" => {
            let facts = Facts {
                draft: event.detail["draft"].as_i64(),
                error: event.detail["error"].as_str().map(str::to_string),
                ..facts
            };
            let told: Vec<&Person> = match owner {
                Some(p) => vec![p],
                None => people.leads().collect(),
            };
            told.into_iter()
                .map(|p| notice(p, Topic::SendFailed, key.clone(), facts.clone()))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The notices the open cases' SLA calls for at `now`: each unmet target at
/// risk tells the owner, each breached one the owner and every lead. A
/// target's key carries its due time, so a clock that starts again (a new
/// customer mail) can warn again, and one that stands still never twice.
pub fn for_sla<'a>(
    cases: impl IntoIterator<Item = &'a CaseSla>,
    policies: &SlaPolicies,
    now: DateTime<Utc>,
    people: &People,
) -> Vec<Notice> {
    let mut out = Vec::new();
    for sla in cases {
        let view = sla.view(policies, now);
        let owner = sla.owner.as_deref().and_then(|o| people.resolve(o));
        let targets = [
            (TargetKind::FirstResponse, &view.first_response),
            (TargetKind::Update, &view.update),
            (TargetKind::Handover, &view.handover),
            (TargetKind::Resolution, &view.resolution),
        ];
        for (kind, target) in targets {
            let Some(t) = target else { continue };
            if t.met_at.is_some() || t.cancelled {
                continue;
            }
            let (topic, told): (Topic, Vec<&Person>) = if t.breached {
                let mut told: Vec<&Person> = owner.into_iter().collect();
                told.extend(
                    people
                        .leads()
                        .filter(|l| Some(l.name.as_str()) != owner.map(|o| o.name.as_str())),
                );
                (Topic::SlaBreached, told)
            } else if t.at_risk {
                (Topic::SlaAtRisk, owner.into_iter().collect())
            } else {
                continue;
            };
            let due = t.due;
            let key = format!(
                "sla:{}:{}:{}:{}",
                sla.case_row,
                kind.as_str(),
                due.map_or(0, |d| d.timestamp()),
                topic.as_str()
            );
            let facts = Facts {
                case: Some(CaseRef {
                    row: sla.case_row,
                    key: sla.case_key.clone(),
                    title: sla.title.clone(),
                    customer: sla.customer.clone(),
                    owner: sla.owner.clone(),
                }),
                target: Some(kind),
                due,
                ..Facts::default()
            };
            out.extend(
                told.into_iter()
                    .map(|p| notice(p, topic, key.clone(), facts.clone())),
            );
        }
    }
    out
}

/// A watched mailbox folder as its watcher last recorded it.
#[derive(Debug, Clone)]
pub struct MailboxState {
    pub mailbox: String,
    pub folder: String,
    pub needs_login: bool,
    /// When it came into this state (Unix seconds): a new refusal after a
    /// good login is told again.
    pub since: i64,
    pub error: Option<String>,
}

/// The leads are told once each time a mailbox comes to need a login.
pub fn for_mailboxes(states: &[MailboxState], people: &People) -> Vec<Notice> {
    let mut out = Vec::new();
    for s in states.iter().filter(|s| s.needs_login) {
        let key = format!("mailbox:{}/{}:{}", s.mailbox, s.folder, s.since);
        let facts = Facts {
            mailbox: Some(format!("{}/{}", s.mailbox, s.folder)),
            error: s.error.clone(),
            ..Facts::default()
        };
        out.extend(
            people
                .leads()
                .map(|p| notice(p, Topic::MailboxNeedsLogin, key.clone(), facts.clone())),
        );
    }
    out
}

/// Which channels carry which topics: the desk's defaults per channel, and
/// each person's own choices over them.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    /// Per channel, the topics it carries for someone who chose nothing.
    pub defaults: BTreeMap<String, BTreeSet<Topic>>,
    /// (person, topic, channel) → on or off.
    pub chosen: HashMap<(String, Topic, String), bool>,
}

impl Preferences {
    /// Whether `person` gets `topic` on `channel`.
    pub fn wants(&self, person: &str, topic: Topic, channel: &str) -> bool {
        match self
            .chosen
            .get(&(person.to_string(), topic, channel.to_string()))
        {
            Some(&on) => on,
            None => self
                .defaults
                .get(channel)
                .is_some_and(|topics| topics.contains(&topic)),
        }
    }

    /// The channels that carry `notice`, of those configured.
    pub fn channels_for<'a>(&'a self, notice: &'a Notice) -> impl Iterator<Item = &'a str> + 'a {
        self.defaults
            .keys()
            .map(String::as_str)
            .filter(|c| self.wants(&notice.person, notice.topic, c))
    }
}

/// When a notice made at `now` may go out: at the end of the batching
/// window it falls in (all notices of one window go out together, one
/// message per person and channel), and outside the business calendar's
/// hours not before they open again, unless `urgent`.
pub fn due_at(
    now: DateTime<Utc>,
    batch_secs: i64,
    quiet: Option<&BusinessCalendar>,
    urgent: bool,
) -> DateTime<Utc> {
    let window = batch_secs.max(1);
    let end = (now.timestamp().div_euclid(window) + 1) * window;
    let batched = Utc.timestamp_opt(end, 0).single().unwrap_or(now);
    match quiet {
        Some(calendar) if !urgent => {
            // One business second from `now`, less that second, is the
            // first open instant (`now` itself inside opening hours).
            let open = calendar.add_seconds(now, 1) - Duration::seconds(1);
            batched.max(open)
        }
        _ => batched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::{Happening, Timeline, evaluate};

    fn people() -> People {
        People::new(vec![
            Person {
                name: "alice".into(),
                email: Some("alice@example.com".into()),
                lead: false,
                disabled: false,
            },
            Person {
                name: "lily".into(),
                email: Some("lily@example.com".into()),
                lead: true,
                disabled: false,
            },
            Person {
                name: "gone".into(),
                email: None,
                lead: true,
                disabled: true,
            },
        ])
    }

    fn case(owner: Option<&str>) -> CaseRef {
        CaseRef {
            row: 7,
            key: "CAS-01234-A1B2C3".into(),
            title: Some("KB5034441 0x80070643".into()),
            customer: Some("ACME".into()),
            owner: owner.map(str::to_string),
        }
    }

    fn event(id: i64, kind: &str, owner: Option<&str>, detail: serde_json::Value) -> LoggedEvent {
        LoggedEvent {
            id,
            kind: kind.into(),
            case: Some(case(owner)),
            detail,
        }
    }

    #[test]
    fn a_customer_mail_tells_the_owner_found_by_address_and_nobody_without_one() {
        let p = people();
        let e = event(
            3,
            "message_filed",
            Some("Alice@Example.com"),
            serde_json::json!({"direction": "customer"}),
        );
        let n = for_event(&e, &p);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].person.as_str(), n[0].topic),
            ("alice", Topic::CustomerMail)
        );
        assert_eq!(n[0].key, "event:3");
        let unowned = event(
            4,
            "message_filed",
            None,
            serde_json::json!({"direction": "customer"}),
        );
        assert!(for_event(&unowned, &p).is_empty());
        let ours = event(
            5,
            "message_filed",
            Some("alice"),
            serde_json::json!({"direction": "engineer"}),
        );
        assert!(for_event(&ours, &p).is_empty());
    }

    #[test]
    fn an_assignment_tells_the_assignee_unless_they_took_it_themselves() {
        let p = people();
        let given = event(
            9,
            "owner_assigned",
            Some("alice"),
            serde_json::json!({"owner": "alice", "by": "lily"}),
        );
        let n = for_event(&given, &p);
        assert_eq!(
            (n[0].person.as_str(), n[0].topic),
            ("alice", Topic::Assigned)
        );
        assert_eq!(n[0].facts.by.as_deref(), Some("lily"));
        let taken = event(
            10,
            "owner_assigned",
            Some("alice"),
            serde_json::json!({"owner": "alice", "by": "alice@example.com"}),
        );
        assert!(for_event(&taken, &p).is_empty());
    }

    #[test]
    fn a_failed_send_tells_the_owner_or_else_the_enabled_leads() {
        let p = people();
        let d = serde_json::json!({"draft": 4, "error": "550 no such user"});
        let owned = for_event(
            &event(11, "draft_send_failed", Some("alice"), d.clone()),
            &p,
        );
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].facts.error.as_deref(), Some("550 no such user"));
        let unowned = for_event(&event(12, "draft_send_failed", None, d), &p);
        let told: Vec<&str> = unowned.iter().map(|n| n.person.as_str()).collect();
        assert_eq!(told, ["lily"]);
    }

    #[test]
    fn preferences_fall_back_to_the_channel_defaults() {
        let mut prefs = Preferences::default();
        prefs
            .defaults
            .insert("email".into(), [Topic::CustomerMail].into());
        prefs.defaults.insert("wecom".into(), BTreeSet::new());
        prefs
            .chosen
            .insert(("alice".into(), Topic::CustomerMail, "email".into()), false);
        prefs
            .chosen
            .insert(("alice".into(), Topic::CustomerMail, "wecom".into()), true);
        let n = Notice {
            person: "alice".into(),
            topic: Topic::CustomerMail,
            key: "event:1".into(),
            facts: Facts::default(),
        };
        assert_eq!(prefs.channels_for(&n).collect::<Vec<_>>(), ["wecom"]);
        let bob = Notice {
            person: "bob".into(),
            ..n
        };
        assert_eq!(prefs.channels_for(&bob).collect::<Vec<_>>(), ["email"]);
        // A channel no longer configured carries nothing, whatever was chosen.
        prefs
            .chosen
            .insert(("bob".into(), Topic::CustomerMail, "teams".into()), true);
        assert_eq!(prefs.channels_for(&bob).count(), 1);
    }

    #[test]
    fn notices_wait_for_their_window_and_for_opening_hours() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let calendar = BusinessCalendar::new(
            tz,
            [true, true, true, true, true, false, false],
            crate::sla::calendar::parse_hours("09:00-18:00").unwrap(),
            Default::default(),
            Default::default(),
        );
        // Monday 2 March 2026, 10:00:05 in Shanghai.
        let open = Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 5).unwrap();
        assert_eq!(
            due_at(open, 30, Some(&calendar), false),
            Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 30).unwrap()
        );
        // Friday 6 March, 20:00: held until Monday 09:00.
        let evening = Utc.with_ymd_and_hms(2026, 3, 6, 12, 0, 0).unwrap();
        assert_eq!(
            due_at(evening, 30, Some(&calendar), false),
            Utc.with_ymd_and_hms(2026, 3, 9, 1, 0, 0).unwrap()
        );
        assert_eq!(
            due_at(evening, 30, Some(&calendar), true),
            Utc.with_ymd_and_hms(2026, 3, 6, 12, 0, 30).unwrap()
        );
        assert_eq!(
            due_at(evening, 30, None, false),
            Utc.with_ymd_and_hms(2026, 3, 6, 12, 0, 30).unwrap()
        );
    }

    #[test]
    fn a_breach_tells_the_owner_and_the_leads_once_per_due_time() {
        let policies = SlaPolicies::from_config(
            &crate::sla::policy::SlaConfig::default(),
            "Asia/Shanghai",
            std::path::Path::new("."),
        )
        .unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap();
        let timeline = Timeline {
            case_row: 7,
            case_key: "CAS-01234-A1B2C3".into(),
            case_id: None,
            title: None,
            customer: None,
            priority: None,
            happenings: vec![
                Happening::Mail {
                    at: start,
                    direction: crate::domain::Direction::Customer,
                    signal: None,
                    stage: None,
                    sender: None,
                },
                Happening::Assigned {
                    at: start,
                    owner: "alice".into(),
                },
            ],
        };
        let sla = evaluate(&timeline, &policies, None).unwrap();
        let p = people();
        let soon = start + Duration::minutes(1);
        assert!(for_sla([&sla], &policies, soon, &p).is_empty());
        let late = start + Duration::days(20);
        let n = for_sla([&sla], &policies, late, &p);
        let breached: Vec<(&str, Topic)> = n
            .iter()
            .filter(|n| n.facts.target == Some(TargetKind::FirstResponse))
            .map(|n| (n.person.as_str(), n.topic))
            .collect();
        assert_eq!(
            breached,
            [("alice", Topic::SlaBreached), ("lily", Topic::SlaBreached)]
        );
        // The same breach read later has the same key.
        let again = for_sla([&sla], &policies, late + Duration::hours(1), &p);
        assert_eq!(
            n.iter().map(|n| &n.key).collect::<Vec<_>>(),
            again.iter().map(|n| &n.key).collect::<Vec<_>>()
        );
    }
}
