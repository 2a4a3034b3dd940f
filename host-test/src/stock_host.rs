//! The plugin on a stock host, in-process: the same `.wasm` served through its
//! `wasi:http/incoming-handler` export the way wasmtime 48's
//!
//! ```text
//! wasmtime serve -Scli -Shttp -Sconfig -Skeyvalue -Sconfig-var=config=… plugin.wasm
//! ```
//!
//! serves it (`src/commands/serve.rs` at v48): one engine, with the pooling allocator when the
//! machine has the address space for it (the same 42-bit probe); one linker with all of
//! WASIp2 (`-Scli`: a Rust `wasm32-wasip2` component imports `wasi:cli/environment` and more,
//! beyond the `wasi:http/proxy` world), `wasi:http` (`-Shttp`), `wasmtime-wasi-config`'s
//! variables (`-Sconfig`, `-Sconfig-var`) and `wasmtime-wasi-keyvalue`'s in-memory store
//! (`-Skeyvalue`); `ProxyPre` built once; then per request a fresh store and instance (a WASIp2
//! component is never reused, `--max-instance-reuse-count` 1), `REQUEST_ID` in its environment,
//! and `incoming-handler.handle` called with the request and a response outparam.
//!
//! What it inherits from `wasmtime serve` is the point, so none of the reference host's
//! policy is here: outbound requests go wherever the component sends them (no allowlist, no
//! credential injection: the token must be in the plugin's configuration), there is no memory
//! cap or deadline, and the key-value store is a fresh copy on every `open`, so nothing the
//! plugin records outlives its request (it runs with `durable_state: false` and reads HighLevel
//! back before writing). It is what a benchmark compares [`dialpad_ghl_host::engine::Runtime`] against.

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_keyvalue::{WasiKeyValue, WasiKeyValueCtx, WasiKeyValueCtxBuilder};

/// What one request's store holds: `wasmtime serve`'s `Host`, for the flags above.
pub struct StockState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    config: WasiConfigVariables,
    keyvalue: WasiKeyValueCtx,
    limits: StoreLimits,
}

impl WasiView for StockState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StockState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // The default hooks: `wasmtime serve` sends every request as the guest made it.
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: wasmtime_wasi_http::default_hooks() }
    }
}

/// The component compiled and linked once (engine and `ProxyPre`), for any number of
/// [`StockHost`]s: compiling is the expensive part.
#[derive(Clone)]
pub struct StockComponent {
    engine: Engine,
    pre: ProxyPre<StockState>,
    pooling: bool,
}

impl StockComponent {
    pub fn from_file(path: &Path) -> anyhow::Result<StockComponent> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        StockComponent::new(&bytes)
    }

    /// Compiles and links the component; fails when it does not export
    /// `wasi:http/incoming-handler` or imports what a stock host does not give.
    pub fn new(wasm: &[u8]) -> anyhow::Result<StockComponent> {
        let mut config = Config::new();
        let pooling = dialpad_ghl_host::engine::pooling_allocator_fits();
        if pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(PoolingAllocationConfig::default()));
        }
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, wasm).map_err(anyhow::Error::from).context("compiling the component")?;
        let mut linker: Linker<StockState> = Linker::new(&engine);
        // -Scli: all of WASIp2; -Shttp: wasi:http on top of it.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // -Sconfig and -Skeyvalue.
        wasmtime_wasi_config::add_to_linker(&mut linker, |s: &mut StockState| WasiConfig::from(&s.config))?;
        wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |s: &mut StockState| WasiKeyValue::new(&s.keyvalue, &mut s.table))?;
        let instance = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("linking the component as `wasmtime serve -Scli -Shttp -Sconfig -Skeyvalue` would")?;
        let pre = ProxyPre::new(instance).map_err(anyhow::Error::from).context("the component does not export wasi:http/incoming-handler")?;
        Ok(StockComponent { engine, pre, pooling })
    }

    /// Whether the engine uses the pooling allocator (as `wasmtime serve` does where it fits).
    pub fn pooling(&self) -> bool {
        self.pooling
    }
}

/// The component served as `wasmtime serve` serves it, with these `-Sconfig-var`s.
#[derive(Clone)]
pub struct StockHost {
    component: StockComponent,
    config_vars: Arc<Vec<(String, String)>>,
    next_id: Arc<AtomicU64>,
}

impl StockHost {
    /// Compiles `wasm` and serves it with `config_vars` (`-Sconfig-var=KEY=VALUE` each).
    pub fn new(wasm: &[u8], config_vars: Vec<(String, String)>) -> anyhow::Result<StockHost> {
        Ok(StockHost::with_component(&StockComponent::new(wasm)?, config_vars))
    }

    pub fn from_file(path: &Path, config_vars: Vec<(String, String)>) -> anyhow::Result<StockHost> {
        Ok(StockHost::with_component(&StockComponent::from_file(path)?, config_vars))
    }

    /// A host for an already compiled component.
    pub fn with_component(component: &StockComponent, config_vars: Vec<(String, String)>) -> StockHost {
        StockHost { component: component.clone(), config_vars: Arc::new(config_vars), next_id: Arc::new(AtomicU64::new(0)) }
    }

