//! State shared by all instances of one host, and the per-request store data.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// Lock a mutex, ignoring poisoning (a panicking test must not hide the state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters of key-value calls made by the component.
#[derive(Default)]
pub(crate) struct KvCounters {
    pub gets: AtomicU64,
    pub sets: AtomicU64,
    pub deletes: AtomicU64,
    pub exists: AtomicU64,
    pub get_keys: AtomicU64,
}

/// Linear memory used by the requests' instances.
#[derive(Default)]
pub(crate) struct MemoryCounters {
    /// Requests whose instance allocated any linear memory.
    pub requests: AtomicU64,
    /// The most linear memory, in bytes, one request's instance ever held
    /// (all its core memories together).
    pub peak_bytes: AtomicU64,
    /// The linear memory of the request that finished last, in bytes.
    pub last_bytes: AtomicU64,
}

/// Everything the instances of one host share.
pub(crate) struct Shared {
    /// The `default` key-value store.
    pub kv: Mutex<BTreeMap<String, Vec<u8>>>,
    pub stats: KvCounters,
    pub memory: MemoryCounters,
    /// Serialises delayed `set`s, like Spin's single SQLite connection.
    pub disk: tokio::sync::Mutex<()>,
    pub set_delay: Duration,
    pub variables: BTreeMap<String, String>,
    /// Component stdout and stderr, whole lines, in the order written.
    pub logs: Mutex<Vec<u8>>,
    pub capture_logs: bool,
    pub echo_logs: bool,
    /// Seconds added to the component's wall clock.
    pub clock_offset_secs: i64,
}

impl Shared {
    fn write_log(&self, bytes: &[u8]) {
        if self.capture_logs {
            lock(&self.logs).extend_from_slice(bytes);
        }
        if self.echo_logs {
            let _ = std::io::stderr().lock().write_all(bytes);
        }
    }
}

/// The system wall clock shifted by a fixed number of seconds.
struct OffsetWallClock(i64);

impl wasmtime_wasi::HostWallClock for OffsetWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let shift = Duration::from_secs(self.0.unsigned_abs());
        if self.0 < 0 {
            now.saturating_sub(shift)
        } else {
            now.saturating_add(shift)
        }
    }
}

/// The data of one request's `Store`: a fresh WASI context and resource table.
pub(crate) struct RequestState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: SpinHooks,
    pub shared: Arc<Shared>,
    /// Installed as the store's resource limiter; limits nothing.
    pub memory: MemoryMeter,
}

impl RequestState {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        // Like Spin: no arguments, no environment, no preopened directories,
        // stdin empty, stdout and stderr captured.
        let mut builder = WasiCtx::builder();
        builder
            .stdout(LogSink::new(shared))
            .stderr(LogSink::new(shared));
        if shared.clock_offset_secs != 0 {
            builder.wall_clock(OffsetWallClock(shared.clock_offset_secs));
        }
        let wasi = builder.build();
        RequestState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: SpinHooks,
            shared: shared.clone(),
            memory: MemoryMeter::new(shared),
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Measures the linear memory of one request's instance, as a
/// [`ResourceLimiter`] that allows every growth (so behaviour is unchanged)
/// and adds each to the request's total, raising the host-wide peak.
pub(crate) struct MemoryMeter {
    bytes: u64,
    shared: Arc<Shared>,
}

impl MemoryMeter {
    fn new(shared: &Arc<Shared>) -> Self {
        MemoryMeter {
            bytes: 0,
            shared: shared.clone(),
        }
    }

    /// Account for a memory growing from `current` to `desired` bytes
    /// (creation counts as growing from 0).
    fn record(&mut self, current: usize, desired: usize) {
        let added = u64::try_from(desired.saturating_sub(current)).unwrap_or(u64::MAX);
        if self.bytes == 0 && added > 0 {
            self.shared.memory.requests.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes = self.bytes.saturating_add(added);
        self.shared
            .memory
            .peak_bytes
            .fetch_max(self.bytes, Ordering::Relaxed);
    }
}

impl Drop for MemoryMeter {
    fn drop(&mut self) {
        // Linear memory never shrinks: what the instance holds at the end
        // is its peak.
        if self.bytes > 0 {
            self.shared
                .memory
                .last_bytes
                .store(self.bytes, Ordering::Relaxed);
        }
    }
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A growth past the maximum fails without allocating anything.
        if maximum.is_none_or(|maximum| desired <= maximum) {
            self.record(current, desired);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

type ResponseFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

/// `wasi:http` hooks: outgoing requests are refused with `HTTP-request-denied`,
/// which is what Spin does for a component without `allowed_outbound_hosts`.
pub(crate) struct SpinHooks;

impl WasiHttpHooks for SpinHooks {
    fn send_request(
        &mut self,
        _request: hyper::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: ResponseFuture,
    ) -> Box<
        dyn Future<Output = wasmtime_wasi_http::Result<(hyper::Response<WasiBody>, ResponseFuture)>>
            + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Guest stdout/stderr. Bytes are buffered per instance and handed on whole
/// lines at a time, so lines of concurrent requests never interleave; a
/// trailing partial line is handed on when the instance goes away.
#[derive(Clone)]
pub(crate) struct LogSink(Arc<LineBuffer>);

pub(crate) struct LineBuffer {
    pending: Mutex<Vec<u8>>,
    shared: Arc<Shared>,
}

impl LogSink {
    fn new(shared: &Arc<Shared>) -> Self {
        LogSink(Arc::new(LineBuffer {
            pending: Mutex::new(Vec::new()),
            shared: shared.clone(),
        }))
    }

    fn write_all(&self, bytes: &[u8]) {
        let mut pending = lock(&self.0.pending);
        pending.extend_from_slice(bytes);
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<u8> = pending.drain(..=end).collect();
            self.0.shared.write_log(&lines);
        }
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let pending = lock(&self.pending);
        if !pending.is_empty() {
            self.shared.write_log(&pending);
        }
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1024 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_all(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use wasmtime::ResourceLimiter as _;

    use super::{MemoryMeter, Shared};

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            kv: Mutex::default(),
            stats: Default::default(),
            memory: Default::default(),
            disk: tokio::sync::Mutex::new(()),
            set_delay: std::time::Duration::ZERO,
            variables: Default::default(),
            logs: Mutex::default(),
            capture_logs: false,
            echo_logs: false,
            clock_offset_secs: 0,
        })
    }

    #[test]
    fn peak_is_the_largest_total_of_one_request_and_last_the_latest() -> wasmtime::Result<()> {
        const PAGE: usize = 65_536;
        let shared = shared();
        let mut first = MemoryMeter::new(&shared);
        // Two memories in one instance: created, then one grows.
        assert!(first.memory_growing(0, 17 * PAGE, None)?);
        assert!(first.memory_growing(0, PAGE, Some(PAGE))?);
        assert!(first.memory_growing(17 * PAGE, 20 * PAGE, None)?);
        // A growth past the maximum allocates nothing.
        assert!(first.memory_growing(PAGE, 2 * PAGE, Some(PAGE))?);
        let mut second = MemoryMeter::new(&shared);
        assert!(second.memory_growing(0, 18 * PAGE, None)?);

        drop(first);
        drop(second);

        let memory = &shared.memory;
        assert_eq!(memory.peak_bytes.load(Ordering::Relaxed), 21 * PAGE as u64);
        assert_eq!(memory.last_bytes.load(Ordering::Relaxed), 18 * PAGE as u64);
        assert_eq!(memory.requests.load(Ordering::Relaxed), 2);
        Ok(())
    }
}
