//! How each language is compiled and run inside the runner image (the table and the
//! commands live in `codebox_core::languages`); and the version probe.
//!
//! To add a language: a row in `codebox_core::languages::LANGUAGES` with its arm in
//! `codebox_core::languages::plan`, and its packages in `worker/runner/build-image.sh`
//! (and the Dockerfile beside it).

pub use codebox_core::languages::{BINARY, BOX_DIR, Plan, plan};

/// The shell line that prints the versions of everything in the image, one per line, in
/// the order `parse_versions` reads them.
pub const VERSION_PROBE: &str = "python3 -c 'import platform; print(platform.python_version())'; \
gcc -dumpfullversion; clang -dumpversion";
