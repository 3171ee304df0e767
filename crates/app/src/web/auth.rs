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
//! - A login name is normalised once (NFKC, trimmed, lower case for the
//!   lockout). Each attempt is counted before its password is checked, in
//!   the same lock as the check: five failures lock the name for five
//!   minutes from that address, thirty lock the address. The tables are
//!   bounded (an outsider inventing names cannot grow them), and at most
//!   one password check per core runs at a time: the rest get 429 with
//!   Retry-After. In memory: a restart forgets them.

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

use super::i18n::{self, UiLang};
use super::{AppState, WebError, said};
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

/// A login name as typed, normalised once for the lookup and the lockout:
/// NFKC (full-width letters fold to ASCII), then trimmed of white space of
/// any kind (U+3000 included). The lockout key is its lower case.
pub fn login_name(typed: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    typed.nfkc().collect::<String>().trim().to_string()
}

/// The lockout's key: a name as tried from one address. Guessing a name's
/// password from one place locks that place out, never the account's owner
/// logging in from elsewhere; the address limit bounds the guessing.
fn name_key(name: &str, client: Option<std::net::IpAddr>) -> String {
    match client {
        Some(ip) => format!("{} {ip}", name.to_lowercase()),
        None => name.to_lowercase(),
    }
}

/// Failed logins from one client address before it must wait.
const MAX_CLIENT_FAILURES: u32 = 30;
/// Names and addresses remembered at most: an outsider inventing names
/// cannot grow the tables past this.
const MAX_TRACKED: usize = 10_000;

/// Why a login attempt is not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this name from this address: it waits out the lockout.
    NameLocked,
    /// Too many failures from this address.
    ClientLimited,
    /// Every password check slot is busy: come back in a second.
    Busy,
}

/// Failed logins per name and per client address, and the slots for
/// password checks (argon2 takes ~19 MiB and tens of milliseconds each:
/// at most one per core runs at a time).
#[derive(Debug)]
pub struct Throttle {
    failures: Mutex<Failures>,
    checks: tokio::sync::Semaphore,
}

#[derive(Debug, Default)]
struct Failures {
    by_name: HashMap<String, (u32, Instant)>,
    by_client: HashMap<std::net::IpAddr, (u32, Instant)>,
}

impl Default for Throttle {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Throttle {
            failures: Mutex::default(),
            checks: tokio::sync::Semaphore::new(cores),
        }
    }
}

