//! Compiling the component, linking it, and serving HTTP with one fresh
//! instance per request, the way Spin's HTTP trigger does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode, Uri};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, PoolingAllocationConfig, ProfilingStrategy, Store};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::state::{lock, RequestState, Shared};

/// One engine per process, so compiled components can be reused by every
/// host a test binary starts.
///
/// Like Spin, it uses wasmtime's pooling allocator (instances are much cheaper
/// to create: about 150 instead of 200+ microseconds a request here), unless
/// `SCOPEGATE_HOST_POOLING=0` or the pool's address space cannot be reserved.
fn engine() -> anyhow::Result<&'static Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    let pooling = std::env::var_os("SCOPEGATE_HOST_POOLING").is_none_or(|v| v != "0");
    let pooled = pooling
        .then(|| {
            // Defaults (1000 instances, 4 GiB memories), but room for large
            // function tables as Rust components can have.
            let mut pool = PoolingAllocationConfig::new();
            pool.table_elements(100_000);
            let mut config = base_config();
            config.allocation_strategy(pool);
            Engine::new(&config).ok()
        })
        .flatten();
    let engine = match pooled {
        Some(engine) => engine,
        None => Engine::new(&base_config())?,
    };
    Ok(ENGINE.get_or_init(|| engine))
}

/// The engine configuration before the allocation strategy. With
/// `SCOPEGATE_HOST_PERFMAP=1`, compiled guest functions are listed in
/// `/tmp/perf-PID.map` so that `perf report` names them.
fn base_config() -> Config {
    let mut config = Config::new();
    if std::env::var_os("SCOPEGATE_HOST_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    config
}

/// Compile `path`, reusing an earlier compilation of the same unchanged file.
fn compile(path: &Path) -> anyhow::Result<Component> {
    type Key = (PathBuf, Option<SystemTime>, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Component>>> = OnceLock::new();

    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read component {}", path.display()))?;
    let key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(component) = lock(cache).get(&key) {
        return Ok(component.clone());
    }
    let component = Component::from_file(engine()?, path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile component {}", path.display()))?;
    lock(cache).insert(key, component.clone());
    Ok(component)
}

/// A compiled, linked component ready to serve requests.
pub(crate) struct Server {
    pre: ProxyPre<RequestState>,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Compile and link the component. Fails, naming the import, if the
    /// component needs anything this host (standing in for Spin) lacks.
    pub(crate) fn new(wasm: &Path, shared: Arc<Shared>, addr: SocketAddr) -> anyhow::Result<Self> {
        let component = compile(wasm)?;
        let mut linker = Linker::<RequestState>::new(engine()?);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::spin::add_to_linker(&mut linker)?;

        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "component {} imports something this host does not provide \
                     (WASI 0.2, wasi:http, fermyon:spin/key-value@2.0.0 and \
                     fermyon:spin/variables@2.0.0 are provided)",
                    wasm.display()
                )
            })?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "component {} does not export wasi:http/incoming-handler@0.2.x",
                    wasm.display()
                )
            })?;
        Ok(Server { pre, shared, addr })
    }

    /// Accept connections on `listener` until the runtime is shut down.
    pub(crate) async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // E.g. out of file descriptors: back off, then go on.
                    eprintln!("scopegate-host: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, peer).await) }
                });
                // Errors here are clients going away mid-request; nothing to do.
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        match self.handle_in_guest(req, peer).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("scopegate-host: request failed: {e:?}");
                let body = Full::new(Bytes::from_static(b"Internal Server Error"))
                    .map_err(|never: Infallible| match never {})
                    .boxed_unsync();
                let mut response = Response::new(body);
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }

    async fn handle_in_guest(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> anyhow::Result<Response<HyperOutgoingBody>> {
        let req = self.spin_request(req, peer)?;
        let mut store = Store::new(self.pre.engine(), RequestState::new(&self.shared));
        store.limiter(|state| &mut state.memory);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(tx)?;

        // The guest runs in its own task so that it can keep streaming the body
        // after `response-outparam.set`.
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });

        match rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => bail!("component answered with error code {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => bail!("component returned without setting a response"),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("component trapped")),
                Err(e) => Err(anyhow!(e).context("component task failed")),
            },
        }
    }

    /// Make the request look as Spin hands it to a component: an absolute URI
    /// (`http://<Host header>/<path and query>`) and Spin's informational
    /// headers, for an application whose only route is `/...`.
    fn spin_request(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> anyhow::Result<Request<Incoming>> {
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
        let authority = match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => host.to_string(),
            None => self.addr.to_string(),
        };
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path_and_query.as_str())
            .build()
            .with_context(|| format!("bad request target {authority:?} {path_and_query:?}"))?;

        let spin_headers = [
            ("spin-full-url", parts.uri.to_string()),
            ("spin-path-info", parts.uri.path().to_string()),
            ("spin-matched-route", "/...".to_string()),
            ("spin-raw-component-route", "/...".to_string()),
            ("spin-component-route", String::new()),
            ("spin-base-path", "/".to_string()),
            ("spin-client-addr", peer.to_string()),
        ];
        for (name, value) in spin_headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                parts.headers.insert(HeaderName::from_static(name), value);
            }
        }
        Ok(Request::from_parts(parts, body))
    }
}
