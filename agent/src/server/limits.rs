//! The endpoint's resource bounds (body size, timeouts, connection caps, lifetimes, concurrent
//! uploads, descriptors, how much of an answer is shown) and the small bookkeeping that
//! enforces the per-address cap and throttles repeated warnings. No I/O; `http` applies them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Descriptors kept free for everything that is not a client connection: the listener, the
/// runtime, the log, and above all an apply (directory descriptors, staged files, the
/// journal), which must never fail for lack of one.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// Bounds that keep one client (slow, large or many-connection) from holding the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest configuration accepted (the XML body, or the file inside a form): 413 above.
    pub max_file: usize,
    /// Extra bytes a multipart form may carry around the file (boundaries, headers, token).
    pub form_overhead: usize,
    /// When a token is required and not sent in the `Authorization` header: how many bytes
    /// of a form are read before its `token` field must have arrived (401 otherwise).
    pub form_before_token: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a request's headers to arrive; also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout: Duration,
    /// Time allowed for a request's body to arrive once the headers are in (408 after).
    pub body_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Connections served at once from one address (one /64 for IPv6); more are closed
    /// right after `accept`.
    pub max_per_address: usize,
    /// Age (from `accept`) after which a connection is closed once its current request is
    /// answered (a request then in progress gets `body_timeout` more).
    pub max_lifetime: Duration,
    /// Requests served on one connection; the last one is answered with `Connection: close`.
    pub max_requests: usize,
    /// Upload bodies read (and validated) at once.
    pub max_uploads: usize,
    /// How long an upload waits for one of those slots before it gets 503.
    pub upload_wait: Duration,
    /// How long `accept` pauses after running out of descriptors (EMFILE, ENFILE).
    pub accept_backoff: Duration,
    /// At most one warning per this interval for a repeated condition (descriptors
    /// exhausted, clients refused or over their cap).
    pub warn_interval: Duration,
    /// How long shutdown waits for open connections and a running apply.
    pub shutdown_grace: Duration,
    /// Findings listed in a 422 reply (the rest are counted).
    pub reply_diagnostics: usize,
    /// Bytes of findings' text (paths, messages, help) in a 422 reply.
    pub reply_text: usize,
    /// Findings of the last attempt kept for `GET /api/v1/status` and the page.
    pub kept_diagnostics: usize,
    /// Bytes of findings' text kept for the status and the page.
    pub kept_text: usize,
    /// Characters kept of each message, help text and element path shown.
    pub message_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: nodeboot_config::MAX_FILE_SIZE,
            form_overhead: 64 * 1024,
            form_before_token: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_per_address: 16,
            max_lifetime: Duration::from_secs(60),
            max_requests: 100,
            max_uploads: 4,
            upload_wait: Duration::from_secs(2),
            accept_backoff: Duration::from_millis(100),
            warn_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            reply_diagnostics: 100,
            reply_text: 16 * 1024,
            kept_diagnostics: 20,
            kept_text: 2 * 1024,
            message_chars: 300,
        }
    }
}

/// `requested` connections clamped so that they, plus [`RESERVED_DESCRIPTORS`], fit in the
/// descriptor limit `nofile`; with the warning to log when it had to be lowered.
pub fn connections_within(requested: usize, nofile: u64) -> (usize, Option<String>) {
    let room = nofile.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if requested <= room {
        return (requested.max(1), None);
    }
    let warning = format!(
        "--max-connections {requested} lowered to {room}: the descriptor limit is {nofile} and \
         {RESERVED_DESCRIPTORS} are kept for the agent and an apply (raise LimitNOFILE in the \
         unit to serve more)"
    );
    (room, Some(warning))
}

/// The key connections are counted under: an IPv4 address (IPv4-mapped IPv6 included), or
/// the /64 network of an IPv6 address (one host usually owns a whole /64).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client address, for the per-address cap.
#[derive(Debug, Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// Counts one more connection from `ip`, unless `cap` are open already.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= cap.max(1) {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&address_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// At most one report per interval of a condition that may repeat thousands of times a
/// second (a log line each time would be a hot loop of its own).
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Notes one occurrence at `now`: `Some(n)` when it should be reported (with the `n`
    /// occurrences kept quiet since the last report), `None` to stay quiet.
    pub fn hit(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_in_the_descriptor_limit() {
        assert_eq!(connections_within(1024, 65536), (1024, None));
        assert_eq!(connections_within(1024, 1088), (1024, None));
        let (n, w) = connections_within(1024, 1024);
        assert_eq!(n, 960);
        let w = w.unwrap();
        assert!(w.contains("--max-connections 1024 lowered to 960"), "{w}");
        assert!(w.contains("LimitNOFILE"), "{w}");
        assert_eq!(connections_within(10, 20).0, 1);
        assert_eq!(connections_within(0, 65536).0, 1);
    }

    #[test]
    fn per_address_cap_counts_and_releases() {
        let t = Arc::new(PerAddress::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.enter(a, 2).unwrap();
        let _s2 = t.enter(a, 2).unwrap();
        assert!(t.enter(a, 2).is_none());
        assert!(t.enter(b, 2).is_some(), "another address has its own count");
        assert!(
            t.enter("::ffff:10.0.0.1".parse().unwrap(), 2).is_none(),
            "an IPv4-mapped address counts as the IPv4 address"
        );
        drop(s1);
        assert_eq!(t.open_from(a), 1);
        assert!(t.enter(a, 2).is_some());
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let t = Arc::new(PerAddress::default());
        let _s = t.enter("2001:db8:1:2::1".parse().unwrap(), 1).unwrap();
        assert!(
            t.enter("2001:db8:1:2:ffff::9".parse().unwrap(), 1)
                .is_none()
        );
        assert!(t.enter("2001:db8:1:3::1".parse().unwrap(), 1).is_some());
    }

    #[test]
    fn throttle_reports_once_per_interval_with_the_count_in_between() {
        let mut t = Throttle::default();
        let start = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(t.hit(start, 5 * s), Some(0));
        assert_eq!(t.hit(start + s, 5 * s), None);
        assert_eq!(t.hit(start + 2 * s, 5 * s), None);
        assert_eq!(t.hit(start + 5 * s, 5 * s), Some(2));
        assert_eq!(t.hit(start + 6 * s, 5 * s), None);
    }
}
