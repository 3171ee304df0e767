#![no_main]

use casebot_analysis::logs::LogKind;

libfuzzer_sys::fuzz_target!(|data: &[u8]| casebot_analysis::fuzzing::log(LogKind::Setup, data));
