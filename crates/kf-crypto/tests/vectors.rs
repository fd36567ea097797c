//! Known-answer tests from `tests/data/crypto-vectors.json` (a copy of
//! `shared/vectors/crypto-vectors.json`; every group names its public source).
//! Each failure message names the group and case that failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kf_crypto::kdf::{self, LABEL_DEK, LABEL_ENC, LABEL_MAC};
use kf_crypto::{aes_cmac, cbc, AesCipher, AesKey, StaticKeys};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/crypto-vectors.json")).expect("vector file parses")
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

fn iv16(v: &Value) -> [u8; 16] {
    h(v).try_into().expect("16-byte IV")
}

/// Asserts that every `(api, output)` equals `expected`, naming the case and API.
fn expect_all(case: &str, expected: &[u8], outputs: &[(&str, Vec<u8>)]) {
    for (api, got) in outputs {
        assert_eq!(hx(got), hx(expected), "{case}: {api}");
    }
}

#[test]
fn vectors_cbc_aes_sp800_38a() {
    let g = &vectors()["cbc_aes_sp800_38a"];
    let iv = iv16(&g["iv"]);
    let plain = h(&g["plaintext"]);
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let case = c["section"].as_str().unwrap();
        let key = AesKey::from_slice(&h(&c["key"])).unwrap();
        let ct = h(&c["ciphertext"]);
        let cipher = AesCipher::new(&key);
        let (mut out, mut blocks) = (Vec::new(), Vec::new());
        cipher
            .cbc_encrypt_with(&iv, &plain, &mut out, |b| blocks.extend_from_slice(b))
            .unwrap();
        let one_shot = cbc::encrypt_no_pad(&key, &iv, &plain).unwrap();
        expect_all(
            case,
            &ct,
            &[
                ("cbc_encrypt_with", out),
                ("cbc_encrypt_with callback", blocks),
                ("cbc::encrypt_no_pad", one_shot),
            ],
        );
        let decrypted = [
            ("cbc_decrypt", cipher.cbc_decrypt(&iv, &ct).unwrap()),
            (
                "cbc::decrypt_no_pad",
                cbc::decrypt_no_pad(&key, &iv, &ct).unwrap(),
            ),
        ];
        expect_all(case, &plain, &decrypted);
    }
}

