//! The two kinds of run: code in a sandbox, an image filter in a child process.

use super::*;

impl Worker {
    /// The sandbox run, stopped when `cancel` fires.
    pub(super) async fn run_sandboxed(
        &self,
        job: &SandboxJob,
        cancel: CancellationToken,
    ) -> Result<codebox_core::domain::CodeResult, Error> {
        let sandbox = &self.sandbox;
        self.hold(
            "the container engine",
            HOLD_TRIES,
            || sandbox.run(job, cancel.clone()),
            || sandbox.ping(),
            OnStop::HandBack,
        )
        .await
    }

    pub(super) async fn run_image(
        &self,
        message: &TaskMessage,
        spec: &ImageSpec,
    ) -> Result<(TaskStatus, TaskResult), Error> {
        let blobs = &self.blobs;
        let input = self
            .hold(
                "the blob store",
                HOLD_TRIES,
                || blobs.get(&spec.input_key),
                || blobs.ping(),
                OnStop::HandBack,
            )
            .await?
            .ok_or_else(|| {
                Error::Backend(anyhow::anyhow!("input blob {} is missing", spec.input_key))
            })?;
        let started = Instant::now();
        // In a child process under memory and time limits: a hostile PNG costs the child,
        // never this process.
        let output =
            match crate::filters::child::run(&self.config.filter, input, &spec.filter).await {
                Err(crate::filters::child::ChildError::Platform(e)) => {
                    return Err(Error::Backend(anyhow::anyhow!(e)));
                }
                other => other,
            };
        metrics::histogram!("codebox_sandbox_seconds", "language" => "image")
            .record(started.elapsed().as_secs_f64());
        match output {
            Ok(png) => {
                let key = codebox_core::tasks::output_key(message.task_id);
                self.hold(
                    "the blob store",
                    HOLD_TRIES,
                    || blobs.put(&key, png.clone()),
                    || blobs.ping(),
                    // The filter has run: its output is kept, as a commit is.
                    OnStop::KeepTrying,
                )
                .await?;
                Ok((
                    TaskStatus::Completed,
                    TaskResult::Image(ImageResult {
                        verdict: Verdict::Ok,
                        output_key: Some(key),
                        error: None,
                    }),
                ))
            }
            // The input itself is bad: the platform could not produce an output.
            Err(e) => Ok((
                TaskStatus::Failed,
                TaskResult::Image(ImageResult {
                    verdict: Verdict::InternalError,
                    output_key: None,
                    error: Some(e.to_string()),
                }),
            )),
        }
    }
}
