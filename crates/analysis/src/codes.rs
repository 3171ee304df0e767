//! Error codes as logs write them, and their one normal form.
//!
//! The same failure appears as `[HRESULT = 0x800f0985 - PSFX_E_…]` in CBS.log,
//! `hr:0x800f081f` in DISM.log, `Error: 14098` on DISM's console (a Win32 code
//! in decimal), `0x800F0823 (2148468771)` elsewhere, and `[gle=0xd0000121]`
//! after a CSI NTSTATUS. Every form is reduced to lowercase `0x` plus eight hex
//! digits, keeping the text the log used and the symbolic name where the log
//! (or the rules' code table) gives one.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// One code found on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Code {
    /// Normalised: `0x` and eight lowercase hex digits.
    pub code: String,
    /// As the log wrote it (`14098`, `0x800F0985`, `STATUS_CANNOT_DELETE`).
    pub raw: String,
    /// The symbolic name, from the line itself or from the rules.
    pub name: Option<String>,
}

/// `HRESULT_FROM_WIN32`: a Win32 error in the low 16 bits, facility 7.
pub fn hresult_from_win32(code: u32) -> u32 {
    if code == 0 || code & 0x8000_0000 != 0 {
        code
    } else {
        (code & 0xffff) | 0x8007_0000
    }
}

pub fn hex(code: u32) -> String {
    format!("0x{code:08x}")
}

impl Code {
    /// A code written in a rules file: `0x` and up to eight hex digits.
    pub fn parse_config(text: &str) -> Option<String> {
        let digits = text
            .trim()
            .strip_prefix("0x")
            .or_else(|| text.trim().strip_prefix("0X"))?;
        if digits.is_empty() || digits.len() > 8 {
            return None;
        }
        u32::from_str_radix(digits, 16).ok().map(hex)
    }
}

/// NTSTATUS names CSI prints without their value, and the value they stand for.
const NT_STATUS: &[(&str, u32)] = &[
    ("STATUS_CANNOT_DELETE", 0xc000_0121),
    ("STATUS_SHARING_VIOLATION", 0xc000_0043),
    ("STATUS_ACCESS_DENIED", 0xc000_0022),
    ("STATUS_OBJECT_NAME_NOT_FOUND", 0xc000_0034),
    ("STATUS_OBJECT_PATH_NOT_FOUND", 0xc000_003a),
    ("STATUS_DISK_FULL", 0xc000_007f),
    ("STATUS_FILE_CORRUPT_ERROR", 0xc000_0102),
    ("STATUS_DELETE_PENDING", 0xc000_0056),
    ("STATUS_SXS_ASSEMBLY_MISSING", 0xc015_0004),
    ("STATUS_SXS_COMPONENT_STORE_CORRUPT", 0xc015_001a),
    ("STATUS_SXS_FILE_HASH_MISMATCH", 0xc015_0019),
    ("STATUS_INVALID_PARAMETER", 0xc000_000d),
    ("STATUS_NO_SUCH_FILE", 0xc000_000f),
    ("STATUS_UNSUCCESSFUL", 0xc000_0001),
];

/// `0x` and exactly eight hex digits (pointers and flags are longer or shorter),
/// with the keyword before it when there is one, and ` - NAME` after.
///
/// Word boundaries here and below are ASCII ones (`(?-u:\b)`): in
/// "报错0x800f0831。" the code touches Chinese letters, which a Unicode `\b`
/// counts as word characters (so it would find nothing), and an ASCII
/// boundary keeps the fast DFA on non-ASCII text.
static HEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?P<kw>HRESULT\s*=\s*|hr\s*[:=]\s*|gle\s*=\s*|error(?: code)?\s*[:=]?\s*|exit code\s*[:=]\s*|result\s*[:=]?\s*|with error\s+|status\s*[:=]\s*|(?-u:\b)(?:READ|WRITE|OPEN|CREATE)\s*,\s*)?(?-u:\b)0x(?P<hex>[0-9a-f]{8})(?-u:\b)(?:\s*-\s*(?P<name>[A-Z][A-Z0-9_]{2,}))?(?:\s*\((?P<dec>\d{6,10})\))?",
    )
    .expect("static regex")
});

