//! The typed domain model built from [`crate::Settings`].
