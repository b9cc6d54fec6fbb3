//! How each language is compiled and run inside the runner image.
//!
//! To add a language: a row in `codebox_core::languages::LANGUAGES`, its packages in
//! `worker/runner/build-image.sh` (and the Dockerfile beside it), and its arm here.

use codebox_core::domain::{CodeSpec, Compiler};

/// Where a task's files live inside its container (on the tmpfs).
pub const BOX_DIR: &str = "/tmp/box";
pub const BINARY: &str = "main";

pub struct Plan {
    /// Source file name inside `BOX_DIR`.
    pub source: &'static str,
    /// The compiler command (argv), for compiled languages.
    pub compile: Option<Vec<String>>,
    /// The program command (argv, before the task's args).
    pub run: Vec<String>,
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// `None` for a language this worker does not know (an old worker, a new API).
pub fn plan(spec: &CodeSpec) -> Option<Plan> {
    // Compiled programs run with line-buffered stdio, so output written before a kill
    // (time limit, output cap) is not lost in a buffer.
    let native = argv(&["stdbuf", "-oL", "-eL", "./main"]);
    let compiler = spec.compiler.unwrap_or(Compiler::Gcc);
    match spec.language.as_str() {
        "python" => Some(Plan {
            source: "main.py",
            compile: None,
            run: argv(&["python3", "-B", "main.py"]),
        }),
        "c" => {
            let cc = match compiler {
                Compiler::Gcc => "gcc",
                Compiler::Clang => "clang",
            };
            Some(Plan {
                source: "main.c",
                compile: Some(argv(&[
                    cc, "-O2", "-std=c17", "-o", BINARY, "main.c", "-lm",
                ])),
                run: native,
            })
        }
        "cpp" => {
            let cxx = match compiler {
                Compiler::Gcc => "g++",
                Compiler::Clang => "clang++",
            };
            Some(Plan {
                source: "main.cpp",
                compile: Some(argv(&[cxx, "-O2", "-std=c++17", "-o", BINARY, "main.cpp"])),
                run: native,
            })
        }
        _ => None,
    }
}

/// The shell line that prints the versions of everything in the image, one per line, in
/// the order `parse_versions` reads them.
pub const VERSION_PROBE: &str = "python3 -c 'import platform; print(platform.python_version())'; \
gcc -dumpfullversion; clang -dumpversion";
