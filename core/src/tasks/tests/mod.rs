//! The task service's tests, by area.

use std::sync::Arc;

use base64::Engine;

use crate::png;

use super::request::*;
use super::service::*;
use super::uploads::*;
use super::validate::*;
use crate::memory::{MemoryBlobStore, MemoryQueue, MemoryTaskStore};

pub(super) fn service() -> (TaskService, MemoryQueue) {
    let queue = MemoryQueue::new(3);
    let svc = TaskService::new(
        Arc::new(MemoryTaskStore::default()),
        Arc::new(MemoryBlobStore::default()),
        Arc::new(queue.clone()),
    );
    (svc, queue)
}

pub(super) fn code(lang: &str) -> SubmitRequest {
    SubmitRequest {
        language: Some(lang.into()),
        code: Some("print(1)".into()),
        ..Default::default()
    }
}

pub(super) fn tiny_png_base64() -> String {
    let mut png = png::SIGNATURE.to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0, 0, 0, 0]);
    base64::engine::general_purpose::STANDARD.encode(&png)
}

mod fairness;
mod service;
mod uploads;
mod validation;
mod waiting;
