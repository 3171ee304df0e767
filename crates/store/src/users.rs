//! Desk accounts and their logins.

use anyhow::{Result, bail};
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, now_ts, ts_to_rfc3339};

/// What a desk account may do. Leads see and do everything engineers do,
/// plus the SLA board and the period report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Engineer,
    Lead,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "engineer" => Some(Role::Engineer),
            "lead" => Some(Role::Lead),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Engineer => "engineer",
            Role::Lead => "lead",
        }
    }
}

#[derive(Debug, Clone, FromRow)]
struct UserRow {
    id: i64,
    name: String,
    email: Option<String>,
    role: String,
    password_hash: String,
    disabled: i64,
    created_at: i64,
    display_name: Option<String>,
    phone: Option<String>,
    signature: Option<String>,
    language: Option<String>,
}

/// A desk account.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    /// The name a customer reads under a reply (else the account's name).
    pub display_name: Option<String>,
    pub phone: Option<String>,
    /// The lines under the name in a reply this person signs.
    pub signature_lines: Vec<String>,
    /// The language this person reads the desk in; `None`: the desk's.
    pub language: Option<String>,
    #[serde(skip)]
    pub password_hash: String,
}

/// What a person changes of their own profile; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub signature_lines: Option<Vec<String>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            name: r.name,
            email: r.email,
            role: Role::parse(&r.role).unwrap_or(Role::Engineer),
            disabled: r.disabled != 0,
            created_at: ts_to_rfc3339(r.created_at),
            display_name: r.display_name.filter(|n| !n.trim().is_empty()),
            phone: r.phone.filter(|p| !p.trim().is_empty()),
            signature_lines: r
                .signature
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect(),
            language: r.language.filter(|l| !l.trim().is_empty()),
            password_hash: r.password_hash,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    csrf_token: String,
    expires_at: i64,
    last_seen_at: i64,
}

/// A live login, as found by its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: i64,
}

const USER_COLUMNS: &str = "id, name, email, role, password_hash, disabled, created_at, display_name, phone, signature, language";

impl Store {
    /// Changes a person's profile (what signs their replies); `None` when
    /// there is no such account.
    pub async fn set_profile(&self, name: &str, profile: &Profile) -> Result<Option<User>> {
        let signature = profile.signature_lines.as_ref().map(|l| l.join("\n"));
        let changed = sqlx::query(
            "UPDATE users SET display_name = COALESCE($2, display_name), email = COALESCE($3, email), \
             phone = COALESCE($4, phone), signature = COALESCE($5, signature), updated_at = $6 WHERE name = $1",
        )
        .bind(name)
        .bind(&profile.display_name)
        .bind(&profile.email)
        .bind(&profile.phone)
        .bind(signature)
        .bind(now_ts())
        .execute(self.pool())
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        self.user(name).await
    }

    /// Changes what an account may do; false when there is no such account.
    pub async fn set_role(&self, name: &str, role: Role) -> Result<bool> {
        let changed = sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(role.as_str())
            .bind(now_ts())
            .execute(self.pool())
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    /// Sets the language a person reads the desk in (`None`: the desk's);
    /// false when there is no such account.
    pub async fn set_language(&self, name: &str, language: Option<&str>) -> Result<bool> {
        let changed =
            sqlx::query("UPDATE users SET language = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(language)
                .bind(now_ts())
                .execute(self.pool())
                .await?;
        Ok(changed.rows_affected() > 0)
    }

    /// The account a case's owner names (by account name or address,
    /// whatever the letter case).
    pub async fn user_for_owner(&self, owner: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE LOWER(name) = LOWER($1) OR LOWER(email) = LOWER($1) \
             ORDER BY id LIMIT 1"
        ))
        .bind(owner.trim())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(User::from))
    }

    /// Who owns a case now: the newest assignment (`casebot assign`, the
    /// desk's Assign), else the owner the SLA engine last read off the mail.
    pub async fn case_owner(&self, case_row: i64) -> Result<Option<String>> {
        let assigned: Option<String> = sqlx::query_scalar(
            "SELECT detail FROM events WHERE case_id = $1 AND kind = 'owner_assigned' ORDER BY id DESC LIMIT 1",
        )
        .bind(case_row)
        .fetch_optional(self.pool())
        .await?;
        if let Some(owner) = assigned
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .and_then(|d| d["owner"].as_str().map(str::to_string))
        {
            return Ok(Some(owner));
        }
        Ok(
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT owner FROM case_sla WHERE case_id = $1",
            )
            .bind(case_row)
            .fetch_optional(self.pool())
            .await?
            .flatten(),
        )
    }
}

impl Store {
    /// Creates an account; a name already taken is an error that says so.
    pub async fn add_user(
        &self,
        name: &str,
        email: Option<&str>,
        role: Role,
        password_hash: &str,
    ) -> Result<User> {
        if self.user(name).await?.is_some() {
            bail!(
                "a user named {name:?} already exists (use `casebot user passwd` to change the password)"
            );
        }
        let now = now_ts();
        sqlx::query(
            "INSERT INTO users (name, email, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(name)
        .bind(email)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.user(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the new user {name:?} vanished"))
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(User::from))
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Changes a password and ends the account's sessions.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        self.update_user_ending_sessions(name, "password_hash", password_hash.to_string())
            .await
    }

    /// Disables (or enables) an account; disabling ends its sessions.
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        self.update_user_ending_sessions(name, "disabled", i64::from(disabled))
            .await
    }

    /// Sets one column of an account and ends its sessions, in one
    /// transaction; false when there is no such account.
    async fn update_user_ending_sessions<T>(
        &self,
        name: &str,
        column: &'static str,
        value: T,
    ) -> Result<bool>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&format!(
            "UPDATE users SET {column} = $1, updated_at = $2 WHERE name = $3"
        ))
        .bind(value)
        .bind(now_ts())
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done == 1)
    }

    pub async fn create_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<()> {
        let now = now_ts();
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_sha256)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The live session of a token, its expiry pushed to `extend_to` (at
    /// most once a minute, to spare the store a write per page).
    pub async fn session(&self, token_sha256: &str, extend_to: i64) -> Result<Option<Session>> {
        let now = now_ts();
        // One read per request: the session and its account together.
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.email, u.role, u.password_hash, u.disabled, u.created_at, \
             u.display_name, u.phone, u.signature, u.language, \
             s.csrf_token, s.expires_at, s.last_seen_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row.filter(|r| r.expires_at >= now && r.user.disabled == 0) else {
            return Ok(None);
        };
        let mut expires = row.expires_at;
        if now - row.last_seen_at >= 60 {
            expires = extend_to;
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_sha256 = $3",
            )
            .bind(now)
            .bind(expires)
            .bind(token_sha256)
            .execute(self.pool())
            .await?;
        }
        Ok(Some(Session {
            user: row.user.into(),
            csrf_token: row.csrf_token,
            expires_at: expires,
        }))
    }

    pub async fn end_session(&self, token_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
