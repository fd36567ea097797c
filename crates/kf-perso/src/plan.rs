//! The DGI personalization plan: items → DGIs → STORE DATA blocks.
//!
//! ```text
//! ProvisioningInput ──encode (the specified order A003, A001, A002, A004, A005, A006)──▶ DGI stream
//!   A003 = AES-CBC(static DEK, IV 0, ISO 9797-1 M2 pad(scalar))   (GPC Amd D §6.2.8: IV 0 for DEK data)
//! DGI stream ──split (block capacity below)──▶ STORE DATA 80 E2 P1 P2 (GPC 2.3.1 §11.11)
//!   P1 = kf_profile::P1Style (Table 11-89), P2 = block number from 00
//! optional last step: empty STORE DATA with P1.b8 set (the JCShell reference flow's "lifecycle transition")
//! ```
//!
//! ## Block capacity
//!
//! The commands here are plaintext; the SCP03 host wraps each one, which
//! grows the data field. `kf_scp03::max_plain_data_len` answers how many
//! plaintext bytes fit in one command at the channel's level and mode (its
//! module documentation has the table). Extended length (ISO 7816-3
//! §12.1.3) is used only when the caller says the reader supports it; the
//! limit is then [`PlanOptions::max_extended_lc`].

use std::ops::Range;

use kf_apdu::{gp, CommandApdu, Dgi};
use kf_profile::{FobDgi, P1Style};
use kf_scp03::{max_plain_data_len, LengthForm, Mode, SecurityLevel};
use kf_source::{PrivateKeyMaterial, ProvisioningInput};
use zeroize::Zeroizing;

use crate::PlanError;

/// Default extended-length Lc limit when extended APDUs are enabled: a
/// conservative size for JCOP 4 applet buffers.
pub const DEFAULT_MAX_EXTENDED_LC: usize = 1024;
/// Largest number of STORE DATA commands one P2 counter can number.
pub const MAX_BLOCKS: usize = 256;

/// How the end of personalization is signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LastBlockStyle {
    /// The provisioning specification's JCShell flow: every data block without b8, then a separate
    /// empty STORE DATA with b8 (`80 E2 80 P2`) as the life-cycle step.
    #[default]
    SeparateEmptyBlock,
    /// GP §11.11 as written: b8 on the last data block; no separate step.
    OnLastDataBlock,
}

/// Options of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Security level the channel will run at (default `01`, C-MAC, provisioning specification).
    pub security_level: SecurityLevel,
    /// MAC length mode of the channel (default S8).
    pub mode: Mode,
    /// P1 marking of the blocks (default: the JCShell script's `00`/`80`).
    pub p1_style: P1Style,
    /// Whether the reader and card accept extended-length APDUs.
    pub extended_length: bool,
    /// Lc limit with extended length (ignored otherwise; capped at 65535).
    pub max_extended_lc: usize,
    /// Where b8 (last block) goes.
    pub last_block: LastBlockStyle,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            security_level: SecurityLevel::C_MAC,
            mode: Mode::S8,
            p1_style: P1Style::JcShell,
            extended_length: false,
            max_extended_lc: DEFAULT_MAX_EXTENDED_LC,
            last_block: LastBlockStyle::SeparateEmptyBlock,
        }
    }
}

impl PlanOptions {
    /// The Lc limit in force.
    pub fn lc_limit(&self) -> usize {
        if self.extended_length {
            self.max_extended_lc.min(kf_apdu::MAX_DATA_LEN)
        } else {
            LengthForm::Short.lc_limit()
        }
    }

    /// Largest plaintext block whose SCP03-wrapped form fits the Lc limit.
    pub fn block_capacity(&self) -> usize {
        max_plain_data_len(self.security_level, self.mode, self.lc_limit())
    }
}

/// One STORE DATA block of the plan.
#[derive(Debug, Clone)]
pub struct StoreDataBlock {
    /// The plaintext command (`80 E2 P1 P2 Lc data`), sensitive when it carries
    /// secret DGI bytes (A003 private key, A006 BLE IRK).
    pub command: CommandApdu,
    /// Byte range of the DGI stream this block carries.
    pub range: Range<usize>,
    /// Whether any byte of the DEK-encrypted DGI (A003) is in this block.
    pub carries_encrypted_dgi: bool,
}

/// The personalization of one fob as STORE DATA commands, before SCP03 wrapping.
pub struct PersoPlan {
    stream: Zeroizing<Vec<u8>>,
    dgi_ranges: Vec<(FobDgi, Range<usize>)>,
    blocks: Vec<StoreDataBlock>,
    lifecycle: Option<CommandApdu>,
    options: PlanOptions,
}

impl std::fmt::Debug for PersoPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersoPlan")
            .field("stream_len", &self.stream.len())
            .field("dgis", &self.dgi_ranges)
            .field("blocks", &self.blocks.len())
            .field("lifecycle", &self.lifecycle)
            .field("options", &self.options)
            .finish()
    }
}

