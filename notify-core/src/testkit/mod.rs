//! Conformance suites.
pub mod store;