/// Counts one more failure under `key`, forgetting expired ones; a full
/// table first drops what has expired, then its oldest entry.
fn count<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, (u32, Instant)>, key: &K) -> u32 {
    if !map.contains_key(key) && map.len() >= MAX_TRACKED {
        map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        if map.len() >= MAX_TRACKED
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    let entry = map.entry(key.clone()).or_insert((0, Instant::now()));
    if entry.1.elapsed() >= LOCKOUT {
        *entry = (0, Instant::now());
    }
    entry.0 += 1;
    entry.1 = Instant::now();
    entry.0
}

impl Throttle {
    /// Admits one login attempt for `name` (already [`login_name`]) from
    /// `client`, or says why not. The attempt is counted as a failure here,
    /// in the same lock as the check, so parallel attempts cannot all slip
    /// under the limit; a success clears the name's count.
    pub fn admit(
        &self,
        name: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, Refusal> {
        let key = name_key(name, client);
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let live = |entry: Option<&(u32, Instant)>, max: u32| {
            entry.is_some_and(|(n, since)| *n >= max && since.elapsed() < LOCKOUT)
        };
        if live(f.by_name.get(&key), MAX_FAILURES) {
            return Err(Refusal::NameLocked);
        }
        if let Some(ip) = client
            && live(f.by_client.get(&ip), MAX_CLIENT_FAILURES)
        {
            return Err(Refusal::ClientLimited);
        }
        let permit = self.checks.try_acquire().map_err(|_| Refusal::Busy)?;
        count(&mut f.by_name, &key);
        if let Some(ip) = client {
            count(&mut f.by_client, &ip);
        }
        Ok(permit)
    }

    /// The password matched: the name's failures are forgotten, and the
    /// attempt no longer counts against its address.
    pub fn succeeded(&self, name: &str, client: Option<std::net::IpAddr>) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.by_name.remove(&name_key(name, client));
        if let Some(ip) = client
            && let Some(entry) = f.by_client.get_mut(&ip)
        {
            entry.0 = entry.0.saturating_sub(1);
        }
    }
}

/// The address a request came from, when the server recorded it.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Checks a name and password; `None` when they do not match an enabled account.
pub async fn authenticate(
    state: &AppState,
    name: &str,
    password: &str,
) -> anyhow::Result<Option<User>> {
    let user = state.store.user(name).await?;
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
    /// The language this person reads the desk in.
    pub lang: UiLang,
}

impl Desk {
    pub fn user(&self) -> &User {
        &self.session.user
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    pub fn lang(&self) -> UiLang {
        self.lang
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
            Err(WebError::Forbidden(said!("error-csrf")))
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
        .map(|session| {
            let lang = session
                .user
                .language
                .as_deref()
                .and_then(UiLang::parse)
                .unwrap_or_else(|| state.default_lang());
            // Error pages of this request speak the account's language.
            i18n::set_request_lang(lang);
            Desk {
                session,
                token_digest: digest,
                lang,
            }
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
            return Err(WebError::Forbidden(said!("error-cross-site")));
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
            Err(WebError::Forbidden(said!("error-lead-only")))
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

    impl Throttle {
        fn locked(&self, name: &str, client: Option<std::net::IpAddr>) -> bool {
            let f = self.failures.lock().unwrap();
            f.by_name
                .get(&name_key(name, client))
                .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < LOCKOUT)
        }
    }

    #[test]
    fn the_throttle_locks_a_name_after_repeated_failures() {
        let t = Throttle::default();
        let (outsider, owner) = (
            Some("192.0.2.1".parse().unwrap()),
            Some("198.51.100.2".parse().unwrap()),
        );
        for _ in 0..MAX_FAILURES {
            assert!(!t.locked("Alice", outsider));
            drop(t.admit("alice", outsider).unwrap());
        }
        assert!(t.locked("ALICE", outsider));
        assert_eq!(t.admit("Alice", outsider).unwrap_err(), Refusal::NameLocked);
        // The account's owner, elsewhere, is not locked out by the guessing.
        assert!(!t.locked("alice", owner));
        drop(t.admit("alice", owner).unwrap());
        t.succeeded("alice", owner);
        assert!(t.locked("alice", outsider));
    }

    #[test]
    fn every_spelling_of_a_name_is_one_name() {
        for typed in [
            " alice",
            "alice\t",
            "\u{3000}alice\u{3000}",
            "ａｌｉｃｅ",
            "alice\n",
        ] {
            assert_eq!(login_name(typed), "alice", "{typed:?}");
        }
    }

    #[test]
    fn an_address_is_limited_and_the_tables_stay_bounded() {
        let t = Throttle::default();
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..MAX_CLIENT_FAILURES {
            drop(t.admit(&format!("name{i}"), Some(ip)).unwrap());
        }
        assert_eq!(
            t.admit("someone-else", Some(ip)).unwrap_err(),
            Refusal::ClientLimited
        );
        for i in 0..(MAX_TRACKED + 500) {
            drop(t.admit(&format!("n{i}"), None).unwrap());
        }
        let f = t.failures.lock().unwrap();
        assert!(f.by_name.len() <= MAX_TRACKED, "{}", f.by_name.len());
    }

    #[test]
    fn password_checks_wait_for_a_free_slot() {
        let t = Throttle::default();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let held: Vec<_> = (0..cores)
            .map(|i| t.admit(&format!("u{i}"), None).unwrap())
            .collect();
        assert_eq!(t.admit("another", None).unwrap_err(), Refusal::Busy);
        drop(held);
        assert!(t.admit("another", None).is_ok());
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
