//! Every format a log collector or a customer sends: archives made by the
//! real tools (7z, gzip, tar, zip with each method), a Windows-written .evtx,
//! an XML export of events, a WindowsUpdate .etl, a forwarded mail
//! (message/rfc822) and an Outlook .msg; and what a hostile one of each costs.
//! The fixtures and the commands that made them: `tests/fixtures/archives/`
//! and `tests/fixtures/eventlogs/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use casebot_analysis::bundle::ItemStatus;
use casebot_analysis::conclude::Outcome;
use casebot_analysis::{Analyzer, Report};
use casebot_app::config::Config;

use super::repo;

fn analyzer() -> Analyzer {
    let mut c = Config::default();
    c.analysis.rules_dir = repo().join("rules");
    c.analysis.language = "en".into();
    Analyzer::new(&c.analysis, &c.base_dir).unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(path: &str) -> PathBuf {
    repo().join("tests/fixtures").join(path)
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/corpus/logs").join(name)).expect("corpus file")
}

/// The two logs every archive fixture holds, as a plain folder.
fn logs_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cbs = dir.path().join("Logs/CBS");
    std::fs::create_dir_all(&cbs).unwrap();
    std::fs::write(
        cbs.join("CBS.log"),
        corpus("013-advanced-installer-netsetup-ai.log"),
    )
    .unwrap();
    std::fs::write(
        cbs.join("CbsPersist_20240105101010.log"),
        corpus("006-wmi-applicability-reads.log"),
    )
    .unwrap();
    dir
}

fn errors(report: &Report) -> Vec<String> {
    report.errors().collect()
}

fn class(report: &Report) -> Option<&str> {
    report
        .conclusion
        .root_cause
        .as_ref()
        .map(|r| r.class.as_str())
}

fn item_paths(report: &Report) -> Vec<&str> {
    report.items.iter().map(|i| i.path.as_str()).collect()
}

#[test]
fn every_archive_kind_gives_the_conclusion_of_the_plain_folder() {
    let analyzer = analyzer();
    let folder = logs_folder();
    let reference = analyzer.analyze_path(&folder.path().join("Logs"));
    assert_eq!(reference.conclusion.outcome, Outcome::Failure);
    assert_eq!(class(&reference), Some("advanced_installer_failure"));
    for name in [
        "logs.7z",
        "logs.tar",
        "logs.tar.gz",
        "logs-deflate.zip",
        "logs-deflate64.zip",
        "logs-bzip2.zip",
        "logs-lzma.zip",
        "logs-zstd.zip",
    ] {
        let report = analyzer.analyze_path(&fixture(&format!("archives/{name}")));
        assert!(errors(&report).is_empty(), "{name}: {:?}", errors(&report));
        let logs: Vec<&str> = report
            .items
            .iter()
            .filter(|i| i.status == ItemStatus::Scanned && i.kind == "cbs")
            .map(|i| i.path.as_str())
            .collect();
        assert_eq!(logs.len(), 2, "{name}: {:?}", item_paths(&report));
        assert!(
            logs.iter()
                .all(|p| p.starts_with(name) && p.contains("/Logs/CBS/")),
            "{name}: {logs:?}"
        );
        assert_eq!(report.conclusion.outcome, Outcome::Failure, "{name}");
        assert_eq!(class(&report), class(&reference), "{name}");
        assert_eq!(
            report.conclusion.error_codes, reference.conclusion.error_codes,
            "{name}"
        );
    }
    let gz = analyzer.analyze_path(&fixture("archives/CBS.log.gz"));
    assert_eq!(item_paths(&gz), ["CBS.log.gz", "CBS.log.gz/CBS.log"]);
    assert_eq!(class(&gz), Some("advanced_installer_failure"));
}

#[test]
fn rotated_cbs_logs_are_read_oldest_first_then_cbs_log() {
    let analyzer = analyzer();
    let folder = logs_folder();
    let cbs = folder.path().join("Logs/CBS");
    std::fs::write(
        cbs.join("CbsPersist_20231201080000.log"),
        corpus("010-ti-startup-sqm-manifest-noise.log"),
    )
    .unwrap();
    let report = analyzer.analyze_path(&folder.path().join("Logs"));
    let names: Vec<&str> = report
        .items
        .iter()
        .map(|i| i.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CbsPersist_20231201080000.log",
            "CbsPersist_20240105101010.log",
            "CBS.log"
        ]
    );
    // The same order inside a zip, whatever order the zip lists them in.
    let zip = analyzer.analyze_path(&fixture("archives/logs-deflate.zip"));
    let inside: Vec<&str> = zip.items.iter().skip(1).map(|i| i.path.as_str()).collect();
    assert_eq!(
        inside,
        [
            "logs-deflate.zip/Logs/CBS/CbsPersist_20240105101010.log",
            "logs-deflate.zip/Logs/CBS/CBS.log"
        ]
    );
}

