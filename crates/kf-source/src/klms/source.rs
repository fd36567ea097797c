//! Conversion of a [`KeyPackage`] into the station's [`ProvisioningInput`].

use std::sync::Arc;

use der::Decode;
use kf_profile::FobDgi;

use super::{KeyPackage, KlmsClient, KlmsError};
use crate::input::{
    BleIrk, CardKeys, EncryptedScalar, PersonalizationItems, PrivateKeyMaterial, ProvisioningInput,
    Spid,
};

/// Fetches key packages for one reader.
///
/// The returned [`KeyPackage`] must be kept next to the [`ProvisioningInput`]
/// made from it, so that [`KeyPackage::ensure_fresh`] can be called right
/// before INITIALIZE UPDATE.
#[derive(Debug, Clone)]
pub struct KlmsSource {
    client: Arc<KlmsClient>,
    reader_id: String,
}

impl KlmsSource {
    /// A source for the reader `reader_id` (sent as `reader_id` in the request).
    pub fn new(client: Arc<KlmsClient>, reader_id: impl Into<String>) -> Self {
        KlmsSource {
            client,
            reader_id: reader_id.into(),
        }
    }

    /// The underlying client (e.g. for an audit sink).
    pub fn client(&self) -> &Arc<KlmsClient> {
        &self.client
    }

    /// Fetches and validates the package for `fob_uid`, and converts it.
    pub fn fetch(&self, fob_uid: &[u8]) -> Result<(KeyPackage, ProvisioningInput), KlmsError> {
        let package = self.client.fetch_key_package(fob_uid, &self.reader_id)?;
        let input = package.to_provisioning_input()?;
        Ok((package, input))
    }
}

/// [`KlmsSource`] as a [`crate::ProvisioningSource`]: keeps the package of
/// the fob in progress so the pipeline can check its TTL right before use.
#[derive(Debug)]
pub struct KlmsProvisioningSource {
    source: KlmsSource,
    current: Option<KeyPackage>,
}

impl KlmsProvisioningSource {
    /// Wraps a source.
    pub fn new(source: KlmsSource) -> Self {
        KlmsProvisioningSource {
            source,
            current: None,
        }
    }
}

impl crate::ProvisioningSource for KlmsProvisioningSource {
    fn name(&self) -> &str {
        "klms"
    }

    fn fetch(&mut self, uid: &[u8]) -> Result<ProvisioningInput, crate::SourceError> {
        // The previous fob's package (and its keys) is dropped here at the latest.
        self.current = None;
        let (package, input) = self.source.fetch(uid)?;
        self.current = Some(package);
        Ok(input)
    }

    fn ensure_fresh(&self, input: &ProvisioningInput) -> Result<(), crate::SourceError> {
        match &self.current {
            Some(package) if package.transaction_id() == input.transaction_id => {
                Ok(package.ensure_fresh()?)
            }
            _ => Err(KlmsError::InvalidResponse(
                "no key package for this transaction is held".into(),
            )
            .into()),
        }
    }
}

fn item(package: &KeyPackage, dgi: FobDgi) -> Result<&[u8], KlmsError> {
    package
        .dgis()
        .iter()
        .find(|d| d.dgi == dgi)
        .map(|d| d.data.as_slice())
        .ok_or_else(|| KlmsError::InvalidResponse(format!("DGI {:04X} is missing", dgi.tag())))
}

fn device_public_key(cert_der: &[u8]) -> Result<p256::PublicKey, KlmsError> {
    let bad = |what: &str| KlmsError::InvalidResponse(format!("device certificate (A002): {what}"));
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|_| bad("not a DER X.509 certificate"))?;
    let point = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("public key is not a whole number of bytes"))?;
    p256::PublicKey::from_sec1_bytes(point).map_err(|_| bad("public key is not a P-256 point"))
}

impl KeyPackage {
    /// Converts the package into the pipeline's input (A003 stays DEK-encrypted:
    /// [`PrivateKeyMaterial::DekEncrypted`]). Refuses an expired package.
    pub fn to_provisioning_input(&self) -> Result<ProvisioningInput, KlmsError> {
        self.ensure_fresh()?;
        let invalid = |e: crate::SourceError| KlmsError::InvalidResponse(e.to_string());
        let spid_text = std::str::from_utf8(item(self, FobDgi::Spid)?)
            .map_err(|_| KlmsError::InvalidResponse("SPID (A001) is not ASCII".into()))?;
        let device_certificate = item(self, FobDgi::DeviceCertificate)?.to_vec();
        let device_public_key = device_public_key(&device_certificate)?;
        Ok(ProvisioningInput {
            fob_uid: self.fob_uid().to_vec(),
            transaction_id: self.transaction_id().to_owned(),
            card_keys: CardKeys {
                kvn: self.key_version(),
                keys: self.static_keys().duplicate(),
            },
            items: PersonalizationItems {
                spid: Spid::new(spid_text).map_err(invalid)?,
                device_certificate,
                private_key: PrivateKeyMaterial::DekEncrypted(
                    EncryptedScalar::from_bytes(item(self, FobDgi::PrivateKey)?)
                        .map_err(invalid)?,
                ),
                ica_certificate: item(self, FobDgi::IcaCertificate)?.to_vec(),
                root_certificate: item(self, FobDgi::RootCertificate)?.to_vec(),
                ble_irk: BleIrk::from_bytes(item(self, FobDgi::BleIrk)?).map_err(invalid)?,
            },
            device_public_key,
            origin: format!("klms:{}", self.transaction_id()),
        })
    }
}
