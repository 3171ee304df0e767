//! The domain's words: the types every layer of casebot speaks in. Nothing
//! here decides anything; the stages above decide in these terms, and the
//! store keeps them as the same words (`as_str`), read back with `parse`.

mod desk;
mod direction;
mod hash;
mod lang;
mod source;
mod status;

pub use desk::DeskConfig;
pub use direction::Direction;
pub use hash::sha256_hex;
pub use lang::Lang;
pub use source::Source;
pub use status::{CaseStatus, MailSignal};
