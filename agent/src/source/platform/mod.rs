//! The cloud or hypervisor a node runs on, detected from DMI (`/sys/class/dmi/id`) or named on
//! the kernel command line (`nodeboot.platform=NAME`), and its metadata service.
//!
//! Contract with the chain in `crate::source`:
//! - `detect(dmi_dir, kernel_cmdline) -> Option<Platform>`: pure apart from reading the DMI
//!   files; `None` means nothing is probed on the network.
//! - `fetch(platform, &Endpoint…) -> Result<Option<Found>, FetchError>` (async): `Ok(None)` is
//!   "the platform has no configuration for this node" (fall through); `Err` is "the service
//!   could not be read within its budget" (the chain logs it and falls through, and the banner
//!   says so).
