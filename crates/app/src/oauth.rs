//! OAuth2 sign-in for mailboxes (Microsoft 365, 21Vianet's Office 365,
//! Google Workspace, or any provider by its URLs): access tokens for SASL
//! XOAUTH2 / OAUTHBEARER over IMAP and SMTP.
//!
//! Two grants, through the `oauth2` crate: client credentials (an app's
//! own access to a shared mailbox: nothing is stored, a token is asked for
//! when needed) and the device authorization grant (RFC 8628: a person
//! signs in once with `casebot mailbox login NAME`; the refresh token is
//! kept in the store, sealed with ChaCha20-Poly1305 under a key from the
//! environment, and the daemon refreshes access tokens itself). Tokens are
//! never logged and never in the config. A refresh token the provider
//! refuses makes the mailbox need a new sign-in (`TokenError::NeedsLogin`);
//! the watcher then shows `needs_login` and keeps its checkpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl, RefreshToken, RequestTokenError,
    Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Mutex;

use crate::config::{AuthKind, Config, OAuth2Config, OAuthFlow, OAuthProvider};
use casebot_store::Store;

/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(120);

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The sign-in is gone (never made, revoked, expired): a person must
    /// sign in again with `casebot mailbox login`.
    #[error("{0}")]
    NeedsLogin(String),
    /// The provider refuses the app itself (its id, secret, consent,
    /// scopes): the registration must be fixed.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be reached, failed or throttled: later.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a provider's endpoints are, and the scopes mail needs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub token_url: String,
    pub device_url: String,
    pub scopes: Vec<String>,
}

/// The endpoints and scopes of `cfg`: the provider's preset, with any URL
/// or scope the config gives in its place.
pub fn endpoints(cfg: &OAuth2Config) -> Endpoints {
    let tenant = &cfg.tenant;
    let microsoft = |login: &str, resource: &str| {
        let scopes = match cfg.flow {
            OAuthFlow::ClientCredentials => vec![format!("{resource}/.default")],
            OAuthFlow::DeviceCode => vec![
                format!("{resource}/IMAP.AccessAsUser.All"),
                format!("{resource}/SMTP.Send"),
                "offline_access".to_string(),
            ],
        };
        Endpoints {
            token_url: format!("https://{login}/{tenant}/oauth2/v2.0/token"),
            device_url: format!("https://{login}/{tenant}/oauth2/v2.0/devicecode"),
            scopes,
        }
    };
    let preset = match cfg.provider {
        OAuthProvider::Microsoft => {
            microsoft("login.microsoftonline.com", "https://outlook.office365.com")
        }
        OAuthProvider::MicrosoftChina => {
            microsoft("login.chinacloudapi.cn", "https://partner.outlook.cn")
        }
        OAuthProvider::Google => Endpoints {
            token_url: "https://oauth2.googleapis.com/token".into(),
            device_url: "https://oauth2.googleapis.com/device/code".into(),
            scopes: vec!["https://mail.google.com/".into()],
        },
        OAuthProvider::Custom => Endpoints {
            token_url: String::new(),
            device_url: String::new(),
            scopes: Vec::new(),
        },
    };
    Endpoints {
        token_url: Some(cfg.token_url.clone())
            .filter(|u| !u.is_empty())
            .unwrap_or(preset.token_url),
        device_url: Some(cfg.device_url.clone())
            .filter(|u| !u.is_empty())
            .unwrap_or(preset.device_url),
        scopes: if cfg.scopes.is_empty() {
            preset.scopes
        } else {
            cfg.scopes.clone()
        },
    }
}

/// What a person is shown to sign in on another device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub verification_uri: String,
    pub user_code: String,
    pub expires_in: Duration,
}

#[derive(Debug)]
struct Cached {
    token: String,
    renew_at: Instant,
}

