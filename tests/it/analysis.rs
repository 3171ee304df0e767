//! Whole logs and bundles: the decisive line found among thousands of Info
//! lines, noise and earlier errors; the conclusion for success and unknown;
//! encodings; and hostile input (zip bombs, `../` entries, endless streams,
//! garbage, private addresses, redirects, silent servers), each a clear
//! bounded error that leaves the rest of the analysis intact.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use casebot_analysis::bundle::ItemStatus;
use casebot_analysis::conclude::{Outcome, OutcomeNote};
use casebot_analysis::{Analyzer, Report};
use casebot_app::config::Config;

use super::repo;

fn config() -> Config {
    let mut c = Config::default();
    c.analysis.rules_dir = repo().join("rules");
    c.analysis.language = "en".into();
    c
}

fn analyzer_with(edit: impl FnOnce(&mut Config)) -> Analyzer {
    let mut c = config();
    edit(&mut c);
    Analyzer::new(&c.analysis, &c.base_dir).unwrap_or_else(|e| panic!("{e}"))
}

fn analyzer() -> Analyzer {
    analyzer_with(|_| {})
}

fn analyze_files(files: &[(&str, Vec<u8>)]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    analyzer().analyze_path(dir.path())
}

/// `n` Info lines of an ordinary servicing session, starting at `hh:mm:00`.
fn info_lines(date: &str, hh: u32, mm: u32, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let t = format!(
            "{date} {hh:02}:{:02}:{:02}",
            mm + (i / 60 % 60) as u32 / 60,
            i % 60
        );
        let line = match i % 5 {
            0 => format!(
                "{t}, Info                  CBS    Appl: detect Parent, Package: Package_{i}_for_KB5021237~31bf3856ad364e35~amd64~~10.0.1.4, Parent: Microsoft-Windows-Client-Features-Package~31bf3856ad364e35~amd64~~10.0.17763.1, Disposition = Detect, VersionComp: EQ, BuildComp: EQ, RevisionComp: EQ, Exist: present\n"
            ),
            1 => format!(
                "{t}, Info                  CSI    {i:08x} Creating NT transaction (seq 2), objectname [6]\"(null)\"\n"
            ),
            2 => format!(
                "{t}, Info                  CBS    SQM: Package change report for package: Package_{i}_for_KB5021237~31bf3856ad364e35~amd64~~10.0.1.4, Failed to start upload [HRESULT = 0x80004005 - E_FAIL]\n"
            ),
            3 => format!(
                "{t}, Info                  CBS    Plan: Package: Package_{i}_for_KB5021237~31bf3856ad364e35~amd64~~10.0.1.4, Update: Update-{i}, current: Staged, pending: Default, start: Staged, applicable: Installed, targeted: Installed, limit: Installed, selected: Installed\n"
            ),
            _ => format!(
                "{t}, Info                  CBS    Not able to query DisableWerReporting flag.  Assuming not set... [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]\n"
            ),
        };
        out.push_str(&line);
    }
    out
}

