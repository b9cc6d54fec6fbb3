//! A source file's language, told by its extension among the languages the server has.

use std::path::Path;

/// File extensions (lower case) and the language ids of `GET /languages` they mean.
const EXTENSIONS: &[(&str, &str)] = &[
    ("py", "python"),
    ("c", "c"),
    ("cpp", "cpp"),
    ("cc", "cpp"),
    ("cxx", "cpp"),
    ("c++", "cpp"),
    ("js", "javascript"),
    ("mjs", "javascript"),
    ("cjs", "javascript"),
    ("ts", "typescript"),
    ("go", "go"),
    ("rs", "rust"),
    ("java", "java"),
    ("kt", "kotlin"),
    ("cs", "csharp"),
    ("rb", "ruby"),
    ("php", "php"),
    ("lua", "lua"),
    ("hs", "haskell"),
    ("sh", "bash"),
    ("bash", "bash"),
    ("pl", "perl"),
    ("txt", "plaintext"),
    ("asm", "assembly"),
    ("nasm", "assembly"),
    ("lisp", "commonlisp"),
    ("lsp", "commonlisp"),
    ("cl", "commonlisp"),
    ("d", "d"),
    ("exs", "elixir"),
    ("ex", "elixir"),
    ("erl", "erlang"),
    ("f90", "fortran"),
    ("f95", "fortran"),
    ("f03", "fortran"),
    ("f08", "fortran"),
    ("ml", "ocaml"),
    ("pas", "pascal"),
    ("pp", "pascal"),
    ("pro", "prolog"),
    ("cob", "cobol"),
    ("cbl", "cobol"),
    ("r", "r"),
    ("scala", "scala"),
    ("sql", "sql"),
    ("clj", "clojure"),
    ("groovy", "groovy"),
];

/// Extensions more than one language uses, with the languages: such a file names its
/// language with `--lang`.
const AMBIGUOUS: &[(&str, &str)] = &[("m", "octave or objectivec")];

/// The language id for `file`, if its extension names one the server reports.
///
/// # Errors
/// A line telling what went wrong and what the server has, to use with `--lang`.
pub fn language_of(file: &Path, available: &[String]) -> Result<String, String> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let known = ext
        .as_deref()
        .and_then(|ext| EXTENSIONS.iter().find(|(e, _)| *e == ext))
        .map(|(_, id)| *id);
    let list = available.join(", ");
    if let Some((ext, which)) = ext
        .as_deref()
        .and_then(|ext| AMBIGUOUS.iter().find(|(e, _)| *e == ext))
    {
        return Err(format!(
            "a .{ext} file may be {which}: use --lang (one of: {list})"
        ));
    }
    match known {
        Some(id) if available.iter().any(|a| a == id) => Ok(id.to_owned()),
        Some(id) => Err(format!("the server does not run {id} (it has: {list})")),
        None => Err(format!(
            "cannot tell the language of {} from its extension: use --lang (one of: {list})",
            file.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        EXTENSIONS.iter().map(|(_, id)| (*id).to_owned()).collect()
    }

    #[test]
    fn extensions_name_languages() {
        let all = all();
        for (file, id) in [
            ("hello.py", "python"),
            ("a/b/main.C", "c"),
            ("x.cc", "cpp"),
            ("x.hpp.cpp", "cpp"),
            ("Main.java", "java"),
            ("s.bash", "bash"),
            ("m.mjs", "javascript"),
            ("p.PL", "perl"),
        ] {
            assert_eq!(
                language_of(Path::new(file), &all).as_deref(),
                Ok(id),
                "{file}"
            );
        }
    }

    #[test]
    fn unknown_or_missing_languages_say_what_there_is() {
        let some = vec!["python".to_owned(), "c".to_owned()];
        let e = language_of(Path::new("notes.xyz"), &some).unwrap_err();
        assert!(e.contains("--lang") && e.contains("python, c"), "{e}");
        let e = language_of(Path::new("Makefile"), &some).unwrap_err();
        assert!(e.contains("Makefile"), "{e}");
        let e = language_of(Path::new("main.go"), &some).unwrap_err();
        assert_eq!(e, "the server does not run go (it has: python, c)");
        let e = language_of(Path::new("main.m"), &all()).unwrap_err();
        assert!(
            e.starts_with("a .m file may be octave or objectivec: use --lang"),
            "{e}"
        );
    }

    /// Every language of the service's table is reachable from the extension of the
    /// source file it writes the code to (`main.py`, `Main.java`, …), but for an
    /// extension several share and a multi-file program, whose code is its `run`
    /// script (named with `--lang multifile`).
    #[test]
    fn every_language_of_the_service_has_its_extension() {
        let all = all();
        for lang in codebox_core::languages::LANGUAGES {
            let Some((_, ext)) = lang.source.rsplit_once('.') else {
                assert_eq!(lang.id, "multifile");
                continue;
            };
            if AMBIGUOUS
                .iter()
                .any(|(e, which)| *e == ext && which.contains(lang.id))
            {
                continue;
            }
            assert_eq!(
                language_of(Path::new(lang.source), &all).as_deref(),
                Ok(lang.id),
                "{}",
                lang.source
            );
        }
    }
}
