//! Table tests of the SLA engine: each row is a thread, an instant, and how
//! the case must stand then. Default policy P2: first response 4 h, update
//! 1 d (9 h), resolution 5 d; the desk opens 09:00–18:00 Monday to Friday
//! in Asia/Shanghai. 2026-11-20 is a Friday; 2026-10-01..07 a holiday.

use super::tests_support::*;
use super::*;

fn view_at(policies: &SlaPolicies, timeline: &Timeline, now: &str) -> CaseSlaView {
    let now = t(now);
    evaluate(timeline, policies, Some(now))
        .expect("a person wrote")
        .view(policies, now)
}

struct Row {
    name: &'static str,
    priority: &'static str,
    thread: &'static [&'static str],
    now: &'static str,
    state: &'static str,
    urgency: Urgency,
    /// (target, minutes left, breached); target one of first_response,
    /// update, handover, resolution.
    targets: &'static [(&'static str, i64, bool)],
}

fn target<'a>(view: &'a CaseSlaView, name: &str) -> &'a TargetView {
    match name {
        "first_response" => view.first_response.as_ref(),
        "update" => view.update.as_ref(),
        "handover" => view.handover.as_ref(),
        "resolution" => view.resolution.as_ref(),
        other => panic!("no target {other}"),
    }
    .unwrap_or_else(|| panic!("{}: no {name} target", view.case_key))
}

