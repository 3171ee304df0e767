//! What is checked in a reply before it may be approved: nothing of a
//! template may reach a customer unrendered.
//!
//! Errors refuse the approval: an empty text or subject, template syntax
//! left in the text (`{{…}}`), and a fill-in its template asked the
//! engineer to complete (a `<KB>`-style mark written literally in the
//! template) still there. Warnings refuse it too, unless the engineer says
//! to approve anyway, which the audit trail records: no greeting on the
//! first line, no signature naming the signer at the end.
//!
//! Each problem names its place (line and column, 1-based), so the editor
//! and the command line can point at it.

use casebot_core::domain::Lang;
pub use casebot_core::domain::{Flaw, Level, Problem};

/// What a reply is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The fill-in marks the reply's templates wrote (`<KB>`), see [`fill_ins`].
    pub fill_ins: &'a [String],
    /// Who signs the reply: the signature must name them.
    pub signer: &'a str,
    pub lang: Lang,
}

/// How many of the last lines may hold the signature.
const SIGNATURE_LINES: usize = 8;

/// The fill-in marks in a template's source: `<` then a capital letter,
/// then capitals, digits or `_`, then `>`, written literally (not produced
/// by `{{…}}`), e.g. `<KB>` or `<ERROR_TIME>`.
pub fn fill_ins(template_source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = template_source.as_bytes();
    let mut i = 0;
    while let Some(start) = template_source[i..].find('<').map(|p| p + i) {
        let rest = &bytes[start + 1..];
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        if len > 0 && len <= 32 && rest[0].is_ascii_uppercase() && rest.get(len) == Some(&b'>') {
            let mark = template_source[start..start + len + 2].to_string();
            if !found.contains(&mark) {
                found.push(mark);
            }
        }
        i = start + 1;
    }
    found
}

/// The line and column (1-based, in characters) of byte `offset` of `text`.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn looks_like_greeting(line: &str, lang: Lang) -> bool {
    let lower = line.trim().to_lowercase();
    let chinese = ["您好", "你好", "尊敬的"].iter().any(|g| lower.contains(g));
    let english = [
        "dear ",
        "hello",
        "hi ",
        "hi,",
        "good morning",
        "good afternoon",
    ]
    .iter()
    .any(|g| lower.starts_with(g));
    match lang {
        Lang::Zh | Lang::ZhTw => chinese || english,
        Lang::En => english || chinese,
    }
}

/// Every problem of a reply, in the order they appear.
pub fn check_reply(subject: &str, body: &str, expected: &Expected<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if subject.trim().is_empty() {
        problems.push(Problem::new(Level::Error, 0, 0, Flaw::EmptySubject));
    } else if let Some(at) = subject.find("{{") {
        problems.push(Problem::new(
            Level::Error,
            0,
            subject[..at].chars().count() + 1,
            Flaw::SyntaxInSubject,
        ));
    }
    if body.trim().is_empty() {
        problems.push(Problem::new(Level::Error, 1, 1, Flaw::EmptyText));
        return problems;
    }
    let mut marks: Vec<(usize, Flaw)> = Vec::new();
    for syntax in ["{{", "}}"] {
        marks.extend(body.match_indices(syntax).map(|(at, _)| {
            let syntax = syntax.to_string();
            (at, Flaw::TemplateSyntax { syntax })
        }));
    }
    for fill_in in expected.fill_ins {
        marks.extend(body.match_indices(fill_in.as_str()).map(|(at, _)| {
            let mark = fill_in.clone();
            (at, Flaw::FillIn { mark })
        }));
    }
    marks.sort_by_key(|(at, _)| *at);
    for (at, flaw) in marks {
        let (line, column) = place(body, at);
        problems.push(Problem::new(Level::Error, line, column, flaw));
    }
    let lines: Vec<(usize, &str)> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if let Some((n, first)) = lines.first()
        && !looks_like_greeting(first, expected.lang)
    {
        problems.push(Problem::new(Level::Warning, n + 1, 1, Flaw::NoGreeting));
    }
    let signer = expected.signer.trim();
    if !signer.is_empty() {
        let tail = &lines[lines.len().saturating_sub(SIGNATURE_LINES)..];
        if !tail.iter().any(|(_, l)| l.contains(signer)) {
            let last = lines.last().map_or(1, |(n, _)| n + 1);
            let signer = signer.to_string();
            problems.push(Problem::new(
                Level::Warning,
                last,
                1,
                Flaw::NoSignature { signer },
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected<'a>(fill_ins: &'a [String]) -> Expected<'a> {
        Expected {
            fill_ins,
            signer: "Li Lei",
            lang: Lang::Zh,
        }
    }

    #[test]
    fn fill_ins_are_capital_marks_written_in_the_template() {
        assert_eq!(
            fill_ins("请在 <ERROR_TIME> 前上传 KB<KB>，<kb> 与 <a@b> 和 {{x}} 不算；<KB> 重复"),
            vec!["<ERROR_TIME>".to_string(), "<KB>".to_string()]
        );
        assert!(fill_ins("<>< <1A> <A-B>").is_empty());
    }

    #[test]
    fn a_good_reply_has_no_problem() {
        let body = "赵先生，您好：\n\n请按以下步骤操作。\n\nLi Lei\n技术支持\n";
        assert_eq!(
            check_reply("回复: [案例号: CAS-1 ]", body, &expected(&[])),
            vec![]
        );
    }

    #[test]
    fn leftovers_are_errors_with_their_place_and_missing_parts_warnings() {
        let fill = vec!["<KB>".to_string()];
        let body = "Hello,\n\n请安装 KB<KB>。\n变量 {{case.number}} 没有渲染。\n";
        let problems = check_reply("subject", body, &expected(&fill));
        let described: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            described,
            vec![
                "line 3, column 7: error: the fill-in <KB> is not filled in: replace it with what it asks for",
                "line 4, column 4: error: template syntax `{{` left in the text",
                "line 4, column 17: error: template syntax `}}` left in the text",
                "line 4, column 1: warning: no signature: the last lines do not name Li Lei",
            ]
        );
        let no_greeting = check_reply("s", "请按以下步骤操作。\nLi Lei", &expected(&[]));
        assert_eq!(no_greeting.len(), 1);
        assert_eq!(no_greeting[0].level, Level::Warning);
        assert_eq!((no_greeting[0].line, no_greeting[0].column), (1, 1));
        let empty = check_reply("", "  \n", &expected(&[]));
        assert!(
            empty.iter().all(|p| p.level == Level::Error) && empty.len() == 2,
            "{empty:?}"
        );
    }
}
