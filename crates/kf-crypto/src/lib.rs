//! kf-crypto (work in progress).
