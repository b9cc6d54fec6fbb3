//! The languages codebox runs. Adding one means a row here, its commands in [`plan`], and
//! its packages in the runner image (`worker/runner/build-image.sh`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{CodeSpec, Compiler};

#[derive(Debug, Clone, Copy)]
pub struct LanguageDef {
    pub id: &'static str,
    pub name: &'static str,
    /// Empty for interpreted languages; the first is the default.
    pub compilers: &'static [Compiler],
    /// Judge0 CE 1.13.1's ids for it, each with the compiler it means; the first of a
    /// compiler is the one reported back.
    pub judge0: &'static [(u16, Option<Compiler>)],
    /// Interpreted languages: a shell command printing the interpreter's version (the
    /// runner image's, as `GET /languages` reports it). Compilers have theirs in
    /// [`COMPILER_VERSIONS`].
    pub version: &'static str,
}

/// Shell commands printing each compiler's version.
pub const COMPILER_VERSIONS: &[(Compiler, &str)] = &[
    (Compiler::Gcc, "gcc -dumpfullversion"),
    (Compiler::Clang, "clang -dumpversion"),
];

pub const LANGUAGES: &[LanguageDef] = &[
    LanguageDef {
        id: "python",
        name: "Python",
        compilers: &[],
        judge0: &[(71, None)],
        version: "python3 -c 'import platform; print(platform.python_version())'",
    },
    LanguageDef {
        id: "c",
        name: "C",
        compilers: &[Compiler::Gcc, Compiler::Clang],
        judge0: &[(50, Some(Compiler::Gcc)), (75, Some(Compiler::Clang))],
        version: "",
    },
    LanguageDef {
        id: "cpp",
        name: "C++",
        compilers: &[Compiler::Gcc, Compiler::Clang],
        // 54 is Judge0's C++ (GCC 9.2.0), 52 its C++ (GCC 7.4.0), which its SDK calls CPP.
        judge0: &[
            (54, Some(Compiler::Gcc)),
            (52, Some(Compiler::Gcc)),
            (76, Some(Compiler::Clang)),
        ],
        version: "",
    },
    LanguageDef {
        id: "bash",
        name: "Bash",
        compilers: &[],
        judge0: &[(46, None)],
        version: "bash -c 'echo \"${BASH_VERSION%%(*}\"'",
    },
    LanguageDef {
        id: "perl",
        name: "Perl",
        compilers: &[],
        judge0: &[(85, None)],
        version: "perl -e 'print substr($^V, 1), \"\\n\"'",
    },
];

/// The shell line that prints, one per line, the version of every interpreted language
/// (in table order), then of every compiler (in [`COMPILER_VERSIONS`] order); an empty
/// line for one that is missing. [`read_versions`] reads it back.
pub fn version_probe() -> String {
    LANGUAGES
        .iter()
        .filter(|l| l.compilers.is_empty())
        .map(|l| l.version)
        .chain(COMPILER_VERSIONS.iter().map(|(_, cmd)| *cmd))
        .map(|cmd| format!("echo \"$( ({cmd}) 2>/dev/null | head -n 1)\""))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The listing with the versions [`version_probe`] printed.
pub fn read_versions(output: &str) -> Vec<Language> {
    let mut lines = output.lines().map(|l| {
        let l = l.trim();
        (!l.is_empty()).then(|| l.to_owned())
    });
    let mut listing = unprobed();
    for lang in listing.iter_mut().filter(|l| !l.compiled) {
        lang.version = lines.next().flatten();
    }
    let compilers: Vec<(Compiler, Option<String>)> = COMPILER_VERSIONS
        .iter()
        .map(|(c, _)| (*c, lines.next().flatten()))
        .collect();
    for lang in listing.iter_mut().filter(|l| l.compiled) {
        for c in &mut lang.compilers {
            c.version = compilers
                .iter()
                .find(|(id, _)| *id == c.id)
                .and_then(|(_, v)| v.clone());
        }
        lang.version = lang.compilers.first().and_then(|c| c.version.clone());
    }
    listing
}

pub fn find(id: &str) -> Option<&'static LanguageDef> {
    LANGUAGES.iter().find(|l| l.id == id)
}

/// The language and compiler a Judge0 language id means.
pub fn by_judge0(id: u16) -> Option<(&'static LanguageDef, Option<Compiler>)> {
    LANGUAGES.iter().find_map(|l| {
        l.judge0
            .iter()
            .find(|(j, _)| *j == id)
            .map(|(_, compiler)| (l, *compiler))
    })
}

