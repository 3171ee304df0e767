//! Traditional Chinese: telling a customer who writes it from one who
//! writes Simplified, and turning what casebot composes (in Simplified)
//! into Traditional for their replies. Both by OpenCC's dictionaries
//! (ferrous-opencc, built into the binary), phrase by phrase, with
//! Taiwan's usual words (程式, 元件).

use std::sync::LazyLock;

use ferrous_opencc::OpenCC;
use ferrous_opencc::config::BuiltinConfig;

static TO_TRADITIONAL: LazyLock<Option<OpenCC>> =
    LazyLock::new(|| OpenCC::from_config(BuiltinConfig::S2twp).ok());
static TO_SIMPLIFIED: LazyLock<Option<OpenCC>> =
    LazyLock::new(|| OpenCC::from_config(BuiltinConfig::T2s).ok());
static SIMPLIFIED_TO_TRADITIONAL: LazyLock<Option<OpenCC>> =
    LazyLock::new(|| OpenCC::from_config(BuiltinConfig::S2t).ok());

/// How much of the text is read: enough to decide, bounded for any mail.
const SAMPLE_CHARS: usize = 4096;

/// `text` in Traditional Chinese (Taiwan). Text that is not Chinese comes
/// back as it was.
pub fn to_traditional(text: &str) -> String {
    match TO_TRADITIONAL.as_ref() {
        Some(cc) if text.chars().any(is_han) => cc.convert(text),
        _ => text.to_string(),
    }
}

/// Whether `text` is written in Traditional Chinese: more of its Chinese
/// characters exist only in Traditional (a Simplified reading changes
/// them) than only in Simplified.
pub fn is_traditional(text: &str) -> bool {
    let sample: String = text
        .chars()
        .filter(|c| is_han(*c))
        .take(SAMPLE_CHARS)
        .collect();
    let (Some(t2s), Some(s2t)) = (TO_SIMPLIFIED.as_ref(), SIMPLIFIED_TO_TRADITIONAL.as_ref())
    else {
        return false;
    };
    let changed = |converted: String| {
        sample
            .chars()
            .zip(converted.chars())
            .filter(|(a, b)| a != b)
            .count()
    };
    let traditional_only = changed(t2s.convert(&sample));
    let simplified_only = changed(s2t.convert(&sample));
    traditional_only > simplified_only
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF)
}

/// Every string of a JSON value in Traditional Chinese.
pub fn value_to_traditional(value: &mut serde_json::Value) {
    match value {
        // `to_traditional` leaves text without Chinese as it is.
        serde_json::Value::String(s) => *s = to_traditional(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(value_to_traditional),
        serde_json::Value::Object(map) => map.values_mut().for_each(value_to_traditional),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_is_told_from_simplified() {
        assert!(is_traditional(
            "您好，更新安裝失敗，錯誤代碼 0x800f081f，請協助處理。"
        ));
        assert!(is_traditional("補丁還是裝不上，這台電腦已經重開機了"));
        assert!(!is_traditional(
            "您好，更新安装失败，错误代码 0x800f081f，请协助处理。"
        ));
        assert!(!is_traditional("补丁还是装不上，这台电脑已经重启了"));
        // Characters both scripts share decide nothing.
        assert!(!is_traditional("中文"));
        assert!(!is_traditional("KB5034441 0x80070643"));
    }

    #[test]
    fn composed_text_becomes_traditional() {
        assert_eq!(to_traditional("日志显示安装失败"), "日誌顯示安裝失敗");
        assert_eq!(to_traditional("KB5034441"), "KB5034441");
        let mut v = serde_json::json!({"a": ["用户反馈：补丁"], "n": 3});
        value_to_traditional(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["使用者反饋：補丁"], "n": 3}));
    }
}
