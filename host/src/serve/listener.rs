//! `serve`'s own accept loop, in place of `axum::serve`: the same routers behind bounds on what
//! a sender can hold (see [`Limits`]).
//!
//! - **Connections**: a cap per listener and per client address. At a cap, the oldest
//!   connection not being answered (idle, still sending its head or its body) is closed to make
//!   room; only when every one is being answered is the new one closed at once. So idle or slow
//!   connections, however many, never keep `/healthz` out.
//! - **Time**: the head within `header_timeout` (hyper's header-read timer, which also runs
//!   between requests on a kept-alive connection), the body within `body_timeout` (408), and no
//!   byte either way for `idle_timeout` closes a connection that is not being answered.
//! - **Memory**: a body is read before the router sees it, chunk by chunk, each chunk paid for
//!   from one budget of body bytes shared by both listeners (tokio semaphore, 1 permit per KiB).
//!   A body over its route's limit is refused (413); one the budget cannot hold is refused (503,
//!   `Retry-After`) rather than waited for. The permits return when the answer is ready.

use super::limits::Limits;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

/// Told each refusal: (listener, reason). Reasons: `connections` (closed at a cap),
/// `evicted` (an idle or slow connection closed to make room), `too-large`, `busy` (the body
/// budget), `timeout` (the body), `broken` (the body stopped halfway).
pub type OnRefusal = Arc<dyn Fn(&'static str, &'static str) + Send + Sync>;

/// What both listeners share: the limits, the body budget, the refusal counter.
pub struct Common {
    pub limits: Limits,
    budget: Arc<Semaphore>,
    budget_kib: usize,
    pub on_refusal: OnRefusal,
}

impl Common {
    pub fn new(limits: Limits, on_refusal: OnRefusal) -> Arc<Common> {
        let budget_kib = limits.body_budget_bytes.div_ceil(1024).max(1);
        Arc::new(Common { budget: Arc::new(Semaphore::new(budget_kib)), budget_kib, limits, on_refusal })
    }

    /// Body bytes held now (rounded to KiB).
    pub fn bodies_in_flight(&self) -> u64 {
        (self.budget_kib - self.budget.available_permits()) as u64 * 1024
    }
}

/// One listener: its name (for the metrics), router, caps, and each route's body limit.
pub struct Serving {
    pub name: &'static str,
    pub router: Router,
    pub max_connections: usize,
    pub per_client: usize,
    pub body_limit: fn(&Limits, &str) -> usize,
}

struct Conn {
    addr: IpAddr,
    opened: Instant,
    /// A request is being answered (its body was read): not evicted, not idle.
    busy: AtomicBool,
    /// Milliseconds since [`epoch`] of the last byte read or written.
    last: AtomicU64,
    kill: tokio::sync::Notify,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Arc<Conn>>,
}

