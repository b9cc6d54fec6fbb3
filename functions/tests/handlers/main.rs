//! Every route through `router(state).oneshot(..)`: no server, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use codebox_core::domain::{Commit, ImageResult, TaskKind, TaskResult, TaskStatus, Verdict};
use codebox_core::memory::MemoryQueue;
use codebox_functions::config::{ApiConfig, Backends};
use codebox_functions::{AppState, router};
use secrecy::SecretString;
use serde_json::{Value, json};

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod events;
mod images;
mod judge0;
mod limits;
mod service;
mod tasks;
mod workers;

use common::*;

fn app_with(limits: codebox_core::limits::LimitsConfig, cors: &[&str]) -> Router {
    let mut c = config(3600);
    c.limits = limits;
    c.cors_origins = cors.iter().map(|o| (*o).to_owned()).collect();
    router(AppState::build(&c, &Backends::memory()).unwrap())
}

fn assert_429(r: &Reply) {
    let detail = r.problem(StatusCode::TOO_MANY_REQUESTS);
    let after: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&after), "Retry-After {after} ({detail})");
}