    fn new_store(&self, request_id: u64) -> Store<StockState> {
        let mut wasi = WasiCtx::builder();
        // `wasmtime serve` gives each single-use instance its request id, and the guest's
        // stdout and stderr (there with a `[id]` prefix).
        wasi.env("REQUEST_ID", request_id.to_string()).inherit_stdout().inherit_stderr();
        let state = StockState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            config: WasiConfigVariables::from_iter(self.config_vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            // -Skeyvalue: an in-memory store per instance, copied afresh on every `open`.
            keyvalue: WasiKeyValueCtxBuilder::new().build(),
            limits: StoreLimits::default(),
        };
        let mut store = Store::new(&self.component.engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    /// Hands the request to a fresh instance. The response comes as soon as the guest sets it
    /// (its body may still be streaming); the task ends when `handle` returns.
    async fn start<B>(&self, request: http::Request<B>) -> anyhow::Result<(http::Response<HyperOutgoingBody>, tokio::task::JoinHandle<anyhow::Result<()>>)>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut store = self.new_store(request_id);
        let (sender, receiver) = oneshot::channel();
        let request = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.component.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, request, out).await?;
            Ok(())
        });
        match receiver.await {
            Ok(Ok(response)) => Ok((response, task)),
            Ok(Err(code)) => Err(anyhow!("the component answered with the error code {code:?}")),
            // The outparam was dropped unset: the task says why (a trap, most likely).
            Err(_) => Err(match task.await {
                Ok(Ok(())) => anyhow!("the component returned without setting a response"),
                Ok(Err(e)) => e.context("the component set no response"),
                Err(e) => anyhow::Error::from(e).context("the component's task failed"),
            }),
        }
    }

    /// Handles one request and returns the whole response. A trap after the response was set
    /// is an error too.
    pub async fn handle(&self, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        let (response, task) = self.start(request.map(Full::new)).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| anyhow!("reading the component's response body: {e}"))?.to_bytes();
        task.await.context("the component's task failed")??;
        Ok(http::Response::from_parts(parts, body))
    }

    /// Serves on `addr` (port 0: any free port) from a thread of its own, as `wasmtime serve
    /// --addr` does; stops when the returned server is dropped.
    pub fn serve(&self, addr: SocketAddr) -> anyhow::Result<StockServer> {
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("building the server's tokio runtime")?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (shutdown, stop) = oneshot::channel();
        let host = self.clone();
        let thread = std::thread::Builder::new()
            .name(format!("stock-host-{}", addr.port()))
            .spawn(move || runtime.block_on(accept_loop(host, listener, stop)))
            .context("spawning the server thread")?;
        Ok(StockServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// One request from the server: a host failure becomes a 500, as in `wasmtime serve`.
    async fn serve_request(&self, request: hyper::Request<hyper::body::Incoming>) -> Result<http::Response<HyperOutgoingBody>, Infallible> {
        match self.start(request).await {
            Ok((response, task)) => {
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!("stock host: the component failed after answering: {e:#}"),
                        Err(e) => tracing::warn!("stock host: the component's task failed: {e}"),
                    }
                });
                Ok(response)
            }
            Err(e) => {
                tracing::warn!("stock host: {e:#}");
                let body: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error> =
                    Full::new(Bytes::from_static(b"500 Internal Server Error\n")).map_err(|never| match never {}).boxed_unsync();
                let mut response = http::Response::new(body);
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                Ok(response)
            }
        }
    }
}

async fn accept_loop(host: StockHost, listener: tokio::net::TcpListener, mut stop: oneshot::Receiver<()>) {
    use hyper::server::conn::http1;
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("stock host: accepting a connection: {e}");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let host = host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let host = host.clone();
                async move { host.serve_request(request).await }
            });
            if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(wasmtime_wasi_http::io::TokioIo::new(stream), service).await {
                tracing::debug!("stock host: connection: {e}");
            }
        });
    }
}

/// A [`StockHost`] listening on loopback (or wherever it was asked to). Dropping it stops the
/// server and cancels the requests in flight.
pub struct StockServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StockServer {
    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `-Scli`, `wasmtime serve` links only the `wasi:http/proxy` world
    /// (`wasmtime_wasi_http::p2::add_to_linker_async`), and a Rust `wasm32-wasip2` library
    /// imports more than that: the README's command needs `-Scli`.
    #[test]
    fn the_plugin_needs_cli_beside_the_proxy_world() {
        let engine = Engine::default();
        let component = Component::from_file(&engine, artifacts::PLUGIN_WASM).unwrap();
        let mut linker: Linker<StockState> = Linker::new(&engine);
        wasmtime_wasi_http::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_config::add_to_linker(&mut linker, |s: &mut StockState| WasiConfig::from(&s.config)).unwrap();
        wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |s: &mut StockState| WasiKeyValue::new(&s.keyvalue, &mut s.table)).unwrap();
        let error = format!("{:#}", linker.instantiate_pre(&component).err().expect("the proxy world alone must not be enough"));
        assert!(error.contains("component imports instance `wasi:cli/") && error.contains("matching implementation was not found"), "{error}");
        StockComponent::new(&std::fs::read(artifacts::PLUGIN_WASM).unwrap()).expect("with all of WASIp2 it links");
    }
}
