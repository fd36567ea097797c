//! INITIALIZE UPDATE response data (GP Amd D §7.1.1.6), S8 and S16.
#![no_main]
use kf_scp03::{InitializeUpdateResponse, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = InitializeUpdateResponse::parse(data, Mode::S8);
    let _ = InitializeUpdateResponse::parse(data, Mode::S16);
});
