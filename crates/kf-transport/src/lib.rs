//! kf-transport (work in progress).
