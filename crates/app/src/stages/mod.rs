//! The pipeline stages. Each reads what it needs from the store, lets the
//! pure crates decide, and has the store carry the decision out:
//!
//! - [`filing`]: raw mail in, filed messages out (`Pipeline`);
//! - [`analysis`]: the queue of customer mail to analyse;
//! - [`drafting`]: the reply each case calls for, and the approval gate
//!   every edit, approval, rejection and retry goes through;
//! - [`sla`]: the SLA snapshots, following the event log.

pub mod analysis;
pub mod drafting;
pub mod filing;
pub mod sla;
