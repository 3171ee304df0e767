//! Full-text search words: how a mail's text becomes the tokens the store
//! indexes, how a person's query becomes a query over them, and the
//! snippet that shows why a mail matched.
//!
//! Chinese has no spaces, so Chinese text is indexed by overlapping
//! character pairs (bigrams, as Lucene's CJK analyzer does): 补丁安装 gives
//! 补丁 丁安 安装, and a query is the phrase of its own pairs, so any
//! substring of two or more characters is found, in either backend,
//! without a language dictionary. Other text is indexed by its lower-case
//! letter-and-digit words (`kb5034441`, `0x800f081f`); the last word of a
//! query also matches as a prefix (`kb50` finds `kb5034441`).
//!
//! Tokens that are not plain ASCII are written as `u` + the hex of their
//! characters, so both backends' own tokenizers (SQLite FTS5 `unicode61`,
//! PostgreSQL's `simple` parser) read every token as one ASCII word,
//! whatever the database's locale.

/// Characters indexed of one document: enough for any mail a desk reads,
/// bounded for a hostile one.
pub const MAX_INDEXED_CHARS: usize = 256 * 1024;
/// Parts of a query (space-separated) and characters per part.
const MAX_QUERY_PARTS: usize = 8;
const MAX_PART_CHARS: usize = 64;

/// Chinese, Japanese and Korean characters: indexed in pairs.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // Extensions B… and compatibility supplement
}

/// One token as the index stores it, appended to `out`.
fn encode_into(out: &mut String, chars: impl Iterator<Item = char> + Clone) {
    use std::fmt::Write as _;
    if chars.clone().all(|c| c.is_ascii()) {
        out.extend(chars);
        return;
    }
    out.push('u');
    for c in chars {
        let _ = write!(out, "{:x}x", c as u32);
    }
}

/// The tokens of `text`, in order: words and Chinese character pairs.
fn tokens(text: &str, mut emit: impl FnMut(Token)) {
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, emit: &mut dyn FnMut(Token)| {
        if !word.is_empty() {
            emit(Token::Word(std::mem::take(word)));
        }
    };
    let flush_run = |run: &mut Vec<char>, emit: &mut dyn FnMut(Token)| {
        match run.len() {
            0 => {}
            1 => emit(Token::Single(run[0])),
            _ => {
                for pair in run.windows(2) {
                    emit(Token::Pair(pair[0], pair[1]));
                }
            }
        }
        run.clear();
    };
    for c in text.chars().take(MAX_INDEXED_CHARS) {
        if is_cjk(c) {
            flush_word(&mut word, &mut emit);
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut emit);
            // Full-width Latin letters and digits read as their ASCII twins.
            let c = match c as u32 {
                0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A => {
                    char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
                }
                _ => c,
            };
            word.extend(c.to_lowercase());
            if word.len() > 64 {
                flush_word(&mut word, &mut emit);
            }
        } else {
            flush_word(&mut word, &mut emit);
            flush_run(&mut run, &mut emit);
        }
    }
    flush_word(&mut word, &mut emit);
    flush_run(&mut run, &mut emit);
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Pair(char, char),
    /// A Chinese character alone (a one-character run).
    Single(char),
}

impl Token {
    fn indexed(&self) -> String {
        let mut out = String::new();
        self.index_into(&mut out);
        out
    }

    fn index_into(&self, out: &mut String) {
        match self {
            Token::Word(w) => encode_into(out, w.chars()),
            Token::Pair(a, b) => encode_into(out, [*a, *b].into_iter()),
            Token::Single(c) => encode_into(out, std::iter::once(*c)),
        }
    }
}

/// The text the store indexes for a document made of `parts` (subject,
/// sender, body, attachment names …): its tokens, space-separated.
pub fn index_text<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut budget = MAX_INDEXED_CHARS;
    for part in parts {
        if budget == 0 {
            break;
        }
        let part: String = part.chars().take(budget).collect();
        budget -= part.chars().count();
        tokens(&part, |t| {
            if !out.is_empty() {
                out.push(' ');
            }
            t.index_into(&mut out);
        });
    }
    out
}

/// One part of a query: its tokens must follow each other in a document;
/// with `prefix`, the last one may be the start of a longer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub tokens: Vec<String>,
    pub prefix: bool,
}

/// A person's query: every phrase must match; `text` are the parts as
/// typed (lower-case), for the snippets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub phrases: Vec<Phrase>,
    pub parts: Vec<String>,
}

impl Query {
    /// The query, or `None` when it holds nothing to search for.
    pub fn parse(text: &str) -> Option<Query> {
        let mut phrases = Vec::new();
        let mut parts = Vec::new();
        for part in text.split_whitespace().take(MAX_QUERY_PARTS) {
            let part: String = part.chars().take(MAX_PART_CHARS).collect();
            let mut found = Vec::new();
            tokens(&part, |t| found.push(t));
            let Some(last) = found.last() else { continue };
            // A word typed last may be unfinished; a lone Chinese character
            // is the start of the pairs it begins.
            let prefix = matches!(last, Token::Word(_) | Token::Single(_));
            phrases.push(Phrase {
                tokens: found.iter().map(Token::indexed).collect(),
                prefix,
            });
            parts.push(part.to_lowercase());
        }
        (!phrases.is_empty()).then_some(Query { phrases, parts })
    }