#[test]
fn a_windows_written_evtx_is_read_record_by_record() {
    let report = analyzer().analyze_path(&fixture("eventlogs/System.evtx.gz"));
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let evtx = report
        .items
        .iter()
        .find(|i| i.path == "System.evtx.gz/System.evtx")
        .expect("the evtx inside the gzip");
    assert_eq!(evtx.kind, "eventlog");
    assert_eq!(evtx.lines, Some(1881));
    let c = &report.conclusion;
    assert_eq!(c.outcome, Outcome::Failure);
    assert_eq!(c.error_codes, ["0x80246013"]);
    assert_eq!(c.kbs, ["KB890830"]);
    let root = c.root_cause.as_ref().expect("a root cause");
    assert_eq!(root.rule, "event.wu-install-failure");
    // No rule knows this code: the report says what was found and what to
    // collect instead of nothing.
    assert_eq!(root.class, "unknown");
    let detail = root.detail.as_deref().expect("the unknown-class report");
    for expected in [
        "System.evtx.gz/System.evtx:",
        "event 20 of Microsoft-Windows-WindowsUpdateClient",
        "0x80246013",
        "CBS.log",
        "Get-WindowsUpdateLog",
    ] {
        assert!(detail.contains(expected), "{expected:?} not in {detail:?}");
    }
}

/// Event Viewer's "Save as XML" writes UTF-16 with a BOM.
fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    bytes
}

