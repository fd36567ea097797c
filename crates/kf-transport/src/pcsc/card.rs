//! A connected card: [`PcscTransport`] and its transaction guard.

use std::ffi::CString;

use ::pcsc::{Attribute, Card, Context, Disposition, Protocols, MAX_BUFFER_SIZE_EXTENDED};

use super::errors::map_pcsc_error;
use crate::error::TransportError;
use crate::transport::{RawApdu, Transport, EXTENDED_APDU_MAX, SHORT_APDU_MAX};

/// How other applications may share the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareMode {
    /// No other application may connect (the station default).
    #[default]
    Exclusive,
    /// Other applications may connect; use transactions for atomic sequences.
    Shared,
}

impl ShareMode {
    fn to_pcsc(self) -> ::pcsc::ShareMode {
        match self {
            Self::Exclusive => ::pcsc::ShareMode::Exclusive,
            Self::Shared => ::pcsc::ShareMode::Shared,
        }
    }
}

/// What happens to the card when the connection (or a transaction) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardDisposition {
    /// Leave the card as it is.
    Leave,
    /// Warm reset: volatile state on the card (secure channel) is lost.
    #[default]
    Reset,
    /// Power the card down.
    Unpower,
    /// Eject (readers that can).
    Eject,
}

impl CardDisposition {
    fn to_pcsc(self) -> Disposition {
        match self {
            Self::Leave => Disposition::LeaveCard,
            Self::Reset => Disposition::ResetCard,
            Self::Unpower => Disposition::UnpowerCard,
            Self::Eject => Disposition::EjectCard,
        }
    }
}

/// The transmission protocol negotiated with the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcscProtocol {
    /// T=0 (character).
    T0,
    /// T=1 (block); also what contactless readers report.
    T1,
    /// Raw.
    Raw,
}

/// Options for [`super::PcscContext::connect_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectOptions {
    /// Sharing mode; exclusive by default.
    pub share: ShareMode,
    /// Disposition used when the transport is dropped without
    /// [`PcscTransport::disconnect`]; reset by default.
    pub disposition_on_drop: CardDisposition,
    /// Overrides the maximum command length; by default it is taken from the
    /// reader's `SCARD_ATTR_MAXINPUT`, falling back to short APDUs.
    pub max_apdu_len: Option<usize>,
}

fn protocols() -> Protocols {
    Protocols::T0 | Protocols::T1
}

/// A card connected through PC/SC.
pub struct PcscTransport {
    ctx: Context,
    card: Option<Card>,
    reader: String,
    options: ConnectOptions,
    atr: Vec<u8>,
    protocol: Option<PcscProtocol>,
    max_apdu_len: usize,
    reset_seen: bool,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("protocol", &self.protocol)
            .field("atr", &hex::encode_upper(&self.atr))
            .finish_non_exhaustive()
    }
}

/// Sends an APDU on a card handle; the receive buffer fits extended responses.
fn transmit_raw(card: &Card, apdu: &[u8]) -> Result<Vec<u8>, ::pcsc::Error> {
    thread_local! {
        // One receive buffer per thread: a fresh 64 KiB zeroed buffer per
        // APDU cost more than the APDU's own host work.
        static RECEIVE: std::cell::RefCell<Vec<u8>> =
            std::cell::RefCell::new(vec![0u8; MAX_BUFFER_SIZE_EXTENDED]);
    }
    RECEIVE.with(|cell| {
        let mut buf = cell.borrow_mut();
        let resp = card.transmit(apdu, &mut buf)?;
        let out = resp.to_vec();
        let used = out.len();
        // Leave nothing of the response behind.
        buf[..used].fill(0);
        Ok(out)
    })
}

