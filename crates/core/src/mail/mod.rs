//! Reading one mail, and deciding where it belongs: pure functions over its
//! bytes and over what the store already holds.
//!
//! - `parse`: mail-parser plus repairs (charsets, dates, Message-ID) → `ParsedMail`;
//! - `subject`: the partner's subject grammar (table tests in `subject_tests.rs`);
//! - `body`: new text / quoted history / signature; `links`: URLs and UNC paths;
//! - `direction`: customer / engineer / auto / bounce, and the resolution phrase;
//! - `bounce`: the mail a bounce returns, to whom and why;
//! - `thread`: the case decision; `case_state`: the derived case status;
//! - `filing`: a batch decided in memory (new, duplicate, quarantined) and
//!   what it does to its cases, as plans the store carries out.

pub mod body;
pub mod bounce;
pub mod case_state;
pub mod direction;
pub mod filing;
pub mod links;
pub mod parse;
pub mod regroup;
pub mod resolution;
pub mod subject;
pub mod thread;
