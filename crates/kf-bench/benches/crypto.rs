//! Criterion micro benchmarks of kf-crypto (AES-128 keys):
//!
//! - `cmac/16` and `cmac/240`: one-shot AES-CMAC (`aes_cmac`, key schedule
//!   included as in every SCP03 MAC) over one block and over 240 bytes;
//! - `cbc_block/encrypt` and `cbc_block/decrypt`: CBC of exactly one block
//!   without padding (`encrypt_no_pad` / `decrypt_no_pad`, key schedule included);
//! - `cbc_m2/encrypt/239` and `cbc_m2/decrypt/239`: CBC with ISO 9797-1 M2
//!   padding of a 239-byte payload (15 blocks + padding = 240 bytes, one
//!   SCP03 command's C-DECRYPTION);
//! - `ecb_block`: one AES block (the SCP03 ICV computation);
//! - `scp03_kdf/128`: one session-key derivation (GPC Amd D §4.1.5);
//! - `floor/aes128_dependent_blocks/N`: the AES floor of one APDU: N
//!   AES-128 block encryptions, each depending on the previous one (as in CBC
//!   encryption and CMAC), with the key schedule prepared once, straight on
//!   the `aes` crate (AES-NI when the CPU has it). One 239-byte APDU is 34
//!   block operations at level '03' (ICV 1, C-DEC 15, C-MAC 17 + subkey 1)
//!   and 68 at level '33' (plus R-MAC 17 + 1, ICV 1, R-DEC 15).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use kf_crypto::{aes_cmac, cbc, kdf, AesKey};

fn key() -> AesKey {
    AesKey::from_hex("404142434445464748494A4B4C4D4E4F").unwrap()
}

fn bench_cmac(c: &mut Criterion) {
    let key = key();
    let mut group = c.benchmark_group("cmac");
    for len in [16usize, 240] {
        let data = vec![0x5Au8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &data, |b, data| {
            b.iter(|| aes_cmac(&key, black_box(data)))
        });
    }
    group.finish();
}

fn bench_cbc(c: &mut Criterion) {
    let key = key();
    let iv = [0x11u8; 16];
    let block = [0x5Au8; 16];
    let mut group = c.benchmark_group("cbc_block");
    group.throughput(Throughput::Bytes(16));
    group.bench_function("encrypt", |b| {
        b.iter(|| cbc::encrypt_no_pad(&key, &iv, black_box(&block)).unwrap())
    });
    let ct = cbc::encrypt_no_pad(&key, &iv, &block).unwrap();
    group.bench_function("decrypt", |b| {
        b.iter(|| cbc::decrypt_no_pad(&key, &iv, black_box(&ct)).unwrap())
    });
    group.finish();

    let payload = vec![0x5Au8; 239];
    let mut group = c.benchmark_group("cbc_m2");
    group.throughput(Throughput::Bytes(240));
    group.bench_function(BenchmarkId::new("encrypt", 239), |b| {
        b.iter(|| cbc::encrypt_m2(&key, &iv, black_box(&payload)))
    });
    let ct = cbc::encrypt_m2(&key, &iv, &payload);
    group.bench_function(BenchmarkId::new("decrypt", 239), |b| {
        b.iter(|| cbc::decrypt_m2(&key, &iv, black_box(&ct)).unwrap())
    });
    group.finish();
}

fn bench_ecb_and_kdf(c: &mut Criterion) {
    let key = key();
    let block = [0x01u8; 16];
    c.bench_function("ecb_block", |b| {
        b.iter(|| cbc::ecb_encrypt_block(&key, black_box(&block)))
    });
    let context = [0x42u8; 16];
    c.bench_function("scp03_kdf/128", |b| {
        b.iter(|| kdf::scp03_kdf(&key, kdf::CONST_S_ENC, 128, black_box(&context)).unwrap())
    });
}

fn bench_floor(c: &mut Criterion) {
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
    let cipher = aes::Aes128Enc::new(GenericArray::from_slice(&[0x40u8; 16]));
    let mut group = c.benchmark_group("floor/aes128_dependent_blocks");
    for blocks in [34usize, 68] {
        group.throughput(Throughput::Bytes(16 * blocks as u64));
        group.bench_function(BenchmarkId::from_parameter(blocks), |b| {
            b.iter(|| {
                let mut block = GenericArray::clone_from_slice(&[0x5Au8; 16]);
                for i in 0..blocks {
                    block[0] ^= i as u8;
                    cipher.encrypt_block(&mut block);
                }
                block
            })
        });
    }
    group.finish();
}

common::benchmarks!(bench_cmac, bench_cbc, bench_ecb_and_kdf, bench_floor);