/// After an ambiguous transmit error, polls the card state for up to one
/// second: the reader may report the removal a moment after the failure.
fn card_left_after(card: &Card, error: ::pcsc::Error) -> bool {
    use ::pcsc::Error as E;
    if !matches!(
        error,
        E::NotTransacted | E::CommError | E::CommDataLost | E::UnresponsiveCard | E::UnknownError
    ) {
        return false;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match card_state(card) {
            Err(E::RemovedCard | E::NoSmartcard) => return true,
            _ if std::time::Instant::now() >= deadline => return false,
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

fn card_state(card: &Card) -> Result<(Vec<u8>, Option<PcscProtocol>), ::pcsc::Error> {
    let status = card.status2_owned()?;
    let protocol = status.protocol2().map(|p| match p {
        ::pcsc::Protocol::T0 => PcscProtocol::T0,
        ::pcsc::Protocol::T1 => PcscProtocol::T1,
        ::pcsc::Protocol::RAW => PcscProtocol::Raw,
    });
    Ok((status.atr().to_vec(), protocol))
}

/// Re-attaches to a card after a reset, the one way [`PcscTransport`] and
/// [`PcscTransaction`] do it: `reconnect` runs `SCardReconnect` with the
/// caller's share mode, our protocols and `init` as disposition, and returns
/// the live handle; then the ATR and protocol are read again (a reset may
/// change both) and the reset is recorded for [`Transport::was_reset`].
///
/// `reconnect` is the caller's because the two differ on purpose in what a
/// failed `SCardReconnect` means: the transport connects anew (the card was
/// removed and put back), a transaction cannot leave its handle and reports
/// the error.
fn reattach<'c>(
    reader: &str,
    share: ShareMode,
    init: CardDisposition,
    atr: &mut Vec<u8>,
    reset_seen: &mut bool,
    reconnect: impl FnOnce(
        ::pcsc::ShareMode,
        Protocols,
        Disposition,
    ) -> Result<&'c Card, TransportError>,
) -> Result<Option<PcscProtocol>, TransportError> {
    let card = reconnect(share.to_pcsc(), protocols(), init.to_pcsc())?;
    let (new_atr, protocol) = card_state(card).map_err(|e| map_pcsc_error(e, Some(reader)))?;
    *atr = new_atr;
    *reset_seen = true;
    Ok(protocol)
}

/// Reader limit from `SCARD_ATTR_MAXINPUT` (CCID: max APDU size), if known.
fn reader_max_input(card: &Card) -> Option<usize> {
    let raw = card.get_attribute_owned(Attribute::Maxinput).ok()?;
    let bytes: [u8; 4] = raw.get(..4)?.try_into().ok()?;
    let value = usize::try_from(u32::from_le_bytes(bytes)).ok()?;
    (value > 0).then_some(value)
}

impl PcscTransport {
    pub(super) fn connect(
        ctx: Context,
        reader: &str,
        options: ConnectOptions,
    ) -> Result<Self, TransportError> {
        let name = CString::new(reader).map_err(|_| TransportError::NoReader(reader.to_owned()))?;
        let card = ctx
            .connect(&name, options.share.to_pcsc(), protocols())
            .map_err(|e| map_pcsc_error(e, Some(reader)))?;
        let (atr, protocol) = card_state(&card).map_err(|e| map_pcsc_error(e, Some(reader)))?;
        let max_apdu_len = options.max_apdu_len.unwrap_or_else(|| {
            reader_max_input(&card)
                .map(|m| m.clamp(SHORT_APDU_MAX, EXTENDED_APDU_MAX))
                .unwrap_or(SHORT_APDU_MAX)
        });
        tracing::debug!(reader, atr = %hex::encode_upper(&atr), ?protocol, max_apdu_len, "card connected");
        Ok(Self {
            ctx,
            card: Some(card),
            reader: reader.to_owned(),
            options,
            atr,
            protocol,
            max_apdu_len,
            reset_seen: false,
        })
    }

    /// Name of the reader.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Negotiated protocol.
    pub fn protocol(&self) -> Option<PcscProtocol> {
        self.protocol
    }

    /// Overrides the maximum command length (e.g. a reader known to carry
    /// extended APDUs without advertising it).
    pub fn set_max_apdu_len(&mut self, max: usize) {
        self.max_apdu_len = max;
    }

    /// Reads the contactless UID with `FF CA 00 00 00`.
    pub fn uid(&mut self) -> Result<Vec<u8>, TransportError> {
        crate::iso7816::read_uid(self)
    }

    fn card(&self) -> Result<&Card, TransportError> {
        self.card.as_ref().ok_or(TransportError::CardRemoved)
    }

    /// Reconnects after the card was reset behind our back (`SCARD_W_RESET_CARD`)
    /// or a reset was asked for; falls back to a fresh connect when the old
    /// handle is dead (card removed and reinserted).
    fn reconnect(&mut self, init: CardDisposition) -> Result<(), TransportError> {
        let Self {
            ctx,
            card,
            reader,
            options,
            atr,
            reset_seen,
            ..
        } = self;
        let reader = reader.as_str();
        let protocol = reattach(
            reader,
            options.share,
            init,
            atr,
            reset_seen,
            |share, protocols, init| {
                let reconnected = match card.as_mut() {
                    Some(card) => card.reconnect(share, protocols, init),
                    None => Err(::pcsc::Error::InvalidHandle),
                };
                if let Err(err) = reconnected {
                    tracing::debug!(reader = %reader, %err, "reconnect failed; connecting anew");
                    if let Some(old) = card.take() {
                        // The handle is dead; its disconnect result carries no information.
                        let _ = old.disconnect(Disposition::LeaveCard);
                    }
                    let name = CString::new(reader)
                        .map_err(|_| TransportError::NoReader(reader.to_owned()))?;
                    let fresh = ctx
                        .connect(&name, share, protocols)
                        .map_err(|e| map_pcsc_error(e, Some(reader)))?;
                    *card = Some(fresh);
                }
                card.as_ref().ok_or(TransportError::CardRemoved)
            },
        )?;
        self.protocol = protocol;
        Ok(())
    }

    /// Ends the connection with an explicit disposition.
    pub fn disconnect(mut self, disposition: CardDisposition) -> Result<(), TransportError> {
        match self.card.take() {
            Some(card) => card
                .disconnect(disposition.to_pcsc())
                .map_err(|(_card, e)| map_pcsc_error(e, Some(&self.reader))),
            None => Ok(()),
        }
    }

    /// Starts a PC/SC transaction (`SCardBeginTransaction`): no other
    /// application can use the card until the guard ends or is dropped.
    pub fn transaction(&mut self) -> Result<PcscTransaction<'_>, TransportError> {
        let reader = self.reader.as_str();
        let card = self.card.as_mut().ok_or(TransportError::CardRemoved)?;
        let tx = card
            .transaction()
            .map_err(|e| map_pcsc_error(e, Some(reader)))?;
        Ok(PcscTransaction {
            tx,
            reader,
            share: self.options.share,
            atr: &mut self.atr,
            reset_seen: &mut self.reset_seen,
            max_apdu_len: self.max_apdu_len,
        })
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        let result = transmit_raw(self.card()?, apdu.bytes());
        match result {
            Ok(resp) => Ok(resp),
            Err(::pcsc::Error::ResetCard) => {
                // Someone reset the card: re-attach so the next session can
                // start, and tell this caller its session is gone.
                self.reconnect(CardDisposition::Leave)?;
                Err(TransportError::CardReset)
            }
            Err(e) => {
                // A card that leaves the field mid-exchange is reported in
                // several ways (pcsc-lite over vpcd: SCARD_E_NOT_TRANSACTED);
                // ask the reader whether the card is still there.
                let gone = self.card().map(|c| card_left_after(c, e)).unwrap_or(false);
                if gone {
                    Err(TransportError::CardRemoved)
                } else {
                    Err(map_pcsc_error(e, Some(&self.reader)))
                }
            }
        }
    }

    /// Warm reset through `SCardReconnect(SCARD_RESET_CARD)`; reconnects from
    /// scratch when the card was removed and put back.
    fn reset(&mut self) -> Result<(), TransportError> {
        self.reconnect(CardDisposition::Reset)
    }

    fn max_apdu_len(&self) -> usize {
        self.max_apdu_len
    }

    fn was_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_seen)
    }

    fn atr(&self) -> Option<Vec<u8>> {
        self.card.as_ref().map(|_| self.atr.clone())
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            if let Err((_card, err)) = card.disconnect(self.options.disposition_on_drop.to_pcsc()) {
                tracing::debug!(reader = %self.reader, %err, "disconnect on drop failed");
            }
        }
    }
}

