//! Reassembly and validation of the key-fob applet's STORE DATA sequence
//! (GPC 2.3.1 §11.11; provisioning specification, "STORE DATA Block Protocol").
//!
//! ```text
//! block P2=00,01,… ──DgiStreamDecoder──▶ DGI ──FobDgi::from_tag / check_value──▶ staged
//! A003 ──AES-CBC⁻¹(static DEK, IV 0), ISO 9797-1 M2──▶ 32-byte P-256 scalar
//! last block (P1 b8) ──all six DGIs?──▶ Personalization (committed by the caller)
//! ```
//!
//! Any error is final for the sequence: the caller drops the [`PersoSession`],
//! so nothing staged is ever stored, and a new sequence starts at P2 = 00.

use std::collections::BTreeMap;

use kf_apdu::{DgiStreamDecoder, StatusWord};
use kf_crypto::AesKey;
use kf_profile::{FobDgi, MAX_CERTIFICATE_LEN};
use p256::ecdsa::SigningKey;
use zeroize::Zeroize;

use crate::state::Personalization;

/// Largest number of bytes the decoder may hold for one incomplete DGI: the
/// largest value the profile accepts plus a 5-byte DGI header. A stream that
/// announces more is rejected before it can exhaust memory.
const MAX_PENDING: usize = MAX_CERTIFICATE_LEN + 5;

/// One STORE DATA sequence in progress: expected block number, the DGI
/// decoder, and the DGIs staged so far (in RAM only).
pub(crate) struct PersoSession {
    next_block: u16,
    decoder: DgiStreamDecoder,
    staged: BTreeMap<u16, Vec<u8>>,
    signing_key: Option<SigningKey>,
}

/// What a block did.
pub(crate) enum BlockOutcome {
    /// More blocks expected.
    Continue,
    /// The last block arrived and every DGI is present and valid.
    Complete(Personalization),
}

impl PersoSession {
    pub(crate) fn new() -> PersoSession {
        PersoSession {
            next_block: 0,
            decoder: DgiStreamDecoder::with_sensitive_tags(&[FobDgi::PrivateKey.tag()]),
            staged: BTreeMap::new(),
            signing_key: None,
        }
    }

    /// Processes one block. `Err(sw)` ends the sequence (the caller drops self).
    pub(crate) fn block(
        &mut self,
        p1: u8,
        p2: u8,
        data: &[u8],
        dek: &AesKey,
    ) -> Result<BlockOutcome, StatusWord> {
        let last = kf_apdu::gp::StoreDataP1::from_byte_strict(p1)
            .ok()
            .filter(kf_profile::accepts_store_data_p1)
            .ok_or(StatusWord::INCORRECT_P1P2)?
            .last_block;
        if u16::from(p2) != self.next_block {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        self.next_block += 1;
        let dgis = self
            .decoder
            .feed(data)
            .map_err(|_| StatusWord::INCORRECT_DATA)?;
        if self.decoder.pending_len() > MAX_PENDING {
            return Err(StatusWord::INCORRECT_DATA);
        }
        for dgi in dgis {
            self.stage(dgi.tag, &dgi.data, dek)?;
        }
        if !last {
            return Ok(BlockOutcome::Continue);
        }
        if !self.decoder.is_idle() {
            // The last block ends inside a DGI.
            return Err(StatusWord::INCORRECT_DATA);
        }
        if FobDgi::ALL
            .iter()
            .any(|d| !self.staged.contains_key(&d.tag()))
        {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let signing_key = self
            .signing_key
            .take()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        Ok(BlockOutcome::Complete(Personalization {
            dgis: std::mem::take(&mut self.staged),
            signing_key,
        }))
    }

    fn stage(&mut self, tag: u16, value: &[u8], dek: &AesKey) -> Result<(), StatusWord> {
        let dgi = FobDgi::from_tag(tag).ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        dgi.check_value(value)
            .map_err(|_| StatusWord::INCORRECT_DATA)?;
        if self.staged.contains_key(&tag) {
            // A DGI written twice in one sequence is a station bug, not an update.
            return Err(StatusWord::INCORRECT_DATA);
        }
        if dgi == FobDgi::PrivateKey {
            self.signing_key = Some(decrypt_private_key(value, dek)?);
        }
        self.staged.insert(tag, value.to_vec());
        Ok(())
    }
}

impl Drop for PersoSession {
    fn drop(&mut self) {
        for value in self.staged.values_mut() {
            value.zeroize();
        }
    }
}

/// DGI A003: AES-CBC decryption with the static DEK and IV 0, strict ISO
/// 9797-1 method 2 unpadding (GPC Amd D §6.2.8 for DEK use; provisioning specification), then a
/// 32-byte scalar in `1..n-1` (SEC 1 §2.3.6 via `p256`).
fn decrypt_private_key(value: &[u8], dek: &AesKey) -> Result<SigningKey, StatusWord> {
    let mut plain = kf_crypto::cbc::decrypt_m2(dek, &[0u8; 16], value)
        .map_err(|_| StatusWord::INCORRECT_DATA)?;
    let key = if plain.len() == 32 {
        SigningKey::from_slice(&plain).map_err(|_| StatusWord::INCORRECT_DATA)
    } else {
        Err(StatusWord::INCORRECT_DATA)
    };
    plain.zeroize();
    key
}
