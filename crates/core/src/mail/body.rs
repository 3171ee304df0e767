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

/// A line that ends a sentence or asks something: message text, not a
/// signature line.
static SENTENCE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[。？！?!]\s*$|[？?]").expect("static regex"));
/// What a log table or report holds and a signature never does.
static EVIDENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bKB\s?\d{6,8}\b|\b0x[0-9a-f]{8}\b").expect("static regex"));

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
            || is_header_block(&lines[i..]);
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

/// A quoted mail's header block: a `From:`/`发件人:` line with another
/// header line (sent, to, subject …) right below it, within one wrapped
/// line. A line that merely starts with "From:" in the sender's own words,
/// an address or a label such as "Case No:" starts nothing.
fn is_header_block(lines: &[&str]) -> bool {
    let Some((first, rest)) = lines.split_first() else {
        return false;
    };
    // A header's value is a name, an address, a date: never a sentence.
    let value_like = |l: &str| !SENTENCE_END.is_match(l) && !l.trim_end().ends_with('.');
    HEADER_FROM.is_match(first)
        && value_like(first)
        && rest
            .iter()
            .take(2)
            .take_while(|l| !l.trim().is_empty())
            .any(|l| HEADER_OTHER.is_match(l) && value_like(l))
}

/// Whether the lines below a rule line read like a signature (a name, a
/// company, a phone number) rather than the rest of a table or message.
fn signature_like(block: &[&str]) -> bool {
    let content: Vec<&str> = block
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    !content.is_empty()
        && content.iter().all(|l| {
            l.chars().count() <= 60
                && !l.contains('\t')
                && !l.contains('|')
                && !SENTENCE_END.is_match(l)
                && !EVIDENCE.is_match(l)
        })
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
        && signature_like(&lines[i + 1..])
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

    /// Lines that look a little like a quote header or a signature rule but
    /// are the sender's own words: none of them may cut the new text short.
    #[test]
    fn the_new_text_is_not_cut_at_lines_that_only_look_like_history() {
        let cases = [
            "您好，日志请发到 support@example.com，发件人: 王小明\n收到后请回复。",
            "From: the CBS log I see 0x800f0922.\nTo: be sure, I ran DISM again.\nPlease check.",
            "Case No: CAS-12345-ABCDEF\nDate: 2024-01-09 the update failed again.\n请帮忙分析。",
            "发件人: 王小明（本人）\n\n主题: 补丁安装失败\n日志见附件。",
            "补丁清单：\n--------------------\nKB5034441  失败  0x80070643\nKB5034122  成功\n--------------------\n请问第一个怎么处理？",
            "KB\t状态\n==========\nKB5034441\t失败\n\n麻烦帮忙看一下。",
            "日志太大，点击这里下载 <https://files.example.cn/share/abc>\n密码另行发送。",
            "On the second server it failed too.\nThe log is attached.",
            "在第二台服务器上也失败了，写道的日志见附件。",
        ];
        for text in cases {
            let b = split_body(text);
            assert_eq!(b.new_text, text.trim(), "{text:?} split as {b:?}");
        }
    }

    #[test]
    fn a_real_header_block_still_starts_the_history() {
        for text in [
            "ok\n\nFrom: Desk <support@example.com>\nSent: Monday, March 4, 2024 10:00 AM\nTo: me\n\nold",
            "好的\n发件人: 张工 <zhang@example.com>\n发送时间: 2024年3月4日 10:00\n\n旧内容",
            "好的\n发件人: 张工\n<zhang@example.com>\n发送时间: 2024年3月4日 10:00\n\n旧内容",
            "好的\n*From:* Desk\n*Date:* Mon\n\nold",
        ] {
            let b = split_body(text);
            assert!(
                !b.quoted_text.is_empty() && b.new_text.len() <= "好的".len().max(2),
                "{text:?} split as {b:?}"
            );
        }
    }

    #[test]
    fn a_rule_line_with_a_name_below_is_still_a_signature() {
        let b = split_body(
            "已上传。\n------------------\n王小明\n示例科技 运维部\nTel: +86 10 5550 0001",
        );
        assert_eq!(b.new_text, "已上传。");
        assert!(b.signature.contains("王小明"));
    }
}
