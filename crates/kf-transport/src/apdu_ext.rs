//! Typed APDUs over any [`Transport`], using the `kf-apdu` codec.
//!
//! The command's own sensitivity flag ([`CommandApdu::is_sensitive`]) goes
//! with its bytes ([`RawApdu`]), so a trace recorder below redacts it without
//! the caller repeating the flag.

use kf_apdu::{CommandApdu, ResponseApdu};

use crate::error::TransportError;
use crate::transport::{RawApdu, Sensitivity, Transport};

/// Sends [`CommandApdu`]s and parses [`ResponseApdu`]s on any transport.
pub trait TransportExt: Transport {
    /// Encodes `command` (short form when it fits), sends it with its
    /// sensitivity and parses the response.
    fn transmit_apdu(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError> {
        let raw = self.transmit(RawApdu::new(&command.to_bytes(), Sensitivity::of(command)))?;
        ResponseApdu::parse(&raw)
            .map_err(|e| TransportError::Protocol(format!("malformed response APDU: {e}")))
    }
}

impl<T: Transport + ?Sized> TransportExt for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::EchoCard;
    use crate::iso7816::Iso7816Driver;
    use crate::loopback::LoopbackTransport;
    use crate::trace::TracingTransport;

    #[test]
    fn typed_apdu_roundtrip_uses_the_command_sensitivity() {
        let tracer = TracingTransport::new(LoopbackTransport::new(EchoCard::default()));
        let trace = tracer.trace();
        let mut driver = Iso7816Driver::new(tracer);

        let public = CommandApdu::new(0x80, 0x10, 0x00, 0x00).with_data(vec![0x11, 0x22]);
        let resp = driver.transmit_apdu(&public).unwrap();
        assert_eq!(resp.data(), &[0x11, 0x22]);
        assert!(resp.is_success());

        let secret = CommandApdu::new(0x80, 0x10, 0x01, 0x00)
            .with_data(vec![0xDE, 0xAD])
            .sensitive();
        let resp = driver.transmit_apdu(&secret).unwrap();
        assert_eq!(resp.data(), &[0xDE, 0xAD]);

        let entries = trace.entries();
        assert!(!entries[0].redacted && !entries[1].redacted);
        assert!(entries[2..].iter().all(|e| e.redacted), "{entries:?}");
        assert!(entries.iter().all(|e| !e.apdu_hex.contains("dead")));
    }
}
