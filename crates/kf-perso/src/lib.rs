//! kf-perso (work in progress).
