//! SIGINT and SIGTERM as events a command can wait for, instead of the default that kills the
//! process at once (and loses what an upload batch has not printed yet).

use crate::exit::{EXIT_SIGINT, EXIT_SIGTERM};

/// The signals that stop a command, listened to from [`Signals::listen`] on: from then on they
/// no longer kill the process.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // A signal that cannot be listened to keeps its default: it ends the process.
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// The next signal, as the exit code it asks for (130 for SIGINT, 143 for SIGTERM).
    pub(crate) async fn next(&mut self) -> u8 {
        #[cfg(unix)]
        {
            async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
                let received = match signal {
                    Some(s) => s.recv().await.is_some(),
                    None => false,
                };
                if !received {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                () = one(&mut self.interrupt) => EXIT_SIGINT,
                () = one(&mut self.terminate) => EXIT_SIGTERM,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => EXIT_SIGINT,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// A signal's name, for what is said on stderr.
pub(crate) fn name(code: u8) -> &'static str {
    if code == EXIT_SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    }
}
