//! End-to-end suites for nodeboot: they drive the built binaries from outside.
