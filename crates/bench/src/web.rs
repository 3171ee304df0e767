//! `casebot bench web`: the web desk under load.
//!
//! Fills a throwaway store through the real pipeline (10,000 cases of 10
//! mails by default), brings the SLA snapshots up to date, serves the desk
//! on a loopback port and requests each page first from one client (the
//! time to render a page) and then from 20 clients at once (what a busy
//! desk sees). `/healthz`, which touches the store with one `SELECT 1`, is
//! the baseline measured in the same run: the server's and HTTP's own cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use serde::Serialize;
use tokio::net::TcpListener;

use super::generate_thread_mail;
use casebot_app::config::Config;
use casebot_app::mailbox::{RawMail, ReadResult};
use casebot_app::stages::drafting::Drafter;
use casebot_app::stages::filing::Pipeline;
use casebot_app::stages::sla::SlaSnapshots;
use casebot_app::web::{AppState, auth};
use casebot_core::domain::Source;
use casebot_core::sla::SlaPolicies;
use casebot_store::Store;
use casebot_store::users::Role;

/// One page's latencies under one load.
#[derive(Debug, Clone, Serialize)]
pub struct PageFigures {
    pub page: String,
    pub clients: usize,
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub per_sec: f64,
    /// Bytes of the last answer (a page's size).
    pub bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebFigures {
    pub cases: i64,
    pub messages: i64,
    pub open_cases: usize,
    pub fill_s: f64,
    /// Evaluating every case's SLA from scratch (a start, or a policy change).
    pub sla_all_s: f64,
    pub pages: Vec<PageFigures>,
}

/// Makes the path of the `i`-th request to a page.
type PathOf = Box<dyn Fn(usize) -> String + Send + Sync>;

/// The pages measured: a name and how to make each request's path.
fn pages(keys: &[String]) -> Vec<(&'static str, PathOf)> {
    let keys: Arc<Vec<String>> = Arc::new(keys.to_vec());
    vec![
        ("healthz (baseline)", Box::new(|_| "/healthz".to_string())),
        ("case list", Box::new(|_| "/cases".to_string())),
        (
            "case list, mine + waiting",
            Box::new(|_| "/cases?mine=1&waiting=1".to_string()),
        ),
        (
            "case list, search KB",
            Box::new(|i| format!("/cases?q=KB{}", 5_022_000 + i % 900)),
        ),
        (
            "case page",
            Box::new(move |i| {
                format!(
                    "/cases/{}",
                    keys[super::mix(i as u64) as usize % keys.len()]
                )
            }),
        ),
        (
            "search, Chinese phrase",
            Box::new(|_| "/search?q=%E9%97%AE%E9%A2%98%E4%BE%9D%E6%97%A7".to_string()),
        ),
        (
            "search, KB number",
            Box::new(|i| format!("/search?q=KB{}", 5_022_000 + i % 900)),
        ),
        (
            "search, Chinese + error code (most mails)",
            Box::new(|_| "/search?q=%E5%AE%89%E8%A3%85%E5%A4%B1%E8%B4%A5+0x800f0985".to_string()),
        ),
        ("SLA board", Box::new(|_| "/board".to_string())),
        (
            "API: SLA board JSON",
            Box::new(|_| "/api/board".to_string()),
        ),
        ("/metrics scrape", Box::new(|_| "/metrics".to_string())),
    ]
}

/// `requests` GETs of `path(i)` from `clients` concurrent clients.
async fn load(
    base: &str,
    cookie: &str,
    name: &str,
    path: &(dyn Fn(usize) -> String + Send + Sync),
    clients: usize,
    requests: usize,
) -> Result<PageFigures> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let paths: Arc<Vec<String>> = Arc::new((0..requests).map(path).collect());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let (next, paths, base, cookie) = (
            next.clone(),
            paths.clone(),
            base.to_string(),
            cookie.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut bytes = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let t = Instant::now();
                let answer = client
                    .get(format!("{base}{path}"))
                    .header(reqwest::header::COOKIE, &cookie)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) => bytes = b.len(),
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, errors, bytes)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    let mut bytes = 0;
    for t in tasks {
        let (l, e, b) = t.await?;
        latencies.extend(l);
        errors += e;
        bytes = bytes.max(b);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(PageFigures {
        page: name.to_string(),
        clients,
        requests,
        errors,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        per_sec: requests as f64 / seconds.max(1e-9),
        bytes,
    })
}

/// Runs the benchmark in `dir`; `progress(phase, done, of)` reports the filling.
pub async fn web(
    cases: u64,
    mails_per_case: u64,
    clients: usize,
    requests: usize,
    dir: &std::path::Path,
    progress: impl Fn(&'static str, u64, u64) + Send + Sync,
) -> Result<WebFigures> {
    let store = Store::open(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let config = Arc::new(Config::default());
    let pipeline = Pipeline::new(store.clone(), config.clone())?;
    let total = cases * mails_per_case.max(1);
    let arrival = Utc::now();
    let mails: Box<dyn Iterator<Item = ReadResult> + Send> = Box::new((0..total).map(move |i| {
        Ok(RawMail::new(
            generate_thread_mail(i, mails_per_case.max(1)),
            Source::Generated { index: i },
            arrival,
        ))
    }));
    let started = Instant::now();
    let mut done = 0u64;
    pipeline
        .run(mails, |_| {
            done += 1;
            if done.is_multiple_of(1000) {
                progress("filing mail", done, total);
            }
        })
        .await?;
    let fill_s = started.elapsed().as_secs_f64();
    let (case_count, messages, _) = store.counts().await?;

    let policies = SlaPolicies::from_config(&config.sla, &config.desk.time_zone, &config.base_dir)
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let sla = Arc::new(SlaSnapshots::new(store.clone(), Arc::new(policies)));
    progress("evaluating every case's SLA", 0, 1);
    let started = Instant::now();
    sla.refresh().await?;
    let sla_all_s = started.elapsed().as_secs_f64();
    let open_cases = sla.open().len();

    // A lead's session, as a login would make it.
    let user = store
        .add_user(
            "bench",
            None,
            Role::Lead,
            &auth::hash_password("bench-password")?,
        )
        .await?;
    let token = auth::random_token();
    store
        .create_session(
            &auth::token_digest(&token),
            user.id,
            &auth::random_token(),
            casebot_store::now_ts() + 86_400,
        )
        .await?;
    let cookie = format!("{}={token}", auth::SESSION_COOKIE);

    let state = AppState {
        store: store.clone(),
        config: config.clone(),
        drafter: Arc::new(Drafter::from_config(store.clone(), config.clone())?),
        sla,
        send_now: Default::default(),
        throttle: Default::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(casebot_app::web::serve(listener, state, async {
        let _ = stop_rx.await;
    }));

    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM cases ORDER BY id LIMIT 5000")
        .fetch_all(store.pool())
        .await
        .context("Cannot list case keys")?;
    let mut figures = Vec::new();
    let list = pages(&keys);
    for (n, (name, path)) in list.iter().enumerate() {
        progress("requesting pages", n as u64, list.len() as u64);
        // One client: the time to render the page. Then the crowd.
        let sequential = (requests / 10).max(20);
        figures.push(load(&base, &cookie, name, path.as_ref(), 1, sequential).await?);
        figures.push(load(&base, &cookie, name, path.as_ref(), clients, requests).await?);
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(WebFigures {
        cases: case_count,
        messages,
        open_cases,
        fill_s,
        sla_all_s,
        pages: figures,
    })
}
