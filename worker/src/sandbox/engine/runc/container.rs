//! One sandbox of an OCI engine: the `run` process the worker spawned (its first
//! process the agent), killed, waited for and deleted by `dispose`, or in the background
//! when dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::TaskId;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr};
use tokio::sync::watch;

use super::{END_WAIT, MESSAGES, OWN_END, OciEngine, TASK_FILE};
use crate::sandbox::engine::Container;
use crate::sandbox::identity::Identity;

/// How the `runc run` of a sandbox ended: `Some(signal)` when its first process was killed.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub killed_by: Option<i32>,
}

/// Waits for the `runc run` of a sandbox to end, or kills it when told to (or when its
/// container is dropped).
pub(super) async fn wait_for(
    mut child: Child,
    tx: watch::Sender<Option<Exit>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = stop => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // runc answers a first process killed by a signal with 128 + the signal.
    let killed_by = status
        .ok()
        .and_then(|s| s.code())
        .filter(|c| *c > 128)
        .map(|c| c - 128);
    let _ = tx.send(Some(Exit { killed_by }));
}

pub(super) async fn messages(stderr: &mut ChildStderr) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        stderr.take(MESSAGES as u64).read_to_end(&mut buf),
    )
    .await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// One sandbox: ended and deleted by [`Container::dispose`].
pub struct OciContainer {
    pub(super) oci: Arc<OciEngine>,
    pub(super) id: String,
    pub(super) bundle: PathBuf,
    pub(super) exit: Option<watch::Receiver<Option<Exit>>>,
    /// Kills its `runc run` (the last resort of `dispose`; dropping it does the same).
    pub(super) stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The worker killed it (its end says nothing of the program).
    pub(super) killed: bool,
    pub(super) done: bool,
    /// Its uid, given back once it is gone.
    pub(super) identity: Option<Identity>,
}

impl Drop for OciContainer {
    /// A container dropped before `dispose` (a preparation cut short): disposed of in the
    /// background.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // Marked done: should the runtime drop this future unrun (it is shutting down),
        // the drop ends here, and dropping the stop handle still kills the `runc run`.
        let mut rest = OciContainer {
            oci: self.oci.clone(),
            id: std::mem::take(&mut self.id),
            bundle: std::mem::take(&mut self.bundle),
            exit: self.exit.take(),
            stop: self.stop.take(),
            killed: self.killed,
            done: true,
            identity: self.identity.take(),
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            // Tracked: a worker's shutdown waits for it.
            let disposals = self.oci.disposals.clone();
            handle.spawn(disposals.track_future(async move { rest.release().await }));
        }
    }
}

impl OciContainer {
    /// How it ended, waiting at most `wait` for it.
    pub async fn ended(&self, wait: Duration) -> Option<Exit> {
        let mut exit = self.exit.clone()?;
        let ended = tokio::time::timeout(wait, exit.wait_for(Option::is_some)).await;
        match ended {
            Ok(Ok(e)) => *e,
            _ => None,
        }
    }

    /// Kills it when it still runs, waits for its end, deletes what is left.
    pub async fn dispose(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.release().await;
    }

    async fn release(&mut self) {
        self.killed = true;
        let oci = self.oci.clone();
        if self.exit.is_some() {
            // An agent that has sent its report ends by itself once its stdin is closed
            // (the step has dropped it), and with it the container: `runc run` deletes
            // what it started. Only one that does not is killed.
            if self.ended(OWN_END).await.is_none() {
                oci.call(&["kill", &self.id, "KILL"]).await;
                if self.ended(END_WAIT).await.is_none() {
                    tracing::warn!(
                        container = self.id,
                        "a killed sandbox did not end within 10 s; killing its runc and deleting it"
                    );
                }
            }
        }
        if let Some(stop) = self.stop.take()
            && stop.send(()).is_ok()
        {
            // Its `runc run`, killed, has not deleted the container: let it be gone before
            // the state below is read.
            let _ = self.ended(Duration::from_secs(1)).await;
        }
        // runc deletes a container whose first process ended; this covers a runc that
        // was itself killed or never got that far.
        if !self.forgotten() {
            oci.call(&["delete", "--force", &self.id]).await;
        }
        if let Err(e) = tokio::fs::remove_dir_all(&self.bundle).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(container = self.id, error = %e, "removing a sandbox bundle failed");
        }
        // The uid goes back only once runc knows the container no more (its processes
        // died with its first one, or with the kill): one that could not be deleted may
        // still run as it, so it keeps the uid for good.
        let gone = self.exit.is_none() || self.forgotten() || !oci.call(&["state", &self.id]).await;
        if gone {
            self.identity = None;
        } else if let Some(identity) = self.identity.take() {
            tracing::warn!(
                container = self.id,
                "a sandbox outlived its deletion; its uid is not reused"
            );
            std::mem::forget(identity);
        }
    }

    /// The runtime has no state of it left, read without starting the runtime (a start of
    /// runc or runsc costs the host more than the task's own program).
    fn forgotten(&self) -> bool {
        no_state_of(&self.oci.root, &self.id)
    }
}

