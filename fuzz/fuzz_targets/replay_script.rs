//! `kf-station scp03 replay --script`: the JSON replay-script format (keys,
//! challenges, card responses and commands to re-wrap), evaluated by the
//! replay engine without a card.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(report) = kf_scp03::replay::replay(text, false) {
        let _ = report.to_json_pretty();
    }
});