#[test]
fn an_xml_export_of_events_is_read_like_the_evtx() {
    let ns = "http://schemas.microsoft.com/win/2004/08/events/event";
    let event = |id: u32, level: u8, time: &str, data: &str| {
        format!(
            "<Event xmlns='{ns}'><System><Provider Name='Microsoft-Windows-Servicing' Guid='{{bd12f3b8-fc40-4a61-a307-b7a013a069c1}}'/>\
             <EventID Qualifiers='0'>{id}</EventID><Level>{level}</Level><TimeCreated SystemTime='{time}'/>\
             <Channel>Setup</Channel><Computer>pc1.example.com</Computer></System>\
             <UserData><CbsPackageChangeState xmlns='http://manifests.microsoft.com/win/2004/08/windows/setup_provider'>{data}</CbsPackageChangeState></UserData></Event>\r\n"
        )
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-16\"?>\r\n<Events>\r\n");
    xml.push_str(&event(
        1,
        4,
        "2023-03-17T09:01:10.1234567Z",
        "<PackageIdentifier>KB5023696</PackageIdentifier><InitialPackageState>Absent</InitialPackageState><IntendedPackageState>Installed</IntendedPackageState><Client>WindowsUpdateAgent</Client>",
    ));
    xml.push_str(&event(
        3,
        2,
        "2023-03-17T09:03:35.1234567Z",
        "<PackageIdentifier>KB5023696</PackageIdentifier><IntendedPackageState>Installed</IntendedPackageState><ErrorCode>0x800f0922</ErrorCode><Client>WindowsUpdateAgent</Client>",
    ));
    xml.push_str("</Events>\r\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Setup.xml");
    std::fs::write(&path, utf16le_with_bom(&xml)).unwrap();
    let report = analyzer().analyze_path(&path);
    let item = &report.items[0];
    assert_eq!(
        (item.kind.as_str(), item.lines, item.encoding),
        ("eventlog", Some(2), Some("utf-16le"))
    );
    let c = &report.conclusion;
    assert_eq!(c.outcome, Outcome::Failure);
    assert_eq!(c.error_codes, ["0x800f0922"]);
    assert_eq!(c.kbs, ["KB5023696"]);
    assert_eq!(
        c.root_cause.as_ref().map(|r| r.rule.as_str()),
        Some("event.servicing-failure")
    );
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

#[test]
fn an_etl_trace_is_answered_with_get_windowsupdatelog() {
    // An ETL file starts with a WMI buffer header: binary, not text.
    let mut etl = vec![0u8; 4096];
    etl[..8].copy_from_slice(&[0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00]);
    let bundle = zip_of(&[
        ("WindowsUpdate.20240105.101010.123.1.etl", &etl),
        ("WindowsUpdate.20240105.111010.456.1.etl", &etl),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wu.zip");
    std::fs::write(&path, bundle).unwrap();
    let report = analyzer().analyze_path(&path);
    let etl_items: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.kind == "etl_trace")
        .collect();
    assert_eq!(etl_items.len(), 2, "{:?}", item_paths(&report));
    assert!(etl_items.iter().all(|i| {
        i.status == ItemStatus::Skipped
            && i.reason
                .as_deref()
                .unwrap_or("")
                .contains("Get-WindowsUpdateLog")
    }));
    let first = report.conclusion.next_steps.first().expect("a next step");
    assert_eq!(first.id, "decode-windowsupdate-etl");
    assert!(first.text.contains("Get-WindowsUpdateLog -LogPath"));
}

/// A mail from a customer who forwards an earlier mail as an attachment
/// (message/rfc822) that carries the logs as a 7z.
fn forwarding_mail() -> Vec<u8> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let seven_z = std::fs::read(fixture("archives/logs.7z")).unwrap();
    let inner = format!(
        "From: Li Wei <li.wei@example.cn>\r\nTo: it@example.cn\r\nSubject: logs\r\n\
         Date: Fri, 17 Mar 2023 09:10:00 +0800\r\nMessage-ID: <inner-1@example.cn>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"in\"\r\n\r\n\
         --in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n日志见附件。\r\n\
         --in\r\nContent-Type: application/x-7z-compressed; name=\"logs.7z\"\r\n\
         Content-Disposition: attachment; filename=\"logs.7z\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--in--\r\n",
        b64(&seven_z)
    );
    format!(
        "From: Zhang Min <zhang.min@example.cn>\r\nTo: support@example.com\r\nSubject: FW: logs\r\n\
         Date: Fri, 17 Mar 2023 10:00:00 +0800\r\nMessage-ID: <outer-1@example.cn>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n\r\n\
         --out\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n转发给你们。\r\n\
         --out\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--out--\r\n"
    )
    .into_bytes()
}

#[test]
fn a_forwarded_mail_is_read_with_its_attachments() {
    let raw = forwarding_mail();
    // As the analysis stage reads a filed mail: each attachment's bytes.
    let attachments = casebot_core::mail::parse::attachment_bytes(&raw);
    assert_eq!(attachments.len(), 1);
    let analyzer = analyzer();
    let mut walker = analyzer.walker();
    for (i, a) in attachments.iter().enumerate() {
        let name = a.filename.clone().unwrap_or(format!("attachment-{i}"));
        walker.bytes(&name, &a.bytes);
    }
    let report = analyzer.report(walker.finish());
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let kinds: Vec<(&str, &str)> = report
        .items
        .iter()
        .map(|i| (i.path.as_str(), i.kind.as_str()))
        .collect();
    assert_eq!(kinds[0].1, "mail", "{kinds:?}");
    assert!(
        kinds
            .iter()
            .any(|(p, k)| p.ends_with("/logs.7z/Logs/CBS/CBS.log") && *k == "cbs"),
        "{kinds:?}"
    );
    assert_eq!(class(&report), Some("advanced_installer_failure"));
    // The same as a saved .eml file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forwarded.eml");
    std::fs::write(&path, &raw).unwrap();
    let from_file = analyzer.analyze_path(&path);
    assert_eq!(class(&from_file), Some("advanced_installer_failure"));
}

/// An Outlook message per [MS-OXMSG]: properties as `__substg1.0_` streams,
/// one attachment storage with its long file name and its bytes.
fn outlook_msg(path: &Path, body: &str, attachment: (&str, &[u8])) {
    fn put(msg: &mut cfb::CompoundFile<std::fs::File>, name: &str, bytes: &[u8]) {
        msg.create_stream(name).unwrap().write_all(bytes).unwrap();
    }
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect() };
    let attach = "/__attach_version1.0_#00000000";
    let mut msg = cfb::create(path).unwrap();
    put(&mut msg, "/__properties_version1.0", &[0u8; 32]);
    put(
        &mut msg,
        "/__substg1.0_0037001F",
        &utf16("FW: KB5023696 fails"),
    );
    put(&mut msg, "/__substg1.0_0C1A001F", &utf16("Zhang Min"));
    put(
        &mut msg,
        "/__substg1.0_5D01001F",
        &utf16("zhang.min@example.cn"),
    );
    put(&mut msg, "/__substg1.0_1000001F", &utf16(body));
    msg.create_storage("/__nameid_version1.0").unwrap();
    msg.create_storage(attach).unwrap();
    put(
        &mut msg,
        &format!("{attach}/__properties_version1.0"),
        &[0u8; 8],
    );
    put(
        &mut msg,
        &format!("{attach}/__substg1.0_3707001F"),
        &utf16(attachment.0),
    );
    put(
        &mut msg,
        &format!("{attach}/__substg1.0_37010102"),
        attachment.1,
    );
    msg.flush().unwrap();
}

