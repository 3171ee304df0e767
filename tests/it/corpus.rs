//! Every hostile mail in ../shared/corpus/mime goes through `casebot import`
//! without a panic and ends imported, duplicate or quarantined with a reason.
//! The folder is read in place; where it is absent the test says so.

use super::{casebot, json_lines, repo, stderr};

#[test]
fn hostile_corpus_imports_without_panic_or_silent_drop() {
    let corpus = repo().join("../shared/corpus/mime");
    if !corpus.is_dir() {
        println!(
            "SKIPPED: {} is absent; the hostile-mail corpus test did not run",
            corpus.display()
        );
        return;
    }
    let files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert!(files.len() >= 90, "corpus has {} mails", files.len());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let o = casebot(
        &db,
        dir.path(),
        &["import", corpus.to_str().unwrap(), "--json"],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "exit {:?}: {err}", o.status.code());
    assert!(!err.contains("panicked"), "{err}");
    let lines = json_lines(&o);
    assert_eq!(lines.len(), files.len(), "every mail is reported once");
    for file in &files {
        let line = lines
            .iter()
            .find(|l| l["source"].as_str() == Some(file.to_str().unwrap()))
            .unwrap_or_else(|| panic!("no report for {}", file.display()));
        match line["status"].as_str() {
            Some("imported") | Some("duplicate") => assert!(line["case_key"].is_string(), "{line}"),
            Some("quarantined") => assert!(
                line["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{line}"
            ),
            other => panic!("{}: status {other:?}", file.display()),
        }
    }
    let imported = lines.iter().filter(|l| l["status"] == "imported").count();
    println!(
        "corpus: {} mails, {imported} imported, {} quarantined",
        files.len(),
        lines
            .iter()
            .filter(|l| l["status"] == "quarantined")
            .count()
    );
}
