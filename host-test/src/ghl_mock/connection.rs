//! The connection-cutting listener the drop faults need.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::reply::Reply;

/// Closes the connection `cut` belongs to without a response: `None` when done. Without a `cut`
/// (the router served by something else than [`MockServer`]) there is no way to, so the request
/// gets a 502 instead.
pub(super) fn cut_connection(cut: Option<&ConnectionCut>) -> Option<Response> {
    match cut {
        Some(cut) => {
            cut.pull();
            None
        }
        None => Some(Reply::error(502, "mock: dropping a connection needs MockServer's listener").into_response()),
    }
}

/// The listener [`MockServer`] serves with: plain TCP, but every connection carries a
/// [`ConnectionCut`] that handlers receive as `ConnectInfo`.
///
/// axum's `serve` insists on infallible services, so a handler cannot make hyper drop its
/// connection by failing; it pulls the connection's cut instead and returns a response that is
/// never sent: from then on every read and write on the connection fails, so hyper gives up on
/// the connection at its first attempt to write the response, before a single byte goes out,
/// and closes the socket.
pub(super) struct CuttableListener(pub(super) tokio::net::TcpListener);

/// A connection accepted by [`CuttableListener`].
pub(super) struct CuttableStream {
    stream: tokio::net::TcpStream,
    cut: ConnectionCut,
}

/// A connection's kill switch, shared between its [`CuttableStream`] and the handlers of its
/// requests.
#[derive(Clone, Debug, Default)]
pub(super) struct ConnectionCut(Arc<AtomicBool>);

impl ConnectionCut {
    fn pull(&self) {
        self.0.store(true, AtomicOrdering::SeqCst);
    }

    fn is_pulled(&self) -> bool {
        self.0.load(AtomicOrdering::SeqCst)
    }
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "mock: connection dropped by an injected fault")
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CuttableStream, SocketAddr) {
        // axum's own impl retries failed accepts.
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (CuttableStream { stream, cut: ConnectionCut::default() }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for ConnectionCut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> ConnectionCut {
        stream.io().cut.clone()
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Shutting down sends no data, so it is allowed after a cut.
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
