//! How each language is compiled and run inside the runner image (the table and the
//! commands live in `codebox_core::languages`); and the version probe.
//!
//! To add a language: see `codebox_core::languages`.

pub use codebox_core::languages::{BOX_DIR, Plan, plan};
