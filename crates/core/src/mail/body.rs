//! Splits a mail's text into what the sender wrote now, the quoted history
//! below it, and the signature.
//!
//! Only the new text says what happened in *this* mail: a resolution phrase
//! or a case number in the quoted history belongs to an older mail and must
//! not count again. Clients mark history in many ways (Outlook's `发件人:`
//! header block, `-----原始邮件-----`, Gmail's `On … wrote:`, Foxmail's
//! `在 … 写道：`, `>` lines), so the markers are a list of line shapes, not one
//! pattern.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// The three parts of a mail body, each trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BodyParts {
    pub new_text: String,
    pub quoted_text: String,
    pub signature: String,
}

static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*-{2,}\s*(原始邮件|原始郵件|original message|forwarded message|转发邮件|轉寄郵件|邮件原件)\s*-{2,}\s*$",
    )
    .expect("static regex")
});
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(发件人|寄件者|from)\*?\s*[:：]").expect("static regex")
});
static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(发送时间|发送日期|日期|时间|收件人|抄送|主题|寄件日期|sent|date|to|cc|subject)\*?\s*[:：]")
        .expect("static regex")
});
static ON_WROTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*on\s.{4,}\swrote:\s*$").expect("static regex"));
static ON_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*on\s.{4,}").expect("static regex"));
static WROTE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)wrote:\s*$").expect("static regex"));
static ZH_WROTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*在.{4,}写道\s*[:：]\s*$").expect("static regex"));
static RULE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*[_\-=]{8,}\s*$").expect("static regex"));
static SIG_DASHES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^--\s?$").expect("static regex"));
static VALEDICTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(祝好|祝好！|此致|此致敬礼|顺祝商祺|顺颂商祺|best regards|kind regards|regards|best|cheers|thanks and regards|br)[,，.。!！]?\s*$")
        .expect("static regex")
});

/// How many lines after a valediction may still be a signature block.
const MAX_SIGNATURE_LINES: usize = 12;

/// Splits `text` (any line endings) into new text, quoted history and signature.
pub fn split_body(text: &str) -> BodyParts {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();

    let history_start = find_history_start(&lines);
    let (own, history) = lines.split_at(history_start);

    // Interleaved `>` lines above the history are quotes too.
    let mut fresh = Vec::with_capacity(own.len());
    let mut quoted_inline = Vec::new();
    for line in own {
        if line.trim_start().starts_with('>') {
            quoted_inline.push(*line);
        } else {
            fresh.push(*line);
        }
    }

    let sig_start = find_signature_start(&fresh);
    let (new_lines, sig_lines) = fresh.split_at(sig_start);

    let mut quoted = quoted_inline.join("\n");
    if !history.is_empty() {
        if !quoted.is_empty() {
            quoted.push('\n');
        }
        quoted.push_str(&history.join("\n"));
    }
    BodyParts {
        new_text: new_lines.join("\n").trim().to_string(),
        quoted_text: quoted.trim().to_string(),
        signature: sig_lines.join("\n").trim().to_string(),
    }
}

/// Index of the first line of the quoted history, or `lines.len()`.
fn find_history_start(lines: &[&str]) -> usize {
    for (i, line) in lines.iter().enumerate() {
        let starts_here = ORIGINAL_MESSAGE.is_match(line)
            || ON_WROTE.is_match(line)
            || ZH_WROTE.is_match(line)
            || (ON_START.is_match(line)
                && lines
                    .get(i + 1)
                    .is_some_and(|next| WROTE_END.is_match(next)))
            || (HEADER_FROM.is_match(line)
                && lines
                    .iter()
                    .skip(i + 1)
                    .take(5)
                    .filter(|l| HEADER_OTHER.is_match(l))
                    .count()
                    >= 1);
        if starts_here {
            // Outlook puts a rule line (and sometimes blank lines) above the
            // header block: it belongs to the history, not the new text.
            let mut start = i;
            while start > 0
                && (lines[start - 1].trim().is_empty() || RULE_LINE.is_match(lines[start - 1]))
            {
                start -= 1;
            }
            return start;
        }
        // A run of `>` lines that lasts to the end is a bottom quote.
        if line.trim_start().starts_with('>')
            && lines[i..]
                .iter()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('>'))
        {
            let mut start = i;
            // "On … wrote:" was handled above; a lone attribution line stays.
            while start > 0 && lines[start - 1].trim().is_empty() {
                start -= 1;
            }
            return start;
        }
    }
    lines.len()
}

