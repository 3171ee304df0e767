//! The web desk: server-rendered pages for engineers and the team lead, a
//! JSON API with the same data, `/metrics`, `/healthz` and `/readyz`.
//!
//! Pages are plain HTML from [`maud`], which escapes every interpolated
//! value: mail text can only ever be text. The one script (`desk.js`, the
//! board's refresh) is a static file; the Content-Security-Policy allows no
//! inline script at all. Every route but `/login`, `/healthz`, `/readyz` and the static
//! files takes a [`auth::Desk`] (or [`auth::Lead`]) argument, so a handler
//! without a login check does not compile into the router by accident.
//!
//! Editing, approving and rejecting a draft here go through the same
//! [`crate::stages::drafting::Drafter`] as the CLI (the gate has one door),
//! the same call as `casebot approve`, and wakes the daemon's sender.

pub mod admin;
pub mod api;
pub mod auth;
pub mod board;
pub mod cases;
pub mod drafts;
pub mod files;
pub mod layout;
/// The desk's words live one layer down (notifications speak them too).
pub use crate::i18n;
pub mod metrics;
pub mod notify;
pub mod regroup;
pub mod search;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
use i18n::{UiLang, tr};

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
}

impl AppState {
    pub fn session_secs(&self) -> i64 {
        (self.config.web.session_idle_hours.max(1) * 3600) as i64
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.sla.policies().time_zone
    }

    /// The desk's language (`[web] language`) for those who chose none.
    pub fn default_lang(&self) -> UiLang {
        UiLang::parse(&self.config.web.language).unwrap_or(UiLang::ZhCn)
    }
}

/// Why a request failed, as the user should see it.
#[derive(Debug)]
pub enum WebError {
    /// A page needs a login: go to the login page, then back to this path.
    LoginRequired(String),
    /// The API needs a login.
    Unauthorized,
    Forbidden(Said),
    NotFound(Said),
    /// The request cannot be done as asked (a stale revision, a bad field).
    Rejected(Said),
    /// It existed and was removed on purpose (raw mail after retention).
    Gone(Said),
    Internal(anyhow::Error),
}

/// What an error page says: a message of the catalogues with its
/// arguments, said in the request's language.
#[derive(Debug)]
pub struct Said {
    id: &'static str,
    args: Vec<(
        &'static str,
        fluent_templates::fluent_bundle::FluentValue<'static>,
    )>,
}

impl Said {
    pub fn new(
        id: &'static str,
        args: Vec<(
            &'static str,
            fluent_templates::fluent_bundle::FluentValue<'static>,
        )>,
    ) -> Said {
        Said { id, args }
    }

    pub fn in_lang(&self, lang: UiLang) -> String {
        lang.t_args(self.id, &self.args)
    }
}

/// `said!("id", name = value, …)`: an error's words, looked up when the
/// page is written.
macro_rules! said {
    ($id:literal) => {
        $crate::web::Said::new($id, Vec::new())
    };
    ($id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::web::Said::new($id, vec![$((stringify!($name), $crate::i18n::arg($value))),+])
    };
}
pub(crate) use said;

