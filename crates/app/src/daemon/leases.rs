//! Sharing the mailboxes out among instances.
//!
//! Each watched source (an IMAP folder, a Maildir) runs under a lease, so
//! that exactly one instance at a time watches it ([`while_leased`]). Left to
//! first come, first served, the instance that starts first would take every
//! source and the others would only stand by; so each instance confirms
//! itself in the store every [`LEASE_INTERVAL`] (the heartbeat), learns from
//! the same rows how many instances are alive, and aims at a fair share of
//! the sources ([`fair_share`]):
//!
//! - below its share it asks for a free lease at every interval;
//! - at or above it, it still asks, but only every [`DEFER_TICKS`] intervals,
//!   so that a lease nobody else wants (another instance watches fewer
//!   sources, say) is never left unwatched for long, and an instance below
//!   its share wins the race for it;
//! - above its share, or two or more sources above the least busy live
//!   instance (3 sources on 2 + 1 + 0 is within everyone's rounded-up share,
//!   yet uneven), it hands one lease over every [`RELEASE_GAP`]; an instance
//!   below its share then takes it, while the one that handed it over waits
//!   [`DEFER_TICKS`] before asking for it again. A new instance gets its
//!   share within seconds of starting.
//!
//! An instance that dies stops counting at once on its own host (its
//! process is gone) and after [`LIVE_SECS`](casebot_store::lease::LIVE_SECS)
//! elsewhere; its leases go with
//! its connection or lock file, and the survivors' shares grow to take
//! them.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use casebot_store::Store;

/// How often a lease holder confirms its lease, a waiting instance below its
/// share asks for one, and every instance sends its heartbeat: the longest a
/// source goes unwatched after its watcher dies on this host.
pub const LEASE_INTERVAL: Duration = Duration::from_secs(1);
/// An instance at or above its share asks for a free lease every this many
/// intervals.
const DEFER_TICKS: u32 = 5;
/// An instance above its share hands over one lease per this long, so that
/// the others take them up before it hands over more.
const RELEASE_GAP: Duration = Duration::from_secs(2);
/// Heartbeats before an instance asks for sources: the instances started
/// together have then seen each other, and share out instead of the first
/// one taking everything.
const HEARTBEATS_BEFORE_SHARING: u32 = 2;
/// The pause after the first heartbeat: short, so that a lone instance
/// starts watching at once; later ones come every [`LEASE_INTERVAL`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// The drafting stage's lease name (not a source: it is not shared out).
pub const DRAFTING: &str = "drafting";

/// How many of `sources` each of `live` instances should watch: rounded up,
/// so that together they cover every source.
pub fn fair_share(sources: usize, live: usize) -> usize {
    sources.div_ceil(live.max(1))
}

/// This instance's place among the others: what it holds, how many are
/// alive, and so what it should ask for or hand over.
pub struct Roster {
    /// The sources this instance is configured to watch.
    sources: usize,
    /// Every lease held (sources and the drafting stage), for the heartbeat.
    held: Mutex<BTreeSet<String>>,
    /// Live instances at the last heartbeat, this one included.
    live: AtomicUsize,
    /// The fewest sources another live instance holds (`usize::MAX`: none).
    fewest_elsewhere: AtomicUsize,
    heartbeats: watch::Sender<u32>,
    last_release: Mutex<Option<Instant>>,
}

impl Roster {
    pub fn new(sources: usize) -> Roster {
        Roster {
            sources,
            held: Mutex::default(),
            live: AtomicUsize::new(1),
            fewest_elsewhere: AtomicUsize::new(usize::MAX),
            heartbeats: watch::channel(0).0,
            last_release: Mutex::default(),
        }
    }

    fn share(&self) -> usize {
        fair_share(self.sources, self.live.load(Ordering::Relaxed))
    }

    /// The source leases held: every lease but the drafting stage's.
    fn sources_held(&self) -> usize {
        let names = self.held.lock().unwrap_or_else(|e| e.into_inner());
        names.len() - usize::from(names.contains(DRAFTING))
    }

