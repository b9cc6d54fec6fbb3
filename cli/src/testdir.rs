//! `--tests DIR`: a folder of `NAME.in` / `NAME.out` pairs, in the order of their names.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fail::{Fail, Result, io_reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub stdin: String,
    pub expected_stdout: String,
}

/// The pairs of `dir`, sorted by name; other files are left alone.
///
/// # Errors
/// An unreadable folder or file, a file that is not UTF-8, a `.in` without its `.out`
/// (or the reverse), or no pair at all.
pub fn read(dir: &Path) -> Result<Vec<TestCase>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Fail::input(format!("cannot read {}: {}", dir.display(), io_reason(&e))))?;
    // name → (.in, .out)
    let mut pairs: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Fail::input(format!("cannot read {}: {}", dir.display(), io_reason(&e)))
        })?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(name) = file_name.strip_suffix(".in") {
            pairs.entry(name.to_owned()).or_default().0 = true;
        } else if let Some(name) = file_name.strip_suffix(".out") {
            pairs.entry(name.to_owned()).or_default().1 = true;
        }
    }
    if pairs.is_empty() {
        return Err(Fail::input(format!(
            "{} has no NAME.in / NAME.out pairs",
            dir.display()
        )));
    }
    let mut tests = Vec::with_capacity(pairs.len());
    for (name, (has_in, has_out)) in pairs {
        if !has_out {
            return Err(Fail::input(format!(
                "{} has no {name}.out for its {name}.in",
                dir.display()
            )));
        }
        if !has_in {
            return Err(Fail::input(format!(
                "{} has no {name}.in for its {name}.out",
                dir.display()
            )));
        }
        tests.push(TestCase {
            stdin: read_text(&dir.join(format!("{name}.in")))?,
            expected_stdout: read_text(&dir.join(format!("{name}.out")))?,
            name,
        });
    }
    Ok(tests)
}

/// A file the API takes as a JSON string: it must be UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::input(format!("cannot read {}: {}", path.display(), io_reason(&e))))?;
    String::from_utf8(bytes)
        .map_err(|_| Fail::input(format!("{} is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fail::code;

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(tag: &str, files: &[(&str, &str)]) -> Self {
            let path = std::env::temp_dir()
                .join(format!("codebox-cli-testdir-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            for (name, text) in files {
                std::fs::write(path.join(name), text).unwrap();
            }
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_pairs_in_name_order() {
        let dir = Dir::new(
            "ok",
            &[
                ("b.in", "2\n"),
                ("b.out", "4\n"),
                ("a.in", "1\n"),
                ("a.out", "2\n"),
                ("README", "not a test"),
            ],
        );
        let tests = read(&dir.0).unwrap();
        let names: Vec<_> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(tests[1].stdin, "2\n");
        assert_eq!(tests[1].expected_stdout, "4\n");
    }

    #[test]
    fn an_in_without_its_out_is_an_error() {
        let dir = Dir::new("lonely-in", &[("a.in", "1"), ("a.out", "1"), ("b.in", "2")]);
        let e = read(&dir.0).unwrap_err();
        assert_eq!(e.code, code::NO_INPUT);
        assert!(e.message.ends_with("has no b.out for its b.in"), "{e}");

        let dir = Dir::new("lonely-out", &[("c.out", "1")]);
        assert!(
            read(&dir.0)
                .unwrap_err()
                .message
                .ends_with("has no c.in for its c.out")
        );
    }

    #[test]
    fn empty_missing_and_binary_folders_are_errors() {
        let dir = Dir::new("empty", &[("notes.txt", "")]);
        assert!(
            read(&dir.0)
                .unwrap_err()
                .message
                .contains("no NAME.in / NAME.out pairs")
        );
        let e = read(Path::new("/nonexistent/codebox-tests")).unwrap_err();
        assert!(e.message.contains("no such file or directory"), "{e}");
        let dir = Dir::new("binary", &[("a.out", "1")]);
        std::fs::write(dir.0.join("a.in"), [0xff, 0xfe]).unwrap();
        assert!(
            read(&dir.0)
                .unwrap_err()
                .message
                .ends_with("a.in is not UTF-8 text")
        );
    }
}
