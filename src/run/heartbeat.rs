//! A running run's pulse: every interval it refreshes the ledger's `heartbeat_at` (so the sweep
//! can tell a live `running` row from a dead one) and checks that its output lock is still held.
//! A lost lock cancels the run, which then fails before it publishes.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tracing::Instrument;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::lock::{LockLost, OutputLock};
use crate::ledger::Ledger;

/// The heartbeat task of one run.
pub struct Heartbeat {
    task: JoinHandle<()>,
    stop: CancellationToken,
    lost: Arc<StdMutex<Option<LockLost>>>,
}

impl Heartbeat {
    /// Starts beating every `every`; cancels `run` if the lock is found lost.
    pub fn spawn(
        ledger: Arc<dyn Ledger>,
        lock: Arc<Mutex<Box<dyn OutputLock>>>,
        run_id: Uuid,
        every: Duration,
        run: CancellationToken,
    ) -> Self {
        let stop = CancellationToken::new();
        let lost = Arc::new(StdMutex::new(None));
        let task = {
            let (stop, lost) = (stop.clone(), Arc::clone(&lost));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(every) => {}
                    }
                    if let Err(e) = ledger.heartbeat(run_id).await {
                        tracing::warn!(error = %e, "refreshing the heartbeat failed");
                    }
                    let verified = lock.lock().await.verify().await;
                    if let Err(e) = verified {
                        tracing::error!(error = %e, "the output lock is lost; stopping the run");
                        if let Ok(mut slot) = lost.lock() {
                            *slot = Some(e);
                        }
                        run.cancel();
                        return;
                    }
                }
            }.in_current_span())
        };
        Self { task, stop, lost }
    }

    /// Stops the heartbeat; returns the lost lock if that is what stopped the run.
    pub async fn stop(self) -> Option<LockLost> {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the heartbeat task failed");
        }
        self.lost.lock().ok().and_then(|mut slot| slot.take())
    }
}