/// A log in the shape of the desk's first reference case: a hard link that
/// CSI cannot delete, wrapped by E_FAIL lines, after an earlier session whose
/// own error recovered, with thousands of Info and noise lines around.
pub fn hard_link_log() -> String {
    let mut log = String::new();
    log.push_str("2023-02-21 09:00:00, Info                  CBS    TI: --- Initializing Trusted Installer ---\n");
    log.push_str(&info_lines("2023-02-21", 9, 0, 2000));
    // An error of an earlier session that did not stop anything.
    log.push_str("2023-02-21 09:30:00, Info                  CBS    Failed to get the package state [HRESULT = 0x80070005 - E_ACCESSDENIED]\n");
    log.push_str("2023-02-21 09:31:00, Info                  CBS    Exec: Processing complete.  Session: 31000001_1, Package: Package_for_KB5021237~31bf3856ad364e35~amd64~~10.0.1.4 [HRESULT = 0x00000000 - S_OK]\n");
    log.push_str("2023-02-22 15:20:00, Info                  CBS    TI: --- Initializing Trusted Installer ---\n");
    log.push_str(&info_lines("2023-02-22", 15, 20, 3000));
    log.push_str("2023-02-22 15:21:20, Info                  CBS    Failed setting restore point [HRESULT = 0x80070422 - ERROR_SERVICE_DISABLED]\n");
    log.push_str(r"2023-02-22 15:21:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE #5665019# from Windows::Rtl::SystemImplementation::CDirectory::DeleteExistingFile(...)[gle=0xd0000121]
2023-02-22 15:21:21, Info                  CSI    00000028 Error STATUS_CANNOT_DELETE while executing operation HardLinkFile on [l:120]'\SystemRoot\WinSxS\amd64_microsoft-windows-example.resources_31bf3856ad364e35_10.0.17763.3650_en-us_0123456789abcdef\example.dll.mui'
2023-02-22 15:21:21, Error                 CSI    0000002d@2023/2/22:07:21:21.366 (F) onecore\base\wcp\servicingapi\cmitransaction.cpp(2537): Error E_FAIL originated in function Windows::ServicingAPI::CCSITransaction::CommonAddFiles expression: ((HRESULT)0x80004005L)
[gle=0x80004005]
2023-02-22 15:21:21, Info                  CBS    Failed to add to transaction package: Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]
2023-02-22 15:21:21, Error                 CBS    Failed to stage execution package: Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]
2023-02-22 15:21:22, Info                  CBS    Execute time performance datapoint is invalid. [HRESULT = 0x80070490 - ERROR_NOT_FOUND]
");
    log.push_str(&info_lines("2023-02-22", 15, 22, 500));
    log
}

#[test]
fn hard_link_case_decisive_line_among_noise() {
    let r = analyze_files(&[("Logs/CBS/CBS.log", hard_link_log().into_bytes())]);
    let c = &r.conclusion;
    assert_eq!(c.outcome, Outcome::Failure);
    let rc = c.root_cause.as_ref().expect("a root cause");
    assert_eq!(rc.class, "access_denied_or_service_disabled");
    assert_eq!(rc.rule, "cbs.csi-cannot-delete");
    assert!(
        rc.evidence[0].text.contains("(F) STATUS_CANNOT_DELETE"),
        "{:?}",
        rc.evidence[0]
    );
    assert_eq!(
        rc.evidence[0].line, 5006,
        "line number of the decisive line"
    );
    assert_eq!(rc.evidence[0].time.as_deref(), Some("2023-02-22T15:21:21"));
    // The decisive status first; `gle=` fields (stale last errors) never
    // count, and E_FAIL, which only relays, comes after what failed.
    assert_eq!(
        c.error_codes.first().map(String::as_str),
        Some("0xc0000121"),
        "{:?}",
        c.error_codes
    );
    assert!(!c.error_codes.contains(&"0xd0000121".to_string()));
    if let Some(e_fail) = c.error_codes.iter().position(|c| c == "0x80004005") {
        assert_eq!(e_fail, c.error_codes.len() - 1, "{:?}", c.error_codes);
    }
    assert!(
        !c.error_codes.contains(&"0x80070005".to_string()),
        "the earlier session's error is not in the chain"
    );
    assert_eq!(c.kbs, vec!["KB5022840"]);
    assert_eq!(
        c.failing_package.as_deref(),
        Some("Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9")
    );
    assert!(
        c.failing_component
            .as_deref()
            .unwrap_or("")
            .starts_with("amd64_microsoft-windows-example.resources_")
    );
    assert_eq!(c.next_steps[0].id, "trustedinstaller-service");
    assert!(
        r.noise_lines >= 2000,
        "noise counted, not reported: {}",
        r.noise_lines
    );
    assert!(r.findings.iter().all(|f| !f.text.contains("SQM:")));
}

