//! Whether a mail ends the problem: the customer confirming the fix in the
//! many ways people say it (已经可以正常安装了, 補丁裝上了, "all good now"),
//! or the desk's own closure mail (案例总结, "we will close this case").
//!
//! Read clause by clause of the new text only. A phrase counts when its
//! clause is no question (是否已经解决？, "is it resolved?") and no condition
//! (如果解决了, "once it works"), and nothing before it in the clause negates
//! it (还是没有解决, "not resolved yet"). One clause saying the problem is
//! still there (问题依旧, "still failing", "please don't close it") outweighs
//! any number of positive ones: a mail that says both keeps the case open,
//! which costs a reply, where the opposite mistake would lose the case.

use std::sync::LazyLock;

use regex::Regex;

/// Words that turn what follows them in a clause into its opposite, a
/// question or a condition.
const NEGATIONS_ZH: &[&str] = &[
    "没有",
    "没",
    "未",
    "不",
    "尚未",
    "仍未",
    "是否",
    "并未",
    "还没",
    "沒有",
    "沒",
    "並未",
    "還沒",
    "如果",
    "若",
    "一旦",
    "等到",
    "能否",
    "有没有",
    "有沒有",
];
const NEGATIONS_EN: &[&str] = &[
    "not",
    "n't",
    "never",
    "if",
    "whether",
    "once",
    "unless",
    "until",
    "when",
    "hope",
    "hopefully",
];

/// A clause that says the problem is still there, whatever else the mail says.
static STILL_BROKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        r"(还是|仍然|仍|依然|依旧|又|再次|還是|依舊)[^，,。.]{0,8}(失败|失敗|报错|報錯|不行|没|沒|未|不能|无法|無法|出现|出現|有问题|有問題)",
        r"|(没有|没|未|未能|尚未|还没|沒有|沒|尚未|還沒)(有)?(能)?(解决|解決|成功|装上|裝上|修复|修復)",
        r"|问题依旧|情况依旧|問題依舊|情況依舊|问题仍然存在|问题还在|还有问题|還有問題|不成功",
        r"|不要关闭|先不要关|暂时不要关|请不要关|先别关|别关闭|不要结案|請不要關閉|不要關閉",
        r"|\bnot\b[^.,;!?]{0,20}\b(resolved|fixed|solved|working|installed|install|succeed|gone)",
        r"|\bn't\b[^.,;!?]{0,12}\b(work|install|resolve|fix|succeed|help|solve)",
        r"|\b(doesn|didn|won|isn|hasn|haven|wasn)'?t\b[^.,;!?]{0,12}\b(work|install|resolve|fix|succeed|help|solve)",
        r"|\bstill\b[^.,;!?]{0,12}\b(fail|failing|failed|not|seeing|getting|broken|the same|occurs|happening|error)",
        r"|\bno luck\b|\bpersists?\b|\bcame back\b|\bcomes back\b|\b(failed|fails|failing) again\b",
        r"|\b(do not|don't|dont) close\b|\bkeep (it|the case|this case|the ticket) open\b",
    ))
    .expect("static regex")
});

/// A clause that asks rather than tells.
static QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(吗|嗎|呢|么)\s*$|^\s*(是否|请问|請問|能否|可否|有没有|有沒有)|^\s*(is|has|have|did|does|do|can|could|would|was)\s+(it|the|this|that|your|you)\b")
        .expect("static regex")
});

/// One clause of the text, with whether its end asked a question.
struct Clause<'a> {
    text: &'a str,
    asked: bool,
}

fn clauses(text: &str) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(
            c,
            '。' | '！' | '!' | '？' | '?' | '；' | ';' | '\n' | '，' | ','
        ) || (c == '.' && text[i + 1..].starts_with(|n: char| n.is_whitespace() || n == '\n'))
        {
            out.push(Clause {
                text: &text[start..i],
                asked: matches!(c, '？' | '?'),
            });
            start = i + c.len_utf8();
        }
    }
    out.push(Clause {
        text: &text[start..],
        asked: false,
    });
    out
}

/// The first of `phrases` that the new text says outright, or `None` when
/// none is said or the text says the problem is still there.
pub fn resolution_phrase<'p>(new_text: &str, phrases: &'p [String]) -> Option<&'p str> {
    let clauses = clauses(new_text);
    if clauses.iter().any(|c| STILL_BROKEN.is_match(c.text)) {
        return None;
    }
    said_outright(&clauses, phrases)
}

/// The first closure phrase the desk's new text says outright: the summary
/// that closes a case, not a question or a warning ("如果三天内没有回复，
/// 我们将关闭此案例" is a condition).
pub fn closure_phrase<'p>(new_text: &str, phrases: &'p [String]) -> Option<&'p str> {
    said_outright(&clauses(new_text), phrases)
}