/// One mailbox's sign-in: hands out access tokens, refreshing them itself.
pub struct TokenSource {
    mailbox: String,
    cfg: OAuth2Config,
    endpoints: Endpoints,
    store: Store,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
    /// The client secret given in code (a benchmark), over `client_secret_env`.
    secret: Option<String>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a token.
        f.debug_struct("TokenSource")
            .field("mailbox", &self.mailbox)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The provider's own words for an error, and what to do about it.
/// Whose a provider's error is, which says what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The sign-in is gone: a person signs in again.
    SignIn,
    /// The app's registration: an administrator fixes it.
    App,
    /// The provider itself (throttled, unavailable): later, with backoff.
    Provider,
}

fn provider_error<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    what: &str,
    e: RequestTokenError<RE, T>,
    classify: impl Fn(&T) -> (Blame, String),
) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(response) => match classify(&response) {
            (Blame::SignIn, words) => TokenError::NeedsLogin(format!(
                "{what}: the provider refused the sign-in: {words}; sign in again with `casebot mailbox login`"
            )),
            (Blame::App, words) => TokenError::Refused(format!(
                "{what}: the provider refused the app: {words}; check the app registration (client id, secret, consent, scopes)"
            )),
            (Blame::Provider, words) => TokenError::Unavailable(format!(
                "{what}: the provider cannot answer now: {words}; trying again later"
            )),
        },
        RequestTokenError::Request(e) => {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail = s.to_string();
                source = s.source();
            }
            TokenError::Unavailable(format!("{what}: cannot reach the provider: {detail}"))
        }
        RequestTokenError::Parse(_, body) => TokenError::Unavailable(format!(
            "{what}: the provider's answer is not a token: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
        RequestTokenError::Other(m) => TokenError::Unavailable(format!("{what}: {m}")),
    }
}

/// RFC 6749's error codes, and the extensions providers use: a throttled
/// or unavailable provider (`temporarily_unavailable`, `server_error`,
/// `slow_down`, anything unknown) is waited for, never taken for a dead
/// sign-in.
fn basic_words(r: &oauth2::basic::BasicErrorResponse) -> (Blame, String) {
    use BasicErrorResponseType as E;
    let blame = match r.error() {
        E::InvalidGrant => Blame::SignIn,
        E::InvalidClient
        | E::UnauthorizedClient
        | E::InvalidScope
        | E::UnsupportedGrantType
        | E::InvalidRequest => Blame::App,
        E::Extension(code) => match code.as_str() {
            "interaction_required" | "consent_required" | "login_required" => Blame::SignIn,
            _ => Blame::Provider,
        },
    };
    (blame, described(r.error().as_ref(), r.error_description()))
}

fn described(code: &str, description: Option<&String>) -> String {
    match description {
        Some(d) => format!("{code} ({d})"),
        None => code.to_string(),
    }
}

