//! casebot's drafting decisions, pure: which reply a case calls for and
//! everything that goes into its text. The stage that loads a case and keeps
//! the drafts lives in the application (`casebot_app::stages::drafting`).
//!
//! - [`decide`]: case status + thread + analyses → nothing, wait, or a draft
//!   of a kind with its basis;
//! - [`reply`]: subject (one prefix, tags intact), recipients,
//!   In-Reply-To/References, language, Message-IDs;
//! - [`context`]: what templates see (case, people, analysis in the reply's
//!   language, similar cases, closure facts);
//! - [`templates`]: loads `templates/` (or the built-in copy), strict
//!   rendering, the check over sample cases;
//! - [`knowledge`]: failure signatures, families, similarity;
//! - [`config`]: the `[drafting]` settings.

pub mod check;
pub mod config;
pub mod context;
pub mod decide;
pub mod hant;
pub mod knowledge;
pub mod reply;
pub mod templates;

pub use config::{DraftingConfig, PortalConfig};
