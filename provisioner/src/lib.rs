//! The nodeboot provisioner: the operator's command line.