    /// The query in SQLite FTS5's syntax: quoted phrases (tokens are ASCII
    /// letters and digits, nothing to escape), `*` for a prefix, all ANDed.
    pub fn fts5(&self) -> String {
        self.phrases
            .iter()
            .map(|p| {
                let star = if p.prefix { " *" } else { "" };
                format!("\"{}\"{star}", p.tokens.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The query as a PostgreSQL `tsquery` (configuration `simple`):
    /// `a <-> b:*`, phrases joined by `&`.
    pub fn tsquery(&self) -> String {
        self.phrases
            .iter()
            .map(|p| {
                let mut tokens = p.tokens.clone();
                if p.prefix
                    && let Some(last) = tokens.last_mut()
                {
                    last.push_str(":*");
                }
                format!("({})", tokens.join(" <-> "))
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// Where a document matched: the text around the first place a part of
/// the query occurs, the match itself apart so a page can mark it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snippet {
    pub before: String,
    pub hit: String,
    pub after: String,
}

/// Characters shown on each side of a match.
const CONTEXT_CHARS: usize = 40;

/// The first occurrence (ignoring case) of a query part in `text`, with
/// its context on one line.
pub fn snippet(text: &str, query: &Query) -> Option<Snippet> {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let (start, len) = query
        .parts
        .iter()
        .filter_map(|part| {
            let needle: Vec<char> = part.chars().collect();
            if needle.is_empty() || needle.len() > lower.len() {
                return None;
            }
            (0..=lower.len() - needle.len())
                .find(|&i| lower[i..i + needle.len()] == needle[..])
                .map(|i| (i, needle.len()))
        })
        .min()?;
    let flat = |s: &[char]| -> String {
        s.iter()
            .map(|c| if c.is_whitespace() { ' ' } else { *c })
            .collect::<String>()
    };
    let from = start.saturating_sub(CONTEXT_CHARS);
    let to = (start + len + CONTEXT_CHARS).min(chars.len());
    let mut before = flat(&chars[from..start]);
    if from > 0 {
        before.insert(0, '…');
    }
    let mut after = flat(&chars[start + len..to]);
    if to < chars.len() {
        after.push('…');
    }
    Some(Snippet {
        before,
        hit: chars[start..start + len].iter().collect(),
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(indexed: &str) -> Vec<String> {
        indexed
            .split(' ')
            .map(|t| match t.strip_prefix('u') {
                Some(hex) if hex.ends_with('x') => hex
                    .trim_end_matches('x')
                    .split('x')
                    .filter_map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                    .collect(),
                _ => t.to_string(),
            })
            .collect()
    }

    #[test]
    fn chinese_is_indexed_in_pairs_and_words_in_lower_case() {
        let text = index_text(["KB5034441安装失败，错误 0x800F081F", "CBS 日志.log"]);
        assert_eq!(
            decoded(&text),
            [
                "kb5034441",
                "安装",
                "装失",
                "失败",
                "错误",
                "0x800f081f",
                "cbs",
                "日志",
                "log"
            ]
        );
        assert!(text.is_ascii(), "{text}");
        // Full-width letters are their ASCII twins; one Chinese character alone stays one.
        assert_eq!(decoded(&index_text(["ＫＢ１２ 补"])), ["kb12", "补"]);
    }

    #[test]
    fn a_query_is_a_phrase_of_its_pairs_and_the_last_word_a_prefix() {
        let q = Query::parse("  补丁安装  KB50 ").unwrap();
        assert_eq!(q.parts, ["补丁安装", "kb50"]);
        assert_eq!(q.phrases.len(), 2);
        assert_eq!(
            decoded(&q.phrases[0].tokens.join(" ")),
            ["补丁", "丁安", "安装"]
        );
        assert!(!q.phrases[0].prefix && q.phrases[1].prefix);
        assert_eq!(
            q.fts5(),
            format!("\"{}\" AND \"kb50\" *", q.phrases[0].tokens.join(" "))
        );
        assert!(q.tsquery().ends_with("& (kb50:*)"), "{}", q.tsquery());
        assert!(Query::parse(" ，。 ").is_none());
        // Bounded whatever is typed.
        let long = "补".repeat(10_000) + &" x".repeat(100);
        let q = Query::parse(&long).unwrap();
        assert!(q.phrases.len() <= MAX_QUERY_PARTS);
        assert!(q.phrases[0].tokens.len() < MAX_PART_CHARS);
    }

    #[test]
    fn a_substring_of_the_text_is_a_subsequence_of_its_tokens() {
        let doc = decoded(&index_text(["用户反馈补丁安装失败，请协助"]));
        for query in ["补丁安装", "安装失败", "反馈", "请协助"] {
            let q = Query::parse(query).unwrap();
            let want = decoded(&q.phrases[0].tokens.join(" "));
            assert!(
                doc.windows(want.len()).any(|w| w == want.as_slice()),
                "{query}: {want:?} not in {doc:?}"
            );
        }
    }

    #[test]
    fn the_snippet_shows_the_first_match_in_context() {
        let q = Query::parse("安装失败").unwrap();
        let s = snippet("您好：\n补丁安装失败，错误 0x800f081f。", &q).unwrap();
        assert_eq!(
            s,
            Snippet {
                before: "您好： 补丁".into(),
                hit: "安装失败".into(),
                after: "，错误 0x800f081f。".into(),
            }
        );
        let q = Query::parse("kb50").unwrap();
        let long = format!("{} KB5034441 {}", "a".repeat(100), "b".repeat(100));
        let s = snippet(&long, &q).unwrap();
        assert_eq!(s.hit, "KB50");
        assert!(s.before.starts_with('…') && s.after.ends_with('…'));
        assert!(snippet("nothing here", &q).is_none());
    }
}
