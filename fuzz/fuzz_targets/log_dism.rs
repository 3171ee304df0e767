#![no_main]

use casebot::analysis::logs::LogKind;

libfuzzer_sys::fuzz_target!(|data: &[u8]| casebot::fuzzing::log(LogKind::Dism, data));
