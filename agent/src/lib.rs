//! The nodeboot agent: receives a node's configuration, applies it, reboots.
