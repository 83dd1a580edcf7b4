//! Offline commands: `validate` checks configuration files, `generate` writes one from flags
//! or an inventory. Neither touches the network.

pub mod generate;
pub mod validate;
