//! Shared pieces of the example applications.
