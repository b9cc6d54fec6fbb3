//! The languages a server runs, as `GET /languages` lists them.

use serde::{Deserialize, Serialize};

/// A language with the versions found in the runner image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Language {
    #[cfg_attr(feature = "schema", schema(example = "python"))]
    pub id: String,
    #[cfg_attr(feature = "schema", schema(example = "Python"))]
    pub name: String,
    /// Version of the interpreter, or of the default compiler; `null` until a worker
    /// has looked into the runner image.
    #[cfg_attr(feature = "schema", schema(example = "3.11.2"))]
    pub version: Option<String>,
    pub compiled: bool,
    /// For compiled languages with a choice of compilers (C, C++): each with its version.
    pub compilers: Vec<CompilerVersion>,
}

/// One compiler of a language, by the name a task chooses it with (`compiler`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CompilerVersion {
    #[cfg_attr(feature = "schema", schema(example = "gcc"))]
    pub id: String,
    pub version: Option<String>,
}
