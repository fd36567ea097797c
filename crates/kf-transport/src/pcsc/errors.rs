//! pcsc error codes → [`TransportError`].

use crate::error::TransportError;

/// Maps a PC/SC error to a typed transport error. `reader` names the reader
/// for "unknown reader" messages.
pub fn map_pcsc_error(err: ::pcsc::Error, reader: Option<&str>) -> TransportError {
    use ::pcsc::Error as E;
    match err {
        E::RemovedCard => TransportError::CardRemoved,
        E::ResetCard => TransportError::CardReset,
        E::NoSmartcard => TransportError::NoCard,
        E::UnpoweredCard | E::UnresponsiveCard => TransportError::CardUnresponsive,
        E::NoService | E::ServiceStopped => TransportError::NoService,
        E::Timeout => TransportError::Timeout,
        E::Cancelled => TransportError::Cancelled,
        E::SharingViolation => TransportError::SharingViolation,
        E::UnknownReader => TransportError::NoReader(reader.unwrap_or("?").to_owned()),
        E::ReaderUnavailable | E::NoReadersAvailable => TransportError::ReaderUnavailable,
        E::ProtoMismatch | E::UnsupportedCard | E::CardUnsupported => {
            TransportError::Protocol(format!("card protocol not supported: {err}"))
        }
        E::CommError | E::CommDataLost => {
            TransportError::Io(format!("reader communication error: {err}"))
        }
        other => TransportError::Other(format!("PC/SC: {other} ({:#010X})", other as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_session_relevant_codes() {
        use ::pcsc::Error as E;
        for (code, mapped) in [
            (E::RemovedCard, TransportError::CardRemoved),
            (E::ResetCard, TransportError::CardReset),
            (E::NoService, TransportError::NoService),
            (E::ServiceStopped, TransportError::NoService),
            (E::Timeout, TransportError::Timeout),
            (E::SharingViolation, TransportError::SharingViolation),
            (E::Cancelled, TransportError::Cancelled),
        ] {
            assert_eq!(map_pcsc_error(code, None), mapped, "{code:?}");
        }
        assert_eq!(
            map_pcsc_error(E::UnknownReader, Some("Virtual PCD 00 00")),
            TransportError::NoReader("Virtual PCD 00 00".into())
        );
        let other = map_pcsc_error(E::InvalidHandle, None).to_string();
        assert!(other.contains("0x80100003"), "{other}");
    }
}