#[test]
fn hash_mismatch_case_across_cbs_and_windows_update_logs() {
    let cbs = format!(
        "2023-03-17 17:00:00, Info                  CBS    TI: --- Initializing Trusted Installer ---\n{}\
2023-03-17 17:03:30, Info                  CBS    Exec: Staging Package: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.3887.1.7\n\
2023-03-17 17:03:35, Info                  CSI    00000061 Hashes for file member [l:10]\"dxdiag.exe\" do not match.\n Expected: {{l:32 ml:33 b:0a1b}}.\n Actual: {{l:32 b:9f8e}}.\n\
2023-03-17 17:03:35, Error                 CSI    00000062 (F) Hydration failed for component Microsoft-Windows-DirectX-DirectXDiagnostic, Culture=neutral, Version=10.0.17763.3887, PublicKeyToken=31bf3856ad364e35, ProcessorArchitecture=amd64, versionScope=NonSxS on file dxdiag.exe with NTSTATUS -1073741562[gle=0x8007000d]\n\
2023-03-17 17:03:35, Info                  CBS    Failed to execute PSFX reverse delta: dxdiag.exe [HRESULT = 0x8007000d - ERROR_INVALID_DATA]\n\
2023-03-17 17:03:36, Error                 CBS    Failed to process single phase execution. [HRESULT = 0x800f0985 - PSFX_E_APPLY_REVERSE_DELTA_FAILED]\n{}",
        info_lines("2023-03-17", 17, 0, 1500),
        info_lines("2023-03-17", 17, 4, 200)
    );
    let wu = "2023/03/17 17:03:37.1234567 1234  5678  Handler         CBS called Error with 0x800f0985,\n\
2023/03/17 17:03:37.2234567 1234  5678  Agent           Installation Failure: Windows failed to install the following update with error 0x800f0985: 2023-01 Cumulative Update for Windows 10 Version 1809 (KB5022286).\n";
    let r = analyze_files(&[
        ("CBS/CBS.log", cbs.into_bytes()),
        ("WindowsUpdate.log", wu.as_bytes().to_vec()),
    ]);
    let c = &r.conclusion;
    assert_eq!(c.outcome, Outcome::Failure);
    let rc = c.root_cause.as_ref().unwrap();
    assert_eq!(rc.class, "component_store_corruption");
    assert_eq!(rc.rule, "cbs.hash-mismatch");
    assert!(
        c.error_codes.contains(&"0x800f0985".to_string()),
        "{:?}",
        c.error_codes
    );
    assert!(
        c.error_codes.contains(&"0x8007000d".to_string()),
        "{:?}",
        c.error_codes
    );
    assert_eq!(c.kbs, vec!["KB5022286"]);
    assert_eq!(
        c.failing_component.as_deref(),
        Some("Microsoft-Windows-DirectX-DirectXDiagnostic")
    );
    assert_eq!(c.failing_file.as_deref(), Some("dxdiag.exe"));
    let names: Vec<&str> = c
        .code_details
        .iter()
        .filter_map(|d| d.name.as_deref())
        .collect();
    assert!(
        names.contains(&"PSFX_E_APPLY_REVERSE_DELTA_FAILED"),
        "{names:?}"
    );
    assert_eq!(c.next_steps[0].id, "restore-health");
    assert!(
        r.items.iter().any(|i| i.kind == "windowsupdate"),
        "{:?}",
        r.items
    );
}

#[test]
fn a_later_success_of_the_same_update_is_a_success() {
    let log = format!(
        "{}2023-03-17 17:03:36, Error                 CBS    Failed to process single phase execution. [HRESULT = 0x800f0985 - PSFX_E_APPLY_REVERSE_DELTA_FAILED]\n\
2023-03-17 17:03:36, Info                  CBS    WER: Generating failure report for package: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8, status: 0x800f0985\n\
2023-03-21 09:37:00, Info                  CBS    TI: --- Initializing Trusted Installer ---\n\
2023-03-21 09:37:10, Info                  CBS    Failed setting restore point [HRESULT = 0x80070422 - ERROR_SERVICE_DISABLED]\n\
2023-03-21 09:37:38, Info                  CBS    Exec: Processing complete.  Session: 31025386_345, Package: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8 [HRESULT = 0x00000000 - S_OK]\n",
        info_lines("2023-03-17", 17, 0, 300)
    );
    let r = analyze_files(&[("CBS.log", log.into_bytes())]);
    assert_eq!(
        r.conclusion.outcome,
        Outcome::Success,
        "{:?}",
        r.conclusion.root_cause
    );
    assert!(r.conclusion.root_cause.is_none());
    assert!(r.conclusion.success.as_ref().unwrap().text.contains("S_OK"));
    assert_eq!(r.conclusion.kbs, vec!["KB5022286"]);
}

