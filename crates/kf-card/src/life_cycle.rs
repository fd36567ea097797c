//! Card (ISD) life cycle states and their transitions (GPC 2.3.1 §5.1.1,
//! Figure 5-1, coding of §11.1.1 Table 11-6).
//!
//! The fob keeps the card life cycle as [`kf_apdu::gp::CardLifeCycle`], the
//! type the station builds SET STATUS from, so both sides share one coding
//! and one transition rule
//! ([`kf_apdu::gp::CardLifeCycle::may_transition_to`]).

/// The card life cycle state, inherited by the Issuer Security Domain (GPC
/// 2.3.1 §5.1.1): the name the fob's API has for
/// [`kf_apdu::gp::CardLifeCycle`].
pub use kf_apdu::gp::CardLifeCycle as IsdLifeCycle;
