//! Judge0's `additional_files`: a base64 zip whose files land beside the program (Judge0
//! unpacks it in the box with `unzip -n`, so the program's own file wins over an entry of
//! its name). Read here, in the API, into codebox's `files`, with the bounds every task's
//! files have — at most 64, 4 MiB together, counted as they inflate whatever the zip's
//! headers claim (a zip bomb stops at the bound) — and only plain files at plain relative
//! paths: a link, an absolute path or `..` is refused, not skipped.

use std::io::Read;

use base64::Engine;
use codebox_core::tasks::{FileEncoding, FileRequest, MAX_FILES, MAX_FILES_BYTES, check_file_path};

/// Entries of a zip read at most (directories included).
const MAX_ENTRIES: usize = 1024;

/// The zip's files, the entries named in `skip` (the program's own files: its source,
/// its compiled artifact) left out, and a name's later entries (`unzip -n` keeps the
/// first).
pub fn unzip(base64_zip: &str, skip: &[&str]) -> Result<Vec<FileRequest>, String> {
    let compact: String = base64_zip.split_ascii_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "additional_files is not base64".to_owned())?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("additional_files is not a zip: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!("additional_files: more than {MAX_ENTRIES} entries"));
    }
    let mut files: Vec<FileRequest> = Vec::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("additional_files: entry {i}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("additional_files: entry {i}: {e}"))?
            .into_owned();
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink() || !entry.is_file() {
            return Err(format!("additional_files: {name:?} is not a plain file"));
        }
        check_file_path(&name).map_err(|e| format!("additional_files: {}", reason(&e)))?;
        if skip.contains(&name.as_str()) || files.iter().any(|f| f.path == name) {
            continue;
        }
        if files.len() == MAX_FILES {
            return Err(format!("additional_files: more than {MAX_FILES} files"));
        }
        let room = MAX_FILES_BYTES - total;
        let mut content = Vec::new();
        (&mut entry)
            .take(room as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("additional_files: {name:?}: {e}"))?;
        if content.len() > room {
            return Err(format!(
                "additional_files: more than {MAX_FILES_BYTES} bytes unpacked"
            ));
        }
        total += content.len();
        files.push(FileRequest {
            path: name,
            content: base64::engine::general_purpose::STANDARD.encode(&content),
            encoding: Some(FileEncoding::Base64),
        });
    }
    Ok(files)
}

/// A validation error's words without its `files: ` lead.
fn reason(e: &codebox_core::Error) -> String {
    let text = e.to_string();
    text.split_once("files: ")
        .map_or(text.clone(), |(_, rest)| rest.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> String {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            if let Some(dir) = name.strip_suffix('/') {
                w.add_directory(dir, SimpleFileOptions::default()).unwrap();
            } else {
                w.start_file(*name, SimpleFileOptions::default()).unwrap();
                w.write_all(bytes).unwrap();
            }
        }
        base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
    }

    #[test]
    fn plain_files_come_out_and_the_program_s_own_wins() {
        let zip = zip_of(&[
            ("lib/", b""),
            ("lib/helper.py", b"X = 1\n"),
            ("data.txt", b"\x00\x01"),
            ("main.py", b"print('from the zip')"),
        ]);
        // Newlines in the base64, as Ruby's encoder writes them.
        let wrapped: String = zip
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let files = unzip(&wrapped, &["main.py"]).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["lib/helper.py", "data.txt"]);
        assert_eq!(files[1].content, "AAE=");
    }

    #[test]
    fn links_escapes_bombs_and_crowds_are_refused() {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let link =
            base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner());
        assert!(
            unzip(&link, &["main.py"])
                .unwrap_err()
                .contains("not a plain file")
        );
        for name in ["../x", "/etc/x", "a/../../x"] {
            let err = unzip(&zip_of(&[(name, b"x")]), &["main.py"]).unwrap_err();
            assert!(err.starts_with("additional_files: "), "{name}: {err}");
        }
        // 5 MiB of zeros deflate to a few KB: stopped as it inflates past 4 MiB.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("zeros", deflated).unwrap();
        w.write_all(&vec![0u8; 5 << 20]).unwrap();
        let bomb = w.finish().unwrap().into_inner();
        assert!(bomb.len() < 64 * 1024);
        let bomb = base64::engine::general_purpose::STANDARD.encode(bomb);
        assert!(
            unzip(&bomb, &["main.py"])
                .unwrap_err()
                .contains("bytes unpacked")
        );
        let crowd: Vec<(String, &[u8])> = (0..=MAX_FILES)
            .map(|i| (format!("f{i}"), &b"x"[..]))
            .collect();
        let crowd: Vec<(&str, &[u8])> = crowd.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        assert!(
            unzip(&zip_of(&crowd), &["main.py"])
                .unwrap_err()
                .contains("more than")
        );
        assert!(
            unzip("not base64!", &["main.py"])
                .unwrap_err()
                .contains("not base64")
        );
        // An empty zip (its end record alone) places nothing.
        let empty = base64::engine::general_purpose::STANDARD.encode(
            zip::ZipWriter::new(std::io::Cursor::new(Vec::new()))
                .finish()
                .unwrap()
                .into_inner(),
        );
        assert!(unzip(&empty, &["main.py"]).unwrap().is_empty());
    }
}