impl TokenSource {
    pub fn new(mailbox: &str, cfg: &OAuth2Config, store: Store) -> Result<TokenSource> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects is not followed (RFC 6749 §3.2 SSRF note).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(TokenSource {
            mailbox: mailbox.to_string(),
            cfg: cfg.clone(),
            endpoints: endpoints(cfg),
            store,
            http,
            cached: Mutex::new(None),
            secret: None,
        })
    }

    /// With the client secret given here rather than in the environment.
    pub fn with_client_secret(mut self, secret: &str) -> TokenSource {
        self.secret = Some(secret.to_string());
        self
    }

    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    pub fn flow(&self) -> OAuthFlow {
        self.cfg.flow
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn secret(&self) -> Option<ClientSecret> {
        if let Some(secret) = &self.secret {
            return Some(ClientSecret::new(secret.clone()));
        }
        if self.cfg.client_secret_env.is_empty() {
            return None;
        }
        std::env::var(&self.cfg.client_secret_env)
            .ok()
            .filter(|s| !s.is_empty())
            .map(ClientSecret::new)
    }

    fn scopes(&self) -> Vec<Scope> {
        self.endpoints
            .scopes
            .iter()
            .cloned()
            .map(Scope::new)
            .collect()
    }

    /// An access token with at least two minutes left.
    pub async fn access_token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE).max(lifetime / 2),
        });
        Ok(token)
    }

    /// A new access token, whatever the cached one's lifetime: the server
    /// refused the cached one.
    pub async fn renew(&self) -> Result<String, TokenError> {
        *self.cached.lock().await = None;
        self.access_token().await
    }

    async fn fetch(&self) -> Result<(String, Duration), TokenError> {
        let token_url = TokenUrl::new(self.endpoints.token_url.clone())
            .map_err(|e| TokenError::Refused(format!("token_url: {e}")))?;
        let mut client = BasicClient::new(ClientId::new(self.cfg.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        if let Some(secret) = self.secret() {
            client = client.set_client_secret(secret);
        }
        let lifetime = |t: &oauth2::basic::BasicTokenResponse| {
            t.expires_in().unwrap_or(Duration::from_secs(3600))
        };
        match self.cfg.flow {
            OAuthFlow::ClientCredentials => {
                if self.secret().is_none() {
                    return Err(TokenError::Refused(format!(
                        "mailbox {}: the client secret's environment variable {} is not set",
                        self.mailbox, self.cfg.client_secret_env
                    )));
                }
                let t = client
                    .exchange_client_credentials()
                    .add_scopes(self.scopes())
                    .request_async(&self.http)
                    .await
                    .map_err(|e| provider_error(&self.what(), e, basic_words))?;
                Ok((t.access_token().secret().clone(), lifetime(&t)))
            }
            OAuthFlow::DeviceCode => {
                let stored = self
                    .store
                    .oauth_sign_in(&self.mailbox)
                    .await
                    .map_err(|e| TokenError::Unavailable(format!("{e:#}")))?;
                let Some(stored) = stored else {
                    return Err(TokenError::NeedsLogin(format!(
                        "mailbox {}: nobody signed in yet; run `casebot mailbox login {}`",
                        self.mailbox, self.mailbox
                    )));
                };
                if let Some(error) = stored.refused_error {
                    return Err(TokenError::NeedsLogin(error));
                }
                let refresh = self.open(&stored.refresh_token)?;
                let result = client
                    .exchange_refresh_token(&RefreshToken::new(refresh))
                    .add_scopes(self.scopes())
                    .request_async(&self.http)
                    .await
                    .map_err(|e| provider_error(&self.what(), e, basic_words));
                match result {
                    Ok(t) => {
                        // Providers that rotate refresh tokens hand a new one each time.
                        if let Some(new) = t.refresh_token() {
                            let sealed = self.seal(new.secret())?;
                            self.store
                                .save_oauth_token(&self.mailbox, &sealed, false)
                                .await
                                .map_err(|e| TokenError::Unavailable(format!("{e:#}")))?;
                        }
                        Ok((t.access_token().secret().clone(), lifetime(&t)))
                    }
                    Err(TokenError::NeedsLogin(words)) => {
                        // Remembered, so every watcher and the desk see it, and
                        // the provider is not asked again with a dead token.
                        let _ = self.store.refuse_oauth_token(&self.mailbox, &words).await;
                        Err(TokenError::NeedsLogin(words))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn what(&self) -> String {
        format!("mailbox {} ({})", self.mailbox, self.endpoints.token_url)
    }

    /// The device sign-in: `show` tells the person where to go and what to
    /// type; returns once they approved (or the code expired).
    pub async fn sign_in(&self, show: impl FnOnce(&DeviceInfo)) -> Result<(), TokenError> {
        // Refused before the person does anything, rather than after.
        self.key()?;
        let token_url = TokenUrl::new(self.endpoints.token_url.clone())
            .map_err(|e| TokenError::Refused(format!("token_url: {e}")))?;
        let device_url = DeviceAuthorizationUrl::new(self.endpoints.device_url.clone())
            .map_err(|e| TokenError::Refused(format!("device_url: {e}")))?;
        let mut client = BasicClient::new(ClientId::new(self.cfg.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url)
            .set_device_authorization_url(device_url);
        if let Some(secret) = self.secret() {
            client = client.set_client_secret(secret);
        }
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(self.scopes())
            .request_async(&self.http)
            .await
            .map_err(|e| provider_error(&self.what(), e, basic_words))?;
        show(&DeviceInfo {
            verification_uri: details.verification_uri().to_string(),
            user_code: details.user_code().secret().clone(),
            expires_in: details.expires_in(),
        });
        let token = client
            .exchange_device_access_token(&details)
            .request_async(&self.http, tokio::time::sleep, None)
            .await
            .map_err(|e| {
                // Denied or expired while the person was asked: sign in again.
                provider_error(&self.what(), e, |r| {
                    (
                        Blame::SignIn,
                        described(r.error().as_ref(), r.error_description()),
                    )
                })
            })?;
        let refresh = token.refresh_token().ok_or_else(|| {
            TokenError::Refused(format!(
                "{}: the provider gave no refresh token (ask for the offline_access scope)",
                self.what()
            ))
        })?;
        let sealed = self.seal(refresh.secret())?;
        self.store
            .save_oauth_token(&self.mailbox, &sealed, true)
            .await
            .map_err(|e| TokenError::Unavailable(format!("{e:#}")))?;
        *self.cached.lock().await = Some(Cached {
            token: token.access_token().secret().clone(),
            renew_at: Instant::now()
                + token
                    .expires_in()
                    .unwrap_or(Duration::from_secs(3600))
                    .saturating_sub(RENEW_BEFORE),
        });
        Ok(())
    }

    /// The sealing key: SHA-256 of the environment variable's value (a
    /// generated key or a long passphrase).
    fn key(&self) -> Result<aead::LessSafeKey, TokenError> {
        let secret = std::env::var(&self.cfg.token_key_env)
            .ok()
            .filter(|k| k.len() >= 16)
            .ok_or_else(|| {
                TokenError::Refused(format!(
                    "mailbox {}: the environment variable {} must hold the key (16 characters or more) that encrypts the stored refresh token; refusing to keep it unencrypted",
                    self.mailbox, self.cfg.token_key_env
                ))
            })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
        let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, digest.as_ref())
            .map_err(|_| TokenError::Refused("cannot make the token key".into()))?;
        Ok(aead::LessSafeKey::new(key))
    }

    /// Seals `token`, bound to this mailbox's name.
    fn seal(&self, token: &str) -> Result<String, TokenError> {
        let key = self.key()?;
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TokenError::Unavailable("no randomness for a nonce".into()))?;
        let mut sealed = token.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(self.mailbox.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| TokenError::Unavailable("cannot encrypt the token".into()))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    fn open(&self, sealed: &str) -> Result<String, TokenError> {
        let key = self.key()?;
        let wrong = || {
            TokenError::NeedsLogin(format!(
                "mailbox {}: the stored sign-in cannot be decrypted with the key in {} (was the key changed?); sign in again with `casebot mailbox login {}`",
                self.mailbox, self.cfg.token_key_env, self.mailbox
            ))
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| wrong())?;
        if bytes.len() < aead::NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, rest) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut rest = rest.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::from(self.mailbox.as_bytes()), &mut rest)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

/// The sign-ins of a configuration's OAuth2 mailboxes, one per mailbox,
/// shared by its folder watchers and by SMTP (one token cache each).
#[derive(Debug, Clone, Default)]
pub struct SignIns {
    by_mailbox: Arc<HashMap<String, Arc<TokenSource>>>,
}

impl SignIns {
    pub fn new(config: &Config, store: &Store) -> Result<SignIns> {
        let mut by_mailbox = HashMap::new();
        for m in &config.mailboxes {
            if m.auth == AuthKind::OAuth2 {
                let cfg = m
                    .oauth2
                    .as_ref()
                    .ok_or_else(|| anyhow!("mailbox {}: no [mailbox.oauth2]", m.name))?;
                by_mailbox.insert(
                    m.name.clone(),
                    Arc::new(
                        TokenSource::new(&m.name, cfg, store.clone()).context("OAuth2 client")?,
                    ),
                );
            }
        }
        Ok(SignIns {
            by_mailbox: Arc::new(by_mailbox),
        })
    }

    pub fn get(&self, mailbox: &str) -> Option<Arc<TokenSource>> {
        self.by_mailbox.get(mailbox).cloned()
    }
}

/// The SASL XOAUTH2 initial response (Google's and Microsoft's format).
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// The SASL OAUTHBEARER initial response (RFC 7628).
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &str) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(provider: OAuthProvider, flow: OAuthFlow) -> OAuth2Config {
        OAuth2Config {
            provider,
            tenant: "contoso.onmicrosoft.com".into(),
            flow,
            client_id: "app".into(),
            client_secret_env: String::new(),
            scopes: Vec::new(),
            token_url: String::new(),
            device_url: String::new(),
            token_key_env: "CASEBOT_TEST_TOKEN_KEY_UNSET".into(),
        }
    }

    #[test]
    fn presets_name_each_providers_endpoints_and_mail_scopes() {
        let m = endpoints(&cfg(OAuthProvider::Microsoft, OAuthFlow::ClientCredentials));
        assert_eq!(
            m.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(m.scopes, ["https://outlook.office365.com/.default"]);
        let china = endpoints(&cfg(OAuthProvider::MicrosoftChina, OAuthFlow::DeviceCode));
        assert_eq!(
            china.device_url,
            "https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
        );
        assert!(
            china
                .scopes
                .contains(&"https://partner.outlook.cn/IMAP.AccessAsUser.All".to_string())
        );
        assert!(china.scopes.contains(&"offline_access".to_string()));
        let mut custom = cfg(OAuthProvider::Custom, OAuthFlow::DeviceCode);
        custom.token_url = "https://idp.example.com/token".into();
        custom.scopes = vec!["mail".into()];
        assert_eq!(
            endpoints(&custom).token_url,
            "https://idp.example.com/token"
        );
        assert_eq!(endpoints(&custom).scopes, ["mail"]);
    }

    #[test]
    fn a_throttled_provider_is_waited_for_and_only_a_dead_grant_needs_a_sign_in() {
        use oauth2::basic::BasicErrorResponse;
        let error = |code: BasicErrorResponseType| {
            let e: RequestTokenError<std::io::Error, BasicErrorResponse> =
                RequestTokenError::ServerResponse(BasicErrorResponse::new(
                    code,
                    Some("AADSTS50196: too many requests".into()),
                    None,
                ));
            provider_error("mailbox desk", e, basic_words)
        };
        let throttled = error(BasicErrorResponseType::Extension(
            "temporarily_unavailable".into(),
        ));
        assert!(
            matches!(&throttled, TokenError::Unavailable(m) if m.contains("AADSTS50196")),
            "{throttled:?}"
        );
        assert!(matches!(
            error(BasicErrorResponseType::InvalidGrant),
            TokenError::NeedsLogin(_)
        ));
        assert!(matches!(
            error(BasicErrorResponseType::Extension("consent_required".into())),
            TokenError::NeedsLogin(_)
        ));
        assert!(matches!(
            error(BasicErrorResponseType::InvalidClient),
            TokenError::Refused(_)
        ));
    }

    #[test]
    fn sasl_initial_responses_follow_their_formats() {
        assert_eq!(
            xoauth2("a@example.com", "tok"),
            "user=a@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            oauthbearer("a,b=c@example.com", "imap.example.com", 993, "tok"),
            "n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }
}
