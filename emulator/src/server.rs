//! The accept loop: HTTP/1.1 connections served by an axum router, each with a switch that a
//! handler can pull to drop the connection without answering (the "connection lost mid-upload"
//! fault), and a stop signal that ends the listener and every open connection.

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Pulled by a handler to close its connection with no response.
#[derive(Clone, Default)]
pub(crate) struct DropConnection(Arc<Notify>);

impl DropConnection {
    pub(crate) fn pull(&self) {
        self.0.notify_one();
    }
}

pub(crate) struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn serve(listener: TcpListener, router: Router) -> Running {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Dropping the set when the loop ends aborts every connection still open.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let switch = DropConnection::default();
                    let service = TowerToHyperService::new(
                        router.clone().layer(axum::Extension(switch.clone())),
                    );
                    connections.spawn(async move {
                        // A 64 KiB read buffer (hyper's default grows to ~400 KiB) bounds what each
                        // of hundreds of concurrent uploads holds in memory.
                        let conn = hyper::server::conn::http1::Builder::new()
                            .max_buf_size(64 * 1024)
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = switch.0.notified() => {}
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Running {
        stop: Some(stop_tx),
        task: Some(task),
    }
}

/// Listens for SIGINT and SIGTERM from the moment it is called (the handlers are installed
/// before it returns), and resolves when one arrives.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
