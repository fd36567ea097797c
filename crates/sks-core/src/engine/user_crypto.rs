//! User API cryptographic methods \[100\]–\[104\] with endorsed-algorithm enforcement
//! (byte layouts Appendix C). Check order: PIN, data size, algorithm, key type, endorsement.

use super::Core;
use crate::api::{req, resp};
use crate::codec::Blob;
use crate::consts::*;
use crate::crypto::keys::HashId;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::ops::{self, OpError};
use crate::crypto::random_bytes;
use crate::error::{err, ErrorCode, SksError, SksResult};
use crate::secret::Secret;

fn alg_err(msg: impl Into<String>) -> SksError {
    err(ErrorCode::Algorithm, msg)
}

/// ERROR_CRYPTO for a failed operation, saying which and why.
fn op_failed(operation: &'static str) -> impl Fn(OpError) -> SksError {
    move |e| err(ErrorCode::Crypto, format!("{operation} failed: {e}"))
}

/// Refuses Parameters where the algorithm takes none.
fn no_parameters(parameters: &[u8]) -> SksResult<()> {
    if parameters.is_empty() {
        Ok(())
    } else {
        Err(err(ErrorCode::Option, "\"Parameters\" must be empty"))
    }
}

/// Refuses a private key of the other family than the algorithm's (`rsa`: it needs RSA).
fn key_family(key: &PrivateKey, rsa: bool, a: &impl CryptoRequest) -> SksResult<()> {
    let is_rsa = matches!(key, PrivateKey::Rsa(_));
    if is_rsa == rsa {
        return Ok(());
    }
    Err(alg_err(format!(
        "{} key {} is incompatible with: {}",
        if is_rsa { "RSA" } else { "EC" },
        a.key_handle(),
        a.algorithm()
    )))
}

/// The arguments every User API cryptographic method carries (§7.4 \[100\]–\[104\]).
trait CryptoRequest {
    fn key_handle(&self) -> u32;
    fn algorithm(&self) -> &str;
    fn authorization(&self) -> &Secret;
    /// The length held against CryptoDataSize.
    fn data_len(&self) -> usize;
    /// Whether the method performs algorithms of this class.
    fn accepts(class: &AlgClass) -> bool;
}

/// The key material a User API operation needs.
enum Material {
    Private(PrivateKey),
    Symmetric(Secret),
}

impl Material {
    /// The private key, or else the kind of key this is.
    fn private(self) -> Result<PrivateKey, &'static str> {
        match self {
            Material::Private(p) => Ok(p),
            Material::Symmetric(_) => Err("Symmetric"),
        }
    }

    /// The symmetric key, or else the kind of key this is.
    fn symmetric(self) -> Result<Secret, &'static str> {
        match self {
            Material::Symmetric(s) => Ok(s),
            Material::Private(_) => Err("Asymmetric"),
        }
    }
}

impl Core {
    /// Common prologue: closed key, PIN, data size, algorithm class, endorsement, and the key
    /// material of the kind the operation needs (`key`: [`Material::private`] or
    /// [`Material::symmetric`]).
    fn prepare<A: CryptoRequest, K>(
        &mut self,
        a: &A,
        key: fn(Material) -> Result<K, &'static str>,
    ) -> SksResult<(AlgClass, K)> {
        let (kh, algorithm) = (a.key_handle(), a.algorithm());
        self.closed_key(kh)?;
        self.verify_user(kh, a.authorization())?;
        if a.data_len() > MAX_LENGTH_CRYPTO_DATA {
            return Err(err(ErrorCode::Option, "Data exceeds CryptoDataSize"));
        }
        let class = algorithm_class(algorithm)
            .ok_or_else(|| alg_err(format!("Unsupported algorithm: {algorithm}")))?;
        if !A::accepts(&class) {
            return Err(alg_err(format!(
                "Algorithm does not match operation: {algorithm}"
            )));
        }
        let k = self.closed_key(kh)?;
        if !k.endorsed.is_empty() && !k.endorsed.iter().any(|e| e == algorithm) {
            return Err(alg_err(format!(
                "Algorithm not endorsed for key {kh}: {algorithm}"
            )));
        }
        let material = match &k.symmetric_key {
            Some(s) => Material::Symmetric(s.duplicate()),
            None => Material::Private(
                PrivateKey::from_stored_pkcs8(k.private_key.expose())
                    .map_err(|_| err(ErrorCode::Internal, "Stored private key unreadable"))?,
            ),
        };
        let key = key(material).map_err(|kind| {
            alg_err(format!("{kind} key {kh} is incompatible with: {algorithm}"))
        })?;
        Ok((class, key))
    }
}