impl PersoPlan {
    /// Builds the plan: validates and encodes the six DGIs, DEK-encrypts the
    /// private scalar (unless the source delivered it encrypted) and splits
    /// the stream into numbered STORE DATA blocks.
    pub fn build(input: &ProvisioningInput, options: &PlanOptions) -> Result<PersoPlan, PlanError> {
        let capacity = options.block_capacity();
        if capacity == 0 {
            return Err(PlanError::NoRoomForData {
                lc_limit: options.lc_limit(),
            });
        }
        let mut stream = Zeroizing::new(Vec::new());
        let mut dgi_ranges = Vec::with_capacity(FobDgi::ALL.len());
        for dgi in FobDgi::ALL {
            let value = dgi_value(input, dgi);
            dgi.check_value(&value)?;
            let encoded = Dgi {
                tag: dgi.tag(),
                data: value.to_vec(),
                sensitive: dgi.is_secret(),
            };
            let start = stream.len();
            encoded.encode_into(&mut stream)?;
            dgi_ranges.push((dgi, start..stream.len()));
        }

        let chunks = gp::block_ranges(stream.len(), capacity)?;
        let separate = options.last_block == LastBlockStyle::SeparateEmptyBlock;
        let total = chunks.len() + usize::from(separate);
        if total > MAX_BLOCKS {
            return Err(PlanError::TooManyBlocks { blocks: total });
        }

        let encrypted_ranges: Vec<&Range<usize>> = dgi_ranges
            .iter()
            .filter(|(d, _)| d.is_encrypted())
            .map(|(_, r)| r)
            .collect();
        let secret_ranges: Vec<&Range<usize>> = dgi_ranges
            .iter()
            .filter(|(d, _)| d.is_secret())
            .map(|(_, r)| r)
            .collect();
        let overlaps = |ranges: &[&Range<usize>], range: &Range<usize>| {
            ranges
                .iter()
                .any(|r| r.start < range.end && range.start < r.end)
        };
        let mut blocks = Vec::with_capacity(chunks.len());
        for (number, range) in chunks.into_iter().enumerate() {
            let carries = overlaps(&encrypted_ranges, &range);
            let secret = overlaps(&secret_ranges, &range);
            let last = !separate && number + 1 == total;
            let p1 = options.p1_style.store_data_p1(last, carries);
            // number < MAX_BLOCKS, checked above.
            let mut command = gp::store_data(p1, number as u8, &stream[range.clone()]);
            if secret {
                command = command.sensitive();
            }
            blocks.push(StoreDataBlock {
                command,
                range,
                carries_encrypted_dgi: carries,
            });
        }
        let lifecycle = separate.then(|| {
            gp::store_data(
                options.p1_style.store_data_p1(true, false),
                (total - 1) as u8,
                [],
            )
        });
        Ok(PersoPlan {
            stream,
            dgi_ranges,
            blocks,
            lifecycle,
            options: *options,
        })
    }

    /// The payload-delivery blocks, in order.
    pub fn blocks(&self) -> &[StoreDataBlock] {
        &self.blocks
    }

    /// The empty last-block STORE DATA of the life-cycle step, when the plan
    /// uses [`LastBlockStyle::SeparateEmptyBlock`].
    pub fn lifecycle_command(&self) -> Option<&CommandApdu> {
        self.lifecycle.as_ref()
    }

    /// Every command in sending order (blocks, then the life-cycle command).
    pub fn commands(&self) -> impl Iterator<Item = &CommandApdu> {
        self.blocks
            .iter()
            .map(|b| &b.command)
            .chain(self.lifecycle.as_ref())
    }

    /// Where each DGI sits in the stream.
    pub fn dgi_ranges(&self) -> &[(FobDgi, Range<usize>)] {
        &self.dgi_ranges
    }

    /// The concatenated DGI stream. It holds the DEK-encrypted private key:
    /// do not log it.
    pub fn expose_stream(&self) -> &[u8] {
        &self.stream
    }

    /// The options the plan was built with.
    pub fn options(&self) -> &PlanOptions {
        &self.options
    }
}

/// The on-wire value of one DGI.
fn dgi_value(input: &ProvisioningInput, dgi: FobDgi) -> Zeroizing<Vec<u8>> {
    let items = &input.items;
    Zeroizing::new(match dgi {
        FobDgi::Spid => items.spid.as_bytes().to_vec(),
        FobDgi::DeviceCertificate => items.device_certificate.clone(),
        FobDgi::PrivateKey => match &items.private_key {
            PrivateKeyMaterial::Scalar(scalar) => kf_crypto::cbc::encrypt_m2(
                &input.card_keys.keys.dek,
                &[0u8; kf_crypto::BLOCK_LEN],
                scalar.expose_secret(),
            ),
            PrivateKeyMaterial::DekEncrypted(blob) => blob.expose_secret().to_vec(),
            // A future material kind the plan does not know: an empty value,
            // which check_value rejects.
            _ => Vec::new(),
        },
        FobDgi::IcaCertificate => items.ica_certificate.clone(),
        FobDgi::RootCertificate => items.root_certificate.clone(),
        FobDgi::BleIrk => items.ble_irk.expose_secret().to_vec(),
        // FobDgi is non_exhaustive; unknown DGIs have no value and fail check_value.
        _ => Vec::new(),
    })
}