    fn below_share(&self) -> bool {
        self.sources_held() < self.share()
    }

    /// Whether to hand one source lease over now; true at most once per
    /// [`RELEASE_GAP`] across all of this instance's leases.
    fn should_hand_over(&self) -> bool {
        let held = self.sources_held();
        let uneven = self
            .fewest_elsewhere
            .load(Ordering::Relaxed)
            .saturating_add(2)
            <= held;
        if held <= self.share() && !uneven {
            return false;
        }
        let mut last = self.last_release.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < RELEASE_GAP) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Records that this instance now holds (or no longer holds) `name`.
    pub fn set_held(&self, name: &str, held: bool) {
        let mut names = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held {
            names.insert(name.to_string());
        } else {
            names.remove(name);
        }
    }

    fn held_names(&self) -> Vec<String> {
        let names = self.held.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().cloned().collect()
    }

    async fn ready_to_share(&self) {
        let mut beats = self.heartbeats.subscribe();
        let _ = beats.wait_for(|&n| n >= HEARTBEATS_BEFORE_SHARING).await;
    }
}

/// Confirms this instance in the store every [`LEASE_INTERVAL`] with the
/// leases it holds, and counts the live instances for the roster. Removes
/// this instance's row when `stop` turns true.
pub async fn heartbeat_forever(
    store: Store,
    roster: std::sync::Arc<Roster>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    if let Err(e) = store.forget_old_instances().await {
        tracing::warn!(error = %format!("{e:#}"), "cannot forget instances gone for a day");
    }
    let mut failing = false;
    loop {
        match store.heartbeat(&roster.held_names()).await {
            Ok(rows) => {
                let now = casebot_store::now_ts();
                let alive: Vec<_> = rows.iter().filter(|r| r.is_alive(now)).collect();
                let live = alive.len().max(1);
                let fewest = alive
                    .iter()
                    .filter(|r| r.id != casebot_store::lease::instance::id())
                    .map(|r| r.leases.lines().filter(|l| *l != DRAFTING).count())
                    .min()
                    .unwrap_or(usize::MAX);
                roster.fewest_elsewhere.store(fewest, Ordering::Relaxed);
                let before = roster.live.swap(live, Ordering::Relaxed);
                if before != live {
                    tracing::info!(
                        instances = live,
                        share = roster.share(),
                        sources = roster.sources,
                        "live instances changed"
                    );
                }
                roster.heartbeats.send_modify(|n| *n = n.saturating_add(1));
                if failing {
                    tracing::info!("heartbeat works again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %format!("{e:#}"), "heartbeat failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        let pause = if *roster.heartbeats.borrow() == 1 {
            FIRST_PAUSE
        } else {
            LEASE_INTERVAL
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
    }
    if let Err(e) = store.forget_this_instance().await {
        tracing::warn!(error = %format!("{e:#}"), "cannot remove this instance's row");
    }
    Ok(())
}

/// Runs `work` while this instance holds the source lease `name`, so that
/// among all instances on one store exactly one does it, and the sources
/// are shared out as the module says. A holder that loses its lease (the
/// store restarted) or hands it over stops the work, lets it finish what it
/// has in hand, and waits like the others. Returns when `stop` turns true.
pub async fn while_leased<W, F>(
    store: Store,
    roster: std::sync::Arc<Roster>,
    name: String,
    mut stop: watch::Receiver<bool>,
    work: W,
) -> Result<()>
where
    W: Fn(watch::Receiver<bool>) -> F,
    F: Future<Output = Result<()>> + Send + 'static,
{
    tokio::select! {
        _ = roster.ready_to_share() => {}
        _ = stop.changed() => return Ok(()),
    }
    let mut lease = store.lease(&name);
    let mut waiting_logged = false;
    let mut failing = false;
    let mut ticks_deferred = 0;
    // Just handed over: leave it to the instance it was meant for.
    let mut handed_over = false;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let ask = (roster.below_share() && !handed_over) || ticks_deferred >= DEFER_TICKS;
        ticks_deferred = if ask { 0 } else { ticks_deferred + 1 };
        handed_over &= !ask;
        match if ask { lease.hold().await } else { Ok(false) } {
            Ok(true) => {
                tracing::info!(lease = %name, "lease taken: this instance does the work");
                roster.set_held(&name, true);
                waiting_logged = false;
                failing = false;
                let (work_stop_tx, work_stop) = watch::channel(false);
                let mut task = tokio::spawn(work(work_stop));
                let ended = loop {
                    tokio::select! {
                        ended = &mut task => break Some(ended),
                        _ = stop.changed() => break None,
                        _ = tokio::time::sleep(LEASE_INTERVAL) => {
                            if let Err(e) = lease.hold().await {
                                tracing::warn!(lease = %name, error = %format!("{e:#}"), "lease lost: stopping the work");
                                break None;
                            }
                            if roster.should_hand_over() {
                                tracing::info!(lease = %name, "more sources than a fair share: handing this one over");
                                handed_over = true;
                                break None;
                            }
                        }
                    }
                };
                let ended = match ended {
                    Some(ended) => ended,
                    None => {
                        let _ = work_stop_tx.send(true);
                        task.await
                    }
                };
                lease.release();
                roster.set_held(&name, false);
                ended??;
            }
            Ok(false) if ask && !waiting_logged => {
                tracing::info!(lease = %name, "another instance holds the lease; standing by");
                waiting_logged = true;
            }
            Ok(false) => {}
            Err(e) if !failing => {
                tracing::warn!(lease = %name, error = %format!("{e:#}"), "cannot ask for the lease; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_INTERVAL) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_is_covered_and_shares_differ_by_at_most_one() {
        for sources in 0..20 {
            for live in 1..8 {
                let share = fair_share(sources, live);
                assert!(share * live >= sources, "{sources} over {live}");
                assert!(share * live < sources + live, "{sources} over {live}");
            }
        }
        assert_eq!(fair_share(4, 0), 4, "before the first heartbeat: alone");
    }

    #[test]
    fn an_instance_above_its_share_hands_over_one_lease_at_a_time() {
        let roster = Roster::new(4);
        for name in ["a", "b", "c", "d"] {
            roster.set_held(name, true);
        }
        roster.set_held(DRAFTING, true);
        assert!(!roster.should_hand_over(), "alone, all four are its share");
        roster.live.store(2, Ordering::Relaxed);
        assert!(roster.should_hand_over());
        assert!(!roster.should_hand_over(), "one per gap");
        roster.set_held("d", false);
        roster.set_held("d", false);
        assert_eq!(roster.sources_held(), 3);
        assert!(!roster.below_share());
        roster.live.store(4, Ordering::Relaxed);
        assert!(!roster.below_share(), "one each, and it has three");
        roster.live.store(1, Ordering::Relaxed);
        assert!(roster.below_share(), "alone again: the fourth is its too");
        assert_eq!(roster.held_names(), ["a", "b", "c", "drafting"]);
    }

    #[test]
    fn within_the_rounded_up_share_yet_uneven_is_handed_over_too() {
        // Four sources, three instances: 2 + 2 + 0 is within each one's
        // share of two, but the newcomer would get nothing.
        let roster = Roster::new(4);
        roster.set_held("a", true);
        roster.set_held("b", true);
        roster.live.store(3, Ordering::Relaxed);
        roster.fewest_elsewhere.store(1, Ordering::Relaxed);
        assert!(
            !roster.should_hand_over(),
            "2, with 1 elsewhere: even enough"
        );
        roster.fewest_elsewhere.store(0, Ordering::Relaxed);
        assert!(roster.should_hand_over(), "2, with 0 elsewhere");
    }
}
