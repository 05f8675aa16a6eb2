//! The WASI of the synchronous call path.
//!
//! wasmtime-wasi's own synchronous WASI blocks on a Tokio runtime of its
//! own, which panics on a thread that already drives one (every gateway
//! worker). Every Rust plugin imports `wasi:io` (std's stdout), so the
//! synchronous path needs these: the same host functions, whose waits run
//! on the calling thread under the call's deadline ([`CallWait::here`]),
//! and monotonic-clock subscriptions that need no timer driver. Only the
//! interfaces a sandboxed plugin can use are linked: a component that
//! imports the filesystem or sockets does not link here and keeps the
//! asynchronous path.

use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime::error::Context as _;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::io::poll::{Host as AsyncPoll, HostPollable as AsyncPollable};
use wasmtime_wasi::p2::bindings::io::streams::{
    HostInputStream as AsyncInputStream, HostOutputStream as AsyncOutputStream,
};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

use super::instance::InstanceState;
use super::wait::SleepUntil;

type InputStream = Resource<DynInputStream>;
type OutputStream = Resource<DynOutputStream>;
type Pollable = Resource<DynPollable>;

/// Adds the WASI a plugin may use to a linker of synchronous functions.
pub(super) fn add_to_linker(l: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    Ok(add_interfaces(l).context("linking WASI for synchronous calls")?)
}

fn add_interfaces(l: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |t| t.clocks())?;
    monotonic_clock::add_to_linker::<_, HasSelf<_>>(l, |t| t)?;
    random::random::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<_, HasSelf<_>>(l, |t| &mut t.table)?;
    poll::add_to_linker::<_, HasSelf<_>>(l, |t| t)?;
    streams::add_to_linker::<_, HasSelf<_>>(l, |t| t)?;
    Ok(())
}

/// A wait's own failure (its deadline) as a stream error: a trap.
fn trap<T>(waited: wasmtime::Result<StreamResult<T>>) -> StreamResult<T> {
    waited.map_err(StreamError::Trap)?
}

impl monotonic_clock::Host for InstanceState {
    fn now(&mut self) -> wasmtime::Result<u64> {
        monotonic_clock::Host::now(&mut self.clocks())
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        monotonic_clock::Host::resolution(&mut self.clocks())
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Pollable> {
        let now = monotonic_clock::Host::now(&mut self.clocks())?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(&mut self, nanos: u64) -> wasmtime::Result<Pollable> {
        let until = std::time::Instant::now().checked_add(std::time::Duration::from_nanos(nanos));
        let sleep = self.table.push(SleepUntil(until))?;
        wasmtime_wasi::p2::subscribe(&mut self.table, sleep)
    }
}

impl poll::Host for InstanceState {
    fn poll(&mut self, pollables: Vec<Pollable>) -> wasmtime::Result<Vec<u32>> {
        self.wait.here(AsyncPoll::poll(&mut self.table, pollables))?
    }
}

impl poll::HostPollable for InstanceState {
    fn ready(&mut self, pollable: Pollable) -> wasmtime::Result<bool> {
        self.wait.here(AsyncPollable::ready(&mut self.table, pollable))?
    }

    fn block(&mut self, pollable: Pollable) -> wasmtime::Result<()> {
        self.wait.here(AsyncPollable::block(&mut self.table, pollable))?
    }

    fn drop(&mut self, pollable: Pollable) -> wasmtime::Result<()> {
        AsyncPollable::drop(&mut self.table, pollable)
    }
}

impl streams::Host for InstanceState {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(&mut self.table, err)
    }
}

impl streams::HostOutputStream for InstanceState {
    fn drop(&mut self, stream: OutputStream) -> wasmtime::Result<()> {
        self.wait.here(AsyncOutputStream::drop(&mut self.table, stream))?
    }

    fn check_write(&mut self, stream: OutputStream) -> StreamResult<u64> {
        AsyncOutputStream::check_write(&mut self.table, stream)
    }

    fn write(&mut self, stream: OutputStream, bytes: Vec<u8>) -> StreamResult<()> {
        AsyncOutputStream::write(&mut self.table, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: OutputStream, bytes: Vec<u8>) -> StreamResult<()> {
        trap(self.wait.here(AsyncOutputStream::blocking_write_and_flush(&mut self.table, stream, bytes)))
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: OutputStream, len: u64) -> StreamResult<()> {
        trap(self.wait.here(AsyncOutputStream::blocking_write_zeroes_and_flush(&mut self.table, stream, len)))
    }

    fn subscribe(&mut self, stream: OutputStream) -> wasmtime::Result<Pollable> {
        AsyncOutputStream::subscribe(&mut self.table, stream)
    }

    fn write_zeroes(&mut self, stream: OutputStream, len: u64) -> StreamResult<()> {
        AsyncOutputStream::write_zeroes(&mut self.table, stream, len)
    }

    fn flush(&mut self, stream: OutputStream) -> StreamResult<()> {
        AsyncOutputStream::flush(&mut self.table, stream)
    }

    fn blocking_flush(&mut self, stream: OutputStream) -> StreamResult<()> {
        trap(self.wait.here(AsyncOutputStream::blocking_flush(&mut self.table, stream)))
    }

    fn splice(&mut self, dst: OutputStream, src: InputStream, len: u64) -> StreamResult<u64> {
        AsyncOutputStream::splice(&mut self.table, dst, src, len)
    }

    fn blocking_splice(&mut self, dst: OutputStream, src: InputStream, len: u64) -> StreamResult<u64> {
        trap(self.wait.here(AsyncOutputStream::blocking_splice(&mut self.table, dst, src, len)))
    }
}

impl streams::HostInputStream for InstanceState {
    fn drop(&mut self, stream: InputStream) -> wasmtime::Result<()> {
        self.wait.here(AsyncInputStream::drop(&mut self.table, stream))?
    }

    fn read(&mut self, stream: InputStream, len: u64) -> StreamResult<Vec<u8>> {
        AsyncInputStream::read(&mut self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: InputStream, len: u64) -> StreamResult<Vec<u8>> {
        trap(self.wait.here(AsyncInputStream::blocking_read(&mut self.table, stream, len)))
    }

    fn skip(&mut self, stream: InputStream, len: u64) -> StreamResult<u64> {
        AsyncInputStream::skip(&mut self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: InputStream, len: u64) -> StreamResult<u64> {
        trap(self.wait.here(AsyncInputStream::blocking_skip(&mut self.table, stream, len)))
    }

    fn subscribe(&mut self, stream: InputStream) -> wasmtime::Result<Pollable> {
        AsyncInputStream::subscribe(&mut self.table, stream)
    }
}
