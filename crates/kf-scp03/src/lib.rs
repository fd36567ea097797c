//! kf-scp03 (work in progress).
