//! sks (work in progress).
