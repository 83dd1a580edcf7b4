//! End-to-end suites for nodeboot: they drive the built binaries from outside.
//!
//! The library holds the fixtures those suites and the agent's and provisioner's own tests
//! share (a dev-dependency of both; it depends on neither, only on `nodeboot-config`), and
//! TLS clients built on the one pin verifier (`tls`), programs driven on a pty (`pty`).

// Test support: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

pub mod fixtures;
pub mod netlab;
pub mod pty;
pub mod require;
pub mod run;
pub mod tls;
