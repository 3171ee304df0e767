//! What a closed case teaches: the signature of its failure, and how close a
//! new failure comes to it.
//!
//! A signature is the root-cause class, the decisive rule, the specific
//! error codes (E_FAIL says nothing), and the component and package
//! *families*: the same WinSxS component or update package in another
//! version, culture or build is the same family, so a fix found on one build
//! is suggested on the next.

use serde::{Deserialize, Serialize};

use casebot_analysis::conclude::{Conclusion, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub class: String,
    pub rule: Option<String>,
    pub codes: Vec<String>,
    pub component: Option<String>,
    pub package: Option<String>,
}

/// Codes too common to tell two failures apart.
const GENERIC_CODES: &[&str] = &["0x80004005", "0x00000000", "0x80070057"];

/// The least score that makes a closed case "similar".
pub const SIMILAR_AT: u32 = 4;

/// The signature of a failure; `None` for a success or an unknown outcome.
pub fn signature(conclusion: &Conclusion) -> Option<Signature> {
    if conclusion.outcome != Outcome::Failure {
        return None;
    }
    let root = conclusion.root_cause.as_ref()?;
    let mut codes: Vec<String> = conclusion
        .error_codes
        .iter()
        .filter(|c| !GENERIC_CODES.contains(&c.as_str()))
        .cloned()
        .collect();
    codes.sort();
    codes.dedup();
    Some(Signature {
        class: root.class.clone(),
        rule: Some(root.rule.clone()),
        codes,
        component: conclusion
            .failing_component
            .as_deref()
            .map(component_family),
        package: conclusion.failing_package.as_deref().map(package_family),
    })
}

/// `amd64_microsoft-windows-b..isc-tools.resources_31bf3856ad364e35_10.0.17763.3650_en-us_…`
/// and `Microsoft-Windows-Foo, Culture=neutral, Version=…` both give the
/// component's name, lower case.
pub fn component_family(component: &str) -> String {
    let name = component.split(',').next().unwrap_or(component).trim();
    let parts: Vec<&str> = name.split('_').collect();
    let name = if parts.len() >= 4 && is_arch(parts[0]) {
        parts[1]
    } else {
        name
    };
    name.to_ascii_lowercase()
}

fn is_arch(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "amd64" | "x86" | "wow64" | "arm64" | "arm" | "msil"
    )
}

/// `Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9` gives
/// `package_for_kb5022840`: the package's name without its index and version.
pub fn package_family(package: &str) -> String {
    let name = package.split('~').next().unwrap_or(package);
    let mut out = String::new();
    for (i, part) in name.split('_').enumerate() {
        if i > 0 && part.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(part);
    }
    out.to_ascii_lowercase()
}

/// How alike two failures are; 0 when their classes differ.
pub fn similarity(known: &Signature, new: &Signature) -> u32 {
    if known.class != new.class {
        return 0;
    }
    let mut score = 0;
    if known.rule.is_some() && known.rule == new.rule {
        score += 4;
    }
    if known.component.is_some() && known.component == new.component {
        score += 3;
    }
    if known.package.is_some() && known.package == new.package {
        score += 1;
    }
    let shared = known.codes.iter().filter(|c| new.codes.contains(c)).count() as u32;
    score + 2 * shared.min(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_drop_versions_and_indexes() {
        assert_eq!(
            component_family(
                "amd64_microsoft-windows-b..isc-tools.resources_31bf3856ad364e35_10.0.17763.3650_en-us_30b87075f31b75cd"
            ),
            "microsoft-windows-b..isc-tools.resources"
        );
        assert_eq!(
            component_family(
                "Microsoft-Windows-DirectX-DirectXDiagnostic, Culture=neutral, Version=10.0.17763.1"
            ),
            "microsoft-windows-directx-directxdiagnostic"
        );
        assert_eq!(
            package_family("Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9"),
            "package_for_kb5022840"
        );
    }

    #[test]
    fn same_rule_is_similar_other_class_never() {
        let known = Signature {
            class: "access_denied_or_service_disabled".into(),
            rule: Some("csi-hardlink".into()),
            codes: vec!["0xc0000121".into()],
            component: Some("microsoft-windows-netmsg".into()),
            package: None,
        };
        let mut new = known.clone();
        new.component = Some("microsoft-windows-other".into());
        assert!(similarity(&known, &new) >= SIMILAR_AT);
        new.class = "component_store_corruption".into();
        assert_eq!(similarity(&known, &new), 0);
        let only_code = Signature {
            rule: Some("other".into()),
            component: None,
            ..known.clone()
        };
        assert!(similarity(&known, &only_code) < SIMILAR_AT);
    }
}
