//! The nodeboot agent: receives a node's configuration (HTTPS endpoint or console wizard),
//! applies it all-or-nothing under a root directory, and reboots.
//!
//! `apply` is the only module that writes a node's files; `server` and `wizard` hand it a
//! validated configuration.

pub mod apply;
pub mod cmdline;
pub mod health;
pub mod rootfs;
pub mod server;
pub mod source;
pub mod wizard;
