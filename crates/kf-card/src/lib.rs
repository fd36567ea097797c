//! kf-card (work in progress).
