//! A throwaway OAuth2 authorization server on loopback, for the tests and
//! `casebot bench imap --auth oauth2`: what Microsoft's and Google's token
//! endpoints do for a mail client, over real HTTP.
//!
//! It registers clients (id, secret, and for client credentials the mailbox
//! the app may open), and implements the client-credentials grant, the
//! device authorization grant (RFC 8628, with an approval the test gives as
//! the user would), refresh tokens, revocation (RFC 7009) and token
//! introspection (RFC 7662), which Dovecot's `oauth2` passdb asks to check
//! each XOAUTH2 / OAUTHBEARER login. Tokens are random and opaque; their
//! lifetime is the server's to set, so a test can make them expire in
//! seconds. No server library implements the device grant (oxide-auth, the
//! maintained Rust one, has no RFC 8628), so the grants are written here,
//! each as its RFC says, on axum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn random_token(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from(prefix);
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[derive(Debug, Clone)]
struct Client {
    secret: String,
    /// The mailbox an app-only (client credentials) token opens.
    mailbox: Option<String>,
}

#[derive(Debug, Clone)]
struct Access {
    username: String,
    expires_at: u64,
}

#[derive(Debug, Clone)]
struct Device {
    client_id: String,
    user_code: String,
    /// Who approved it (the user the tokens are for).
    approved_by: Option<String>,
    expires_at: u64,
}

#[derive(Debug, Default)]
struct Books {
    clients: HashMap<String, Client>,
    access: HashMap<String, Access>,
    /// refresh token → (client, user)
    refresh: HashMap<String, (String, String)>,
    devices: HashMap<String, Device>,
    access_secs: u64,
    /// Token requests answered, by grant (what a test counts refreshes by).
    grants: HashMap<String, usize>,
}

