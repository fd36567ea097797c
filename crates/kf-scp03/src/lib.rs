//! Sans-IO GlobalPlatform SCP03 (Card Specification v2.2 Amendment D v1.1.1),
//! host and card, plus the offline replay calculator.
//!
//! Data flow (bytes in, bytes out; a driver moves them over a transport):
//!
//! ```text
//! host                                                   card
//! HostSession::initialize_update ── 80 50 KVN 00 hc ──▶ CardSession::initialize_update
//!   AwaitingCardResponse ◀── KDD|KVN|03|i|cc|ccrypt|[seq] ──┘   (session keys §6.2.1)
//!   ::process_response (check card cryptogram §6.2.2.2, pseudo-random challenge §6.2.2.1)
//!   ── 84 82 level 00 hostcrypt|C-MAC ──▶ CardAwaitingAuthentication::external_authenticate
//!   AwaitingExternalAuthenticate::complete ◀── 9000 ──┘
//! SecureChannel::wrap ── C-DEC + C-MAC (§6.2.4, §6.2.6) ──▶ CardChannel::unwrap_command
//! SecureChannel::unwrap ◀── R-ENC + R-MAC (§6.2.5, §6.2.7) ── CardChannel::wrap_response
//! ```
//!
//! States are consuming types; any cryptographic failure terminates the
//! channel, erases the session keys, and every later call returns the same
//! [`Scp03Error::Terminated`]. [`replay`] recomputes a captured session offline.
//!
//! Scope notes: BEGIN/END R-MAC SESSION (Amd D §7.1.3–7.1.4) are not
//! implemented; R-MAC is fixed for the session by EXTERNAL AUTHENTICATE. Only
//! explicit secure channel initiation exists (as Amd D §6.2.3 mandates).
//!
//! Depends on `kf-crypto` and `kf-apdu` only; it must not depend on a transport, the pipeline
//! or a card implementation (the virtual fob drives `CardSession`, not the other way round).

mod capacity;
mod card;
mod channel;
mod error;
mod host;
mod iu;
mod params;
mod rng;
mod session;

pub mod replay;
pub mod sm;

pub use capacity::{
    data_bytes_per_apdu, encrypted_len, max_plain_data_len, wrapped_data_len, LengthForm,
};
pub use card::{
    CardAwaitingAuthentication, CardChannel, CardConfig, CardKeySet, CardSession,
    MAX_SEQUENCE_COUNTER,
};
pub use channel::DEFAULT_COMMAND_LIMIT;
pub use error::{Scp03Error, TerminationCause};
pub use host::{AwaitingCardResponse, AwaitingExternalAuthenticate, HostSession, SecureChannel};
pub use iu::{InitializeUpdateResponse, KDD_LEN, SCP_IDENTIFIER};
pub use params::{Mode, ParameterI, SecurityLevel};
pub use rng::{ChallengeSource, OsRandom};
pub use session::{pseudo_random_card_challenge, Cryptogram, SessionKeys};
