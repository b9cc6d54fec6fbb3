//! The AWS template validates offline with cfn-lint (any error or warning fails), and it
//! declares a route for every handler of the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

#[test]
fn cfn_lint_passes() {
    let out = Command::new("cfn-lint")
        .arg(template())
        .output()
        .expect("cfn-lint must be installed (scripts/ensure-tools.sh)");
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_api_route_has_a_function() {
    let text = std::fs::read_to_string(template()).unwrap();
    let doc = codebox_functions::openapi::ApiDoc::openapi_json();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let route = format!(
                "Method: {}\n            Path: {path}",
                method.to_uppercase()
            );
            assert!(
                text.contains(&route),
                "no function serves {} {path}",
                method.to_uppercase()
            );
        }
    }
    for name in [
        "register",
        "login",
        "logout",
        "create-task",
        "get-status",
        "get-result",
        "get-task",
        "list-tasks",
        "cancel-task",
        "commit",
        "languages",
        "health",
    ] {
        assert!(
            text.contains(&format!("CodeUri: ../target/lambda/{name}/")),
            "{name}"
        );
    }
}