/// Index of the first signature line in the new text, or `lines.len()`.
fn find_signature_start(lines: &[&str]) -> usize {
    let last_content = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    // RFC 3676 delimiter wins: it is unambiguous.
    if let Some(i) = lines.iter().rposition(|l| SIG_DASHES.is_match(l)) {
        return i;
    }
    // A rule line in the last lines starts a signature block (Outlook and
    // most corporate templates put one above name, company and phone).
    if let Some(i) = lines.iter().rposition(|l| RULE_LINE.is_match(l))
        && last_content.saturating_sub(i) <= MAX_SIGNATURE_LINES
        && i > 0
    {
        return i;
    }
    // "Best regards," followed by a short block: name, title, company.
    if let Some(i) = lines.iter().rposition(|l| VALEDICTION.is_match(l)) {
        let after = last_content.saturating_sub(i);
        if (1..=MAX_SIGNATURE_LINES).contains(&after) {
            return i + 1;
        }
    }
    lines.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlook_chinese_header_block_is_history() {
        let text = "李老师，您好\n已上传日志。\n祝好\n________________________________\n王小明 Xiaoming Wang\n示例科技有限公司\nTel: +86-10-55500001\n\n发件人: 张工 <zhang@desk.example.com>\n发送时间: 2023年2月22日 14:22\n收件人: 王小明\n主题: 回复: [案例号:CAS-00001-AAAAAA]\n\n您好，问题解决了吗？";
        let b = split_body(text);
        assert_eq!(b.new_text, "李老师，您好\n已上传日志。\n祝好");
        assert!(
            b.signature
                .starts_with("________________________________\n王小明"),
            "{b:?}"
        );
        assert!(b.quoted_text.starts_with("发件人: 张工"), "{b:?}");
        assert!(b.quoted_text.contains("问题解决了吗"));
        assert!(!b.new_text.contains("问题解决了"));
    }

    #[test]
    fn original_message_marker() {
        let b = split_body("好的。\n\t-----原始邮件-----\n\t发件人: x\n旧内容");
        assert_eq!(b.new_text, "好的。");
        assert!(b.quoted_text.contains("旧内容"));
        let b = split_body("ok\r\n-----Original Message-----\r\nFrom: a\r\nold");
        assert_eq!(b.new_text, "ok");
        assert!(b.quoted_text.starts_with("-----Original Message-----"));
    }

    #[test]
    fn outlook_rule_line_above_english_header_block_goes_with_history() {
        let b = split_body(
            "Thanks, it works now.\n\n________________________________\nFrom: Desk <support@example.com>\nSent: Monday\nTo: me\nSubject: Re: x\n\nold text",
        );
        assert_eq!(b.new_text, "Thanks, it works now.");
        assert!(b.quoted_text.starts_with("________"));
        assert_eq!(b.signature, "");
    }

    #[test]
    fn gmail_attribution_on_one_or_two_lines() {
        let b = split_body(
            "Still failing.\n\nOn Mon, 20 Mar 2023 at 16:54, Desk <support@example.com> wrote:\n> please send logs\n> thanks",
        );
        assert_eq!(b.new_text, "Still failing.");
        assert!(b.quoted_text.starts_with("On Mon"));
        let b = split_body(
            "Still failing.\nOn Mon, 20 Mar 2023 at 16:54, Desk\n<support@example.com> wrote:\n> old",
        );
        assert_eq!(b.new_text, "Still failing.");
    }

    #[test]
    fn foxmail_attribution() {
        let b =
            split_body("已上传\n在 2023年2月22日 22:22，support@example.com 写道：\n请上传日志");
        assert_eq!(b.new_text, "已上传");
        assert!(b.quoted_text.contains("请上传日志"));
    }

    #[test]
    fn interleaved_and_bottom_quotes() {
        let b = split_body("> did you reboot?\nyes\n> and the log?\nattached\n");
        assert_eq!(b.new_text, "yes\nattached");
        assert_eq!(b.quoted_text, "> did you reboot?\n> and the log?");
        let b = split_body("fine now\n\n> old\n> older\n");
        assert_eq!(b.new_text, "fine now");
        assert_eq!(b.quoted_text, "> old\n> older");
    }

    #[test]
    fn rfc3676_signature_and_valediction() {
        let b = split_body("It works.\n-- \nJane Doe\nExample Corp");
        assert_eq!(
            (b.new_text.as_str(), b.signature.as_str()),
            ("It works.", "-- \nJane Doe\nExample Corp")
        );
        let b = split_body("It works.\n\nBest regards,\nJane Doe\nExample Corp\n+1 555 0100");
        assert_eq!(b.new_text, "It works.\n\nBest regards,");
        assert_eq!(b.signature, "Jane Doe\nExample Corp\n+1 555 0100");
    }

    #[test]
    fn text_without_markers_is_all_new() {
        let b = split_body("第二次上传完毕。");
        assert_eq!(
            b,
            BodyParts {
                new_text: "第二次上传完毕。".into(),
                ..Default::default()
            }
        );
        assert_eq!(split_body(""), BodyParts::default());
    }

    #[test]
    fn a_from_line_without_a_header_block_is_not_history() {
        let b = split_body("From: the log I see an error.\nPlease check.");
        assert_eq!(b.new_text, "From: the log I see an error.\nPlease check.");
    }
}
