//! casebot's pure core: functions over bytes and structs, tested without I/O.
//! It does not depend on an async runtime, a database or a network client,
//! and the compiler keeps it so (see ARCHITECTURE.md).
//!
//! - [`domain`]: the words every layer shares (direction, case status, the
//!   reply language, where a mail came from, the desk);
//! - [`mail`]: what one mail says: parsing, the partner's subject grammar,
//!   body split, links, direction, the threading decision, the case status;
//! - [`sla`]: business time, the targets per priority, a case's clocks and
//!   the period report.

pub mod domain;
pub mod mail;
pub mod notify;
pub mod search;
pub mod sla;
