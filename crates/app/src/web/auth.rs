//! Who is asking: passwords, session cookies and CSRF tokens.
//!
//! - Passwords are stored as argon2id PHC strings; a login that names no
//!   account still spends the time of one hash, so timing does not tell
//!   which names exist.
//! - A session is a random 256-bit token in an `HttpOnly; SameSite=Strict`
//!   cookie; the store keeps only its SHA-256.
//! - Every form carries the session's CSRF token, compared in constant
//!   time; a cross-site `Origin` is refused before that. The login form,
//!   which has no session yet, uses a double-submit cookie instead.
//! - Repeated failures lock a name out for a while (in memory: a restart
//!   forgets them, which is acceptable for a desk on a trusted network).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use ring::rand::SecureRandom as _;

use super::{AppState, WebError};
use casebot_store::users::{Role, Session, User};

pub const SESSION_COOKIE: &str = "casebot_session";
pub const LOGIN_CSRF_COOKIE: &str = "casebot_login";

/// Failures of one name before it is locked out, and for how long.
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(5 * 60);

/// A hash of a password nobody has: verified against when the name is
/// unknown, so both paths cost the same.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3nhxN1aj6F7k8Xp5yVn8Rb2Eq2KXG6mOQvOiT8s7Cq0";

/// Random bytes as URL-safe base64 (256 bits: a session token or CSRF token).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_digest(token: &str) -> String {
    casebot_core::domain::sha256_hex(token.as_bytes())
}

/// The least a desk password must be.
pub fn check_password_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < 10 {
        return Err("a password needs at least 10 characters".into());
    }
    Ok(())
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed logins per name, for the lockout.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn locked(&self, name: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&name.to_lowercase())
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    pub fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures
            .entry(name.to_lowercase())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    pub fn succeeded(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&name.to_lowercase());
    }
}

/// Checks a name and password; `None` when they do not match an enabled account.
pub async fn authenticate(
    state: &AppState,
    name: &str,
    password: &str,
) -> anyhow::Result<Option<User>> {
    let user = state.store.user(name.trim()).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DECOY_HASH.to_string());
    let password = password.to_string();
    // Argon2 takes tens of milliseconds of CPU: off the async threads.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await?;
    Ok(user.filter(|u| ok && !u.disabled))
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the desk's cookies.
pub fn cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A logged-in desk user (any role). Pages and the API take this as an
/// argument, so a handler cannot forget the login check.
#[derive(Debug, Clone)]
pub struct Desk {
    pub session: Session,
    pub token_digest: String,
}

impl Desk {
    pub fn user(&self) -> &User {
        &self.session.user
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    pub fn is_lead(&self) -> bool {
        self.session.user.role == Role::Lead
    }

    /// The names a case's owner may carry for this person.
    pub fn identities(&self) -> Vec<String> {
        let user = self.user();
        std::iter::once(user.name.clone())
            .chain(user.email.clone())
            .collect()
    }

    /// Checks a form's CSRF token.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if same_token(token, self.csrf()) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "the form's CSRF token is missing or wrong: reload the page".into(),
            ))
        }
    }
}

async fn session_of(parts: &Parts, state: &AppState) -> Result<Option<Desk>, WebError> {
    let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let digest = token_digest(token);
    let extend_to = casebot_store::now_ts() + state.session_secs();
    Ok(state
        .store
        .session(&digest, extend_to)
        .await?
        .map(|session| Desk {
            session,
            token_digest: digest,
        }))
}

/// A request that changes something must come from the desk's own pages.
fn same_origin(parts: &Parts) -> bool {
    if parts.method.is_safe() {
        return true;
    }
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return matches!(site, "same-origin" | "none");
    }
    match (
        parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        // No Origin: not a browser's cross-site form (scripts, old clients);
        // the CSRF token still has to match.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

impl FromRequestParts<AppState> for Desk {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !same_origin(parts) {
            return Err(WebError::Forbidden("cross-site request refused".into()));
        }
        let api = parts.uri.path().starts_with("/api/") || parts.uri.path() == "/metrics";
        match session_of(parts, state).await? {
            Some(desk) => Ok(desk),
            None if api => Err(WebError::Unauthorized),
            None => Err(WebError::LoginRequired(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "/".into()),
            )),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Desk {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        session_of(parts, state).await
    }
}

/// A logged-in team lead.
#[derive(Debug, Clone)]
pub struct Lead(pub Desk);

impl FromRequestParts<AppState> for Lead {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let desk = <Desk as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if desk.is_lead() {
            Ok(Lead(desk))
        } else {
            Err(WebError::Forbidden("this page is for the team lead".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
        // The decoy parses, so an unknown name costs a real verification.
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..42]));
    }

    #[test]
    fn the_throttle_locks_a_name_after_repeated_failures() {
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES {
            assert!(!t.locked("Alice"));
            t.failed("alice");
        }
        assert!(t.locked("ALICE"));
        t.succeeded("alice");
        assert!(!t.locked("alice"));
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; casebot_session=tok".parse().unwrap());
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie_value(&h, "missing"), None);
        let c = cookie(SESSION_COOKIE, "v", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
    }
}