/// Whether `root` holds no state of the container `id`: runc keeps a container's state in
/// a directory `<root>/<id>`, runsc in a file `<root>/<id>_sandbox:<id>.state`, each
/// removed by the container's deletion (once its processes are gone); runsc's lock file
/// (`….lock`) may stay behind and says nothing. Any other entry naming the container
/// counts as state, and a root that cannot be read is a "no": the runtime is then asked,
/// never an id handed back while its sandbox may run.
fn no_state_of(root: &Path, id: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.contains(id) && !name.ends_with(".lock") {
            return false;
        }
    }
    true
}

#[async_trait]
impl Container for OciContainer {
    fn id(&self) -> &str {
        &self.id
    }

    /// Records the task it serves, for `runc list` readers (the tests, an operator), off
    /// the step's path.
    fn serves(&self, task: TaskId) -> tokio::task::JoinHandle<()> {
        let path = self.bundle.join(TASK_FILE);
        tokio::spawn(async move {
            let _ = tokio::fs::write(path, task.to_string()).await;
        })
    }

    /// Whether the memory limit killed its first process (the agent, gone without a
    /// report): killed by SIGKILL, which nothing inside can send to it and the worker did
    /// not. runc tells the worker how the agent ended; `None` when it has not ended
    /// within `within`.
    async fn saw_oom(&self, within: Duration) -> Result<Option<bool>, Error> {
        if self.killed {
            return Ok(Some(false));
        }
        Ok(self.ended(within).await.map(|e| e.killed_by == Some(9)))
    }

    /// The cgroup of its spec's `cgroupsPath`: on gVisor the Sentry's, which did all the
    /// program's work.
    fn account(&self) -> Option<crate::sandbox::account::Account> {
        crate::sandbox::account::Account::open(&super::spec::cgroups_path(&self.id))
    }

    async fn dispose(mut self: Box<Self>) {
        OciContainer::dispose(&mut self).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::sandbox::engine::runc::tests::engine;

    /// the drop ends, once (it once recursed until the stack overflowed).
    #[test]
    fn a_container_dropped_without_a_runtime_is_let_go() {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let container = OciContainer {
            oci: Arc::new(engine(true)),
            id: "codebox-dropped".into(),
            bundle: PathBuf::from("/nonexistent/codebox-dropped"),
            exit: None,
            stop: Some(stop),
            killed: false,
            done: false,
            identity: None,
        };
        drop(container);
        assert!(
            matches!(
                stopped.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed)
            ),
            "its runc run is told to end"
        );
    }

    /// A container is gone only when its runtime keeps nothing of it: runc's directory
    /// and runsc's state file each say it is there; runsc's leftover lock file, another
    /// container's state or an empty root say it is not; an unreadable root is not taken
    /// for "gone".
    #[test]
    fn a_containers_state_is_read_for_runc_and_runsc() {
        let root = std::env::temp_dir().join(format!("codebox-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let id = "codebox-0123456789abcdef0123456789abcdef";
        assert!(no_state_of(&root, id));
        std::fs::create_dir(root.join(id)).unwrap();
        assert!(!no_state_of(&root, id), "runc's directory");
        std::fs::remove_dir(root.join(id)).unwrap();
        let runsc = root.join(format!("{id}_sandbox:{id}"));
        std::fs::write(runsc.with_extension("lock"), b"").unwrap();
        assert!(no_state_of(&root, id), "a lock file alone");
        std::fs::write(runsc.with_extension("state"), b"{}").unwrap();
        assert!(!no_state_of(&root, id), "runsc's state file");
        assert!(no_state_of(&root, "codebox-another"));
        assert!(!no_state_of(&root.join("missing"), id));
        let _ = std::fs::remove_dir_all(&root);
    }
}
