//! The `wasmgate` command: run a gateway, check a config like `nginx -t`, or
//! start a plugin crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use wasmgate::{ConfigErrors, Gateway, Listeners, StartError};

mod scaffold;

#[derive(Parser)]
#[command(name = "wasmgate", version, about = "API gateway with WebAssembly plugin pipelines")]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic with the given config.
    Run { config: PathBuf },
    /// Check a config, loading and configuring every plugin, then exit.
    Check { config: PathBuf },
    /// Start a plugin: `plugin new NAME [DIR]`.
    Plugin {
        #[command(subcommand)]
        command: scaffold::PluginCommand,
    },
    /// Compile one plugin to an artifact on stdout: what `run` and `check`
    /// start in a child process, so the compiler's memory never stays in
    /// the gateway.
    #[command(hide = true)]
    CompilePlugin {
        #[arg(long)]
        max_memory_bytes: usize,
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    fix_malloc_thresholds();
    wasmgate::init_logging(matches!(cli.log_format, LogFormat::Json));
    wasmgate::install_panic_hook();
    let runtime = match runtime(&cli.command) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wasmgate: building the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { config } => {
                compile_in_children();
                run(config, matches!(cli.log_format, LogFormat::Json)).await
            }
            Command::Check { config } => {
                compile_in_children();
                check(config).await
            }
            Command::Plugin { command } => scaffold::run(command),
            Command::CompilePlugin { max_memory_bytes, path } => compile_plugin(max_memory_bytes, &path),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn compile_plugin(max_memory_bytes: usize, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let artifact = wasmgate::compile_plugin(max_memory_bytes, path).map_err(anyhow::Error::msg)?;
    std::io::stdout().lock().write_all(&artifact).context("writing the artifact")?;
    Ok(ExitCode::SUCCESS)
}

/// glibc raises its mmap threshold each time a large block is freed (a
/// compiled plugin's artifact, several MB), after which blocks that size
/// come from thread heaps, whose free tops `malloc_trim` does not return:
/// a cold start idled 2.5 MB above a warm one. A fixed threshold keeps
/// blocks of 1 MiB and more in mappings of their own, returned when freed,
/// and the heap's trim threshold at its 128 KiB default.
fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Compiles in child processes of this binary, when it can name itself.
fn compile_in_children() {
    match std::env::current_exe() {
        Ok(exe) => wasmgate::compile_in_child_processes(exe),
        Err(e) => tracing::warn!(error = %e, "cannot name this binary: plugins are compiled in-process"),
    }
}

/// The tokio runtime, sized by `[server] workers`, which is read before
/// it starts; without it, `TOKIO_WORKER_THREADS` or one worker per core,
/// and at least two: a plugin entered directly holds its worker while it
/// runs (a loop up to its `timeout_ms`), and one such call must not stall
/// every connection. A config that does not load is reported by the
/// command itself, once the runtime runs.
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = match command {
        Command::Run { config } => wasmgate::load_config(config).ok().and_then(|c| c.workers),
        Command::Check { .. } | Command::Plugin { .. } | Command::CompilePlugin { .. } => None,
    };
    let workers = workers.or_else(|| std::env::var("TOKIO_WORKER_THREADS").ok()?.parse().ok());
    // One worker asked for: the current-thread scheduler, which has no
    // work-stealing queues and cross-thread wake-ups to pay for.
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
        None => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread().worker_threads(cores.max(2)).enable_all().build()
        }
    }
}

/// Prints every config error on its own line and fails.
fn report(e: StartError) -> anyhow::Result<ExitCode> {
    match e {
        StartError::Config(ConfigErrors::Invalid(errors)) => {
            for error in errors {
                eprintln!("{error}");
            }
            Ok(ExitCode::FAILURE)
        }
        other => Err(other.into()),
    }
}

async fn check(path: PathBuf) -> anyhow::Result<ExitCode> {
    match Gateway::load(&path).await {
        Ok(gateway) => {
            let config = gateway.config();
            println!(
                "{}: ok ({} routes, {} plugins, {} upstreams)",
                path.display(),
                config.routes.len(),
                config.plugins.len(),
                config.upstreams.len()
            );
            if let Some(dir) = &config.plugins_dir {
                println!("plugins_dir: {}", dir.display());
            }
            // Where each plugin came from: a folder's file can be a surprise.
            for plugin in &config.plugins {
                println!("  plugin {} ({}): {}", plugin.name, plugin.origin.as_str(), plugin.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => report(e),
    }
}

async fn run(path: PathBuf, json_logs: bool) -> anyhow::Result<ExitCode> {
    let gateway = match Gateway::load(&path).await {
        Ok(g) => Arc::new(g),
        Err(e) => return report(e),
    };
    gateway.start_access_log(json_logs).context("opening the access log")?;
    // Before the first connection: a signal sent once the gateway is
    // serving finds its handler.
    let signals = handle_signals(&gateway);
    let config = gateway.config();
    let listeners = Listeners::bind(&config.listen, &config.server.tls_listen).await.context("binding listeners")?;
    let running = wasmgate::serve_listeners(gateway.clone(), listeners)?;
    gateway.count_connections(running.connections.clone());
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    for addr in &running.addrs {
        tracing::info!(%addr, workers, "wasmgate listening");
    }
    for addr in &running.tls_addrs {
        tracing::info!(%addr, tls = true, "wasmgate listening");
    }
    let admin = match config.admin_listen {
        Some(addr) => {
            let listeners = wasmgate::bind(&[addr]).await.context("binding the admin listener")?;
            let admin = wasmgate::serve_admin(gateway.clone(), listeners);
            tracing::info!(addr = %admin.addrs[0], "admin API listening");
            Some(admin)
        }
        None => None,
    };
    let _watcher = wasmgate::watch(gateway.clone()).context("watching the config and plugin files")?;

    wasmgate::shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    signals.iter().for_each(tokio::task::JoinHandle::abort);
    // Traffic and admin drain together; the admin API stays up meanwhile
    // for connections already open.
    let admin = async move {
        if let Some(admin) = admin {
            admin.shutdown().await;
        }
    };
    tokio::join!(running.shutdown(), admin);
    tracing::info!("drained; exiting");
    Ok(ExitCode::SUCCESS)
}

/// Runs `action` at each delivery of a Unix signal. The handler is in
/// place when this returns: the signal's default action (for SIGUSR1, to
/// end the process) no longer applies.
#[cfg(unix)]
fn on_signal<F>(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
    mut action: impl FnMut() -> F + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>>
where
    F: std::future::Future<Output = ()> + Send,
{
    let Ok(mut signals) = tokio::signal::unix::signal(kind) else {
        tracing::warn!("cannot listen for {name}");
        return None;
    };
    Some(tokio::spawn(async move {
        while signals.recv().await.is_some() {
            action().await;
        }
    }))
}

/// As with nginx and most daemons: SIGHUP reloads; SIGUSR1 reopens the
/// access log (rotate by renaming the file, then signal).
fn handle_signals(gateway: &Arc<Gateway>) -> Vec<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::SignalKind;
        let (reloads, logs) = (gateway.clone(), gateway.clone());
        let reload = move || {
            let gateway = reloads.clone();
            async move {
                let _ = gateway.reload("SIGHUP").await;
            }
        };
        let reopen = move || {
            logs.reopen_access_log();
            std::future::ready(())
        };
        [on_signal(SignalKind::hangup(), "SIGHUP", reload), on_signal(SignalKind::user_defined1(), "SIGUSR1", reopen)]
            .into_iter()
            .flatten()
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = gateway;
        Vec::new()
    }
}
