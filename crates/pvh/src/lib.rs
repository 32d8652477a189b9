//! (crate in progress)
