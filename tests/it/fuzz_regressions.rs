//! The fuzzers' findings, replayed: every input a fuzz target once crashed
//! on is kept in `tests/fuzz-regressions/TARGET/` and must now pass through
//! the same entry point (`casebot_analysis::fuzzing`) without a panic. The committed
//! seeds (`fuzz/seeds/`) run too, so a harness that breaks shows here first.

use std::path::Path;

use casebot_analysis::fuzzing;
use casebot_analysis::logs::LogKind;

fn entry_point(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "subject" => fuzzing::subject,
        "mail" => fuzzing::mail,
        "archive" => fuzzing::archive,
        "event_log" => fuzzing::event_log,
        "log_cbs" => |d| fuzzing::log(LogKind::Cbs, d),
        "log_dism" => |d| fuzzing::log(LogKind::Dism, d),
        "log_windowsupdate" => |d| fuzzing::log(LogKind::WindowsUpdate, d),
        "log_setup" => |d| fuzzing::log(LogKind::Setup, d),
        "log_sfc" => |d| fuzzing::log(LogKind::Sfc, d),
        _ => return None,
    })
}

/// Runs every file under `root/TARGET/`; returns how many ran.
fn replay(root: &Path) -> usize {
    let mut ran = 0;
    let Ok(targets) = std::fs::read_dir(root) else {
        return 0;
    };
    for target in targets.map(Result::unwrap) {
        if !target.path().is_dir() {
            continue;
        }
        let name = target.file_name().to_string_lossy().into_owned();
        let run = entry_point(&name)
            .unwrap_or_else(|| panic!("{}: no fuzz target {name}", root.display()));
        for input in std::fs::read_dir(target.path())
            .unwrap()
            .map(Result::unwrap)
        {
            let bytes = std::fs::read(input.path()).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{} panics", input.path().display());
            ran += 1;
        }
    }
    ran
}

#[test]
fn every_kept_fuzz_finding_and_seed_passes() {
    let seeds = replay(&super::repo().join("fuzz/seeds"));
    assert!(seeds >= 6, "the committed seeds ran: {seeds}");
    replay(&super::repo().join("tests/fuzz-regressions"));
}