#[test]
fn sla_table() {
    let rows = [
        Row {
            name: "Friday-evening mail: the first response is due on Monday, the weekend does not count",
            priority: "P2",
            thread: &["2026-11-20T17:00:00+08:00 customer"],
            now: "2026-11-22T20:00:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            // 1 h on Friday, nothing on the weekend: 3 h left.
            targets: &[
                ("first_response", 180, false),
                ("resolution", 45 * 60 - 60, false),
            ],
        },
        Row {
            name: "the same mail on Monday at noon: first response breached",
            priority: "P2",
            thread: &["2026-11-20T17:00:00+08:00 customer"],
            // 1 h on Friday and 3.5 h on Monday: 4.5 h for a 4 h target.
            now: "2026-11-23T12:30:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::Breached,
            targets: &[("first_response", -30, true)],
        },
        Row {
            name: "mail before the October holiday: due after it",
            priority: "P2",
            thread: &["2026-09-30T16:00:00+08:00 customer"],
            now: "2026-10-08T10:00:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            // 2 h on the 30th, the holiday, 1 h on the 8th: 75 % used.
            targets: &[("first_response", 60, false)],
        },
        Row {
            name: "answered in time, then waiting on the customer: every clock paused",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice 初次响应",
            ],
            now: "2026-11-30T10:00:00+08:00",
            state: "waiting_on_customer",
            urgency: Urgency::Paused,
            targets: &[
                ("first_response", 180, false),
                ("resolution", 45 * 60 - 60, false),
            ],
        },
        Row {
            name: "customer answers after a week: the update clock starts, resolution resumes",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice 初次响应",
                "2026-11-30T09:00:00+08:00 customer",
            ],
            now: "2026-11-30T11:00:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            targets: &[
                ("update", 9 * 60 - 120, false),
                ("resolution", 45 * 60 - 180, false),
            ],
        },
        Row {
            name: "mail dated +0000 counts in the desk's zone (01:00 UTC is 09:00 in Shanghai)",
            priority: "P2",
            thread: &["2026-11-23T01:00:00+00:00 customer"],
            now: "2026-11-23T04:00:00+00:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            targets: &[("first_response", 60, false)],
        },
        Row {
            name: "mail at 23:00 UTC on Sunday is Monday 07:00 in Shanghai: nothing used before 09:00",
            priority: "P2",
            thread: &["2026-11-22T23:00:00+00:00 customer"],
            now: "2026-11-23T08:59:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            targets: &[("first_response", 240, false)],
        },
        Row {
            name: "auto-replies and bounces move nothing",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T09:30:00+08:00 auto",
                "2026-11-23T09:40:00+08:00 bounce",
            ],
            now: "2026-11-23T12:00:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            targets: &[("first_response", 60, false)],
        },
        Row {
            name: "at risk once 80 % of the first response is used",
            priority: "P2",
            thread: &["2026-11-23T09:00:00+08:00 customer"],
            now: "2026-11-23T12:15:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::AtRisk,
            targets: &[("first_response", 45, false)],
        },
        Row {
            name: "the partner's marked first response counts, not an earlier unmarked mail",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice",
                "2026-11-23T15:00:00+08:00 engineer:alice 初次响应",
            ],
            now: "2026-11-23T16:00:00+08:00",
            state: "waiting_on_customer",
            urgency: Urgency::Paused,
            // 6 h for a 4 h target: met, but late.
            targets: &[("first_response", -120, true)],
        },
        Row {
            name: "reassigned on the desk: the new owner's first mail is due within the first-response time",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice 初次响应",
                "2026-11-24T09:00:00+08:00 assign:bob",
            ],
            now: "2026-11-24T12:00:00+08:00",
            state: "waiting_on_customer",
            urgency: Urgency::OnTrack,
            targets: &[("handover", 60, false)],
        },
        Row {
            name: "reassigned, and only a mail from the new owner meets the handover",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice 初次响应",
                "2026-11-24T09:00:00+08:00 assign:bob",
                "2026-11-24T10:00:00+08:00 engineer:alice",
            ],
            now: "2026-11-24T14:00:00+08:00",
            state: "waiting_on_customer",
            urgency: Urgency::Breached,
            targets: &[("handover", -60, true)],
        },
        Row {
            name: "a mail marked 案例重新分配 from a new engineer is the new owner's introduction",
            priority: "P2",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T10:00:00+08:00 engineer:alice 初次响应",
                "2026-11-25T10:00:00+08:00 engineer:carol 案例重新分配",
            ],
            now: "2026-11-25T11:00:00+08:00",
            state: "waiting_on_customer",
            urgency: Urgency::Paused,
            targets: &[("first_response", 180, false)],
        },
        Row {
            name: "the customer confirms the fix: closed, the resolution met",
            priority: "P1",
            thread: &[
                "2026-11-23T09:00:00+08:00 customer",
                "2026-11-23T09:30:00+08:00 engineer:alice 初次响应",
                "2026-11-24T09:00:00+08:00 customer resolution",
            ],
            now: "2026-12-10T09:00:00+08:00",
            state: "resolved",
            urgency: Urgency::Closed,
            // P1: resolution 2 d = 18 h; 30 min used.
            targets: &[
                ("resolution", 18 * 60 - 30, false),
                ("first_response", 30, false),
            ],
        },
        Row {
            name: "a 24×7 priority counts the weekend",
            priority: "P1",
            thread: &["2026-11-21T10:00:00+08:00 customer"],
            now: "2026-11-21T10:45:00+08:00",
            state: "waiting_on_us",
            urgency: Urgency::OnTrack,
            targets: &[("first_response", 15, false)],
        },
    ];
    let business = policies(|_| {});
    let around_the_clock =
        policies(|c| c.priorities.get_mut("P1").unwrap().hours = "always".into());
    // The partner's English stage words drive the clocks the same way.
    let english: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.thread
                .iter()
                .map(|l| {
                    l.replace("初次响应", "First-Response")
                        .replace("案例重新分配", "case-reassigned")
                })
                .collect()
        })
        .collect();
    let mut failures = Vec::new();
    for (row, english) in rows.iter().zip(&english) {
        let english: Vec<&str> = english.iter().map(String::as_str).collect();
        for thread in [row.thread, english.as_slice()] {
            check_row(row, thread, &business, &around_the_clock, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_row(
    row: &Row,
    thread: &[&str],
    business: &SlaPolicies,
    around_the_clock: &SlaPolicies,
    failures: &mut Vec<String>,
) {
    let policies = if row.name.contains("24×7") {
        around_the_clock
    } else {
        business
    };
    let view = view_at(policies, &case(row.priority, thread), row.now);
    let mut check = |what: &str, ok: bool, got: String| {
        if !ok {
            failures.push(format!("{}: {what}: got {got}", row.name));
        }
    };
    check("state", view.state == row.state, view.state.into());
    check(
        "urgency",
        view.urgency == row.urgency,
        format!("{:?}", view.urgency),
    );
    for (name, left, breached) in row.targets {
        let t = target(&view, name);
        check(
            name,
            t.minutes_left == *left && t.breached == *breached,
            format!("{} min left, breached {}", t.minutes_left, t.breached),
        );
    }
}

#[test]
fn only_machine_mail_is_not_measured() {
    let p = policies(|_| {});
    let timeline = case("P2", &["2026-11-23T09:00:00+08:00 auto"]);
    assert!(evaluate(&timeline, &p, None).is_none());
}

#[test]
fn the_evaluation_ignores_what_happens_after_now() {
    let p = policies(|_| {});
    let timeline = case(
        "P2",
        &[
            "2026-11-23T09:00:00+08:00 customer",
            "2026-11-23T10:00:00+08:00 engineer:alice",
        ],
    );
    let before = view_at(&p, &timeline, "2026-11-23T09:30:00+08:00");
    assert_eq!(before.state, "waiting_on_us");
    assert!(before.first_response.unwrap().met_at.is_none());
    let after = view_at(&p, &timeline, "2026-11-23T10:30:00+08:00");
    assert_eq!(after.owner.as_deref(), Some("alice"));
    assert_eq!(
        after.first_response.unwrap().met_at,
        Some(t("2026-11-23T10:00:00+08:00"))
    );
}

#[test]
fn a_reopened_case_runs_its_resolution_clock_again() {
    let p = policies(|_| {});
    let timeline = case(
        "P2",
        &[
            "2026-11-23T09:00:00+08:00 customer",
            "2026-11-23T10:00:00+08:00 engineer:alice",
            "2026-11-23T11:00:00+08:00 customer resolution",
            "2026-11-24T09:00:00+08:00 customer",
        ],
    );
    let view = view_at(&p, &timeline, "2026-11-24T10:00:00+08:00");
    assert_eq!(view.state, "waiting_on_us");
    assert_eq!(view.closed_at, None);
    let resolution = view.resolution.unwrap();
    // 1 h before the first response, 1 h since reopening.
    assert_eq!(resolution.used_minutes, 120);
    assert!(resolution.met_at.is_none() && !resolution.paused);
    assert_eq!(view.update.unwrap().used_minutes, 60);
}

#[test]
fn urgency_order_puts_the_worst_first() {
    let p = policies(|_| {});
    let now = "2026-11-23T17:00:00+08:00";
    let breached = case("P3", &["2026-11-20T09:00:00+08:00 customer"]);
    let mut soon = case("P2", &["2026-11-23T13:30:00+08:00 customer"]);
    soon.case_key = "soon".into();
    let mut paused = case(
        "P1",
        &[
            "2026-11-23T09:00:00+08:00 customer",
            "2026-11-23T09:10:00+08:00 engineer:alice",
        ],
    );
    paused.case_key = "paused".into();
    let mut views = vec![
        view_at(&p, &paused, now),
        view_at(&p, &soon, now),
        view_at(&p, &breached, now),
    ];
    sort_by_urgency(&mut views);
    let order: Vec<Urgency> = views.iter().map(|v| v.urgency).collect();
    assert_eq!(order, [Urgency::Breached, Urgency::AtRisk, Urgency::Paused]);
}

#[test]
fn a_case_closed_by_hand_stops_its_clocks_and_the_next_mail_reopens_it() {
    let p = policies(|_| {});
    let thread = [
        "2026-11-20T01:00:00Z customer",
        "2026-11-20T02:00:00Z set:resolved",
    ];
    let closed = view_at(&p, &case("P2", &thread), "2026-11-27T08:00:00Z");
    assert_eq!(closed.state, "resolved");
    assert_eq!(closed.urgency, Urgency::Closed);
    assert!(target(&closed, "first_response").cancelled);
    let reopened = case(
        "P2",
        &[thread[0], thread[1], "2026-11-23T01:00:00Z customer"],
    );
    let open = view_at(&p, &reopened, "2026-11-23T02:00:00Z");
    assert_eq!(open.state, "waiting_on_us");
    assert!(target(&open, "resolution").met_at.is_none());
    // Reopened by hand, too.
    let by_hand = case(
        "P2",
        &[
            thread[0],
            thread[1],
            "2026-11-23T01:00:00Z set:waiting_on_us",
        ],
    );
    assert_eq!(
        view_at(&p, &by_hand, "2026-11-23T02:00:00Z").state,
        "waiting_on_us"
    );
}
