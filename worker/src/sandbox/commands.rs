//! How each language is compiled and run inside the runner image (the table and the
//! commands live in `codebox_core::languages`); and the version probe.
//!
//! To add a language: a row in `codebox_core::languages::LANGUAGES` with its arm in
//! `codebox_core::languages::plan`, and its packages in `worker/runner/build-image.sh`
//! (and the Dockerfile beside it).

pub use codebox_core::languages::{BINARY, BOX_DIR, Plan, plan};
