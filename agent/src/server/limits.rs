//! The endpoint's resource bounds: body size, timeouts, connection cap. Data only; `http`
//! enforces them.

use std::time::Duration;

/// Bounds that keep one client (slow, large or many-connection) from holding the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest configuration accepted (the XML body, or the file inside a form): 413 above.
    pub max_file: usize,
    /// Extra bytes a multipart form may carry around the file (boundaries, headers, token).
    pub form_overhead: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a request's headers to arrive; also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout: Duration,
    /// Time allowed for a request's body to arrive once the headers are in (408 after).
    pub body_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long shutdown waits for open connections and a running apply.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: nodeboot_config::MAX_FILE_SIZE,
            form_overhead: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