/// An open PC/SC transaction on a [`PcscTransport`]; a [`Transport`] itself.
/// Dropping it ends the transaction leaving the card as is.
pub struct PcscTransaction<'a> {
    tx: ::pcsc::Transaction<'a>,
    reader: &'a str,
    share: ShareMode,
    atr: &'a mut Vec<u8>,
    reset_seen: &'a mut bool,
    max_apdu_len: usize,
}

impl std::fmt::Debug for PcscTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransaction")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl PcscTransaction<'_> {
    /// Ends the transaction with an explicit disposition.
    pub fn end(self, disposition: CardDisposition) -> Result<(), TransportError> {
        let reader = self.reader;
        self.tx
            .end(disposition.to_pcsc())
            .map_err(|(_tx, e)| map_pcsc_error(e, Some(reader)))
    }
}

impl Transport for PcscTransaction<'_> {
    fn transmit(&mut self, apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        transmit_raw(&self.tx, apdu.bytes()).map_err(|e| {
            if e == ::pcsc::Error::ResetCard {
                *self.reset_seen = true;
            }
            map_pcsc_error(e, Some(self.reader))
        })
    }

    /// Warm reset through `SCardReconnect(SCARD_RESET_CARD)` inside the
    /// transaction. No fresh connect as a fallback: a new handle would be
    /// outside the transaction, so the failure is reported instead.
    fn reset(&mut self) -> Result<(), TransportError> {
        let reader = self.reader;
        let tx = &mut self.tx;
        // The transaction keeps no protocol: it is the transport's to report.
        reattach(
            reader,
            self.share,
            CardDisposition::Reset,
            self.atr,
            self.reset_seen,
            |share, protocols, init| {
                tx.reconnect(share, protocols, init)
                    .map_err(|e| map_pcsc_error(e, Some(reader)))?;
                Ok(&**tx)
            },
        )?;
        Ok(())
    }

    fn max_apdu_len(&self) -> usize {
        self.max_apdu_len
    }

    fn was_reset(&mut self) -> bool {
        std::mem::take(self.reset_seen)
    }

    fn atr(&self) -> Option<Vec<u8>> {
        Some(self.atr.clone())
    }
}