#[test]
fn a_success_of_another_update_does_not_hide_a_failure() {
    let log = "2023-03-17 17:03:36, Error                 CBS    Failed to process single phase execution: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8 [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]\n\
2023-03-17 17:10:00, Info                  CBS    Exec: Processing complete.  Session: 1_2, Package: Package_for_KB5022511~31bf3856ad364e35~amd64~~10.0.1.2 [HRESULT = 0x00000000 - S_OK]\n";
    let r = analyze_files(&[("CBS.log", log.as_bytes().to_vec())]);
    assert_eq!(r.conclusion.outcome, Outcome::Failure);
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "advanced_installer_failure"
    );
}

#[test]
fn a_log_where_nothing_failed_says_so_without_a_guess() {
    let r = analyze_files(&[(
        "CBS.log",
        info_lines("2023-01-01", 10, 0, 1000).into_bytes(),
    )]);
    assert_eq!(r.conclusion.outcome, Outcome::Success);
    assert_eq!(r.conclusion.note, Some(OutcomeNote::NoFailureFound));
    assert!(
        r.conclusion
            .note_text
            .as_deref()
            .unwrap_or("")
            .contains("No failure found")
    );
    assert!(r.conclusion.success.is_none(), "no line recorded a success");
    assert!(!r.conclusion.settled());
    assert!(r.conclusion.root_cause.is_none());
    assert!(r.conclusion.next_steps.is_empty());
}

#[test]
fn prose_that_is_not_a_log_concludes_nothing() {
    let text = "Hello, the update still fails on the server, please advise.\nThanks\n";
    let r = analyze_files(&[("notes.txt", text.as_bytes().to_vec())]);
    assert_eq!(r.conclusion.outcome, Outcome::Unknown);
    assert!(r.conclusion.note.is_none());
}

#[test]
fn an_unknown_code_is_a_failure_of_unknown_class() {
    let log = "2023-01-01 10:00:00, Error                 CBS    Failed to process single phase execution. [HRESULT = 0x8007ffff - Unknown Error]\n";
    let r = analyze_files(&[("CBS.log", log.as_bytes().to_vec())]);
    assert_eq!(r.conclusion.outcome, Outcome::Failure);
    assert_eq!(r.conclusion.root_cause.as_ref().unwrap().class, "unknown");
    assert_eq!(r.conclusion.error_codes, vec!["0x8007ffff"]);
}

#[test]
fn dism_console_decimal_code_is_normalised() {
    let text = "Deployment Image Servicing and Management tool\nVersion: 10.0.17763.3406\n\nImage Version: 10.0.17763.3887\n\n[==========================100.0%==========================]\n\nError: 14098\n\nThe component store has been corrupted.\n";
    let r = analyze_files(&[("dism-output.txt", text.as_bytes().to_vec())]);
    let c = &r.conclusion;
    assert_eq!(c.outcome, Outcome::Failure);
    assert_eq!(
        c.error_codes.first().map(String::as_str),
        Some("0x80073712")
    );
    assert_eq!(c.code_details[0].raw, "14098");
    assert_eq!(
        c.code_details[0].name.as_deref(),
        Some("ERROR_SXS_COMPONENT_STORE_CORRUPT")
    );
    assert_eq!(
        c.root_cause.as_ref().unwrap().class,
        "component_store_corruption"
    );
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xff, 0xfe] } else { Vec::new() };
    out.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    out
}

#[test]
fn utf16_sfc_output_and_a_truncated_one() {
    let text = "Beginning system scan.  This process will take some time.\r\n\r\nVerification 100% complete.\r\n\r\nWindows Resource Protection found corrupt files but was unable to fix some of them.\r\n";
    let r = analyze_files(&[("sfc.txt", utf16le(text, true))]);
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "component_store_corruption"
    );
    let item = r
        .items
        .iter()
        .find(|i| i.path.ends_with("sfc.txt"))
        .unwrap();
    assert_eq!(item.encoding, Some("utf-16le"), "{item:?}");

    let mut truncated = utf16le(text, true);
    truncated.push(b'W');
    let r = analyze_files(&[("sfc.txt", truncated)]);
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "component_store_corruption"
    );
    let item = r
        .items
        .iter()
        .find(|i| i.path.ends_with("sfc.txt"))
        .unwrap();
    assert!(
        item.reason.as_deref().unwrap_or("").contains("UTF-16"),
        "{item:?}"
    );
}

