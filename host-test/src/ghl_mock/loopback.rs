//! [`LoopbackServer`]: an axum app on a loopback port, on a thread of its own.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::sync::oneshot;

use super::connection::{ConnectionCut, CuttableListener};

/// How long a dropped [`MockServer`] waits for in-flight connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// An axum app served on a loopback port from a thread of its own, with its own tokio runtime,
/// so that callers can be plain synchronous code; dropping it shuts the server down. The mocks
/// (this one, and Dialpad's call listing) run on it.
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Binds `addr` (port 0: any free port) before returning, so the server accepts connections
    /// as soon as the caller has it in hand; `name` names the thread and the errors.
    pub fn start(name: &str, addr: SocketAddr, app: Router) -> anyhow::Result<LoopbackServer> {
        let std_listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding the {name} to {addr}"))?;
        std_listener.set_nonblocking(true).with_context(|| format!("making the {name}'s listener non-blocking"))?;
        let addr = std_listener.local_addr().with_context(|| format!("reading the {name}'s local address"))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().with_context(|| format!("building the {name}'s tokio runtime"))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).with_context(|| format!("registering the {name}'s listener with tokio"))?
        };
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{}-{}", name.replace(' ', "-"), addr.port()))
            .spawn(move || serve(runtime, listener, app, stop))
            .with_context(|| format!("spawning the {name}'s server thread"))?;
        Ok(LoopbackServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Blocks the calling thread until the server stops (for the CLI). The server only stops
    /// on its own if its accept loop fails, so in practice this runs until the process ends.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread's body: serve until told to stop, drain for a moment, then drop the runtime,
/// which cancels any connection that outlived the grace period. This is what guarantees the
/// thread never outlives its [`MockServer`].
///
/// Connections are accepted through [`CuttableListener`], so a handler can close its connection
/// without a response (the drop faults).
fn serve(runtime: tokio::runtime::Runtime, listener: tokio::net::TcpListener, app: Router, stop: oneshot::Receiver<()>) {
    runtime.block_on(async move {
        let (drain, drained) = oneshot::channel::<()>();
        let mut server = tokio::spawn(
            axum::serve(CuttableListener(listener), app.into_make_service_with_connect_info::<ConnectionCut>())
                .with_graceful_shutdown(async move {
                    let _ = drained.await;
                })
                .into_future(),
        );
        tokio::select! {
            // A send from Drop, or the sender dropped: either way the owner is gone.
            _ = stop => {}
            // The accept loop ended by itself; nothing left to drain.
            _ = &mut server => return,
        }
        let _ = drain.send(());
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    });
}
