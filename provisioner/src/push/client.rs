//! One HTTPS exchange with a node's endpoint: TCP connect, TLS with the shared
//! [`PinningVerifier`],
//! an HTTP/1.1 request, the whole reply. No retries and no policy: the caller decides what a
//! failure means ([`ClientError::is_retryable`]).
//!
//! Each request opens its own connection: a node is asked a handful of things, and the
//! agent may go away between two of them (it reboots).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use nodeboot_config::pin::PinningVerifier;

use super::trust::{Fingerprint, Policy};

/// The largest reply we read from a node (status and error lists are small).
const MAX_REPLY: usize = 1024 * 1024;

/// Where a node's endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// A host name or an IP address (an IPv6 address without brackets).
    pub host: String,
    /// The TCP port (8443 unless told otherwise).
    pub port: u16,
}

pub use nodeboot_config::api::DEFAULT_PORT;

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
    pub fn parse(text: &str, default_port: u16) -> Result<Self, String> {
        let text = text.trim();
        let bad =
            || format!("`{text}` is not a node address (expected host, host:port or [ipv6]:port)");
        if text.is_empty() {
            return Err(bad());
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            return Ok(Endpoint {
                host: host.to_string(),
                port,
            });
        }
        if text.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(Endpoint {
                host: text.to_string(),
                port: default_port,
            });
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                let port = port.parse().map_err(|_| bad())?;
                Ok(Endpoint {
                    host: host.to_string(),
                    port,
                })
            }
            Some(_) => Err(bad()),
            None => Ok(Endpoint {
                host: text.to_string(),
                port: default_port,
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A request to send: method, path, optional bearer token, optional XML body.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET` or `POST`.
    pub method: hyper::Method,
    /// The path: one of `nodeboot_config::api`'s.
    pub path: &'static str,
    /// The bootstrap token, sent as `Authorization: Bearer`.
    pub token: Option<&'a nodeboot_config::Secret<String>>,
    /// The configuration file, sent as `text/xml`.
    pub body: Option<Bytes>,
}

/// A node's whole reply.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: hyper::StatusCode,
    /// The body (JSON from our agent).
    pub body: Bytes,
    /// The certificate fingerprint the node presented.
    pub fingerprint: Option<Fingerprint>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens yet, or the network path is not there (the node may be booting).
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The exchange did not finish in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node's certificate is not the one expected; nothing was sent.
    #[error("certificate {seen} does not match the expected {expected}")]
    Mismatch {
        /// What we pinned.
        expected: Fingerprint,
        /// What the node presented.
        seen: Fingerprint,
    },
    /// The node is neither pinned nor known and first use was not allowed: the handshake
    /// stopped at its certificate, nothing was sent.
    #[error("certificate {seen} is neither pinned nor known")]
    Unknown {
        /// What the node presented.
        seen: Fingerprint,
    },
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The connection broke during the HTTP exchange.
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a token with characters a header cannot carry).
    #[error("invalid request: {0}")]
    Request(String),
}

impl ClientError {
    /// Whether trying again later may help: the node is not up yet, or went away mid-way.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect(_) | ClientError::Timeout(_) | ClientError::Http(_) => true,
            ClientError::Tls(e) => matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
            ClientError::Mismatch { .. }
            | ClientError::Unknown { .. }
            | ClientError::Request(_) => false,
        }
    }
}

/// A TLS client configuration for one connection under `policy`, and its verifier (which
/// remembers the fingerprint seen).
fn tls_config(
    policy: Policy,
) -> Result<(Arc<rustls::ClientConfig>, Arc<PinningVerifier>), ClientError> {
    let verifier = PinningVerifier::new(policy.accept());
    let config = PinningVerifier::client_config(verifier.clone())
        .map_err(|e| ClientError::Request(e.to_string()))?;
    Ok((Arc::new(config), verifier))
}

/// Sends one request to `endpoint` and reads the whole reply, all within `timeout`.
///
/// The TLS handshake finishes, and the certificate passes `policy`, before any byte of the
/// request leaves this machine.
pub async fn exchange(
    endpoint: &Endpoint,
    policy: Policy,
    request: Request<'_>,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    match tokio::time::timeout(timeout, exchange_inner(endpoint, policy, request)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(timeout)),
    }
}

async fn exchange_inner(
    endpoint: &Endpoint,
    policy: Policy,
    request: Request<'_>,
) -> Result<Reply, ClientError> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(ClientError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (config, verifier) = tls_config(policy)?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| ClientError::Request(format!("`{}`: {e}", endpoint.host)))?;
    let tls = match TlsConnector::from(config).connect(name, tcp).await {
        Ok(tls) => tls,
        Err(e) => {
            match (policy, verifier.seen()) {
                (Policy::Pinned(expected), Some(seen)) if verifier.mismatched() => {
                    return Err(ClientError::Mismatch { expected, seen });
                }
                (Policy::Unknown, Some(seen)) => return Err(ClientError::Unknown { seen }),
                _ => {}
            }
            return Err(ClientError::Tls(e));
        }
    };
    let fingerprint = verifier.seen();

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    let driver = tokio::spawn(connection);

    let host = endpoint.to_string();
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(request.path)
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("nodeboot/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(token) = request.token {
        let mut value = hyper::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| {
                ClientError::Request("the token holds characters a header cannot carry".into())
            })?;
        value.set_sensitive(true);
        builder = builder.header(hyper::header::AUTHORIZATION, value);
    }
    let body = match request.body {
        Some(body) => {
            builder = builder.header(hyper::header::CONTENT_TYPE, "text/xml");
            body
        }
        None => Bytes::new(),
    };
    let req = builder
        .body(Full::new(body))
        .map_err(|e| ClientError::Request(e.to_string()))?;
    let response = sender.send_request(req).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_REPLY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    drop(sender);
    driver.abort();
    Ok(Reply {
        status,
        body,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_and_without_port() {
        let cases = [
            ("10.0.0.31", "10.0.0.31", 8443),
            ("10.0.0.31:9443", "10.0.0.31", 9443),
            ("node1.example.com", "node1.example.com", 8443),
            ("[fd00::1]", "fd00::1", 8443),
            ("[fd00::1]:9", "fd00::1", 9),
            ("fd00::1", "fd00::1", 8443),
        ];
        for (text, host, port) in cases {
            let ep = Endpoint::parse(text, DEFAULT_PORT).unwrap();
            assert_eq!((ep.host.as_str(), ep.port), (host, port), "{text}");
        }
        assert_eq!(
            Endpoint::parse("fd00::1", 8443).unwrap().to_string(),
            "[fd00::1]:8443"
        );
        assert_eq!(Endpoint::parse("n:1", 8443).unwrap().to_string(), "n:1");
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for bad in [
            "",
            ":8443",
            "host:port",
            "[fd00::1",
            "[fd00::1]x",
            "h:99999",
        ] {
            let err = Endpoint::parse(bad, DEFAULT_PORT).unwrap_err();
            assert!(err.contains("is not a node address"), "{bad}: {err}");
        }
    }
}