#[test]
fn ansi_chinese_sfc_output() {
    let (gbk, _, _) = encoding_rs::GBK
        .encode("开始系统扫描。\r\nWindows 资源保护找到了损坏文件，但无法修复其中的某些文件。\r\n");
    let r = analyze_files(&[("sfc-zh.txt", gbk.into_owned())]);
    assert_eq!(
        r.conclusion.root_cause.as_ref().map(|c| c.class.as_str()),
        Some("component_store_corruption")
    );
    assert!(
        r.items.iter().any(|i| i.encoding == Some("ansi")),
        "{:?}",
        r.items
    );
}

#[test]
fn setup_rollback_and_windows_update_alone() {
    let setup = "2023-05-01 10:00:00, Info                  SP     Setup phase change: SetupPhaseApplyImage\n2023-05-01 11:00:00, Error                 SP     Operation failed with 0xC1900101 - 0x4000D: the installation failed in the SECOND_BOOT phase\n";
    let r = analyze_files(&[("Panther/setupact.log", setup.as_bytes().to_vec())]);
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "driver_install_failure"
    );

    let wu = "2016-01-08\t10:15:32:123\t 952\t1a4c\tAgent\t  * Updates to install = 1\n2016-01-08\t10:20:00:000\t 952\t1a4c\tReport\tInstallation Failure: Windows failed to install the following update with error 0x800f0922: 2016-01 Cumulative Update (KB3124263).\n";
    let r = analyze_files(&[("WindowsUpdate.log", wu.as_bytes().to_vec())]);
    let c = &r.conclusion;
    assert_eq!(
        c.root_cause.as_ref().unwrap().class,
        "advanced_installer_failure"
    );
    assert_eq!(c.kbs, vec!["KB3124263"]);
}

pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

#[test]
fn log_collector_zip_with_nested_zip_cab_and_non_logs() {
    let inner = zip(&[("CBS/CBS.log", hard_link_log().as_bytes())]);
    let cab = {
        let mut builder = cab::CabinetBuilder::new();
        builder
            .add_folder(cab::CompressionType::MsZip)
            .add_file("CbsPersist_20230222072121.log");
        let mut writer = builder.build(std::io::Cursor::new(Vec::new())).unwrap();
        while let Some(mut f) = writer.next_file().unwrap() {
            f.write_all(info_lines("2023-02-20", 8, 0, 200).as_bytes())
                .unwrap();
        }
        writer.finish().unwrap().into_inner()
    };
    let outer = zip(&[
        ("collector/logs.zip", &inner),
        ("collector/CbsPersist_20230222072121.cab", &cab),
        (
            "collector/procmon.pml",
            b"PML_\x09\x00\x00\x00rest of a trace",
        ),
        ("collector/screenshot.png", b"\x89PNG\r\n\x1a\nimage"),
    ]);
    let r = analyze_files(&[("bundle.zip", outer)]);
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "access_denied_or_service_disabled"
    );
    let kind = |suffix: &str| {
        r.items
            .iter()
            .find(|i| i.path.ends_with(suffix))
            .map(|i| (i.kind.as_str(), i.status))
    };
    assert_eq!(
        kind("logs.zip/CBS/CBS.log"),
        Some(("cbs", ItemStatus::Scanned))
    );
    assert_eq!(
        kind(".cab/CbsPersist_20230222072121.log"),
        Some(("cbs", ItemStatus::Scanned))
    );
    assert_eq!(kind("procmon.pml"), Some(("procmon", ItemStatus::Skipped)));
    assert_eq!(kind("screenshot.png"), Some(("image", ItemStatus::Skipped)));
    let decisive = &r.conclusion.root_cause.as_ref().unwrap().evidence[0];
    assert!(
        decisive
            .file
            .ends_with("/bundle.zip/collector/logs.zip/CBS/CBS.log"),
        "{}",
        decisive.file
    );
}