#[test]
fn an_outlook_msg_is_read_with_its_text_and_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forward.msg");
    outlook_msg(
        &path,
        "请查看附件中的 CBS 日志。\r\n",
        ("CBS.log", &corpus("013-advanced-installer-netsetup-ai.log")),
    );
    let report = analyzer().analyze_path(&path);
    assert!(errors(&report).is_empty(), "{:?}", errors(&report));
    let kinds: Vec<(&str, &str)> = report
        .items
        .iter()
        .map(|i| (i.path.as_str(), i.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("forward.msg", "mail"),
            ("forward.msg/message.txt", "text"),
            ("forward.msg/CBS.log", "cbs")
        ]
    );
    assert_eq!(class(&report), Some("advanced_installer_failure"));
    // A compound file that is not a message (a Word document) is listed.
    let doc = dir.path().join("report.doc");
    let mut compound = cfb::create(&doc).unwrap();
    compound
        .create_stream("/WordDocument")
        .unwrap()
        .write_all(b"not a message")
        .unwrap();
    compound.flush().unwrap();
    drop(compound);
    let report = analyzer().analyze_path(&doc);
    assert_eq!(report.items[0].kind, "document");
    assert_eq!(report.items[0].status, ItemStatus::Skipped);
}

#[test]
fn a_7z_bomb_is_refused_before_it_is_decompressed() {
    let report = analyzer().analyze_path(&fixture("archives/bomb.7z"));
    let reason = report.items[0].reason.as_deref().unwrap_or("");
    assert_eq!(report.items[0].status, ItemStatus::Error);
    assert!(reason.contains("compression ratio"), "{reason}");
    assert_eq!(report.items.len(), 1, "{:?}", item_paths(&report));
}

/// A raw ustar header for `name` of type `kind` claiming `size` bytes.
fn tar_header(name: &str, kind: u8, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn a_hostile_tar_costs_neither_memory_nor_an_escape() {
    let analyzer = analyzer();
    let dir = tempfile::tempdir().unwrap();
    // A GNU long name that claims 2 GiB: the tar crate would read it into
    // memory whole. Only 64 KiB follow it; the guard refuses the header
    // before anything behind it is read.
    let mut tar = Vec::new();
    tar.extend_from_slice(&tar_header("././@LongLink", b'L', 2 << 30));
    tar.extend(std::iter::repeat_n(b'a', 64 << 10));
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let path = dir.path().join("long.tar.gz");
    std::fs::write(&path, gz).unwrap();
    let report = analyzer.analyze_path(&path);
    let joined = errors(&report).join("\n");
    assert!(joined.contains("extension header"), "{joined}");

    // A `../` entry is refused; the entry after it is still read.
    let log = corpus("013-advanced-installer-netsetup-ai.log");
    let mut tar = Vec::new();
    for name in ["../../etc/cron.d/evil.log", "Logs/CBS/CBS.log"] {
        tar.extend_from_slice(&tar_header(name, b'0', log.len() as u64));
        tar.extend_from_slice(&log);
        tar.extend(std::iter::repeat_n(0u8, (512 - log.len() % 512) % 512));
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let path = dir.path().join("escape.tar");
    std::fs::write(&path, tar).unwrap();
    let report = analyzer.analyze_path(&path);
    let refused: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Error)
        .map(|i| (i.path.as_str(), i.reason.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].1.contains("unsafe path"), "{refused:?}");
    assert_eq!(class(&report), Some("advanced_installer_failure"));
    assert!(!dir.path().join("etc").exists());
}
