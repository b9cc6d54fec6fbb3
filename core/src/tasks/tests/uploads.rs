use super::*;

use base64::Engine;
use uuid::Uuid;

use crate::domain::{ImageSpec, TaskKind, TaskSpec};
use crate::error::Error;
use crate::png;

/// A PNG header: all the API looks at before the worker decodes.
fn image_from(key: Option<&str>, b64: Option<String>) -> SubmitRequest {
    SubmitRequest {
        kind: Some(TaskKind::Image),
        image_key: key.map(str::to_owned),
        image_base64: b64,
        filter: Some(FilterRequest {
            name: "negative".into(),
            parameters: None,
        }),
        ..Default::default()
    }
}

/// A service, and an image task its owner submitted from an upload: the upload's key,
/// the PNG and the task's spec.
async fn submitted_from_an_upload() -> (TaskService, Uuid, String, Vec<u8>, ImageSpec) {
    let (svc, _queue) = service();
    let owner = Uuid::new_v4();
    let png = base64::engine::general_purpose::STANDARD
        .decode(tiny_png_base64())
        .unwrap();
    let key = upload_key(owner);
    svc.blobs.put(&key, png.clone()).await.unwrap();
    let submitted = svc
        .submit(owner, image_from(Some(&key), None), None)
        .await
        .unwrap();
    let TaskSpec::Image(spec) = submitted.task.spec else {
        panic!("an image task")
    };
    (svc, owner, key, png, spec)
}

/// Uploads are deleted once older than they are kept; a task's own copy of one is not.
#[tokio::test]
async fn expired_uploads_are_deleted_and_task_inputs_kept() {
    let (svc, _owner, key, png, spec) = submitted_from_an_upload().await;
    assert_eq!(svc.expire_uploads(UPLOAD_KEPT).await.unwrap(), 0, "young");
    assert!(svc.blobs.get(&key).await.unwrap().is_some());
    assert_eq!(
        svc.expire_uploads(chrono::Duration::seconds(-5))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        svc.blobs.get(&key).await.unwrap(),
        None,
        "the upload is gone"
    );
    assert_eq!(
        svc.blobs.get(&spec.input_key).await.unwrap(),
        Some(png),
        "the task's copy stays"
    );
}

/// A task from an upload gets a checked copy of its own; only the uploader's own,
/// existing, PNG, not-too-large upload is taken.
#[tokio::test]
async fn an_image_task_takes_its_owners_upload() {
    let (svc, owner, key, png, spec) = submitted_from_an_upload().await;
    assert!(spec.input_key.starts_with("input/"), "{}", spec.input_key);
    assert_eq!(
        svc.blobs.get(&spec.input_key).await.unwrap(),
        Some(png.clone())
    );
    // Rewriting the upload afterwards does not touch the task's copy.
    svc.blobs.put(&key, b"not a png".to_vec()).await.unwrap();
    assert_eq!(
        svc.blobs.get(&spec.input_key).await.unwrap(),
        Some(png.clone())
    );

    let someone = Uuid::new_v4();
    let theirs = upload_key(someone);
    svc.blobs.put(&theirs, png.clone()).await.unwrap();
    let big = upload_key(owner);
    let mut over = png.clone();
    over.resize(png::MAX_BYTES + 1, 0);
    svc.blobs.put(&big, over).await.unwrap();
    let refused: [(&str, SubmitRequest); 7] = [
        ("another user's upload", image_from(Some(&theirs), None)),
        (
            "a missing upload",
            image_from(Some(&upload_key(owner)), None),
        ),
        ("not a PNG", image_from(Some(&key), None)),
        ("an input key", image_from(Some(&spec.input_key), None)),
        (
            "a path",
            image_from(Some(&format!("uploads/{owner}/../x.png")), None),
        ),
        ("both", image_from(Some(&key), Some(tiny_png_base64()))),
        ("neither", image_from(None, None)),
    ];
    for (what, request) in refused {
        let e = svc.submit(owner, request, None).await.unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{what}: {e:?}");
    }
    let e = svc
        .submit(owner, image_from(Some(&big), None), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e:?}");
    let e = svc
        .submit(
            owner,
            SubmitRequest {
                code: Some("x".into()),
                ..image_from(Some(&key), None)
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
}

/// Where requests must stay small, an inline PNG over the limit is refused with 413
/// and a pointer to uploads; within it, taken as usual.
#[tokio::test]
async fn inline_images_above_the_deployments_limit_are_too_large() {
    let (svc, _queue) = service();
    let svc = svc.with_inline_image_limit(40);
    let owner = Uuid::new_v4();
    svc.submit(owner, image_from(None, Some(tiny_png_base64())), None)
        .await
        .unwrap();
    let mut png = base64::engine::general_purpose::STANDARD
        .decode(tiny_png_base64())
        .unwrap();
    png.resize(41, 0);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let e = svc
        .submit(owner, image_from(None, Some(b64)), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge(m) if m.contains("POST /task/upload")),
        "{e:?}"
    );
}

/// Counts the copies made into the blob store.
#[derive(Default)]
struct CountedBlobs {
    blobs: crate::memory::MemoryBlobStore,
    puts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl crate::ports::BlobStore for CountedBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> crate::error::Result<()> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.blobs.put(key, bytes).await
    }

    async fn get(&self, key: &str) -> crate::error::Result<Option<Vec<u8>>> {
        self.blobs.get(key).await
    }

    async fn delete(&self, key: &str) -> crate::error::Result<()> {
        self.blobs.delete(key).await
    }
}

/// An image task over its owner's cap on tasks under way is refused before its input is
/// copied: a refused submit costs the blob store nothing.
#[tokio::test]
async fn an_image_over_the_active_cap_is_refused_before_its_copy() {
    let blobs = Arc::new(CountedBlobs::default());
    let svc = TaskService::new(
        Arc::new(MemoryTaskStore::default()),
        blobs.clone(),
        Arc::new(MemoryQueue::new(3)),
    )
    .with_active_cap(1);
    let owner = Uuid::new_v4();
    svc.submit(owner, image_from(None, Some(tiny_png_base64())), None)
        .await
        .unwrap();
    assert_eq!(blobs.puts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let refused = svc
        .submit(owner, image_from(None, Some(tiny_png_base64())), None)
        .await;
    assert!(
        matches!(refused, Err(Error::RateLimited(..))),
        "a second task under a cap of 1: {refused:?}"
    );
    assert_eq!(
        blobs.puts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the refused task's input was copied"
    );
}