/// The Judge0 id reported for a language run with a compiler.
pub fn judge0_id(language: &str, compiler: Option<Compiler>) -> Option<u16> {
    find(language)?
        .judge0
        .iter()
        .find(|(_, c)| *c == compiler)
        .map(|(id, _)| *id)
}

pub fn ids() -> String {
    LANGUAGES
        .iter()
        .map(|l| l.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A language as `GET /languages` lists it, with the versions found in the runner image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Language {
    #[schema(example = "python")]
    pub id: String,
    #[schema(example = "Python")]
    pub name: String,
    /// Version of the interpreter, or of the default compiler; `null` until a worker
    /// has looked into the runner image.
    #[schema(example = "3.11.2")]
    pub version: Option<String>,
    pub compiled: bool,
    /// For compiled languages: each compiler with its version.
    pub compilers: Vec<CompilerVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompilerVersion {
    pub id: Compiler,
    pub version: Option<String>,
}

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

/// How `spec`'s language is compiled and run inside the runner image; `None` for a
/// language this build does not know (an old worker, a new API).
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
        "bash" => Some(Plan {
            source: "main.sh",
            compile: None,
            run: argv(&["bash", "main.sh"]),
        }),
        "perl" => Some(Plan {
            source: "main.pl",
            compile: None,
            run: argv(&["perl", "main.pl"]),
        }),
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

/// The listing with no versions known yet.
pub fn unprobed() -> Vec<Language> {
    LANGUAGES
        .iter()
        .map(|l| Language {
            id: l.id.to_owned(),
            name: l.name.to_owned(),
            version: None,
            compiled: !l.compilers.is_empty(),
            compilers: l
                .compilers
                .iter()
                .map(|&c| CompilerVersion {
                    id: c,
                    version: None,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Judge0 id maps to one language and compiler, and what codebox reports for
    /// them maps back to the same pair.
    #[test]
    fn judge0_ids_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for l in LANGUAGES {
            assert!(!l.judge0.is_empty(), "{} has no Judge0 id", l.id);
            for &(id, compiler) in l.judge0 {
                assert!(seen.insert(id), "Judge0 id {id} twice");
                let (def, c) = by_judge0(id).unwrap_or_else(|| panic!("{id}"));
                assert_eq!((def.id, c), (l.id, compiler));
                let reported = judge0_id(l.id, compiler).unwrap_or_else(|| panic!("{id}"));
                let (def, c) = by_judge0(reported).unwrap_or_else(|| panic!("{reported}"));
                assert_eq!((def.id, c), (l.id, compiler));
                match compiler {
                    None => assert!(l.compilers.is_empty()),
                    Some(c) => assert!(l.compilers.contains(&c)),
                }
            }
        }
        assert_eq!(by_judge0(71).map(|(l, _)| l.id), Some("python"));
        assert_eq!(by_judge0(46).map(|(l, _)| l.id), Some("bash"));
        assert_eq!(by_judge0(9999).map(|(l, _)| l.id), None);
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    /// Every language has a way to run it and, if interpreted, a version command; the
    /// probe's lines map back to the right languages and compilers.
    #[test]
    fn every_language_has_commands_and_its_versions_read_back() {
        for l in LANGUAGES {
            let spec = CodeSpec {
                language: l.id.to_owned(),
                compiler: l.compilers.first().copied(),
                ..CodeSpec::default()
            };
            let plan = plan(&spec).unwrap_or_else(|| panic!("{} has no commands", l.id));
            assert_eq!(plan.compile.is_some(), !l.compilers.is_empty(), "{}", l.id);
            assert_eq!(l.version.is_empty(), !l.compilers.is_empty(), "{}", l.id);
        }
        let interpreted = LANGUAGES.iter().filter(|l| l.compilers.is_empty()).count();
        assert_eq!(
            version_probe().matches("echo \"$(").count(),
            interpreted + COMPILER_VERSIONS.len()
        );
        let mut out: Vec<String> = (0..interpreted).map(|i| format!("1.{i}")).collect();
        out.push("12.2.0".into());
        out.push(String::new()); // clang missing
        let listing = read_versions(&out.join("\n"));
        let find = |id: &str| listing.iter().find(|l| l.id == id).unwrap();
        assert_eq!(find("python").version.as_deref(), Some("1.0"));
        assert_eq!(find("c").version.as_deref(), Some("12.2.0"));
        assert_eq!(find("cpp").compilers[1].version, None);
    }
}
