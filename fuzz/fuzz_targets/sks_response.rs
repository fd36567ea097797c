//! The SKS client's decoding of a response frame for every method ID
//! (SKS API 1.00 §7.4): status byte, then outputs or an error string.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sks_core::{Request, Response};

fuzz_target!(|data: &[u8]| {
    let Some((&method, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(Ok(resp)) = Response::decode(method, bytes) {
        assert_eq!(
            resp.encode().expect("a decoded response fits its encoding"),
            bytes,
            "a decoded response re-encodes exactly"
        );
    }
    if let Ok(req) = Request::decode(bytes) {
        assert_eq!(
            req.encode().expect("a decoded request fits its encoding"),
            bytes,
            "a decoded request re-encodes exactly"
        );
    }
});
