//! The domain's words: the types every layer of casebot speaks in. Nothing
//! here decides anything; the stages above decide in these terms, and the
//! store keeps each word as its `as_str` text and reads it back with
//! `TryFrom<String>`, which refuses a word it does not know (a corrupt or
//! newer row) instead of guessing a default.

mod analysis;
mod desk;
mod direction;
mod draft;
mod hash;
mod lang;
mod reply_check;
mod source;
mod stage;
mod status;

pub use analysis::AnalysisStatus;
pub use desk::DeskConfig;
pub use direction::Direction;
pub use draft::{DraftKind, DraftOrigin, DraftStatus};
pub use hash::sha256_hex;
pub use lang::Lang;
pub use reply_check::{Flaw, Level, Problem, Refusal};
pub use source::Source;
pub use stage::Stage;
pub use status::{CaseStatus, MailSignal};

/// A stored word that is none of its type's: the store holds a row this
/// build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub value: String,
}

/// The conversions every stored word has: from its text (checked) and to it.
macro_rules! stored_word {
    ($($name:ident: $what:literal),* $(,)?) => {$(
        impl TryFrom<String> for $name {
            type Error = UnknownWord;
            fn try_from(value: String) -> Result<Self, UnknownWord> {
                $name::parse(&value).ok_or(UnknownWord { what: $what, value })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

stored_word!(
    AnalysisStatus: "analysis status",
    CaseStatus: "case status",
    Direction: "direction",
    DraftKind: "draft kind",
    DraftOrigin: "draft origin",
    DraftStatus: "draft status",
    MailSignal: "mail signal",
    Stage: "stage",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_word_reads_back_and_an_unknown_one_is_refused() {
        for status in DraftStatus::ALL {
            assert_eq!(DraftStatus::try_from(status.to_string()), Ok(status));
        }
        assert_eq!(
            Direction::try_from("customer".to_string()),
            Ok(Direction::Customer)
        );
        let err = Direction::try_from("robot".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "unknown direction \"robot\"");
        assert!(CaseStatus::try_from(String::new()).is_err());
    }
}
