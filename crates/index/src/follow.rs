//! Keeping an index in step with a store that changes under it: each
//! commit of a sync (or any other write) nudges a task that applies the
//! store's log. `flush` waits until everything written before it is
//! searchable.

use crate::Index;
use std::sync::Arc;
use store::IndexSource;
use tokio::sync::watch;

/// How often the log is read without a nudge: another process's commits
/// (a `confsync sync` beside `confsync serve`, another node) are
/// searchable within this, notifications or not.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What a commit hook is: called after each transaction.
pub type Nudge = Arc<dyn Fn() + Send + Sync>;

pub struct Follower {
    /// Requests: a generation number, raised by every nudge.
    requested: watch::Sender<u64>,
    /// The last generation applied (or failed: `Err` carries why).
    applied: watch::Receiver<(u64, Option<String>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts following. Errors are logged and retried at the next nudge:
    /// the log keeps what was not applied.
    /// The task runs in the caller's current span (a server's node span).
    pub fn start<S: IndexSource + 'static>(index: Arc<Index>, store: S) -> Follower {
        use tracing::Instrument;
        let (requested, mut wanted) = watch::channel(0u64);
        let (done, applied) = watch::channel((0u64, None));
        let task = tokio::spawn(
            async move {
            loop {
                let generation = *wanted.borrow_and_update();
                let outcome = index.catch_up(&store).await;
                let error = match outcome {
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(%error, "index catch-up failed; retried at the next change");
                        Some(error.to_string())
                    }
                };
                let _ = done.send((generation, error));
                // Woken by this process's commits, by another process's
                // (a notification, where the store sends them), or by the
                // poll that catches whatever neither announced.
                tokio::select! {
                    changed = wanted.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
            .in_current_span(),
        );
        Follower {
            requested,
            applied,
            task,
        }
    }

    /// A hook for `sync::Engine::with_commit_hook`.
    pub fn hook(&self) -> Nudge {
        let requested = self.requested.clone();
        Arc::new(move || {
            requested.send_modify(|g| *g += 1);
        })
    }

    pub fn nudge(&self) {
        self.requested.send_modify(|g| *g += 1);
    }

    /// Waits until everything committed before the call is applied;
    /// `Err` with the reason when that catch-up failed.
    pub async fn flush(&self) -> Result<(), String> {
        let mut generation = 0;
        self.requested.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        let mut applied = self.applied.clone();
        loop {
            {
                let (done, error) = &*applied.borrow_and_update();
                if *done >= generation {
                    return match error {
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                }
            }
            if applied.changed().await.is_err() {
                return Err("the index follower stopped".into());
            }
        }
    }

    /// Stops after the catch-up in progress, if any, and waits for it.
    pub async fn shutdown(self) {
        drop(self.requested);
        let _ = self.task.await;
    }

    /// Applies what is left and stops.
    pub async fn finish(self) -> Result<(), String> {
        let outcome = self.flush().await;
        self.task.abort();
        outcome
    }
}