impl<E: Into<anyhow::Error>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError::Internal(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let lang = i18n::request_lang().unwrap_or(UiLang::En);
        let (status, message) = match self {
            WebError::LoginRequired(back) => {
                let to = format!("/login?next={}", layout::url_encode(&back));
                return Redirect::to(&to).into_response();
            }
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, tr!(lang, "error-log-in-first")),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m.in_lang(lang)),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.in_lang(lang)),
            WebError::Rejected(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.in_lang(lang)),
            WebError::Gone(m) => (StatusCode::GONE, m.in_lang(lang)),
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    tr!(lang, "error-internal"),
                )
            }
        };
        (status, layout::error_page(lang, status, &message)).into_response()
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
        .route("/cases/{key}/notes", post(cases::add_note))
        .route("/cases/{key}/move", post(regroup::move_mail))
        .route("/cases/{key}/merge", post(regroup::merge))
        .route("/cases/{key}/status", post(regroup::set_status))
        .route("/cases/{key}/priority", post(regroup::set_priority))
        .route("/events/{id}/undo", post(regroup::undo))
        .route("/cases/{key}/mails/{id}/raw", get(files::raw_mail))
        .route(
            "/cases/{key}/mails/{id}/attachments/{part}",
            get(files::attachment),
        )
        .route(
            "/cases/{key}/mails/{id}/attachments/{part}/text",
            get(files::attachment_text),
        )
        .route("/drafts/{id}", get(drafts::editor).post(drafts::save))
        .route("/drafts/{id}/reject", post(drafts::reject))
        .route("/board", get(board::board))
        .route("/report", get(board::report))
        .route("/report.csv", get(board::report_csv))
        .route("/api/cases", get(api::cases))
        .route("/api/cases/{key}", get(api::case))
        .route("/api/sla", get(api::sla))
        .route("/api/board", get(api::board))
        .route("/search", get(search::page_handler))
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/admin/users/{name}", post(admin::change_user))
        .route("/admin/quarantine", get(admin::quarantine))
        .route(
            "/admin/quarantine/{id}",
            get(admin::quarantine_entry).post(admin::quarantine_action),
        )
        .route("/admin/knowledge", get(admin::knowledge))
        .route("/admin/knowledge/{id}", post(admin::edit_knowledge))
        .route("/admin/mailboxes", get(admin::mailboxes))
        .route("/admin/notifications", get(notify::admin))
        .route("/admin/notifications/{name}", post(notify::admin_save))
        .route(
            "/account/notifications",
            get(notify::mine).post(notify::save_mine),
        )
        .route("/api/search", get(search::api))
        .route("/api/report", get(api::report))
        .route("/api/drafts/{id}", get(api::draft))
        .route("/api/drafts/{id}/snippets", get(api::snippets))
        .route("/cases/{key}/drafts", post(cases::new_draft))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/static/desk.css", get(layout::stylesheet))
        .route("/static/desk.js", get(layout::script))
        .route("/account/language", post(cases::switch_language))
        .fallback(|| async { WebError::NotFound(said!("error-no-page")) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_language,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Keeps the request's language for its task: the `casebot_lang` cookie,
/// else the browser's first language the desk speaks, else the desk's. A
/// login, once read, puts the account's language in its place.
async fn request_language(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let lang = auth::cookie_value(headers, i18n::LANG_COOKIE)
        .and_then(UiLang::parse)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(UiLang::from_accept_language)
        })
        .unwrap_or_else(|| state.default_lang());
    i18n::with_request_lang(lang, next.run(request)).await
}

/// Headers every answer carries: no inline script, no framing, no sniffing,
/// and pages that are never cached (they hold mail).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // A download sets its own, stricter policy (a sandbox).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
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

/// Headers must arrive within this (a half-sent request, slowloris, is cut off).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no request under way is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;

/// Serves the desk on `listener` until `stop` completes. Each connection is
/// HTTP/1.1 with a header read timeout and an idle timeout, and at most
/// [`MAX_CONNECTIONS`] are served at once, so a client that opens many and
/// sends little holds nothing for long.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(address = %format!("http://{addr}/"), "web desk listening");
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        // A slot first: at the limit, new connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot?,
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, never spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request.map(axum::body::Body::new))
            },
        );
        let io = Idle::new(hyper_util::rt::TokioIo::new(stream), IDLE_TIMEOUT);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    // Requests under way finish; idle connections close.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    Ok(())
}

/// A connection that ends once nothing has been read or written on it for
/// `limit`: keep-alive connections that only sit there are closed.
struct Idle<T> {
    inner: T,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<T> Idle<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Idle {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Activity: the clock starts again. Past the deadline: an error.
    fn poll_idle(&mut self, cx: &mut std::task::Context<'_>, active: bool) -> std::io::Result<()> {
        if active {
            let next = tokio::time::Instant::now() + self.limit;
            self.deadline.as_mut().reset(next);
            return Ok(());
        }
        match self.deadline.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "idle connection closed",
            )),
            std::task::Poll::Pending => Ok(()),
        }
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Idle<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        let active = polled.is_ready();
        if let Err(e) = this.poll_idle(cx, active) {
            return std::task::Poll::Ready(Err(e));
        }
        polled
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Idle<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if polled.is_ready() {
            let _ = this.poll_idle(cx, true);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `Content-Disposition` of a download named `name` (RFC 6266): an ASCII
/// `filename` for old clients, and the UTF-8 name as `filename*`, so a
/// Chinese file name arrives as it was.
pub fn attachment_disposition(name: &str) -> String {
    /// Everything but RFC 5987's attr-char is percent-encoded.
    const NOT_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(name, NOT_ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn download_names_keep_their_utf8_and_cannot_break_the_header() {
        assert_eq!(
            super::attachment_disposition("CBS 日志.zip"),
            "attachment; filename=\"CBS __.zip\"; filename*=UTF-8''CBS%20%E6%97%A5%E5%BF%97.zip"
        );
        let hostile = super::attachment_disposition("a\"b\r\nX-Evil: 1.txt");
        assert!(
            !hostile.contains('\r') && !hostile.contains('\n'),
            "{hostile}"
        );
        assert!(
            hostile.starts_with("attachment; filename=\"a_b__X-Evil: 1.txt\""),
            "{hostile}"
        );
    }
}