/// The running server.
pub struct AuthServer {
    pub port: u16,
    books: Arc<Mutex<Books>>,
    /// Its own runtime, so a synchronous test can start it; `None` once dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        // Dropped inside a benchmark's runtime too, where a runtime may not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type Shared = Arc<Mutex<Books>>;

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

impl AuthServer {
    /// Starts on a free loopback port; access tokens last `access_secs`.
    pub fn start(access_secs: u64) -> Result<AuthServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("Cannot listen for the OAuth2 server")?;
        let port = listener.local_addr()?.port();
        let books: Shared = Arc::new(Mutex::new(Books {
            access_secs,
            ..Books::default()
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/devicecode", post(device_code))
            .route("/introspect", post(introspect))
            .route("/revoke", post(revoke))
            .with_state(books.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(AuthServer {
            port,
            books,
            runtime: Some(runtime),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a client; with `mailbox`, its client-credentials tokens open it.
    pub fn register(&self, id: &str, secret: &str, mailbox: Option<&str>) {
        self.books().clients.insert(
            id.to_string(),
            Client {
                secret: secret.to_string(),
                mailbox: mailbox.map(str::to_string),
            },
        );
    }

    /// The user approves the device code shown as `user_code`: what they do
    /// at the verification page. False when there is no such code.
    pub fn approve(&self, user_code: &str, username: &str) -> bool {
        let mut books = self.books();
        match books
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code)
        {
            Some(d) => {
                d.approved_by = Some(username.to_string());
                true
            }
            None => false,
        }
    }

    /// Every access token issued so far ends now (as their lifetime would).
    pub fn expire_access_tokens(&self) {
        for a in self.books().access.values_mut() {
            a.expires_at = 0;
        }
    }

    /// An administrator revokes every refresh token of `username`.
    pub fn revoke_user(&self, username: &str) {
        let mut books = self.books();
        books.refresh.retain(|_, (_, user)| user != username);
        books.access.retain(|_, a| a.username != username);
    }

    /// Token requests answered so far for `grant`.
    pub fn grants(&self, grant: &str) -> usize {
        self.books().grants.get(grant).copied().unwrap_or(0)
    }
}

/// The client a request names, when its secret (if it sends one) is right.
fn authenticate_client(books: &Books, form: &HashMap<String, String>) -> Option<String> {
    let id = form.get("client_id").cloned().unwrap_or_default();
    match books.clients.get(&id) {
        Some(c) if form.get("client_secret").is_none_or(|s| *s == c.secret) => Some(id),
        _ => None,
    }
}

fn invalid_client() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "AADSTS7000215: Invalid client secret provided.",
    )
}

fn issue(books: &mut Books, username: &str, client: &str, refresh: bool) -> serde_json::Value {
    let access = random_token("testtoken-access-");
    books.access.insert(
        access.clone(),
        Access {
            username: username.to_string(),
            expires_at: now() + books.access_secs,
        },
    );
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": books.access_secs,
    });
    if refresh {
        let token = random_token("testtoken-refresh-");
        books
            .refresh
            .insert(token.clone(), (client.to_string(), username.to_string()));
        body["refresh_token"] = serde_json::json!(token);
    }
    body
}

async fn token(State(books): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut books = books.lock().unwrap_or_else(|e| e.into_inner());
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    *books.grants.entry(grant.clone()).or_default() += 1;
    let Some(client) = authenticate_client(&books, &form) else {
        return invalid_client();
    };
    match grant.as_str() {
        "client_credentials" => {
            let Some(mailbox) = books.clients[&client].mailbox.clone() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "app-only access is not granted to this client",
                );
            };
            Json(issue(&mut books, &mailbox, &client, false)).into_response()
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some(device) = books.devices.get(&code).cloned() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown device code",
                );
            };
            if device.client_id != client {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "device code of another client",
                );
            }
            if now() > device.expires_at {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "the device code expired",
                );
            }
            match device.approved_by {
                None => error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "the user has not approved yet",
                ),
                Some(user) => {
                    books.devices.remove(&code);
                    Json(issue(&mut books, &user, &client, true)).into_response()
                }
            }
        }
        "refresh_token" => {
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            match books.refresh.get(&token).cloned() {
                Some((owner, user)) if owner == client => {
                    let mut body = issue(&mut books, &user, &client, false);
                    body["refresh_token"] = serde_json::json!(token);
                    Json(body).into_response()
                }
                _ => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS70008: The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
                ),
            }
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("{other:?} is not supported"),
        ),
    }
}

async fn device_code(
    State(books): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut books = books.lock().unwrap_or_else(|e| e.into_inner());
    let Some(client) = authenticate_client(&books, &form) else {
        return invalid_client();
    };
    let device_code = random_token("testtoken-device-");
    let user_code: String = random_token("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_uppercase();
    books.devices.insert(
        device_code.clone(),
        Device {
            client_id: client,
            user_code: user_code.clone(),
            approved_by: None,
            expires_at: now() + 600,
        },
    );
    Json(serde_json::json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": "https://login.example.com/device",
        "expires_in": 600,
        "interval": 1,
        "message": format!("To sign in, open https://login.example.com/device and enter the code {user_code}."),
    }))
    .into_response()
}

/// RFC 7662, as Dovecot's `introspection_mode = post` asks it.
async fn introspect(
    State(books): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let books = books.lock().unwrap_or_else(|e| e.into_inner());
    let token = form.get("token").cloned().unwrap_or_default();
    match books.access.get(&token) {
        Some(a) if a.expires_at > now() => Json(serde_json::json!({
            "active": true,
            "username": a.username,
            "exp": a.expires_at,
        }))
        .into_response(),
        _ => Json(serde_json::json!({"active": false})).into_response(),
    }
}

/// RFC 7009: a refresh token (and its access tokens' user) revoked.
async fn revoke(
    State(books): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut books = books.lock().unwrap_or_else(|e| e.into_inner());
    let token = form.get("token").cloned().unwrap_or_default();
    books.refresh.remove(&token);
    books.access.remove(&token);
    StatusCode::OK.into_response()
}
