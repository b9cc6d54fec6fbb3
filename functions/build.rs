//! Compresses the playground's files (`web/`) with gzip into `OUT_DIR/web/`: the bytes
//! every binary that serves the playground carries for each file the page loads, and
//! what a browser (every one takes gzip) is sent. `handlers/root.rs` includes them (the
//! page itself it keeps as it is).

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    println!("cargo:rerun-if-changed={}", web.display());
    let out = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("cargo sets OUT_DIR for a build script"))?;
    compress_tree(&web, &out.join("web"))
}

fn compress_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (path, name) = (entry.path(), entry.file_name());
        if entry.file_type()?.is_dir() {
            compress_tree(&path, &to.join(&name))?;
            continue;
        }
        // Level 9, and a fixed header (no name, no time): the same bytes on every build.
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&std::fs::read(&path)?)?;
        let mut target = name;
        target.push(".gz");
        std::fs::write(to.join(target), gz.finish()?)?;
    }
    Ok(())
}
