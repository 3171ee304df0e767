//! The languages casebot writes in: explanations, next steps and replies.

/// The language a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese (mainland China).
    Zh,
    /// Traditional Chinese (Taiwan, Hong Kong): replies only; what casebot
    /// writes itself is written in Simplified Chinese and converted.
    ZhTw,
    En,
}

impl Lang {
    /// `zh-CN`, `zh`, `en` (case-insensitive); anything else is `None`.
    pub fn parse(text: &str) -> Option<Lang> {
        match text.to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "zh-hans" | "zh-sg" => Some(Lang::Zh),
            "zh-tw" | "zh-hk" | "zh-mo" | "zh-hant" => Some(Lang::ZhTw),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language casebot composes its own sentences in before any
    /// conversion: Traditional Chinese is written as Simplified first.
    pub fn composed(self) -> Lang {
        match self {
            Lang::ZhTw => Lang::Zh,
            other => other,
        }
    }

    pub fn is_chinese(self) -> bool {
        matches!(self, Lang::Zh | Lang::ZhTw)
    }

    /// The tag used in config, template folders and output: `zh-CN` or `en`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::ZhTw => "zh-TW",
            Lang::En => "en",
        }
    }
}