/// A decimal code after DISM's `Error:` (`Error: 14098`), or a signed or
/// unsigned 32-bit HRESULT in decimal after an error keyword.
static DECIMAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:error|error code|exit code|hr)\s*[:=]\s*(?P<neg>-)?(?P<dec>\d{1,10})(?-u:\b)(?:[^.\d]|$)")
        .expect("static regex")
});

/// Codes written without the `0x`: DISM's `HRESULT=800F081F`, the advanced
/// installer summary's `ErrorCode: 800106d9`, Windows Update's
/// `*FAILED* [8020002B]`, `hr = 80072efe` and `resultMapped=80070643`, and
/// a CSI failure's NTSTATUS `(F) c0000280`.
static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:(?-u:\b)HRESULT\s*=\s*|(?-u:\b)ErrorCode:\s*|\*FAILED\*\s*\[|(?-u:\b)hr\s*=\s*|(?-u:\b)resultMapped\s*=\s*|\(F\)\s+)(?P<hex>[0-9a-f]{8})(?-u:\b)",
    )
    .expect("static regex")
});

/// Setup's extended code after its result (`0xC1900101 - 0x40017`,
/// `0xC1900101-0x20017`, SetupDiag's `ExtendedCode = 0x40017`): the phase
/// and operation that failed, which decides the class.
static EXTENDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:(?-u:\b)0xC19[0-9a-f]{5}\s*-\s*|ExtendedCode\s*=\s*)0x(?P<hex>[0-9a-f]{4,6})(?-u:\b)",
    )
    .expect("static regex")
});

/// Codes that only say that something below failed: E_FAIL, and Windows
/// Update's "one or more updates failed". They come after the codes that
/// say what failed.
pub const GENERIC: [&str; 2] = ["0x80004005", "0x80240022"];

pub fn is_generic(code: &str) -> bool {
    GENERIC.contains(&code)
}

static STATUS_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)STATUS_[A-Z_]{3,}(?-u:\b)").expect("static regex"));

