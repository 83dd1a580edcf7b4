//! Checks after the reboot: does the node reach what its configuration names?
//!
//! [`plan_checks`] turns a validated [`NodeConfig`] into a list of [`Check`] values (pure: no
//! I/O); [`run_checks`] carries them out through a [`Probe`] (the real one is
//! [`SystemProbe`]: netlink/proc for addresses and routes, ARP on a packet socket, neighbour
//! solicitation on a raw ICMPv6 socket, DNS and NTP over UDP, a TCP connect), all at once, each
//! with its own deadline and retries while links come up, and gives one
//! [`CheckResult`](nodeboot_config::api::CheckResult) per check. It does not decide what to do
//! about a failure (rollback, banner, status): its callers do.

pub mod boot;
mod plan;
mod probe;
pub mod records;
mod run;
mod wire;

pub use plan::{Check, DnsQuery, plan_checks};
pub use probe::{ArpSender, KernelRoute, Probe, SystemProbe};
pub use run::{Policy, report, run_checks};
pub use wire::{
    DnsReply, NtpReply, ReplyError, build_dns_query, build_ntp_request, parse_dns_reply,
    parse_ntp_reply,
};