#[test]
fn zip_bomb_is_refused_and_the_rest_is_read() {
    let zeros = vec![0u8; 24 << 20];
    let bomb = zip(&[("big.log", &zeros), ("CBS.log", hard_link_log().as_bytes())]);
    assert!(bomb.len() < 1 << 20);
    let r = analyze_files(&[("bomb.zip", bomb)]);
    let big = r
        .items
        .iter()
        .find(|i| i.path.ends_with("big.log"))
        .unwrap();
    assert_eq!(big.status, ItemStatus::Error);
    assert!(
        big.reason.as_deref().unwrap().contains("compression ratio"),
        "{big:?}"
    );
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "access_denied_or_service_disabled"
    );
}

#[test]
fn nested_archives_stop_at_the_depth_limit() {
    let mut bytes = zip(&[("CBS.log", hard_link_log().as_bytes())]);
    for _ in 0..6 {
        bytes = zip(&[("inner.zip", &bytes)]);
    }
    let r = analyze_files(&[("deep.zip", bytes)]);
    assert!(
        r.items.iter().any(|i| i.status == ItemStatus::Error
            && i.reason.as_deref().unwrap_or("").contains("nested deeper")),
        "{:?}",
        r.items
    );
    assert_eq!(r.conclusion.outcome, Outcome::Unknown);
}

#[test]
fn zip_with_parent_paths_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let evil = zip(&[
        ("../../evil.log", hard_link_log().as_bytes()),
        ("ok/CBS.log", hard_link_log().as_bytes()),
    ]);
    std::fs::create_dir(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/evil.zip"), evil).unwrap();
    let r = analyzer().analyze_path(&dir.path().join("in"));
    let refused = r
        .items
        .iter()
        .find(|i| i.path.contains("evil.log"))
        .unwrap();
    assert_eq!(refused.status, ItemStatus::Error);
    assert!(refused.reason.as_deref().unwrap().contains("unsafe path"));
    assert!(
        r.items
            .iter()
            .any(|i| i.path.ends_with("ok/CBS.log") && i.status == ItemStatus::Scanned)
    );
    assert!(!dir.path().join("evil.log").exists() && !Path::new("/tmp/evil.log").exists());
}

/// Produces CBS lines without end (up to `limit` bytes).
struct EndlessLog {
    produced: u64,
    limit: u64,
}

impl Read for EndlessLog {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.produced >= self.limit {
            return Ok(0);
        }
        let line =
            b"2023-02-22 15:21:21, Info                  CBS    Perf: Resolve chain complete.\n";
        let mut n = 0;
        while n + line.len() <= buf.len() {
            buf[n..n + line.len()].copy_from_slice(line);
            n += line.len();
        }
        self.produced += n as u64;
        Ok(n)
    }
}

#[test]
fn a_two_gigabyte_stream_stops_at_the_size_limit() {
    let a = analyzer_with(|c| c.analysis.max_file_mb = 16);
    let mut stream = EndlessLog {
        produced: 0,
        limit: 2 << 30,
    };
    let options = casebot_analysis::scan::ScanOptions {
        max_bytes: 16 << 20,
        max_findings: 100,
        kind: None,
    };
    let err = casebot_analysis::scan::scan(
        &a.rules,
        "CBS.log",
        b"",
        &mut stream,
        casebot_analysis::logs::Encoding::Utf8,
        0,
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("limit of 16 MiB"), "{err}");
    assert!(
        stream.produced < 32 << 20,
        "read {} bytes: not bounded",
        stream.produced
    );
}

#[test]
fn binary_garbage_is_listed_not_scanned() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let garbage: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let r = analyze_files(&[("CBS.log", garbage)]);
    let item = r
        .items
        .iter()
        .find(|i| i.path.ends_with("CBS.log"))
        .unwrap();
    assert_eq!(
        (item.kind.as_str(), item.status),
        ("binary", ItemStatus::Skipped)
    );
    assert_eq!(r.conclusion.outcome, Outcome::Unknown);
}

