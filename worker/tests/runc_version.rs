//! The runc engine refuses a runc without the fixes for the escapes a program could try
//! (CVE-2024-21626, CVE-2019-5736), naming the CVE; an engine left to choose (`auto`)
//! takes Docker instead. Needs the Docker engine (`make docker`), as the sandbox does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use codebox_worker::sandbox::{EngineKind, SandboxConfig, Sandboxes};

#[tokio::test]
async fn a_runc_without_the_escape_fixes_is_refused() {
    let dir = std::env::temp_dir().join(format!("codebox-old-runc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runc = dir.join("runc");
    // Upstream 1.1.11: the release before the CVE-2024-21626 fix.
    std::fs::write(
        &runc,
        "#!/bin/sh\necho 'runc version 1.1.11'\necho 'commit: v1.1.11-0-g4bccb38c'\necho 'spec: 1.0.2-dev'\n",
    )
    .unwrap();
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = SandboxConfig {
        engine: EngineKind::Runc,
        // runc named: left to choose, the engine would take crun first.
        runtime: Some("runc".to_owned()),
        runc: runc.to_string_lossy().into_owned(),
        ..SandboxConfig::default()
    };
    let refused = Sandboxes::connect(config).await;
    let _ = std::fs::remove_dir_all(&dir);
    let message = format!("{:#}", refused.err().expect("an old runc was accepted"));
    assert!(message.contains("CVE-2024-21626"), "{message}");
    assert!(message.contains("1.1.11"), "{message}");
}