/// One table of the five methods: where the request keeps its [`crate::api::KeyUse`]
/// arguments (symmetricKeyEncrypt: in itself), what each holds against CryptoDataSize, the
/// algorithm class it performs, the kind of key it needs ([`Material::private`] or
/// [`Material::symmetric`]) and its operation, whose value is the method's Result.
macro_rules! user_crypto_methods {
    ($(
        $(#[$doc:meta])* $fname:ident($name:ident $(.$via:ident)?)
        data |$a:pat_param| $len:expr, class $class:pat, key $kind:ident => $op:ident;
    )*) => {
        $(impl CryptoRequest for req::$name {
            fn key_handle(&self) -> u32 {
                self$(.$via)?.key_handle
            }
            fn algorithm(&self) -> &str {
                &self$(.$via)?.algorithm
            }
            fn authorization(&self) -> &Secret {
                &self$(.$via)?.authorization
            }
            fn data_len(&self) -> usize {
                let $a = self;
                $len
            }
            fn accepts(class: &AlgClass) -> bool {
                matches!(class, $class)
            }
        })*

        impl Core {
            $(
                $(#[$doc])*
                pub(crate) fn $fname(&mut self, a: req::$name) -> SksResult<resp::$name> {
                    let (class, key) = self.prepare(&a, Material::$kind)?;
                    Ok(resp::$name { result: $op(&a, class, key)? })
                }
            )*
        }
    };
}

user_crypto_methods! {
    /// signHashedData \[100\].
    sign_hashed_data(SignHashedData.key)
        data |a| a.data.len(), class AlgClass::Signature { .. }, key private => sign;
    /// asymmetricKeyDecrypt \[101\].
    asymmetric_key_decrypt(AsymmetricKeyDecrypt.key)
        data |a| a.data.len(), class AlgClass::AsymmetricDecryption, key private => decrypt;
    /// keyAgreement \[102\].
    key_agreement(KeyAgreement.key)
        data |_| 0, class AlgClass::KeyAgreement, key private => agree;
    /// performHMAC \[103\].
    perform_hmac(PerformHmac.key)
        data |a| a.data.0.len(), class AlgClass::Hmac, key symmetric => hmac;
    /// symmetricKeyEncrypt \[104\].
    symmetric_key_encrypt(SymmetricKeyEncrypt)
        data |a| a.data.0.len(), class AlgClass::SymmetricEncryption(_), key symmetric => encrypt;
}

/// The operation of signHashedData.
fn sign(a: &req::SignHashedData, class: AlgClass, key: PrivateKey) -> SksResult<Vec<u8>> {
    let AlgClass::Signature { rsa, hash_len } = class else {
        return Err(alg_err("Algorithm does not match operation"));
    };
    if rsa != matches!(key, PrivateKey::Rsa(_)) {
        return Err(alg_err(format!(
            "Key {} is incompatible with: {}",
            a.key.key_handle, a.key.algorithm
        )));
    }
    no_parameters(&a.key.parameters)?;
    if let Some(n) = hash_len {
        if a.data.len() != n {
            return Err(err(ErrorCode::Option, "Incorrect length of \"Data\""));
        }
    }
    let hash = match a.key.algorithm.as_str() {
        ALG_RSA_SHA1 => HashId::Sha1,
        ALG_RSA_SHA256 => HashId::Sha256,
        _ => HashId::None,
    };
    key.sign_prehashed(&a.data, hash)
        .map_err(|_| err(ErrorCode::Crypto, "Signature operation failed"))
}

/// The operation of asymmetricKeyDecrypt.
fn decrypt(a: &req::AsymmetricKeyDecrypt, _: AlgClass, key: PrivateKey) -> SksResult<Secret> {
    key_family(&key, true, a)?;
    no_parameters(&a.key.parameters)?;
    let result = if a.key.algorithm == ALG_RSA_RAW {
        ops::rsa_decrypt_raw(&key, &a.data)
    } else {
        ops::rsa_decrypt_pkcs1(&key, &a.data)
    };
    result.map_err(op_failed("Decryption"))
}

/// The operation of keyAgreement.
fn agree(a: &req::KeyAgreement, _: AlgClass, key: PrivateKey) -> SksResult<Secret> {
    key_family(&key, false, a)?;
    no_parameters(&a.key.parameters)?;
    let peer = PublicKey::from_spki(&a.public_key)
        .map_err(|_| err(ErrorCode::Crypto, "Malformed \"PublicKey\""))?;
    // The same ErrorString as before the typed errors: clients may match it.
    ops::ecdh(&key, &peer).map_err(|e| match e {
        ops::OpError::CurveMismatch => err(
            ErrorCode::Option,
            "\"PublicKey\" curve does not match the key",
        ),
        e => err(
            ErrorCode::Option,
            format!("\"PublicKey\" does not fit the key: {e}"),
        ),
    })
}

/// The operation of performHMAC.
fn hmac(a: &req::PerformHmac, _: AlgClass, key: Secret) -> SksResult<Vec<u8>> {
    no_parameters(&a.key.parameters)?;
    let hash = match a.key.algorithm.as_str() {
        ALG_HMAC_SHA1 => "sha1",
        ALG_HMAC_SHA256 => "sha256",
        ALG_HMAC_SHA384 => "sha384",
        _ => "sha512",
    };
    ops::hmac(hash, key.expose(), &a.data.0).map_err(op_failed("HMAC"))
}

/// The operation of symmetricKeyEncrypt.
fn encrypt(a: &req::SymmetricKeyEncrypt, class: AlgClass, key: Secret) -> SksResult<Blob> {
    if let AlgClass::SymmetricEncryption(lens) = class {
        if !lens.contains(&key.len()) {
            return Err(err(
                ErrorCode::Option,
                "Key length does not match the algorithm",
            ));
        }
    }
    let crypto = op_failed("Encryption/decryption");
    let result = match a.algorithm.as_str() {
        ALG_AES_CBC_PKCS5 => {
            if a.parameters.len() != 16 {
                return Err(err(
                    ErrorCode::Option,
                    "\"Parameters\" must hold a 16-byte IV",
                ));
            }
            ops::aes_cbc(key.expose(), &a.parameters, a.mode, &a.data.0).map_err(&crypto)?
        }
        ALG_AES_ECB_NOPAD => {
            no_parameters(&a.parameters)?;
            ops::aes_ecb(key.expose(), a.mode, &a.data.0).map_err(&crypto)?
        }
        _ => {
            no_parameters(&a.parameters)?;
            if a.mode {
                let iv = random_bytes(16)?;
                let mut out = iv.clone();
                out.extend(ops::aes_cbc(key.expose(), &iv, true, &a.data.0).map_err(&crypto)?);
                out
            } else {
                if a.data.0.len() < 32 {
                    return Err(err(
                        ErrorCode::Crypto,
                        "Encryption/decryption failed: data shorter than an IV and one block",
                    ));
                }
                let (iv, ct) = a.data.0.split_at(16);
                ops::aes_cbc(key.expose(), iv, false, ct).map_err(&crypto)?
            }
        }
    };
    Ok(Blob(result))
}
