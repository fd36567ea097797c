//! BER-TLV (ISO 7816-4 §5.2 / X.690): tags, lengths and nested objects under
//! both parser settings; parsed objects re-encode to bytes that parse equal.
#![no_main]
use kf_apdu::tlv::{ParseOptions, Tlv};
use kf_apdu::Tag;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opt, bytes)) = data.split_first() else {
        return;
    };
    let _ = Tag::parse(bytes);
    let options = ParseOptions {
        require_minimal_length: opt & 0x80 != 0,
        max_depth: usize::from(opt & 0x7F),
    };
    if let Ok(all) = Tlv::parse_all_with(bytes, options) {
        for tlv in &all {
            let encoded = tlv.encode();
            assert_eq!(encoded.len(), tlv.encoded_len());
            let again = Tlv::parse(&encoded).expect("re-encoded TLV parses");
            assert!(again == *tlv);
            let _ = tlv.find_all(tlv.tag());
        }
    }
    let _ = Tlv::parse(bytes);
});
