//! A virtual NXP JCOP 4 key fob: the Issuer Security Domain and the key-fob
//! applet of the provisioning specification, behind GlobalPlatform SCP03, for tests without hardware
//! (in-process loopback) and for a real pcscd through vsmartcard's vpcd.
//!
//! Simulator only: it must not be linked into production paths except behind
//! the station's `sim`/`demo` features (ARCHITECTURE crate map).
//!
//! ```text
//! APDU bytes ─▶ CLA screen ─▶ [84: SCP03 unwrap (kf-scp03 card side)] ─▶ ISD | applet handler
//!                                                                            │
//!   STORE DATA blocks ─▶ perso (DGI reassembly, A003 DEK decrypt, checks) ─▶ staged in RAM
//!   last block ─▶ commit: PERSONALIZED ─▶ state file (atomic write) ─▶ response ─▶ [SCP03 wrap]
//! ```
//!
//! # Command set and status words
//!
//! After power-on the ISD is selected. Commands with CLA b3 set (`84`) go
//! through the secure channel; a bad C-MAC or layout closes it (6982).
//!
//! | Command | APDU | Where | Success | Errors |
//! |---|---|---|---|---|
//! | GET UID (PC/SC part 3) | `FF CA 00 00 00` | always | UID + 9000 | 6Cxx (Le short), 6282 (Le long), 6A81 (other P1/P2) |
//! | GET ATS hist. bytes | `FF CA 01 00 00` | always | hist. bytes + 9000 | as above |
//! | SELECT by name | `00 A4 04 00 Lc AID [00]` | always | FCI + 9000 (P2 0C: no FCI) | 6A82 unknown AID / file selection (P1 00–02, 08, 09) / next occurrence, 6A86 other P1/P2, 6A81 applet while CARD_LOCKED, 6283 ISD while CARD_LOCKED (warning, FCI returned) |
//! | INITIALIZE UPDATE | `80 50 KVN 00 Lc host-challenge [00]` | ISD or applet | key data + 9000 | 6A88 unknown KVN, 6700 challenge length ≠ 8 (S8) / 16 (S16), 6A86 P2 ≠ 00 or CLA 84, 6E00 ISO class, 6985 sequence counter exhausted, 6581 state file write failed (also: a counted authentication failure still unsaved) |
//! | EXTERNAL AUTHENTICATE | `84 82 level 00 10 cryptogram+MAC` | after INITIALIZE UPDATE | 9000, channel open | 6982 wrong host cryptogram or MAC (counted in `auth_failures`; 6581 when the count cannot be saved), 6A86 level not allowed by i or below C-MAC (01), 6985 no INITIALIZE UPDATE just before |
//! | GET DATA | `00/80 CA 00 E0 00` | ISD | key information template + 9000 | 6A88 any other tag (e.g. `9F7F` CPLC, `0066`) |
//! | SET STATUS (ISD) | `84 F0 80 state` | ISD, secure channel | 9000 | 6982 no channel, 6A80 unknown state code, 6985 transition not allowed (GPC Figure 5-1, incl. to the current state), 6A88 P1 40/60, 6A86 other P1, 6581 state file write failed |
//! | GET STATUS | `84 F2 80/40 00/02 02 4F00 00` | ISD, secure channel | entries + 9000 | 6982, 6A88 other P1, 6A86 other P2, 6A80 other data |
//! | STORE DATA | `84 E2 P1 P2 Lc DGI-bytes` | applet, secure channel (≥ C-MAC) | 9000 | 6982 no channel, 6985 already PERSONALIZED or a DGI missing at the last block, 6A86 bad P1 / P2 out of sequence, 6A88 unknown DGI, 6A80 bad DGI length/shape/padding/scalar, duplicate DGI or last block inside a DGI, 6581 state file write failed |
//! | PUT CONFIG (post-perso) | `00 DB 00 00 03 0A/0B 01 01` | applet, PERSONALIZED | 9000 | 6985 not PERSONALIZED, 6A86 P1P2, 6700 Lc ≠ 3, 6A80 bad length byte/value, 6A88 unknown id, 6581 state file write failed |
//! | VERIFY KEY PAIR | `00 88 00 00 Lc challenge 00` | applet, PERSONALIZED | DER ECDSA-P256-SHA256 signature + 9000 | 6985 not PERSONALIZED, 6A86 P1P2, 6700 challenge not 16–64 bytes |
//! | anything else | | | | 6D00 unknown INS (or INS of the other application), 6E00 unknown CLA, 6881 logical channel ≠ 0, 6882 ISO secure messaging, 6884 chaining, 6700 malformed APDU, 6985 card TERMINATED (except GET DATA) |
//!
//! A STORE DATA error discards every staged block (the applet stays
//! UNPERSONALIZED, nothing is written) and the next sequence starts again at
//! P2 = 00. SELECT, INITIALIZE UPDATE, power-off and reset end the secure
//! channel and any sequence in progress.
//!
//! # Persistence
//!
//! With a state file ([`FobConfig::with_state_file`]) the card data is saved
//! atomically after every committed change (personalization, transport flags,
//! life cycle, failed authentication). See [`state`] for the format; the file
//! is a test artifact holding keys in clear.
//!
//! Depends on `kf-apdu`, `kf-crypto`, `kf-scp03`, `kf-profile`, `kf-secret-file` and
//! `kf-transport`'s `VirtualCard` (feature `sim`); never on the pipeline, the sources or
//! the station.

mod applet;
pub mod atr;
mod channel;
mod config;
mod error;
mod fob;
mod isd;
pub mod life_cycle;
mod pcsc;
mod perso;
mod selected;
pub mod state;

pub use config::{dev_sample_keys, FobConfig, Uid, DEFAULT_SCP_I};
pub use error::FobError;
pub use fob::VirtualFob;
pub use kf_scp03::Mode;
pub use life_cycle::IsdLifeCycle;
pub use selected::Selected;
pub use state::TransportFlags;
