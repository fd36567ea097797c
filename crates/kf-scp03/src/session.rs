//! Session key derivation, authentication cryptograms and the pseudo-random
//! card challenge (Amd D §6.2.1, §6.2.2), all through the §4.1.5 KDF.

use kf_crypto::kdf::{
    scp03_derive_key, scp03_kdf, CONST_CARD_CHALLENGE, CONST_CARD_CRYPTOGRAM,
    CONST_HOST_CRYPTOGRAM, CONST_S_ENC, CONST_S_MAC, CONST_S_RMAC,
};
use kf_crypto::{AesCipher, AesKey, CmacKey, CmacRun, StaticKeys};

use crate::{Mode, Scp03Error};

/// The session keys of one secure channel session (Amd D §6.2.1, Table 6-2).
///
/// Secret: each key zeroizes on drop and prints only its KCV. There is no
/// session DEK in SCP03; sensitive data uses the static Key-DEK (Amd D §6.2.8).
#[derive(Debug)]
pub struct SessionKeys {
    s_enc: AesKey,
    s_mac: AesKey,
    s_rmac: AesKey,
    /// Boxed: the key schedules are a few KiB, and the session moves through
    /// several typed states by value.
    prepared: Box<Prepared>,
}

/// The session keys prepared once for the whole session.
#[derive(Debug)]
struct Prepared {
    /// S-ENC's key schedule.
    enc: AesCipher,
    /// S-MAC and S-RMAC prepared for CMAC (key schedule and subkeys).
    c_mac: CmacKey,
    r_mac: CmacKey,
}

impl SessionKeys {
    /// Derives S-ENC ('04' from Key-ENC), S-MAC ('06' from Key-MAC) and S-RMAC
    /// ('07' from Key-MAC) with context = host challenge ‖ card challenge and
    /// L = the static key length.
    pub fn derive(
        keys: &StaticKeys,
        host_challenge: &[u8],
        card_challenge: &[u8],
    ) -> Result<SessionKeys, Scp03Error> {
        let mut context = Vec::with_capacity(host_challenge.len() + card_challenge.len());
        context.extend_from_slice(host_challenge);
        context.extend_from_slice(card_challenge);
        let s_enc = scp03_derive_key(&keys.enc, CONST_S_ENC, &context)?;
        let s_mac = scp03_derive_key(&keys.mac, CONST_S_MAC, &context)?;
        let s_rmac = scp03_derive_key(&keys.mac, CONST_S_RMAC, &context)?;
        Ok(SessionKeys {
            prepared: Box::new(Prepared {
                enc: AesCipher::new(&s_enc),
                c_mac: CmacKey::new(&s_mac),
                r_mac: CmacKey::new(&s_rmac),
            }),
            s_enc,
            s_mac,
            s_rmac,
        })
    }

    /// S-ENC: command and response encryption and the counter ICVs.
    pub fn s_enc(&self) -> &AesKey {
        &self.s_enc
    }

    /// S-MAC: C-MAC and the authentication cryptograms.
    pub fn s_mac(&self) -> &AesKey {
        &self.s_mac
    }

    /// S-RMAC: R-MAC.
    pub fn s_rmac(&self) -> &AesKey {
        &self.s_rmac
    }

    /// S-ENC as a prepared cipher.
    pub(crate) fn enc_cipher(&self) -> &AesCipher {
        &self.prepared.enc
    }

    /// A fresh CMAC computation under S-MAC.
    pub(crate) fn c_mac_state(&self) -> CmacRun<'_> {
        self.prepared.c_mac.start()
    }

    /// A fresh CMAC computation under S-RMAC.
    pub(crate) fn r_mac_state(&self) -> CmacRun<'_> {
        self.prepared.r_mac.start()
    }
}

/// The two authentication cryptograms: KDF(S-MAC, constant, L = 64 or 128,
/// host challenge ‖ card challenge), told apart by their derivation constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cryptogram {
    /// Card authentication cryptogram, constant '00' (Amd D §6.2.2.2).
    Card,
    /// Host authentication cryptogram, constant '01' (Amd D §6.2.2.3).
    Host,
}

impl Cryptogram {
    /// Computes this cryptogram under the session's S-MAC.
    pub fn compute(
        self,
        keys: &SessionKeys,
        mode: Mode,
        host_challenge: &[u8],
        card_challenge: &[u8],
    ) -> Result<Vec<u8>, Scp03Error> {
        let constant = match self {
            Cryptogram::Card => CONST_CARD_CRYPTOGRAM,
            Cryptogram::Host => CONST_HOST_CRYPTOGRAM,
        };
        let mut context = Vec::with_capacity(host_challenge.len() + card_challenge.len());
        context.extend_from_slice(host_challenge);
        context.extend_from_slice(card_challenge);
        Ok(scp03_kdf(keys.s_mac(), constant, mode.l_bits(), &context)?.to_vec())
    }
}

/// Pseudo-random card challenge: KDF(static Key-ENC, '02', L = 64 or 128,
/// sequence counter (3) ‖ SD AID) (Amd D §6.2.2.1).
pub fn pseudo_random_card_challenge(
    static_enc: &AesKey,
    mode: Mode,
    sequence_counter: [u8; 3],
    sd_aid: &[u8],
) -> Result<Vec<u8>, Scp03Error> {
    let mut context = Vec::with_capacity(3 + sd_aid.len());
    context.extend_from_slice(&sequence_counter);
    context.extend_from_slice(sd_aid);
    Ok(scp03_kdf(static_enc, CONST_CARD_CHALLENGE, mode.l_bits(), &context)?.to_vec())
}
