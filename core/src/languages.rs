//! The languages codebox runs: one table ([`LANGUAGES`]) holds, for each, its id and name,
//! Judge0 ids, file names, compile and run commands, compile limits and version command.
//! Adding a language is a row here, its Debian packages in the runner image
//! (`worker/runner/build-image.sh`, the Dockerfile beside it), its id in the API's enum
//! (`functions/src/dto.rs`) and its programs in `tests/src/programs.rs` (tests fail
//! until all four are there).

use crate::domain::{CodeSpec, Compiler};

#[derive(Debug, Clone, Copy)]
pub struct LanguageDef {
    pub id: &'static str,
    pub name: &'static str,
    /// The file the program's code is written to, in [`BOX_DIR`].
    pub source: &'static str,
    pub build: Build,
    /// What a compile leaves in [`BOX_DIR`] for the run step (compiled languages).
    pub artifact: &'static str,
    /// The program's command (argv, before the task's arguments), started in [`BOX_DIR`].
    pub run: &'static [&'static str],
    /// Judge0 CE 1.13.1's ids for it, each with the compiler it means; the first of a
    /// compiler is the one reported back.
    pub judge0: &'static [(u16, Option<Compiler>)],
    /// A shell command printing the version of its interpreter or of its one compiler
    /// (the runner image's, as `GET /languages` reports it); empty for a choice of
    /// compilers, whose versions are in [`COMPILER_VERSIONS`].
    pub version: &'static str,
    /// The compile step's limits (compiled languages).
    pub compile_limits: CompileLimits,
}

/// How a language's program gets from its source to something that runs.
#[derive(Debug, Clone, Copy)]
pub enum Build {
    /// Run from its source.
    Source,
    /// Compiled by its one compiler: the command (argv), which leaves the artifact.
    Compiler(&'static [&'static str]),
    /// Compiled by the compiler the task names (the first is the default), each with its
    /// command.
    Choice(&'static [(Compiler, &'static [&'static str])]),
    /// Built and run by the task's own scripts, as Judge0's multi-file programs: the code
    /// is the `run` script (`bash run`); a file named `compile` among the task's files is
    /// run first (`bash compile`), and everything in [`BOX_DIR`] after it — not one
    /// artifact — is what the run step gets ([`BOX_ARCHIVE`]).
    Scripts,
}

/// [`BOX_ARCHIVE`]'s name, for the commands written around it.
macro_rules! box_archive {
    () => {
        ".codebox-box.tar"
    };
}

/// What a [`Build::Scripts`] compile leaves for the run: its whole directory as a tar,
/// unpacked by the run step before the `run` script starts.
pub const BOX_ARCHIVE: &str = box_archive!();

/// The run step of a [`Build::Scripts`] program that was compiled: unpack, then `run`.
const UNPACK_AND_RUN: &[&str] = &[
    "sh",
    "-c",
    concat!(
        "tar -xf ",
        box_archive!(),
        " && rm -f ",
        box_archive!(),
        " && exec bash run \"$@\""
    ),
    "sh",
];

/// The file of a [`Build::Scripts`] task that makes it compiled.
pub const COMPILE_SCRIPT: &str = "compile";

/// The compile step's wall-clock and memory limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    pub time_s: u64,
    pub memory_mb: u32,
}

impl CompileLimits {
    /// What C and most compilers need; the warm pool keeps containers of this size.
    pub const STANDARD: CompileLimits = CompileLimits {
        time_s: 15,
        memory_mb: 1024,
    };
}

impl LanguageDef {
    pub fn compiled(&self) -> bool {
        !matches!(self.build, Build::Source)
    }

    /// Whether a task may add options to its compile command (every language with a
    /// compiler of the table's; a multi-file program's compile script is its own).
    pub fn takes_compiler_options(&self) -> bool {
        matches!(self.build, Build::Compiler(_) | Build::Choice(_))
    }