fn said_outright<'p>(clauses: &[Clause<'_>], phrases: &'p [String]) -> Option<&'p str> {
    let mut condition = false;
    for clause in clauses {
        let lower = clause.text.to_lowercase();
        // "如果没有其他问题，…" and "if …, …": the clause after a condition
        // depends on it.
        let opens_condition = starts_condition(&lower);
        let conditional = condition || opens_condition;
        condition = opens_condition;
        if clause.asked || QUESTION.is_match(lower.trim()) || conditional {
            continue;
        }
        let found = phrases.iter().map(String::as_str).find(|phrase| {
            let phrase_lower = phrase.to_lowercase();
            lower
                .match_indices(&phrase_lower)
                .any(|(at, _)| !negated(&lower[..at], phrase_lower.is_ascii()))
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Whether a clause opens a condition: what it and the next clause say
/// depends on it.
fn starts_condition(clause: &str) -> bool {
    let t = clause.trim_start();
    [
        "如果",
        "如您",
        "如无",
        "如没有",
        "如沒有",
        "若",
        "一旦",
        "假如",
        "等",
        "待",
        "if ",
        "once ",
        "unless ",
        "in case ",
    ]
    .iter()
    .any(|w| t.starts_with(w))
}

/// Whether the clause text before a phrase negates it or makes it a
/// condition. Latin negations count as whole words only.
fn negated(before: &str, ascii_phrase: bool) -> bool {
    if ascii_phrase {
        // Whole words only: "unresolved" is not "resolved".
        if before
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            return true;
        }
        let words: Vec<&str> = before
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .collect();
        let window = &words[words.len().saturating_sub(5)..];
        window.iter().any(|w| {
            NEGATIONS_EN
                .iter()
                .any(|n| *w == *n || (n.starts_with('n') && w.ends_with(n)))
        }) || window.windows(2).any(|p| p == ["no", "longer"])
    } else {
        let window: String = before
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        NEGATIONS_ZH.iter().any(|n| window.contains(n))
    }
}

/// The phrases that confirm a fix, as the desk's customers write them.
pub fn default_resolution_phrases() -> Vec<String> {
    [
        // Simplified
        "问题解决了",
        "问题已解决",
        "问题已经解决",
        "已经解决",
        "已解决",
        "解决了",
        "已安装成功",
        "安装成功",
        "已成功安装",
        "成功安装",
        "装上了",
        "装好了",
        "打上了",
        "可以正常安装",
        "已正常安装",
        "正常安装了",
        "升级成功",
        "更新成功",
        "没问题了",
        "没有问题了",
        "没有再出现",
        "没再出现",
        "未再出现",
        "不再出现",
        "再也没有出现",
        "再没出现",
        "一切正常",
        "恢复正常",
        "已经正常",
        "已正常",
        "已修复",
        "修复了",
        "可以关闭",
        "可关闭",
        "可以结案",
        "可以关单",
        "可以关了",
        "请关闭",
        "搞定了",
        "测试通过",
        // Traditional
        "問題解決了",
        "問題已解決",
        "已經解決",
        "已解決",
        "解決了",
        "已安裝成功",
        "安裝成功",
        "成功安裝",
        "裝上了",
        "裝好了",
        "可以正常安裝",
        "沒問題了",
        "沒有問題了",
        "沒有再出現",
        "沒再出現",
        "不再出現",
        "恢復正常",
        "已修復",
        "可以關閉",
        "可以結案",
        "請關閉",
        // English
        "resolved",
        "solved",
        "works now",
        "working now",
        "works fine",
        "working fine",
        "work fine",
        "installed fine",
        "installed successfully",
        "successfully installed",
        "installed now",
        "install succeeded",
        "installation succeeded",
        "has been fixed",
        "is fixed",
        "fixed now",
        "all good",
        "we're good",
        "we are good",
        "did the trick",
        "no longer appears",
        "no longer occurs",
        "has not come back",
        "hasn't come back",
        "can be closed",
        "you may close",
        "you can close",
        "feel free to close",
        "please close",
        "ok to close",
        "okay to close",
        "go ahead and close",
    ]
    .map(String::from)
    .to_vec()
}

/// The phrases of the desk's closure mail.
pub fn default_closure_phrases() -> Vec<String> {
    [
        "案例总结",
        "案例總結",
        "结案报告",
        "将关闭此案例",
        "将关闭该案例",
        "将关闭本案例",
        "关闭此案例",
        "关闭本案例",
        "案例已关闭",
        "將關閉此案例",
        "關閉此案例",
        "案例已關閉",
        "case summary",
        "closure summary",
        "will close this case",
        "will close the case",
        "closing this case",
        "closing the case",
        "case is now closed",
        "case has been closed",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
#[path = "resolution_tests.rs"]
mod tests;
