//! OAuth2 sign-ins of mailboxes: the encrypted refresh token of each
//! (the store never sees it in clear text: `casebot_app::oauth` seals it
//! before and opens it after), and whether the provider refused it.

use anyhow::Result;
use sqlx::FromRow;

use super::{Store, now_ts};

/// A mailbox's stored sign-in.
#[derive(Debug, Clone, FromRow)]
pub struct StoredSignIn {
    pub mailbox: String,
    /// Sealed: nonce and ciphertext, base64.
    pub refresh_token: String,
    pub signed_in_at: i64,
    pub updated_at: i64,
    pub refused_at: Option<i64>,
    pub refused_error: Option<String>,
}

impl Store {
    pub async fn oauth_sign_in(&self, mailbox: &str) -> Result<Option<StoredSignIn>> {
        Ok(sqlx::query_as(
            "SELECT mailbox, refresh_token, signed_in_at, updated_at, refused_at, refused_error \
             FROM oauth_tokens WHERE mailbox = $1",
        )
        .bind(mailbox)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Keeps a new (sealed) refresh token: a sign-in, or a provider that
    /// rotates them on refresh. `signed_in` marks a new sign-in.
    pub async fn save_oauth_token(
        &self,
        mailbox: &str,
        sealed: &str,
        signed_in: bool,
    ) -> Result<()> {
        let now = now_ts();
        sqlx::query(
            "INSERT INTO oauth_tokens (mailbox, refresh_token, signed_in_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (mailbox) DO UPDATE SET \
             refresh_token = excluded.refresh_token, updated_at = excluded.updated_at, \
             signed_in_at = CASE WHEN $4 = 1 THEN excluded.signed_in_at ELSE oauth_tokens.signed_in_at END, \
             refused_at = NULL, refused_error = NULL",
        )
        .bind(mailbox)
        .bind(sealed)
        .bind(now)
        .bind(i64::from(signed_in))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The provider refused the stored refresh token (revoked, expired).
    pub async fn refuse_oauth_token(&self, mailbox: &str, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE oauth_tokens SET refused_at = $1, refused_error = $2 WHERE mailbox = $3",
        )
        .bind(now_ts())
        .bind(error)
        .bind(mailbox)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