#[test]
fn vectors_cbc_aes_iso9797_m2() {
    let v = vectors();
    let iv = iv16(&v["cbc_aes_sp800_38a"]["iv"]);
    let plain = h(&v["cbc_aes_sp800_38a"]["plaintext"]);
    let cases = v["cbc_aes_iso9797_m2"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    for c in cases {
        let key = AesKey::from_slice(&h(&c["key"])).unwrap();
        let n = usize::try_from(c["plain_len"].as_u64().unwrap()).unwrap();
        let msg = &plain[..n];
        let ct = h(&c["ciphertext"]);
        let case = format!("AES-{} with a {n} byte message", key.len() * 8);
        let cipher = AesCipher::new(&key);
        let (mut out, mut blocks) = (Vec::new(), Vec::new());
        cipher.cbc_encrypt_m2_with(&iv, msg, &mut out, |b| blocks.extend_from_slice(b));
        expect_all(
            &case,
            &ct,
            &[
                ("cbc_encrypt_m2", cipher.cbc_encrypt_m2(&iv, msg)),
                ("cbc_encrypt_m2_with", out),
                ("cbc_encrypt_m2_with callback", blocks),
                ("cbc::encrypt_m2", cbc::encrypt_m2(&key, &iv, msg)),
            ],
        );
        let decrypted = [
            ("cbc_decrypt_m2", cipher.cbc_decrypt_m2(&iv, &ct).unwrap()),
            ("cbc::decrypt_m2", cbc::decrypt_m2(&key, &iv, &ct).unwrap()),
        ];
        expect_all(&case, msg, &decrypted);
    }
}

/// CMAC subkey doubling in GF(2^128) (SP 800-38B §6.1), test-side only.
fn dbl(b: [u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut carry = 0u8;
    for i in (0..16).rev() {
        out[i] = (b[i] << 1) | carry;
        carry = b[i] >> 7;
    }
    if carry == 1 {
        out[15] ^= 0x87;
    }
    out
}

#[test]
fn vectors_aes_cmac_sp800_38b_subkeys() {
    let g = &vectors()["aes_cmac_sp800_38b"];
    let key = AesKey::from_hex(g["key"].as_str().unwrap()).unwrap();
    let l = cbc::ecb_encrypt_block(&key, &[0u8; 16]);
    let k1 = dbl(l);
    let k2 = dbl(k1);
    for (name, got) in [("L", l), ("K1", k1), ("K2", k2)] {
        assert_eq!(
            hx(&got),
            g["subkeys"][name].as_str().unwrap(),
            "aes_cmac_sp800_38b subkey {name}"
        );
    }
}

#[test]
fn vectors_aes_cmac_sp800_38b_tags() {
    let g = &vectors()["aes_cmac_sp800_38b"];
    let key = AesKey::from_hex(g["key"].as_str().unwrap()).unwrap();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for (i, c) in cases.iter().enumerate() {
        let msg = h(&c["message"]);
        assert_eq!(
            hx(&aes_cmac(&key, &msg)),
            c["tag"].as_str().unwrap(),
            "aes_cmac_sp800_38b case {i} ({} byte message)",
            msg.len()
        );
    }
}

#[test]
fn vectors_sp800_108_counter_cmac_aes128() {
    let g = &vectors()["sp800_108_counter_cmac_aes128"];
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for (i, c) in cases.iter().enumerate() {
        let ki = AesKey::from_slice(&h(&c["KI"])).unwrap();
        let out = kdf::sp800_108_counter_before(&ki, &h(&c["FixedInputData"]), 128).unwrap();
        assert_eq!(
            hx(&out),
            c["KO"].as_str().unwrap(),
            "sp800_108_counter_cmac_aes128 case {i}"
        );
    }
}

#[test]
fn vectors_nxp_kdf3_project_layout() {
    let g = &vectors()["nxp_kdf3_project_layout"];
    let master = AesKey::from_hex(g["master_key"].as_str().unwrap()).unwrap();
    let uid = h(&g["uid"]);
    for (label, name) in [
        (LABEL_ENC, "enc_label_00000001"),
        (LABEL_MAC, "mac_label_00000002"),
        (LABEL_DEK, "dek_label_00000003"),
    ] {
        let k = kdf::nxp_kdf3(&master, label, &uid).unwrap();
        assert_eq!(
            hx(k.expose_secret()),
            g["keys"][name].as_str().unwrap(),
            "nxp_kdf3_project_layout {name}"
        );
    }
    let set: StaticKeys = kdf::diversify_static_keys(&master, &uid).unwrap();
    assert_eq!(
        hx(set.mac.expose_secret()),
        g["keys"]["mac_label_00000002"].as_str().unwrap(),
        "nxp_kdf3_project_layout diversify_static_keys mac"
    );
}

#[test]
fn vectors_an10922_aes128_example() {
    let g = &vectors()["an10922_aes128_example"];
    let key = AesKey::from_hex(g["key"].as_str().unwrap()).unwrap();
    let k = kdf::an10922_aes128(&key, &h(&g["message_M"])).unwrap();
    assert_eq!(
        hx(k.expose_secret()),
        g["diversified_key"].as_str().unwrap(),
        "an10922_aes128_example"
    );
}

#[test]
fn vectors_scp03_session_keys_kcv() {
    let g = &vectors()["scp03_session_keys_kcv"];
    let static_key = AesKey::from_hex("404142434445464748494A4B4C4D4E4F").unwrap();
    let context = hex::decode("00010203040506070809").unwrap();
    assert_eq!(
        hx(&static_key.kcv()),
        g["static_key_kcv"].as_str().unwrap(),
        "scp03_session_keys_kcv static key"
    );
    for (constant, name) in [
        (kdf::CONST_S_ENC, "s_enc_kcv"),
        (kdf::CONST_S_MAC, "s_mac_kcv"),
        (kdf::CONST_S_RMAC, "s_rmac_kcv"),
    ] {
        let k = kdf::scp03_derive_key(&static_key, constant, &context).unwrap();
        assert_eq!(
            hx(&k.kcv()),
            g[name].as_str().unwrap(),
            "scp03_session_keys_kcv {name}"
        );
    }
}
