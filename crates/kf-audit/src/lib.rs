//! kf-audit (work in progress).
