//! One HTTP/1.1 request to a metadata service, with the limits every request has: a connect
//! timeout, a timeout for the whole answer, a bound on the answer's size, and retries with
//! exponential backoff and jitter on connect errors, timeouts and the platform's retryable
//! statuses, all inside the source's deadline. hyper's client over a tokio `TcpStream`
//! (bound to the node's interface when one is given). Never logs a header or a body.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::time::{Instant, timeout};

use super::{Env, FetchError};

/// One request. No Debug: its headers may hold a session token.
pub(super) struct Req<'a> {
    /// "Oracle Cloud metadata": the start of every error message.
    pub who: &'a str,
    pub method: Method,
    pub addr: SocketAddr,
    /// Origin-form path and query.
    pub path: &'a str,
    /// Extra headers; their values are never shown (the EC2 token travels here).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<String>,
    /// The largest answer body accepted; a larger one is an error at once, not retried.
    pub limit: usize,
    /// The statuses that are retried.
    pub retry: fn(StatusCode) -> bool,
}

/// An answer with a status that is not retried. No Debug: its body is a payload.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// 5xx and 429: retried on every platform.
pub(super) fn retry_default(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS
}

/// Azure IMDS also answers 404 and 410 while it starts.
pub(super) fn retry_azure_imds(s: StatusCode) -> bool {
    retry_default(s) || s == StatusCode::NOT_FOUND || s == StatusCode::GONE
}

enum Failure {
    /// Worth another try: connection refused or reset, a timeout, a retryable status.
    Retry(String),
    /// Not: an answer over the size bound.
    Fatal(FetchError),
}

/// Sends `req`, retrying until it gets a non-retryable answer or `deadline` passes; the error
/// then names the last failure and the number of attempts.
pub(super) async fn send(
    env: &Env,
    req: &Req<'_>,
    deadline: Instant,
) -> Result<Answer, FetchError> {
    let mut pause = env.budgets.backoff_first;
    let mut attempts = 0u32;
    let started = Instant::now();
    let mut last = String::from("no attempt fit in the time budget");
    loop {
        let now = Instant::now();
        if now < deadline {
            attempts += 1;
            last = match attempt(env, req, deadline - now).await {
                Ok(a) if (req.retry)(a.status) => format!("answered {}", a.status),
                Ok(a) => return Ok(a),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(why)) => why,
            };
        }
        let sleep = jitter(pause, attempts);
        if Instant::now() + sleep >= deadline {
            return Err(FetchError::unavailable(format!(
                "{}: {} {}: {last} ({attempts} attempt{} in {:.1} s, the time budget is used)",
                req.who,
                req.method,
                req.path,
                if attempts == 1 { "" } else { "s" },
                started.elapsed().as_secs_f32()
            )));
        }
        tracing::info!(who = req.who, path = req.path, attempt = attempts, why = %last, "retrying");
        tokio::time::sleep(sleep).await;
        pause = (pause * 2).min(env.budgets.backoff_max);
    }
}

/// A pause between half and all of `pause`, drawn from the standard library's random hasher
/// keys (no random-number crate needed for jitter).
fn jitter(pause: Duration, attempt: u32) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let r = h.finish() % 1024;
    let half = pause / 2;
    half + half.mul_f64(r as f64 / 1024.0)
}

async fn attempt(env: &Env, req: &Req<'_>, remaining: Duration) -> Result<Answer, Failure> {
    let socket = if req.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Failure::Retry(format!("cannot open a socket: {e}")))?;
    if let Some(ifname) = &env.interface {
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(|e| Failure::Retry(format!("cannot bind to {ifname}: {e}")))?;
    }
    let stream = match timeout(env.budgets.connect.min(remaining), socket.connect(req.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Failure::Retry(format!("cannot connect: {e}"))),
        Err(_) => {
            return Err(Failure::Retry(
                "no connection within the connect timeout".into(),
            ));
        }
    };
    let read = env.budgets.read.min(remaining);
    match timeout(read, exchange(stream, req)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Retry(format!(
            "no complete answer within {} s",
            read.as_secs_f32()
        ))),
    }
}

async fn exchange(stream: tokio::net::TcpStream, req: &Req<'_>) -> Result<Answer, Failure> {
    let protocol = |e: hyper::Error| Failure::Retry(format!("HTTP error: {e}"));
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(protocol)?;
    let driver = tokio::spawn(conn);
    let _abort = AbortOnDrop(driver);
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(req.path)
        .header(hyper::header::HOST, req.addr.to_string())
        .header(hyper::header::USER_AGENT, "nodeboot-agent");
    for (k, v) in req.headers {
        builder = builder.header(*k, *v);
    }
    let body = req.body.clone().unwrap_or_default();
    let request = builder.body(Full::new(Bytes::from(body))).map_err(|e| {
        Failure::Fatal(FetchError::unavailable(format!(
            "{}: bad request {}: {e}",
            req.who, req.path
        )))
    })?;
    let response = sender.send_request(request).await.map_err(protocol)?;
    let status = response.status();
    let oversize = || {
        Failure::Fatal(FetchError::invalid(format!(
            "{}: {} {}: the answer is over the limit of {} bytes",
            req.who, req.method, req.path, req.limit
        )))
    };
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let success = status.is_success();
    if success && declared.is_some_and(|n| n > req.limit as u64) {
        return Err(oversize());
    }
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(protocol)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > req.limit {
                if success {
                    return Err(oversize());
                }
                // An error page's body is not used: stop reading it.
                break;
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Answer { status, body: out })
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all() {
        for i in 0..100 {
            let j = jitter(Duration::from_millis(400), i);
            assert!(
                j >= Duration::from_millis(200) && j <= Duration::from_millis(400),
                "{j:?}"
            );
        }
    }

    #[test]
    fn retryable_statuses() {
        assert!(retry_default(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retry_default(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retry_default(StatusCode::NOT_FOUND));
        assert!(retry_azure_imds(StatusCode::NOT_FOUND));
        assert!(retry_azure_imds(StatusCode::GONE));
        assert!(!retry_azure_imds(StatusCode::FORBIDDEN));
    }
}
