//! Interrupts for the commands that run agents as child processes (`demo`, `bench`): SIGINT, SIGTERM and SIGHUP
//! only raise a flag, which their loops check within a tick, so that they stop every agent and remove every file
//! they made before exiting.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT, SIGTERM or SIGHUP arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Turns SIGINT, SIGTERM and SIGHUP into the [`interrupted`] flag.
#[cfg(unix)]
pub fn catch_signals() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal watcher")?;
    // Registered before any agent starts, so that no signal arrives unhandled.
    let mut streams = runtime.block_on(async {
        Ok::<_, std::io::Error>([
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ])
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let [a, b, c] = &mut streams;
            loop {
                tokio::select! {
                    _ = a.recv() => {}
                    _ = b.recv() => {}
                    _ = c.recv() => {}
                }
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        })
    });
    Ok(())
}

/// Ctrl-C only raises the flag.
#[cfg(not(unix))]
pub fn catch_signals() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal watcher")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        })
    });
    Ok(())
}
