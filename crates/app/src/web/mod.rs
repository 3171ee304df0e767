//! The web desk: server-rendered pages for engineers and the team lead, a
//! JSON API with the same data, `/metrics` and `/healthz`.
//!
//! Pages are plain HTML from [`maud`], which escapes every interpolated
//! value: mail text can only ever be text. The one script (`desk.js`, the
//! board's refresh) is a static file; the Content-Security-Policy allows no
//! inline script at all. Every route but `/login`, `/healthz` and the static
//! files takes a [`auth::Desk`] (or [`auth::Lead`]) argument, so a handler
//! without a login check does not compile into the router by accident.
//!
//! Editing, approving and rejecting a draft here go through the same
//! [`crate::stages::drafting::Drafter`] as the CLI (the gate has one door),
//! the same call as `casebot approve`, and wakes the daemon's sender.

pub mod api;
pub mod auth;
pub mod board;
pub mod cases;
pub mod drafts;
pub mod layout;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::Config;
use crate::stages::drafting::Drafter;
use crate::stages::sla::SlaSnapshots;
use casebot_store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub drafter: Arc<Drafter>,
    pub sla: Arc<SlaSnapshots>,
    /// Wakes the sender after an approval, so the reply leaves at once.
    pub send_now: Arc<Notify>,
    pub throttle: Arc<auth::Throttle>,
    /// When the desk started serving (`casebot_uptime_seconds`).
    pub started: std::time::Instant,
}

impl AppState {
    pub fn session_secs(&self) -> i64 {
        (self.config.web.session_idle_hours.max(1) * 3600) as i64
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.sla.policies().time_zone
    }
}

/// Why a request failed, as the user should see it.
#[derive(Debug)]
pub enum WebError {
    /// A page needs a login: go to the login page, then back to this path.
    LoginRequired(String),
    /// The API needs a login.
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    /// The request cannot be done as asked (a stale revision, a bad field).
    Rejected(String),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError::Internal(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::LoginRequired(back) => {
                let to = format!("/login?next={}", layout::url_encode(&back));
                return Redirect::to(&to).into_response();
            }
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, "log in first".to_string()),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            WebError::Rejected(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the desk could not answer this request; the error is in the server's log"
                        .to_string(),
                )
            }
        };
        (status, layout::error_page(status, &message)).into_response()
    }
}

/// The whole desk's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/login", get(cases::login_page).post(cases::login))
        .route("/logout", post(cases::logout))
        .route("/cases", get(cases::list))
        .route("/cases/{key}", get(cases::case_page))
        .route("/cases/{key}/assign", post(cases::assign))
        .route("/drafts/{id}", get(drafts::editor).post(drafts::save))
        .route("/drafts/{id}/reject", post(drafts::reject))
        .route("/board", get(board::board))
        .route("/report", get(board::report))
        .route("/report.csv", get(board::report_csv))
        .route("/api/cases", get(api::cases))
        .route("/api/cases/{key}", get(api::case))
        .route("/api/sla", get(api::sla))
        .route("/api/board", get(api::board))
        .route("/api/report", get(api::report))
        .route("/api/drafts/{id}", get(api::draft))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(metrics::healthz))
        .route("/static/desk.css", get(layout::stylesheet))
        .route("/static/desk.js", get(layout::script))
        .fallback(|| async { WebError::NotFound("no such page".into()) })
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers every answer carries: no inline script, no framing, no sniffing,
/// and pages that are never cached (they hold mail).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serves the desk on `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(address = %format!("http://{addr}/"), "web desk listening");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
