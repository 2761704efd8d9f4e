//! The server's stop: the signals that ask for it, and waiting for it in a task.

/// Resolves when the server starts shutting down.
pub async fn going_away(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, containers), whichever comes first: the
/// signal to give [`crate::Server::run`] in a binary.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server gracefully")
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
