//! The nodeboot provisioner: the operator's command line.
//!
//! `offline` (validate, generate) needs nothing but files; `push` talks HTTPS to nodes;
//! `console` drives a serial-console wizard. The three never depend on one another;
//! `secret_file` (how a file holding a token, passwords or a transcript is opened) serves
//! `push` and `console` alike.

pub mod cmdline;
pub mod console;
pub mod offline;
pub mod push;
pub mod secret_file;
