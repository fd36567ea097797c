//! kf-source (work in progress).