/// Every code on `text`, in order of appearance, each normalised once.
/// `names` supplies symbolic names the line does not give.
pub fn extract(text: &str, names: &dyn Fn(&str) -> Option<String>) -> Vec<Code> {
    let mut found: Vec<(usize, Code)> = Vec::new();
    let push = |at: usize, code: Code, found: &mut Vec<(usize, Code)>| {
        if let Some((_, existing)) = found.iter_mut().find(|(_, c)| c.code == code.code) {
            if existing.name.is_none() {
                existing.name = code.name;
            }
        } else {
            found.push((at, code));
        }
    };
    for caps in HEX.captures_iter(text) {
        let Some(digits) = caps.name("hex") else {
            continue;
        };
        let Ok(value) = u32::from_str_radix(digits.as_str(), 16) else {
            continue;
        };
        let keyword = caps.name("kw").map(|k| k.as_str());
        // `gle=` is the thread's last Win32 error when the line was written:
        // stale more often than not, and never the operation's own result.
        if keyword.is_some_and(|k| k.trim_start().to_ascii_lowercase().starts_with("gle")) {
            continue;
        }
        let keyword = keyword.is_some();
        // Without a keyword only values with the severity bit are codes:
        // CSI lines are full of flags like 0x00000001.
        if value == 0 || (!keyword && value < 0x8000_0000) {
            continue;
        }
        let whole = caps.get(0).map(|m| m.start()).unwrap_or(0);
        let raw_start = digits.start() - 2;
        let name = caps
            .name("name")
            .map(|n| n.as_str().to_string())
            .filter(|n| n != "Unknown")
            .or_else(|| names(&hex(value)));
        push(
            whole,
            Code {
                code: hex(value),
                raw: text[raw_start..digits.end()].to_string(),
                name,
            },
            &mut found,
        );
    }
    for caps in BARE.captures_iter(text) {
        let Some(digits) = caps.name("hex") else {
            continue;
        };
        let Ok(value) = u32::from_str_radix(digits.as_str(), 16) else {
            continue;
        };
        if value >= 0x8000_0000 {
            push(
                digits.start(),
                Code {
                    code: hex(value),
                    raw: digits.as_str().to_string(),
                    name: names(&hex(value)),
                },
                &mut found,
            );
        }
    }
    for caps in EXTENDED.captures_iter(text) {
        let Some(digits) = caps.name("hex") else {
            continue;
        };
        let Ok(value) = u32::from_str_radix(digits.as_str(), 16) else {
            continue;
        };
        if value != 0 {
            push(
                digits.start(),
                Code {
                    code: hex(value),
                    raw: format!("0x{}", digits.as_str()),
                    name: None,
                },
                &mut found,
            );
        }
    }
    for caps in DECIMAL.captures_iter(text) {
        let Some(dec) = caps.name("dec") else {
            continue;
        };
        let Ok(number) = dec.as_str().parse::<u64>() else {
            continue;
        };
        let value = if caps.name("neg").is_some() {
            if number == 0 || number > 0x8000_0000 {
                continue;
            }
            (number as u32).wrapping_neg()
        } else if number <= 0xffff {
            hresult_from_win32(number as u32)
        } else if number <= u32::MAX as u64 && number >= 0x8000_0000 {
            number as u32
        } else {
            continue;
        };
        if value == 0 || value == 0x8007_0000 {
            continue;
        }
        let raw = match caps.name("neg") {
            Some(_) => format!("-{}", dec.as_str()),
            None => dec.as_str().to_string(),
        };
        push(
            dec.start(),
            Code {
                code: hex(value),
                raw,
                name: names(&hex(value)),
            },
            &mut found,
        );
    }
    for m in STATUS_NAME.find_iter(text) {
        if let Some((name, value)) = NT_STATUS.iter().find(|(n, _)| *n == m.as_str()) {
            push(
                m.start(),
                Code {
                    code: hex(*value),
                    raw: name.to_string(),
                    name: Some(name.to_string()),
                },
                &mut found,
            );
            // CSI's `gle=` carries the same status as HRESULT_FROM_NT.
            let from_nt = hex(value | 0x1000_0000);
            if let Some((_, gle)) = found.iter_mut().find(|(_, c)| c.code == from_nt)
                && gle.name.is_none()
            {
                gle.name = Some(name.to_string());
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, c)| c).collect()
}

/// The pattern a `codes = [...]` rule matches: each code in hex (with or
/// without `0x`), in unsigned and signed decimal, a Win32 code in DISM's
/// decimal form, and the symbolic names.
pub fn pattern_for(codes: &[String], names: &[String]) -> String {
    let mut alternatives = Vec::new();
    for code in codes {
        let digits = code.trim_start_matches("0x");
        let Ok(value) = u32::from_str_radix(digits, 16) else {
            continue;
        };
        alternatives.push(format!(r"(?i:(?-u:\b)(?:0x)?{digits}(?-u:\b))"));
        if value >= 0x8000_0000 {
            alternatives.push(format!(r"(?-u:\b){value}(?-u:\b)"));
            alternatives.push(format!(r"-{}(?-u:\b)", (value as i32).unsigned_abs()));
        }
        if value & 0xffff_0000 == 0x8007_0000 {
            let win32 = value & 0xffff;
            alternatives.push(format!(
                r"(?i:(?-u:\b)error(?: code)?\s*[:=]\s*{win32}(?-u:\b))"
            ));
        }
    }
    for name in names {
        alternatives.push(format!(r"(?-u:\b){}(?-u:\b)", regex::escape(name)));
    }
    alternatives.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<(String, String, Option<String>)> {
        extract(text, &|c| {
            (c == "0x80073712").then(|| "ERROR_SXS_COMPONENT_STORE_CORRUPT".to_string())
        })
        .into_iter()
        .map(|c| (c.code, c.raw, c.name))
        .collect()
    }

    #[test]
    fn a_code_touching_chinese_text_is_found() {
        let found = codes(
            "用户反馈补丁安装失败，报错0x800f0831。错误代码:0x80070005，STATUS_CANNOT_DELETE也有",
        );
        let hex: Vec<&str> = found.iter().map(|c| c.0.as_str()).collect();
        assert!(hex.contains(&"0x800f0831"), "{found:?}");
        assert!(hex.contains(&"0x80070005"), "{found:?}");
        let rule = Regex::new(&pattern_for(
            &["0x800f0831".into()],
            &["CBS_E_STORE_CORRUPTION".into()],
        ))
        .unwrap();
        assert!(rule.is_match("报错0x800f0831。"));
        assert!(rule.is_match("错误CBS_E_STORE_CORRUPTION。"));
    }

    #[test]
    fn hresult_with_its_name() {
        assert_eq!(
            codes("Failed to stage execution package: Package_1 [HRESULT = 0x80004005 - E_FAIL]"),
            vec![(
                "0x80004005".into(),
                "0x80004005".into(),
                Some("E_FAIL".into())
            )]
        );
    }

    #[test]
    fn uppercase_hex_is_normalised() {
        assert_eq!(codes("Exit code = 0x800F0985")[0].0, "0x800f0985");
        assert_eq!(codes("Exit code = 0x800F0985")[0].1, "0x800F0985");
    }

    #[test]
    fn dism_decimal_win32_code() {
        assert_eq!(
            codes("Error: 14098"),
            vec![(
                "0x80073712".into(),
                "14098".into(),
                Some("ERROR_SXS_COMPONENT_STORE_CORRUPT".into())
            )]
        );
        assert_eq!(codes("Error: 112")[0].0, "0x80070070");
    }

    #[test]
    fn decimal_hresult_in_parentheses_is_the_same_code() {
        let found = codes("failed with error 0x800F0823 (2148468771)");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "0x800f0823");
    }

    #[test]
    fn negative_decimal_hresult() {
        assert_eq!(codes("hr: -2146498555")[0].0, "0x800f0805");
    }

    #[test]
    fn status_name_without_the_stale_gle() {
        let found =
            codes("(F) STATUS_CANNOT_DELETE #5# from DeleteExistingFile(...)[gle=0xd0000121]");
        assert_eq!(
            found,
            vec![(
                "0xc0000121".into(),
                "STATUS_CANNOT_DELETE".into(),
                Some("STATUS_CANNOT_DELETE".into())
            )]
        );
    }

    #[test]
    fn codes_written_without_0x() {
        let all = |t: &str| codes(t).into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(
            all(
                "(F) Installer: Network Drivers\tBinary Name: NetSetupAI.dll\tErrorCode: 800106d9\tPhase: 31"
            ),
            vec!["0x800106d9"]
        );
        assert_eq!(
            all("DownloadManager *FAILED* [8020002B] Error occurred while downloading update"),
            vec!["0x8020002b"]
        );
        assert_eq!(
            all("(F) c0000280 [Error,Facility=(system)]"),
            vec!["0xc0000280"]
        );
        assert_eq!(
            all("LogHistory called. resultMapped=80070643,"),
            vec!["0x80070643"]
        );
    }

    #[test]
    fn setup_extended_code_follows_its_result() {
        let all = |t: &str| codes(t).into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(
            all("Error: 0xC1900101 - 0x50016"),
            vec!["0xc1900101", "0x00050016"]
        );
        assert_eq!(
            all("RollbackErrorCode = 0xC1900101, ExtendedCode = 0x40017, LastPhase"),
            vec!["0xc1900101", "0x00040017"]
        );
    }

    #[test]
    fn flags_and_pointers_are_not_codes() {
        assert!(codes("flags = 0x00000001, a = @0x28e76d7d040, disp = 0").is_empty());
        assert!(codes("Error: 0").is_empty());
        assert!(codes("[HRESULT = 0x00000000 - S_OK]").is_empty());
    }

    #[test]
    fn dism_bare_hresult() {
        assert_eq!(
            codes("DISM Manager processed the command line but failed. HRESULT=800F081F")[0].0,
            "0x800f081f"
        );
    }

    #[test]
    fn keyword_allows_small_codes() {
        assert_eq!(codes("Error READ, 0x00000570")[0].0, "0x00000570");
    }

    #[test]
    fn generated_pattern_matches_every_form() {
        let p = Regex::new(&pattern_for(
            &["0x80073712".into()],
            &["ERROR_SXS_COMPONENT_STORE_CORRUPT".into()],
        ))
        .unwrap();
        for line in [
            "hr:0x80073712",
            "HRESULT = 0X80073712",
            "Error: 14098",
            "(2147956498)",
            "value -2147010798 here",
            "ERROR_SXS_COMPONENT_STORE_CORRUPT",
        ] {
            assert!(p.is_match(line), "{line}");
        }
        assert!(!p.is_match("0x800737120"));
        assert!(!p.is_match("14098 files"));
    }
}
