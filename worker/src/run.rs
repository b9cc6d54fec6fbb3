//! A worker's life once it is wired, the same for the standalone worker and the embedded
//! process: the sandbox reaper, the dead letters, the warm pool, the consumer loop until
//! the stop, then every sandbox gone.

use std::sync::Arc;

use codebox_core::ports::QueueConsumer;
use tokio_util::sync::CancellationToken;

use crate::consumer::Worker;
use crate::sandbox::Sandboxes;

/// Runs `worker` until `shutdown`, and returns once the tasks under way have ended and
/// every sandbox, warm or used, is removed.
pub async fn run_worker(
    worker: Worker,
    sandboxes: Arc<Sandboxes>,
    dead_letters: Option<Arc<dyn QueueConsumer>>,
    shutdown: CancellationToken,
) {
    {
        // Leftovers of a worker that died on this host.
        let (sandboxes, stop) = (sandboxes.clone(), shutdown.clone());
        tokio::spawn(async move { sandboxes.reap_forever(stop).await });
    }
    if let Some(dead_letters) = dead_letters {
        let (worker, stop) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.fail_dead_letters(dead_letters, stop).await });
    }
    let pool = sandboxes.start_pool(shutdown.clone());
    worker.run(shutdown).await;
    let _ = pool.await;
    sandboxes.settle().await;
}