    /// The compilers a task may name (C, C++); empty for every other language.
    pub fn compilers(&self) -> Vec<Compiler> {
        match self.build {
            Build::Choice(list) => list.iter().map(|(c, _)| *c).collect(),
            _ => Vec::new(),
        }
    }
}

/// Shell commands printing each compiler's version.
pub const COMPILER_VERSIONS: &[(Compiler, &str)] = &[
    (Compiler::Gcc, "gcc -dumpfullversion"),
    (Compiler::Clang, "clang -dumpversion"),
];

const STANDARD: CompileLimits = CompileLimits::STANDARD;
/// Compiled programs run with line-buffered stdio, so output written before a kill (time
/// limit, output cap) is not lost in a buffer.
const NATIVE: &[&str] = &["stdbuf", "-oL", "-eL", "./main"];

pub const LANGUAGES: &[LanguageDef] = &[
    LanguageDef {
        id: "python",
        name: "Python",
        source: "main.py",
        build: Build::Source,
        artifact: "",
        run: &["python3", "-B", "main.py"],
        judge0: &[(71, None)],
        version: "python3 -c 'import platform; print(platform.python_version())'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "c",
        name: "C",
        source: "main.c",
        build: Build::Choice(&[
            (
                Compiler::Gcc,
                &["gcc", "-O2", "-std=c17", "-o", "main", "main.c", "-lm"],
            ),
            (
                Compiler::Clang,
                &["clang", "-O2", "-std=c17", "-o", "main", "main.c", "-lm"],
            ),
        ]),
        artifact: "main",
        run: NATIVE,
        // 50 is Judge0's C (GCC 9.2.0); 48 and 49 its GCC 7.4.0 and 8.3.0.
        judge0: &[
            (50, Some(Compiler::Gcc)),
            (48, Some(Compiler::Gcc)),
            (49, Some(Compiler::Gcc)),
            (75, Some(Compiler::Clang)),
        ],
        version: "",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "cpp",
        name: "C++",
        source: "main.cpp",
        build: Build::Choice(&[
            (
                Compiler::Gcc,
                &["g++", "-O2", "-std=c++17", "-o", "main", "main.cpp"],
            ),
            (
                Compiler::Clang,
                &["clang++", "-O2", "-std=c++17", "-o", "main", "main.cpp"],
            ),
        ]),
        artifact: "main",
        run: NATIVE,
        // 54 is Judge0's C++ (GCC 9.2.0), 52 its C++ (GCC 7.4.0), which its SDK calls CPP.
        judge0: &[
            (54, Some(Compiler::Gcc)),
            (52, Some(Compiler::Gcc)),
            (53, Some(Compiler::Gcc)),
            (76, Some(Compiler::Clang)),
        ],
        version: "",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "javascript",
        name: "JavaScript (Node.js)",
        source: "main.js",
        build: Build::Source,
        artifact: "",
        run: &["node", "main.js"],
        judge0: &[(63, None)],
        version: "node -p process.versions.node",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "typescript",
        name: "TypeScript",
        source: "main.ts",
        // Type-checked like `tsc` anywhere: a type error is a compile error. Node's
        // globals (require, process, Buffer) are declared by the image's node-globals.d.ts.
        build: Build::Compiler(&[
            "tsc",
            "--target",
            "es2020",
            "--module",
            "commonjs",
            "--lib",
            "es2020,dom",
            "--outDir",
            ".",
            "main.ts",
            "/usr/local/share/codebox/node-globals.d.ts",
        ]),
        artifact: "main.js",
        run: &["node", "main.js"],
        judge0: &[(74, None)],
        version: "tsc --version | cut -d' ' -f2",
        compile_limits: CompileLimits {
            time_s: 30,
            memory_mb: 1024,
        },
    },
    LanguageDef {
        id: "go",
        name: "Go",
        source: "main.go",
        // The build cache lives in the compile step's box; GOMAXPROCS bounds the threads
        // under the sandbox's pids limit on hosts with many cores.
        build: Build::Compiler(&[
            "env",
            "GOCACHE=/tmp/box/.cache",
            "GOPATH=/tmp/box/.go",
            "GO111MODULE=off",
            "GOMAXPROCS=2",
            "go",
            "build",
            "-o",
            "main",
            "main.go",
        ]),
        artifact: "main",
        run: &["env", "GOMAXPROCS=2", "./main"],
        judge0: &[(60, None)],
        version: "go env GOVERSION | sed 's/^go//'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "rust",
        name: "Rust",
        source: "main.rs",
        build: Build::Compiler(&[
            "rustc",
            "--edition",
            "2021",
            "-C",
            "opt-level=2",
            "-o",
            "main",
            "main.rs",
        ]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(73, None)],
        version: "rustc --version | cut -d' ' -f2",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "java",
        name: "Java",
        // As on Judge0: the class is `Main`.
        source: "Main.java",
        // The source file is the script's argument, so compiler options go before it.
        build: Build::Compiler(&[
            "sh",
            "-c",
            "javac -encoding UTF-8 -J-XX:+UseSerialGC \"$@\" && exec jar -J-XX:+UseSerialGC cf main.jar *.class",
            "sh",
            "Main.java",
        ]),
        artifact: "main.jar",
        // The JVM in a sandbox: one GC thread, and a heap of up to 60 % of the task's
        // memory (the JVM reads the container's limit) rather than its default 25 %.
        run: &[
            "java",
            "-XX:+UseSerialGC",
            "-XX:MaxRAMPercentage=60",
            "-cp",
            "main.jar",
            "Main",
        ],
        judge0: &[(62, None)],
        version: "javac -version 2>&1 | cut -d' ' -f2",
        compile_limits: CompileLimits {
            time_s: 30,
            memory_mb: 1024,
        },
    },
    LanguageDef {
        id: "kotlin",
        name: "Kotlin",
        source: "main.kt",
        build: Build::Compiler(&[
            "env",
            "JAVA_OPTS=-XX:+UseSerialGC",
            "kotlinc",
            "main.kt",
            "-include-runtime",
            "-d",
            "main.jar",
        ]),
        artifact: "main.jar",
        run: &[
            "java",
            "-XX:+UseSerialGC",
            "-XX:MaxRAMPercentage=60",
            "-jar",
            "main.jar",
        ],
        judge0: &[(78, None)],
        version: "dpkg-query -W -f '${Version}' kotlin | cut -d+ -f1",
        compile_limits: CompileLimits {
            time_s: 60,
            memory_mb: 1024,
        },
    },
    LanguageDef {
        id: "csharp",
        name: "C# (Mono)",
        source: "main.cs",
        build: Build::Compiler(&["mcs", "-optimize+", "-out:main.exe", "main.cs"]),
        artifact: "main.exe",
        run: &["mono", "main.exe"],
        judge0: &[(51, None)],
        version: "mcs --version | sed 's/.*version //'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "ruby",
        name: "Ruby",
        source: "main.rb",
        build: Build::Source,
        artifact: "",
        run: &["ruby", "main.rb"],
        judge0: &[(72, None)],
        version: "ruby -e 'puts RUBY_VERSION'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "php",
        name: "PHP",
        source: "main.php",
        build: Build::Source,
        artifact: "",
        run: &["php", "main.php"],
        judge0: &[(68, None)],
        version: "php -r 'echo PHP_VERSION, \"\\n\";'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "lua",
        name: "Lua",
        source: "main.lua",
        // Compiled to bytecode first, as on Judge0: a syntax error is a compile error,
        // and `compiler_options` are luac's.
        build: Build::Compiler(&["luac5.4", "-o", "luac.out", "main.lua"]),
        artifact: "luac.out",
        run: &["lua5.4", "luac.out"],
        judge0: &[(64, None)],
        version: "lua5.4 -v | cut -d' ' -f2",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "haskell",
        name: "Haskell (GHC)",
        source: "main.hs",
        build: Build::Compiler(&["ghc", "-O", "-o", "main", "main.hs"]),
        artifact: "main",
        run: &["./main"],
        judge0: &[(61, None)],
        version: "ghc --numeric-version",
        compile_limits: CompileLimits {
            time_s: 30,
            memory_mb: 1024,
        },
    },
    LanguageDef {
        id: "bash",
        name: "Bash",
        source: "main.sh",
        build: Build::Source,
        artifact: "",
        run: &["bash", "main.sh"],
        judge0: &[(46, None)],
        version: "bash -c 'echo \"${BASH_VERSION%%(*}\"'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "perl",
        name: "Perl",
        source: "main.pl",
        build: Build::Source,
        artifact: "",
        run: &["perl", "main.pl"],
        judge0: &[(85, None)],
        version: "perl -e 'print substr($^V, 1), \"\\n\"'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "plaintext",
        name: "Plain Text",
        source: "main.txt",
        build: Build::Source,
        artifact: "",
        run: &["cat", "main.txt"],
        judge0: &[(43, None)],
        version: "cat --version | head -n 1 | awk '{print $NF}'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "assembly",
        name: "Assembly (NASM)",
        source: "main.asm",
        // As Judge0's: x86-64 Linux system calls from `_start`, no C library.
        build: Build::Compiler(&[
            "sh",
            "-c",
            "nasm -f elf64 -o main.o \"$@\" && exec ld -o main main.o",
            "sh",
            "main.asm",
        ]),
        artifact: "main",
        run: &["./main"],
        judge0: &[(45, None)],
        version: "nasm -v | cut -d' ' -f3",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "commonlisp",
        name: "Common Lisp (SBCL)",
        source: "main.lisp",
        build: Build::Source,
        artifact: "",
        run: &["sbcl", "--script", "main.lisp"],
        judge0: &[(55, None)],
        version: "sbcl --version | cut -d' ' -f2",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "d",
        name: "D (GDC)",
        source: "main.d",
        build: Build::Compiler(&["gdc", "-O2", "-o", "main", "main.d"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(56, None)],
        version: "gdc -dumpfullversion",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "elixir",
        name: "Elixir",
        source: "main.exs",
        build: Build::Source,
        artifact: "",
        run: &["elixir", "main.exs"],
        judge0: &[(57, None)],
        version: "elixir --version 2>/dev/null | tail -n 1 | cut -d' ' -f2",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "erlang",
        name: "Erlang (escript)",
        source: "main.erl",
        // escript skips a script's first line: a blank one goes first, as on Judge0, so
        // the module's own first line counts.
        build: Build::Source,
        artifact: "",
        run: &[
            "sh",
            "-c",
            "{ echo; cat main.erl; } > .main.escript && exec escript .main.escript \"$@\"",
            "sh",
        ],
        judge0: &[(58, None)],
        version: "erl -noshell -eval 'io:fwrite(\"~s~n\", [erlang:system_info(otp_release)]), halt().'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "fortran",
        name: "Fortran (GFortran)",
        source: "main.f90",
        build: Build::Compiler(&["gfortran", "-O2", "-o", "main", "main.f90"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(59, None)],
        version: "gfortran -dumpfullversion",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "ocaml",
        name: "OCaml",
        source: "main.ml",
        build: Build::Compiler(&["ocamlopt", "-o", "main", "main.ml"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(65, None)],
        version: "ocamlopt -version",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "octave",
        name: "Octave",
        source: "main.m",
        build: Build::Source,
        artifact: "",
        run: &["octave-cli", "-q", "--no-history", "--norc", "main.m"],
        judge0: &[(66, None)],
        version: "octave-cli --version | head -n 1 | awk '{print $NF}'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "pascal",
        name: "Pascal (FPC)",
        source: "main.pas",
        build: Build::Compiler(&["fpc", "-O2", "-omain", "main.pas"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(67, None)],
        version: "fpc -iV",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "prolog",
        name: "Prolog (GNU Prolog)",
        source: "main.pro",
        build: Build::Compiler(&["gplc", "--no-top-level", "-o", "main", "main.pro"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(69, None)],
        // GNU Prolog prints its version on stderr.
        version: "gplc --version 2>&1 | head -n 1 | awk '{print $NF}'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "cobol",
        name: "COBOL (GnuCOBOL)",
        source: "main.cob",
        build: Build::Compiler(&["cobc", "-free", "-x", "-o", "main", "main.cob"]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(77, None)],
        version: "cobc --version | head -n 1 | awk '{print $NF}'",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "objectivec",
        name: "Objective-C (GCC, GNUstep)",
        source: "main.m",
        // GNUstep's Foundation, as on Judge0, with the flags `gnustep-config` prints (it
        // runs `make` to print them, which the image has no need of otherwise); GCC's
        // runtime has no `@autoreleasepool` (an `NSAutoreleasePool` does the same).
        build: Build::Compiler(&[
            "gcc",
            "-O2",
            "-fconstant-string-class=NSConstantString",
            "-fexceptions",
            "-fobjc-exceptions",
            "-D_NATIVE_OBJC_EXCEPTIONS",
            "-DGNUSTEP",
            "-DGNUSTEP_BASE_LIBRARY=1",
            "-DGNU_RUNTIME=1",
            "-I/usr/include/GNUstep",
            "-o",
            "main",
            "main.m",
            "-lgnustep-base",
            "-lobjc",
        ]),
        artifact: "main",
        run: NATIVE,
        judge0: &[(79, None)],
        version: "gcc -dumpfullversion",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "r",
        name: "R",
        source: "main.r",
        build: Build::Source,
        artifact: "",
        run: &["Rscript", "main.r"],
        judge0: &[(80, None)],
        version: "R --version | head -n 1 | cut -d' ' -f3",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "scala",
        name: "Scala",
        // As on Judge0: the object is `Main`.
        source: "Main.scala",
        build: Build::Compiler(&[
            "env",
            "JAVA_OPTS=-XX:+UseSerialGC",
            "scalac",
            "-d",
            "main.jar",
            "Main.scala",
        ]),
        artifact: "main.jar",
        run: &[
            "java",
            "-XX:+UseSerialGC",
            "-XX:MaxRAMPercentage=60",
            "-cp",
            "main.jar:/usr/share/scala/lib/scala-library.jar",
            "Main",
        ],
        judge0: &[(81, None)],
        version: "dpkg-query -W -f '${Version}' scala | cut -d- -f1",
        compile_limits: CompileLimits {
            time_s: 60,
            memory_mb: 1024,
        },
    },
    LanguageDef {
        id: "sql",
        name: "SQL (SQLite)",
        source: "main.sql",
        // The script is SQLite's input, on an empty database of its own, as on Judge0.
        build: Build::Source,
        artifact: "",
        run: &["sh", "-c", "exec sqlite3 db.sqlite < main.sql"],
        judge0: &[(82, None)],
        version: "sqlite3 --version | cut -d' ' -f1",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "clojure",
        name: "Clojure",
        source: "main.clj",
        build: Build::Source,
        artifact: "",
        run: &[
            "java",
            "-XX:+UseSerialGC",
            "-XX:MaxRAMPercentage=60",
            "-cp",
            "/usr/share/java/clojure.jar",
            "clojure.main",
            "main.clj",
        ],
        judge0: &[(86, None)],
        version: "dpkg-query -W -f '${Version}' clojure | cut -d- -f1",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "groovy",
        name: "Groovy",
        source: "main.groovy",
        // Compiled by groovyc, as on Judge0 (a syntax error is a compile error, and
        // `compiler_options` are groovyc's, the script's arguments here); a script compiles
        // to several classes (one per closure), handed to the run as one jar.
        build: Build::Compiler(&[
            "sh",
            "-c",
            "mkdir -p classes && JAVA_OPTS=-XX:+UseSerialGC groovyc -d classes \"$@\" main.groovy \
             && exec jar cf main.jar -C classes .",
            "sh",
        ]),
        artifact: "main.jar",
        run: &[
            "java",
            "-XX:+UseSerialGC",
            "-XX:MaxRAMPercentage=60",
            "-cp",
            "main.jar:/usr/share/java/groovy-all.jar",
            "main",
        ],
        judge0: &[(88, None)],
        version: "dpkg-query -W -f '${Version}' groovy | cut -d- -f1",
        compile_limits: STANDARD,
    },
    LanguageDef {
        id: "multifile",
        name: "Multi-file program",
        // The code is the `run` script; the rest are the task's files.
        source: "run",
        build: Build::Scripts,
        artifact: BOX_ARCHIVE,
        run: &["bash", "run"],
        judge0: &[(89, None)],
        version: "bash -c 'echo ${BASH_VERSION%%(*}'",
        compile_limits: CompileLimits {
            time_s: 30,
            memory_mb: 1024,
        },
    },
];

/// The shell line that prints, one per line, the version of every language with a
/// version command (in table order), then of every compiler (in [`COMPILER_VERSIONS`] order); an empty
/// line for one that is missing. [`read_versions`] reads it back.
pub fn version_probe() -> String {
    LANGUAGES
        .iter()
        .filter(|l| !l.version.is_empty())
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
    for (lang, def) in listing.iter_mut().zip(LANGUAGES) {
        if !def.version.is_empty() {
            lang.version = lines.next().flatten();
        }
    }
    let compilers: Vec<(Compiler, Option<String>)> = COMPILER_VERSIONS
        .iter()
        .map(|(c, _)| (*c, lines.next().flatten()))
        .collect();
    for lang in listing.iter_mut().filter(|l| !l.compilers.is_empty()) {
        for c in &mut lang.compilers {
            c.version = compilers
                .iter()
                .find(|(id, _)| id.as_str() == c.id)
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

/// The listing's types are the API's words.
pub use codebox_api::{CompilerVersion, Language};

/// Where a task's files live inside its container (on the tmpfs).
pub const BOX_DIR: &str = "/tmp/box";

pub struct Plan {
    /// Source file name inside `BOX_DIR`.
    pub source: &'static str,
    /// The compiler command (argv), for compiled languages.
    pub compile: Option<Vec<String>>,
    /// What the compile leaves for the run step.
    pub artifact: &'static str,
    pub compile_limits: CompileLimits,
    /// The program command (argv, before the task's args).
    pub run: Vec<String>,
}

impl Plan {
    /// The shell command that hands the run what the compile left, on stdout: the
    /// artifact's bytes, or a multi-file program's whole directory as a tar.
    pub fn handoff(&self) -> String {
        if self.artifact == BOX_ARCHIVE {
            "exec tar -cf - .".to_owned()
        } else {
            format!("exec cat {}", self.artifact)
        }
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// A compile command with the task's compiler options placed before the source file (where
/// the options of `gcc <options> main.c` go), or at the end where the command does not
/// name it. Each option is one argument: no shell reads them.
fn with_options(cmd: &[&str], source: &str, options: &[String]) -> Vec<String> {
    let mut words = argv(cmd);
    let at = words
        .iter()
        .position(|w| w == source)
        .unwrap_or(words.len());
    words.splice(at..at, options.iter().cloned());
    words
}

/// How `spec`'s language is compiled and run inside the runner image; `None` for a
/// language (or compiler) this build does not know (an old worker, a new API).
pub fn plan(spec: &CodeSpec) -> Option<Plan> {
    let def = find(&spec.language)?;
    let mut run = argv(def.run);
    let compile = match def.build {
        Build::Source => None,
        Build::Scripts => spec
            .files
            .iter()
            .any(|f| f.path == COMPILE_SCRIPT)
            .then(|| {
                run = argv(UNPACK_AND_RUN);
                argv(&["bash", COMPILE_SCRIPT])
            }),
        Build::Compiler(cmd) => Some(with_options(cmd, def.source, &spec.compiler_options)),
        Build::Choice(list) => {
            let chosen = spec.compiler.or_else(|| list.first().map(|(c, _)| *c))?;
            let (_, cmd) = list.iter().find(|(c, _)| *c == chosen)?;
            Some(with_options(cmd, def.source, &spec.compiler_options))
        }
    };
    Some(Plan {
        source: def.source,
        compile,
        artifact: def.artifact,
        compile_limits: def.compile_limits,
        run,
    })
}

/// The listing with no versions known yet.
pub fn unprobed() -> Vec<Language> {
    LANGUAGES
        .iter()
        .map(|l| Language {
            id: l.id.to_owned(),
            name: l.name.to_owned(),
            version: None,
            compiled: l.compiled(),
            compilers: l
                .compilers()
                .into_iter()
                .map(|c| CompilerVersion {
                    id: c.as_str().to_owned(),
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
                    None => assert!(l.compilers().is_empty()),
                    Some(c) => assert!(l.compilers().contains(&c)),
                }
            }
        }
        assert_eq!(by_judge0(71).map(|(l, _)| l.id), Some("python"));
        assert_eq!(by_judge0(46).map(|(l, _)| l.id), Some("bash"));
        assert_eq!(by_judge0(9999).map(|(l, _)| l.id), None);
    }

    /// Compiler options land in every compiled language's command, before its source
    /// file, each as one argument.
    #[test]
    fn compiler_options_go_before_the_source_file() {
        let options = vec!["-DX=a b".to_owned(), "-O0".to_owned()];
        for l in LANGUAGES.iter().filter(|l| l.takes_compiler_options()) {
            let spec = CodeSpec {
                language: l.id.to_owned(),
                compiler_options: options.clone(),
                ..CodeSpec::default()
            };
            let compile = plan(&spec).and_then(|p| p.compile).unwrap_or_default();
            let at = compile
                .iter()
                .position(|w| w == "-DX=a b")
                .unwrap_or_else(|| panic!("{}: {compile:?}", l.id));
            assert_eq!(compile[at + 1], "-O0", "{}", l.id);
            match compile.get(at + 2) {
                Some(next) => assert_eq!(next, l.source, "{}: {compile:?}", l.id),
                // A shell script's arguments, which it places before its source file.
                None => {
                    assert_eq!(compile[..2], ["sh", "-c"], "{}: {compile:?}", l.id);
                    let script = &compile[2];
                    let source = format!("\"$@\" {}", l.source);
                    assert!(script.contains(&source), "{}: {compile:?}", l.id);
                }
            }
        }
        let c = CodeSpec {
            language: "c".into(),
            compiler_options: options,
            ..CodeSpec::default()
        };
        assert_eq!(
            plan(&c).and_then(|p| p.compile).unwrap_or_default(),
            [
                "gcc", "-O2", "-std=c17", "-o", "main", "-DX=a b", "-O0", "main.c", "-lm"
            ]
        );
    }
}

#[cfg(test)]
mod scripts_tests {
    use super::*;
    use crate::domain::ProgramFile;

    /// A multi-file program runs `bash run`; with a `compile` file it runs `bash
    /// compile` first and its run unpacks what the compile left, then runs `bash run`
    /// with the task's arguments.
    #[test]
    fn a_multi_file_program_compiles_only_with_a_compile_script() {
        let mut spec = CodeSpec {
            language: "multifile".into(),
            ..CodeSpec::default()
        };
        let plain = plan(&spec).unwrap_or_else(|| panic!("multifile"));
        assert_eq!(plain.compile, None);
        assert_eq!(plain.run, ["bash", "run"]);
        assert_eq!(plain.source, "run");
        spec.files.push(ProgramFile {
            path: COMPILE_SCRIPT.into(),
            content: "gcc -o prog prog.c".into(),
        });
        let built = plan(&spec).unwrap_or_else(|| panic!("multifile"));
        assert_eq!(
            built.compile.as_deref(),
            Some(&["bash".to_owned(), "compile".to_owned()][..])
        );
        assert_eq!(built.artifact, BOX_ARCHIVE);
        assert_eq!(built.handoff(), "exec tar -cf - .");
        let c = CodeSpec {
            language: "c".into(),
            ..CodeSpec::default()
        };
        assert_eq!(
            plan(&c).map(|p| p.handoff()).as_deref(),
            Some("exec cat main")
        );
        assert!(
            built.run[2].starts_with("tar -xf .codebox-box.tar "),
            "{:?}",
            built.run
        );
        assert!(
            built.run[2].ends_with("exec bash run \"$@\""),
            "{:?}",
            built.run
        );
        assert!(!find("multifile").is_some_and(LanguageDef::takes_compiler_options));
        assert!(find("c").is_some_and(LanguageDef::takes_compiler_options));
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    /// Every language has a way to run it, a compile step exactly when it is compiled
    /// (leaving a named artifact, with limits the sandbox accepts), and one version
    /// command unless its compilers have theirs; the probe's lines map back to the right
    /// languages and compilers.
    #[test]
    fn every_language_has_commands_and_its_versions_read_back() {
        let mut ids = std::collections::HashSet::new();
        for l in LANGUAGES {
            assert!(ids.insert(l.id), "{} twice", l.id);
            let compilers = l.compilers();
            let spec = CodeSpec {
                language: l.id.to_owned(),
                compiler: compilers.first().copied(),
                ..CodeSpec::default()
            };
            let plan = plan(&spec).unwrap_or_else(|| panic!("{} has no commands", l.id));
            // A multi-file program compiles when it has a compile script.
            let scripts = matches!(l.build, Build::Scripts);
            assert_eq!(plan.compile.is_some(), l.compiled() && !scripts, "{}", l.id);
            assert_eq!(l.artifact.is_empty(), !l.compiled(), "{}", l.id);
            assert!(!plan.run.is_empty() && !l.source.contains('/'), "{}", l.id);
            assert_eq!(l.version.is_empty(), !compilers.is_empty(), "{}", l.id);
            let limits = l.compile_limits;
            assert!((1..=120).contains(&limits.time_s), "{}", l.id);
            assert!((256..=4096).contains(&limits.memory_mb), "{}", l.id);
            for c in &compilers {
                let spec = CodeSpec {
                    compiler: Some(*c),
                    ..spec.clone()
                };
                assert!(super::plan(&spec).is_some(), "{} with {c:?}", l.id);
            }
        }
        let with_version = LANGUAGES.iter().filter(|l| !l.version.is_empty()).count();
        assert_eq!(
            version_probe().matches("echo \"$(").count(),
            with_version + COMPILER_VERSIONS.len()
        );
        let mut out: Vec<String> = (0..with_version).map(|i| format!("1.{i}")).collect();
        out.push("12.2.0".into());
        out.push(String::new()); // clang missing
        let listing = read_versions(&out.join("\n"));
        let find = |id: &str| listing.iter().find(|l| l.id == id).unwrap();
        assert_eq!(find("python").version.as_deref(), Some("1.0"));
        assert_eq!(find("javascript").version.as_deref(), Some("1.1"));
        assert_eq!(find("c").version.as_deref(), Some("12.2.0"));
        assert!(find("go").compiled && find("go").compilers.is_empty());
        assert_eq!(find("cpp").compilers[1].version, None);
    }
}
