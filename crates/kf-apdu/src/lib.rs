//! kf-apdu (work in progress).