/// A one-connection-at-a-time HTTP server on loopback for download tests.
fn serve(responses: Vec<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (stream, response) in listener.incoming().zip(responses) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            if response.is_empty() {
                // A server that never answers.
                std::thread::sleep(Duration::from_secs(30));
                continue;
            }
            let _ = stream.write_all(&response);
        }
    });
    port
}

fn http_ok(body: &[u8], name: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_link_is_downloaded_and_analysed() {
    let port = serve(vec![http_ok(
        &zip(&[("CBS.log", hard_link_log().as_bytes())]),
        "logs.zip",
    )]);
    let a = analyzer_with(|c| {
        c.analysis.download.allowed_hosts = vec!["127.0.0.1".into()];
        c.analysis.download.allowed_networks = vec!["127.0.0.1/32".into()];
    });
    let r = runtime()
        .block_on(a.analyze_url(&format!("http://127.0.0.1:{port}/upload/logs.zip")))
        .unwrap();
    assert_eq!(
        r.conclusion.root_cause.as_ref().unwrap().class,
        "access_denied_or_service_disabled"
    );
    assert!(
        r.items.iter().any(|i| i.path == "logs.zip/CBS.log"),
        "{:?}",
        r.items
    );
}

#[test]
fn loopback_and_metadata_addresses_are_refused() {
    let a = analyzer_with(|c| {
        c.analysis.download.allowed_hosts = vec![
            "127.0.0.1".into(),
            "169.254.169.254".into(),
            "localhost".into(),
        ]
    });
    let rt = runtime();
    let e = rt
        .block_on(a.analyze_url("http://127.0.0.1:9/x.zip"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("loopback") && e.contains("refused"), "{e}");
    let e = rt
        .block_on(a.analyze_url("http://169.254.169.254/latest/meta-data/"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("link-local"), "{e}");
    // A name that resolves to loopback is refused too (checked after resolution).
    let e = rt
        .block_on(a.analyze_url("http://localhost:9/x.zip"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("loopback"), "{e}");
    // A host that is not allow-listed is never contacted.
    let e = rt
        .block_on(a.analyze_url("https://files.example.net/x.zip"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not in analysis.download.allowed_hosts"), "{e}");
}

#[test]
fn a_redirect_to_a_private_address_is_refused() {
    let port = serve(vec![b"HTTP/1.1 302 Found\r\nLocation: http://10.20.30.40/secret.zip\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()]);
    let a = analyzer_with(|c| {
        c.analysis.download.allowed_hosts = vec!["127.0.0.1".into(), "10.20.30.40".into()];
        c.analysis.download.allowed_networks = vec!["127.0.0.1/32".into()];
    });
    let e = runtime()
        .block_on(a.analyze_url(&format!("http://127.0.0.1:{port}/logs.zip")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("10.20.30.40") && e.contains("private"), "{e}");
}

#[test]
fn a_silent_server_times_out_and_a_large_download_stops() {
    let port = serve(vec![Vec::new()]);
    let a = analyzer_with(|c| {
        c.analysis.download.allowed_hosts = vec!["127.0.0.1".into()];
        c.analysis.download.allowed_networks = vec!["127.0.0.1/32".into()];
        c.analysis.download.timeout_secs = 2;
        c.analysis.download.max_mb = 1;
    });
    let rt = runtime();
    let e = rt
        .block_on(a.analyze_url(&format!("http://127.0.0.1:{port}/logs.zip")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no answer within 2 s"), "{e}");

    let big = vec![b'x'; 3 << 20];
    let port = serve(vec![http_ok(&big, "big.log")]);
    let e = rt
        .block_on(a.analyze_url(&format!("http://127.0.0.1:{port}/big.log")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than the limit of 1 MiB"), "{e}");
}

#[test]
fn the_parallel_scan_of_a_big_file_equals_the_sequential_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("CBS.log");
    casebot_bench::write_cbs_log(&path, 3).unwrap();
    let a = analyzer();
    let options = casebot_analysis::scan::ScanOptions {
        max_bytes: u64::MAX,
        max_findings: 10_000,
        kind: None,
    };
    let bytes = std::fs::read(&path).unwrap();
    let mut rest: &[u8] = &bytes;
    let sequential = casebot_analysis::scan::scan(
        &a.rules,
        "CBS.log",
        b"",
        &mut rest,
        casebot_analysis::logs::Encoding::Utf8,
        0,
        &options,
    )
    .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let parallel = casebot_analysis::scan::scan_file_parallel(
        &a.rules,
        "CBS.log",
        &file,
        bytes.len() as u64,
        &bytes[..65536],
        0,
        &options,
    )
    .unwrap();
    assert_eq!(parallel.lines, sequential.lines);
    assert_eq!(parallel.noise, sequential.noise);
    let key = |s: &casebot_analysis::scan::FileScan| {
        s.findings
            .iter()
            .map(|f| (f.rule.clone(), f.line))
            .collect::<Vec<_>>()
    };
    assert!(!sequential.findings.is_empty());
    assert_eq!(key(&parallel), key(&sequential));
    // Line numbers point at the lines themselves.
    let lines: Vec<&str> = std::str::from_utf8(&bytes).unwrap().lines().collect();
    for f in &parallel.findings {
        assert_eq!(
            lines[f.line as usize - 1],
            f.text.lines().next().unwrap(),
            "{}",
            f.rule
        );
    }
}

pub use casebot_bench::abuse::mszip_cab;

#[test]
fn a_cab_of_many_files_in_one_folder_is_decompressed_once() {
    // 3,200 blocks (100 MiB) shared by 2,000 files spread over the folder:
    // reading each file by itself from the folder's start decompresses about
    // 100 GiB (minutes); reading the folder once, 100 MiB.
    let blocks = 3200u32;
    let step = blocks * 0x8000 / 2000;
    let files: Vec<(String, u32, u32)> = (0..2000)
        .map(|i| (format!("logs/CBS_{i:04}.log"), i * step, 4096))
        .collect();
    let cab = mszip_cab(
        "2026-03-01 10:00:00, Info CBS Loaded servicing stack\n",
        blocks,
        &files,
    );
    let analyzer = analyzer_with(|c| {
        c.analysis.max_ratio = 1_000_000;
        // Far more than reading the folder once takes, far less than
        // reading it once per file.
        c.analysis.time_limit_secs = 60;
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CbsPersist.cab"), &cab).unwrap();
    let r = analyzer.analyze_path(&dir.path().join("CbsPersist.cab"));
    let members: Vec<_> = r
        .items
        .iter()
        .filter(|i| i.path.contains("/logs/"))
        .collect();
    assert_eq!(members.len(), 2000, "{:?}", &r.items[..3]);
    assert!(
        members
            .iter()
            .all(|i| i.reason.as_deref() != Some("stopped: time limit")),
        "{:?}",
        members.iter().find(|i| i.status == ItemStatus::Error)
    );
}

#[test]
fn a_bundle_past_its_time_limit_stops_with_the_reason() {
    // A 2 GiB log in a few MB: within the (raised) ratio and size limits,
    // beyond a one-second time limit.
    let blocks = 0xffffu32;
    let line = "2026-03-01 10:00:00, Info CBS Loaded servicing stack\n";
    let cab = mszip_cab(line, blocks, &[("big.log".into(), 0, 0x7fff_0000)]);
    let analyzer = analyzer_with(|c| {
        c.analysis.max_ratio = 1_000_000;
        c.analysis.max_file_mb = 1 << 20;
        c.analysis.max_total_mb = 1 << 20;
        c.analysis.time_limit_secs = 1;
    });
    let mut walker = analyzer.walker();
    walker.bytes("CbsPersist.cab", &cab);
    let scan = walker.finish();
    let stopped = scan.stopped.as_deref().unwrap_or("");
    assert!(
        stopped.starts_with("stopped: time limit of 1 s"),
        "{stopped:?} {:?}",
        scan.items
    );
    assert!(
        scan.items
            .iter()
            .any(|i| i.reason.as_deref() == Some("stopped: time limit")),
        "{:?}",
        scan.items
    );
}
