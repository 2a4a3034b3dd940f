//! The HTTP client behind the plugin's outbound requests: connections kept and reused, per
//! origin, for every store of this process. `wasmtime-wasi-http`'s `default_send_request`
//! opens a connection (and a TLS session) for every request; an event that makes three
//! requests to HighLevel then pays three connects. hyper-util's pooled client keeps idle
//! connections for [`IDLE`] instead.
//!
//! Everything a request does, connecting included, runs on one runtime of its own
//! ([`OUTBOUND`]): a pooled connection outlives the call that opened it, so it must not belong
//! to a caller's runtime (a test's, or a blocking task's) that may be gone by the next call.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::Error as HttpError;

/// How long an idle connection is kept.
const IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept per origin: a host's workers each hold one at a time.
const IDLE_PER_ORIGIN: usize = 32;

type Pooled = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The runtime every outbound request and its connection runs on: two threads, for the
/// process's life.
fn outbound() -> &'static tokio::runtime::Runtime {
    static OUTBOUND: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    OUTBOUND.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("outbound-http").enable_all().build().expect("starting the outbound runtime")
    })
}

/// The pooled client for a connect timeout (the one setting that lives in the connector).
fn client(connect_timeout: Duration) -> Pooled {
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, Pooled>>> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap();
    clients
        .entry(connect_timeout)
        .or_insert_with(|| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(connect_timeout));
            http.set_nodelay(true);
            // The roots wasmtime-wasi-http's own client trusts.
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("rustls's default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
            Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).pool_idle_timeout(IDLE).pool_max_idle_per_host(IDLE_PER_ORIGIN).build(https)
        })
        .clone()
}

/// Sends `request` and reads its answer whole, on a pooled connection. Errors are
/// `wasmtime-wasi-http`'s, as its own client reports them.
pub(super) async fn send(request: http::Request<Full<Bytes>>, connect_timeout: Duration) -> Result<http::Response<Bytes>, HttpError> {
    let client = client(connect_timeout);
    // Aborted when the caller stops waiting (the hook's deadline): a hung exchange must not
    // keep its task and connection after nobody wants its answer.
    let sent = tokio_util::task::AbortOnDropHandle::new(outbound().spawn(async move {
        let response = client.request(request).await.map_err(request_error)?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::BodyExt::collect(body).await.map_err(HttpError::from)?.to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }));
    sent.await.map_err(|e| HttpError::InternalError(Some(format!("the outbound request's task failed: {e}"))))?
}

/// A client error as the error code `default_send_request` gives for the same failure.
fn request_error(error: hyper_util::client::legacy::Error) -> HttpError {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
                std::io::ErrorKind::TimedOut => HttpError::ConnectionTimeout,
                _ if error.is_connect() => HttpError::Connect(std::io::Error::new(io.kind(), io.to_string())),
                _ => HttpError::ConnectionTerminated,
            };
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                return HttpError::ConnectionTerminated;
            }
        }
        source = cause.source();
    }
    if error.is_connect() {
        // The connector's own timeout says "connect timed out" without an io::Error.
        return HttpError::ConnectionTimeout;
    }
    HttpError::InternalError(Some(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    fn get(url: &str) -> Result<http::Response<Bytes>, HttpError> {
        let request = http::Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(send(request, Duration::from_secs(5)))
    }

    #[test]
    fn connections_are_reused_and_failures_are_the_error_codes_wasmtime_gives() {
        // A server that answers every request on a connection, and counts the connections.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut stream = stream.unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        for _ in 0..3 {
            assert_eq!(get(&url).unwrap().body().as_ref(), b"ok");
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "three requests, one connection");

        // Nobody listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        assert!(matches!(get(&refused), Err(HttpError::ConnectionRefused)));

        // A server that reads the request and hangs up without an answer.
        let rude = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hangs_up = format!("http://{}/", rude.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in rude.incoming() {
                let mut stream = stream.unwrap();
                let _ = stream.read(&mut [0u8; 4096]);
            }
        });
        assert!(matches!(get(&hangs_up), Err(HttpError::ConnectionTerminated)), "{:?}", get(&hangs_up).err());
    }

    #[test]
    fn a_request_its_caller_stops_waiting_for_is_aborted_and_its_connection_closed() {
        // A server that reads the request, never answers, and says when the client hangs up.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let (closed, hung_up) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = silent.accept().unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let _ = closed.send(());
        });
        let request = http::Request::get(&url).body(Full::new(Bytes::new())).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let waited = runtime.block_on(async { tokio::time::timeout(Duration::from_millis(200), send(request, Duration::from_secs(5))).await });
        assert!(waited.is_err(), "the server never answers");
        assert!(hung_up.recv_timeout(Duration::from_secs(10)).is_ok(), "the abandoned request still holds its connection");
    }
}
