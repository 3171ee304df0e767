//! Who a mail is from, in the desk's terms.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Customer,
    Engineer,
    Auto,
    Bounce,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Customer => "customer",
            Direction::Engineer => "engineer",
            Direction::Auto => "auto",
            Direction::Bounce => "bounce",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "customer" => Direction::Customer,
            "engineer" => Direction::Engineer,
            "auto" => Direction::Auto,
            "bounce" => Direction::Bounce,
            _ => return None,
        })
    }
}
