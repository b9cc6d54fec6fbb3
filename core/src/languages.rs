//! The languages codebox runs. Adding one means a row here, its commands in the worker's
//! sandbox (`worker/src/sandbox/commands.rs`) and its packages in the runner image.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Compiler;

#[derive(Debug, Clone, Copy)]
pub struct LanguageDef {
    pub id: &'static str,
    pub name: &'static str,
    /// Empty for interpreted languages; the first is the default.
    pub compilers: &'static [Compiler],
}

pub const LANGUAGES: &[LanguageDef] = &[
    LanguageDef {
        id: "python",
        name: "Python",
        compilers: &[],
    },
    LanguageDef {
        id: "c",
        name: "C",
        compilers: &[Compiler::Gcc, Compiler::Clang],
    },
    LanguageDef {
        id: "cpp",
        name: "C++",
        compilers: &[Compiler::Gcc, Compiler::Clang],
    },
];

pub fn find(id: &str) -> Option<&'static LanguageDef> {
    LANGUAGES.iter().find(|l| l.id == id)
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
