//! DGI (GP Card Spec. §11.11.3.2 / EMV CPS): single objects, sequences and the
//! streaming decoder fed in blocks split where the input says.
#![no_main]
use kf_apdu::{Dgi, DgiStreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(dgi) = Dgi::decode(bytes) {
        let encoded = dgi.encode().expect("decoded DGI encodes");
        assert_eq!(encoded, bytes);
    }
    let whole = Dgi::decode_sequence(bytes);
    let mut decoder = DgiStreamDecoder::with_sensitive_tags(&[0x8010, 0xA002]);
    let step = usize::from(split).max(1);
    let mut streamed = Vec::new();
    let mut stream_ok = true;
    for block in bytes.chunks(step) {
        match decoder.feed(block) {
            Ok(dgis) => streamed.extend(dgis),
            Err(_) => {
                stream_ok = false;
                break;
            }
        }
    }
    if stream_ok {
        stream_ok = decoder.finish().is_ok();
    }
    if let (Ok(whole), true) = (&whole, stream_ok) {
        assert_eq!(whole.len(), streamed.len());
    }
});