impl Registry {
    /// Closes the oldest connection matching `which` that is not being answered.
    fn evict(&mut self, which: impl Fn(&Conn) -> bool) -> bool {
        let victim = self.open.iter().filter(|(_, c)| which(c) && !c.busy.load(Ordering::Acquire)).min_by_key(|(_, c)| c.opened).map(|(id, _)| *id);
        match victim.and_then(|id| self.open.remove(&id)) {
            Some(conn) => {
                conn.kill.notify_one();
                true
            }
            None => false,
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Accepts connections until `stop` is notified, then lets each finish its answer.
pub async fn run(listener: TcpListener, serving: Serving, common: Arc<Common>, stop: Arc<tokio::sync::Notify>) {
    let serving = Arc::new(serving);
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (shutdown, shutting_down) = tokio::sync::watch::channel(false);
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken: wait a
                    // little rather than spin.
                    tracing::warn!("serve: {} listener: accepting: {e}", serving.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let admitted = {
            let mut registry = registry.lock().unwrap();
            let ip = peer.ip();
            let mut evicted = 0;
            let mut room = true;
            if registry.open.values().filter(|c| c.addr == ip).count() >= serving.per_client {
                room = registry.evict(|c| c.addr == ip);
                evicted += room as usize;
            }
            if room && registry.open.len() >= serving.max_connections {
                room = registry.evict(|_| true);
                evicted += room as usize;
            }
            for _ in 0..evicted {
                (common.on_refusal)(serving.name, "evicted");
            }
            room.then(|| {
                registry.next += 1;
                let conn = Arc::new(Conn {
                    addr: ip,
                    opened: Instant::now(),
                    busy: AtomicBool::new(false),
                    last: AtomicU64::new(now_ms()),
                    kill: tokio::sync::Notify::new(),
                });
                let id = registry.next;
                registry.open.insert(id, conn.clone());
                (id, conn)
            })
        };
        let Some((id, conn)) = admitted else {
            (common.on_refusal)(serving.name, "connections");
            drop(stream);
            continue;
        };
        let (serving, common, registry, shutting_down) = (serving.clone(), common.clone(), registry.clone(), shutting_down.clone());
        tokio::spawn(async move {
            connection(stream, conn, serving, common, shutting_down).await;
            registry.lock().unwrap().open.remove(&id);
        });
    }
    let _ = shutdown.send(true);
}

async fn connection(stream: TcpStream, conn: Arc<Conn>, serving: Arc<Serving>, common: Arc<Common>, mut shutting_down: tokio::sync::watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Tracked { inner: stream, conn: conn.clone() });
    let service = {
        let (conn, serving, common) = (conn.clone(), serving.clone(), common.clone());
        hyper::service::service_fn(move |request| answer(request, conn.clone(), serving.clone(), common.clone()))
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(common.limits.header_timeout).max_buf_size(64 * 1024).keep_alive(true);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let idle = common.limits.idle_timeout;
    let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut shutting = false;
    loop {
        tokio::select! {
            _ = served.as_mut() => break,
            _ = conn.kill.notified() => break,
            _ = shutting_down.changed(), if !shutting => {
                shutting = true;
                served.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                let quiet = Duration::from_millis(now_ms().saturating_sub(conn.last.load(Ordering::Relaxed)));
                if quiet >= idle && !conn.busy.load(Ordering::Acquire) {
                    break;
                }
            }
        }
    }
}

/// Reads the body within its limits, then hands the request to the router.
async fn answer(request: Request<Incoming>, conn: Arc<Conn>, serving: Arc<Serving>, common: Arc<Common>) -> Result<Response<Body>, Infallible> {
    let limit = (serving.body_limit)(&common.limits, request.uri().path());
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let read = tokio::time::timeout(common.limits.body_timeout, read_body(body, declared, limit, &common.budget)).await;
    let (body, permit) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(refusal)) => return Ok(refuse(&serving, &common, refusal, limit)),
        Err(_) => return Ok(refuse(&serving, &common, Refusal::Timeout, limit)),
    };
    conn.busy.store(true, Ordering::Release);
    let response = serving.router.clone().oneshot(Request::from_parts(parts, Body::from(body))).await;
    drop(permit);
    conn.busy.store(false, Ordering::Release);
    conn.last.store(now_ms(), Ordering::Relaxed);
    Ok(response.unwrap_or_else(|never| match never {}))
}

#[derive(Clone, Copy, Debug)]
enum Refusal {
    TooLarge,
    Busy,
    Timeout,
    Broken,
}

async fn read_body(mut body: Incoming, declared: Option<u64>, limit: usize, budget: &Arc<Semaphore>) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Refusal> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge);
    }
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut held_kib = 0usize;
    let mut reserve = |bytes: usize| -> Result<(), Refusal> {
        let need = bytes.div_ceil(1024);
        if need > held_kib {
            let more = budget.clone().try_acquire_many_owned((need - held_kib) as u32).map_err(|_| Refusal::Busy)?;
            match &mut held {
                Some(permit) => permit.merge(more),
                None => held = Some(more),
            }
            held_kib = need;
        }
        Ok(())
    };
    if let Some(n) = declared {
        reserve(n as usize)?;
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Refusal::Broken)?.into_data() else { continue };
        total += data.len();
        if total > limit {
            return Err(Refusal::TooLarge);
        }
        reserve(total)?;
        chunks.push(data);
    }
    let body = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(total);
            for chunk in chunks {
                joined.extend_from_slice(&chunk);
            }
            joined.freeze()
        }
    };
    Ok((body, held))
}

fn refuse(serving: &Serving, common: &Common, refusal: Refusal, limit: usize) -> Response<Body> {
    let (status, kind, message, retry) = match refusal {
        Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", format!("the body is over {limit} bytes"), None),
        Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", "too many bodies in flight; send again".to_string(), Some("5")),
        Refusal::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout", format!("the body took over {} s", common.limits.body_timeout.as_secs_f64()), None),
        Refusal::Broken => (StatusCode::BAD_REQUEST, "broken", "the body ended early".to_string(), None),
    };
    (common.on_refusal)(serving.name, kind);
    let text = serde_json::json!({"type": kind, "message": message}).to_string();
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // The rest of the body is not read: the connection cannot carry another request.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(seconds) = retry {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}

/// The socket, noting the time of each byte read or written (for the idle timeout).
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl Tracked {
    fn touch(&self) {
        self.conn.last.store(now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
