//! kf-klms (work in progress).
