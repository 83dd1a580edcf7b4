//! The connection layer: accept loop (allow-list and per-address cap before any TLS work,
//! connection cap, back-off when descriptors run out, TLS handshake with a timeout, a
//! lifetime and a request count per connection, graceful shutdown) and HTTP/1.1 on each
//! connection, where every request goes through the same steps: [`route`] (pure) →
//! [`act`] (the effects) → [`render`] (pure). The apply of an accepted upload starts only
//! once its connection has sent the reply and closed.
//!
//! It writes no file: the node's files are the `apply` module's, reached through `Node`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use nodeboot_config::text::printable_line;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

pub use super::agent::Agent;
use super::effect::{Slot, act, run_apply};
use super::limits::{PerAddress, Throttle};
use super::render::render;
use super::route::route;
use super::status::shorten;

/// Serves HTTPS on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish (and a running apply end) within the grace period, and returns.
///
/// Tests bind `127.0.0.1:0` and call this directly; `nodeboot-agent serve` binds `:8443`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    agent: Arc<Agent>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = agent.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let (mut exhausted, mut refused, mut over_cap) = (
        Throttle::default(),
        Throttle::default(),
        Throttle::default(),
    );
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE): the client stays in the backlog;
                    // pause instead of spinning, and say so once per interval.
                    let pause = if out_of_descriptors(&e) {
                        limits.accept_backoff
                    } else {
                        Duration::from_millis(10)
                    };
                    if let Some(quiet) = exhausted.hit(Instant::now(), limits.warn_interval) {
                        warn!(
                            error = %e,
                            open = connections.len(),
                            repeated = quiet,
                            "accepting a connection failed: pausing {} ms",
                            pause.as_millis()
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        // Refused before any TLS work: the socket is closed at once.
        if !agent.access.peer_allowed(peer.ip()) {
            drop(tcp);
            if let Some(quiet) = refused.hit(Instant::now(), limits.warn_interval) {
                info!(%peer, repeated = quiet, "connection refused: address outside --allow");
            }
            continue;
        }
        let Some(address_slot) = per_address.enter(peer.ip(), limits.max_per_address) else {
            drop(tcp);
            if let Some(quiet) = over_cap.hit(Instant::now(), limits.warn_interval) {
                warn!(
                    %peer,
                    cap = limits.max_per_address,
                    repeated = quiet,
                    "connection refused: too many open from this address"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + limits.max_lifetime;
        let acceptor = acceptor.clone();
        let agent = agent.clone();
        let closing = closing_rx.clone();
        connections.spawn(async move {
            serve_connection(tcp, peer, acceptor, agent, closing, deadline).await;
            drop(address_slot);
            drop(permit);
        });
    }
    info!("shutting down: no new connections");
    drop(listener);
    let _ = closing_tx.send(true);
    let grace = agent.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "closing connections still open after the grace period"
        );
        connections.shutdown().await;
    }
    info!("stopped");
}

/// Whether `accept` failed for want of a file descriptor (the process's or the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::EMFILE as i32 || c == Errno::ENFILE as i32)
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    agent: Arc<Agent>,
    mut closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) {
    let handshake = tokio::time::timeout(agent.limits.handshake_timeout, acceptor.accept(tcp));
    let stream = tokio::select! {
        () = tokio::time::sleep_until(deadline) => return,
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                info!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = closing.changed() => return,
    };
    // An idle connection costs only its TLS state: hyper's buffers (8 KiB and more) and its
    // connection future are allocated when the first request bytes arrive. When rustls
    // already holds decrypted bytes it does not want a read, and hyper starts at once.
    if stream.get_ref().1.wants_read() {
        tokio::select! {
            r = stream.get_ref().0.readable() => {
                if r.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(agent.limits.header_timeout) => {
                info!(%peer, "idle connection closed (no request)");
                return;
            }
            () = tokio::time::sleep_until(deadline) => return,
            _ = closing.changed() => return,
        }
    }
    Box::pin(serve_http(stream, peer, agent, closing, deadline)).await;
}

/// HTTP/1.1 on an established TLS connection, then the apply of an upload it accepted.
async fn serve_http(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    agent: Arc<Agent>,
    mut closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) {
    let slot: Slot = Arc::new(Mutex::new(None));
    let served = Arc::new(AtomicUsize::new(0));
    let service = {
        let agent = agent.clone();
        let slot = slot.clone();
        hyper::service::service_fn(move |req| {
            let agent = agent.clone();
            let slot = slot.clone();
            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let method = req.method().clone();
                let path = shorten(&printable_line(req.uri().path()), 200);
                let routed = route(&req);
                let answer = act(routed.action, req.into_body(), &agent, &slot).await;
                let mut resp = render(&answer, routed.format).into_response(routed.head_only);
                info!(%peer, %method, %path, status = resp.status().as_u16(), "request");
                if n >= agent.limits.max_requests {
                    // The connection's last request: hyper closes it after this reply.
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(agent.limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
        () = tokio::time::sleep_until(deadline) => {
            // Closed now when idle; a request in progress gets the body timeout to finish.
            info!(%peer, "connection closed: it reached its lifetime");
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(agent.limits.body_timeout, conn.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        info!(%peer, error = %e, "connection ended with an error");
    }
    // The reply of an accepted upload has been written out and the connection closed: only
    // now may the node's configuration (its network, above all) change.
    let pending = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(p) = pending {
        run_apply(&agent, p).await;
    }
}
