//! What an engineer copies out of a servicing log line: the KB, the package
//! identity, the WinSxS component, the file, the OS build.
//!
//! Pure functions over one log entry's text. A rule's named captures (`kb`,
//! `package`, `component`, `file`) win over these general extractors.

use std::sync::LazyLock;

use regex::Regex;

/// The facts found on one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub kb: Option<String>,
    pub package: Option<String>,
    pub component: Option<String>,
    pub file_name: Option<String>,
    pub os_build: Option<String>,
}

static KB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Za-z])KB\s?(\d{6,8})(?:\D|$)").expect("static regex")
});
/// `Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9`,
/// `Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.3887.1.7`.
static PACKAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z][\w.-]*~[0-9a-fA-F]{16}~[\w]*~[\w-]*~[\d.]+").expect("static regex")
});
/// A WinSxS folder: `amd64_microsoft-windows-…_31bf3856ad364e35_10.0.17763.3650_en-us_30b87075f31b75cd`.
static WINSXS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:amd64|x86|wow64|msil|arm64|arm)_[\w.-]+?_[0-9a-f]{16}_(\d+\.\d+\.\d+\.\d+)_[\w-]+?_[0-9a-f]{16}\b")
        .expect("static regex")
});
/// A CSI identity: `Microsoft-Windows-…, Culture=neutral, Version=10.0.17763.1, PublicKeyToken=…`.
static IDENTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Za-z][\w.-]+), (?:Culture=[\w-]+, )?Version=(\d+\.\d+\.\d+\.\d+), PublicKeyToken=[0-9a-f]{16}")
        .expect("static regex")
});
/// CSI quotes file names as `[l:10]"dxdiag.exe"` or `on:"netmsg.dll.mui"`.
static QUOTED_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:\bon:|\[l:\d+(?:\s+ml:\d+)?\])["']([^"'\r\n]{1,260})["']"#)
        .expect("static regex")
});
static PATH_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[\\/]([\w.()-]+\.(?:dll|exe|mui|sys|cat|mum|manifest|cab|msu|inf|xml|dat|ocx|cpl|tlb|winmd|config|ps1|psd1|mof))\b")
        .expect("static regex")
});
static BUILD_IN_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.])(?:10|6)\.\d\.(\d{4,5}\.\d{1,5})(?:[^\d.]|$)").expect("static regex")
});
static ROLLUP_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"RollupFix~[0-9a-f]{16}~\w*~[\w-]*~(\d{4,5}\.\d{1,5})\.").expect("static regex")
});

/// The last path component of a Windows or POSIX path.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// A build like `17763.3650` when it is one (Windows 7 and later, 7600+).
fn plausible_build(build: &str) -> bool {
    build
        .split('.')
        .next()
        .and_then(|b| b.parse::<u32>().ok())
        .is_some_and(|b| (7600..40000).contains(&b))
}

pub fn facts(text: &str) -> Facts {
    let kb = KB.captures(text).map(|c| format!("KB{}", &c[1]));
    let package = PACKAGE.find(text).map(|m| m.as_str().to_string());
    let winsxs = WINSXS.captures(text);
    let identity = IDENTITY.captures(text);
    let component = winsxs
        .as_ref()
        .map(|c| c[0].to_string())
        .or_else(|| identity.as_ref().map(|c| c[1].to_string()));
    let file_name = QUOTED_FILE
        .captures(text)
        .map(|c| base_name(c[1].trim_end_matches(['\'', '"'])).to_string())
        .filter(|f| f.contains('.'))
        .or_else(|| PATH_FILE.captures(text).map(|c| c[1].to_string()));
    let os_build = ROLLUP_VERSION
        .captures(text)
        .map(|c| c[1].to_string())
        .or_else(|| {
            BUILD_IN_VERSION
                .captures_iter(text)
                .map(|c| c[1].to_string())
                .find(|b| plausible_build(b))
        });
    Facts {
        kb,
        package,
        component,
        file_name,
        os_build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_link_line() {
        let f = facts(
            r"Error STATUS_CANNOT_DELETE while executing operation HardLinkFile on [l:274]'\SystemRoot\WinSxS\amd64_microsoft-windows-b..isc-tools.resources_31bf3856ad364e35_10.0.17763.3650_en-us_30b87075f31b75cd\netmsg.dll.mui'",
        );
        assert_eq!(
            f.component.as_deref(),
            Some(
                "amd64_microsoft-windows-b..isc-tools.resources_31bf3856ad364e35_10.0.17763.3650_en-us_30b87075f31b75cd"
            )
        );
        assert_eq!(f.file_name.as_deref(), Some("netmsg.dll.mui"));
        assert_eq!(f.os_build.as_deref(), Some("17763.3650"));
        assert_eq!(f.kb, None);
    }

    #[test]
    fn package_and_kb() {
        let f = facts(
            "Failed to stage execution package: Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]",
        );
        assert_eq!(f.kb.as_deref(), Some("KB5022840"));
        assert_eq!(
            f.package.as_deref(),
            Some("Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9")
        );
        assert_eq!(
            f.os_build, None,
            "10.0.1.9 is a package version, not a build"
        );
    }

    #[test]
    fn rollup_and_identity() {
        let f = facts(
            "Exec: Processing package Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.3887.1.7",
        );
        assert_eq!(f.os_build.as_deref(), Some("17763.3887"));
        let f = facts(
            r#"Hashes for file member [l:10]"dxdiag.exe" do not match. Microsoft-Windows-DirectX-DirectXDiagnostic, Culture=neutral, Version=10.0.17763.3887, PublicKeyToken=31bf3856ad364e35"#,
        );
        assert_eq!(f.file_name.as_deref(), Some("dxdiag.exe"));
        assert_eq!(
            f.component.as_deref(),
            Some("Microsoft-Windows-DirectX-DirectXDiagnostic")
        );
    }

    #[test]
    fn kb_in_prose() {
        assert_eq!(facts("安装KB5022286失败").kb.as_deref(), Some("KB5022286"));
        assert_eq!(
            facts("Update (KB 5022286)").kb.as_deref(),
            Some("KB5022286")
        );
        assert_eq!(facts("SKB12345678").kb, None);
    }
}
