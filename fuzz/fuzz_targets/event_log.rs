#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| casebot_analysis::fuzzing::event_log(data));
