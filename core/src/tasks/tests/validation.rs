use super::*;

use uuid::Uuid;

use crate::domain::{
    CodeSpec, Compare, CompareMode, Compiler, Filter, ImageSpec, Limits, TaskKind, TaskSpec,
    TestCase,
};
use crate::error::Error;

/// What the worker re-checks in a message: everything the API checks.
#[test]
fn nested_parts_must_be_objects() {
    let parse = |v: serde_json::Value| serde_json::from_value::<SubmitRequest>(v);
    assert!(parse(serde_json::json!({"language": "c", "limits": [null, null]})).is_err());
    assert!(parse(serde_json::json!({"filter": ["blur", null]})).is_err());
    let r = parse(serde_json::json!({"limits": {"time_ms": 10}, "filter": null})).unwrap();
    assert_eq!(r.limits.unwrap().time_ms, Some(10));
}

#[test]
fn limits_take_whole_numbers_however_written() {
    let parse = |v: serde_json::Value| serde_json::from_value::<LimitsRequest>(v);
    let l = parse(serde_json::json!({"time_ms": 3000.0, "memory_mb": 64})).unwrap();
    assert_eq!(
        (l.time_ms, l.memory_mb, l.output_kb),
        (Some(3000), Some(64), None)
    );
    assert!(parse(serde_json::json!({"time_ms": 1.5})).is_err());
    assert!(parse(serde_json::json!({"time_ms": -1})).is_err());
    assert!(parse(serde_json::json!({"time_ms": 1e12})).is_err());
    assert!(parse(serde_json::json!({"time_ms": "5"})).is_err());
    assert!(
        parse(serde_json::json!({"time_ms": null}))
            .unwrap()
            .time_ms
            .is_none()
    );
}

#[test]
fn a_spec_outside_the_api_s_bounds_is_refused() {
    let good = CodeSpec {
        language: "c".into(),
        compiler: Some(Compiler::Gcc),
        code: "int main(){}".into(),
        stdin: "x".into(),
        args: vec!["a".into()],
        limits: Limits::DEFAULT,
        ..Default::default()
    };
    check_spec(&TaskSpec::Code(good.clone())).unwrap();
    type Spoil = Box<dyn Fn(&mut CodeSpec)>;
    let bad: Vec<(&str, Spoil)> = vec![
        ("memory_mb 0", Box::new(|s| s.limits.memory_mb = 0)),
        (
            "memory_mb max+1",
            Box::new(|s| s.limits.memory_mb = Limits::MAX.memory_mb + 1),
        ),
        ("time_ms 0", Box::new(|s| s.limits.time_ms = 0)),
        (
            "time_ms max+1",
            Box::new(|s| s.limits.time_ms = Limits::MAX.time_ms + 1),
        ),
        ("output_kb 0", Box::new(|s| s.limits.output_kb = 0)),
        (
            "output_kb max+1",
            Box::new(|s| s.limits.output_kb = Limits::MAX.output_kb + 1),
        ),
        ("language", Box::new(|s| s.language = "brainfuck".into())),
        ("no compiler", Box::new(|s| s.compiler = None)),
        (
            "code size",
            Box::new(|s| s.code = "x".repeat(MAX_CODE_BYTES + 1)),
        ),
        ("code NUL", Box::new(|s| s.code = "a\0".into())),
        (
            "stdin size",
            Box::new(|s| s.stdin = vec![0u8; MAX_STDIN_BYTES + 1].into()),
        ),
        (
            "args count",
            Box::new(|s| s.args = vec!["a".into(); MAX_ARGS + 1]),
        ),
        ("arg NUL", Box::new(|s| s.args = vec!["a\0b".into()])),
        (
            "tests with stdin",
            Box::new(|s| s.tests = vec![TestCase::default()]),
        ),
        (
            "too many tests",
            Box::new(|s| judged(s, vec![TestCase::default(); MAX_TESTS + 1])),
        ),
        (
            "test stdin size",
            Box::new(|s| {
                judged(
                    s,
                    vec![TestCase {
                        stdin: vec![0u8; MAX_STDIN_BYTES + 1].into(),
                        ..TestCase::default()
                    }],
                )
            }),
        ),
        (
            "expected size",
            Box::new(|s| {
                judged(
                    s,
                    vec![TestCase {
                        expected_stdout: vec![b'1'; MAX_EXPECTED_BYTES + 1].into(),
                        ..TestCase::default()
                    }],
                )
            }),
        ),
        (
            "test arg NUL",
            Box::new(|s| {
                judged(
                    s,
                    vec![TestCase {
                        args: vec!["a\0".into()],
                        ..TestCase::default()
                    }],
                )
            }),
        ),
        (
            "tolerance outside tokens",
            Box::new(|s| {
                judged(s, vec![TestCase::default()]);
                s.compare.abs_tol = Some(0.1);
            }),
        ),
        (
            "negative tolerance",
            Box::new(|s| {
                judged(s, vec![TestCase::default()]);
                s.compare = Compare {
                    mode: CompareMode::Tokens,
                    abs_tol: None,
                    rel_tol: Some(-1.0),
                };
            }),
        ),
        (
            "NaN tolerance",
            Box::new(|s| {
                judged(s, vec![TestCase::default()]);
                s.compare = Compare {
                    mode: CompareMode::Tokens,
                    abs_tol: Some(f64::NAN),
                    rel_tol: None,
                };
            }),
        ),
        (
            "stop_on_failure without tests",
            Box::new(|s| s.stop_on_failure = true),
        ),
    ];
    fn judged(s: &mut CodeSpec, tests: Vec<TestCase>) {
        s.stdin = Default::default();
        s.args = vec![];
        s.tests = tests;
    }
    let mut fine = good.clone();
    judged(&mut fine, vec![TestCase::default(); MAX_TESTS]);
    fine.compare = Compare {
        mode: CompareMode::Tokens,
        abs_tol: Some(0.0),
        rel_tol: Some(1e-9),
    };
    check_spec(&TaskSpec::Code(fine)).unwrap();
    for (what, spoil) in bad {
        let mut spec = good.clone();
        spoil(&mut spec);
        assert!(
            matches!(check_spec(&TaskSpec::Code(spec)), Err(Error::Invalid(_))),
            "{what} was accepted"
        );
    }
    let python = CodeSpec {
        language: "python".into(),
        compiler: Some(Compiler::Gcc),
        ..good
    };
    assert!(
        check_spec(&TaskSpec::Code(python)).is_err(),
        "python with a compiler"
    );
    let image = |key: &str, filter| {
        check_spec(&TaskSpec::Image(ImageSpec {
            input_key: key.into(),
            filter,
            webhook: None,
        }))
    };
    let key = format!("input/{}.png", Uuid::new_v4());
    image(&key, Filter::Blur { sigma: 2.0 }).unwrap();
    for (key, filter) in [
        ("../etc/passwd", Filter::Negative),
        ("output/x.png", Filter::Negative),
        (key.as_str(), Filter::Blur { sigma: 0.0 }),
        (key.as_str(), Filter::Sharpen { sigma: f32::NAN }),
        (key.as_str(), Filter::Blur { sigma: 1000.0 }),
    ] {
        assert!(image(key, filter).is_err(), "{key} {filter:?}");
    }
}

/// Filter parameters as the document states them: sigma (null = default) only for
/// blur and sharpen, its range compared as written.
#[tokio::test]
async fn filter_parameters_follow_the_document() {
    use serde_json::json;
    let (svc, _queue) = service();
    let owner = Uuid::new_v4();
    let submit = |filter: serde_json::Value| {
        let svc = svc.clone();
        async move {
            let req = SubmitRequest {
                kind: Some(TaskKind::Image),
                image_base64: Some(tiny_png_base64()),
                filter: Some(serde_json::from_value(filter).unwrap()),
                ..Default::default()
            };
            svc.submit(owner, req, None)
                .await
                .map(|s| match s.task.spec {
                    TaskSpec::Image(spec) => spec.filter,
                    TaskSpec::Code(_) => panic!("an image task"),
                })
        }
    };
    for (filter, expected) in [
        (json!({"name": "blur"}), Filter::Blur { sigma: 1.0 }),
        (
            json!({"name": "blur", "parameters": {"sigma": null}}),
            Filter::Blur { sigma: 1.0 },
        ),
        (
            json!({"name": "sharpen", "parameters": {"sigma": 0.1}}),
            Filter::Sharpen { sigma: 0.1 },
        ),
        (
            json!({"name": "blur", "parameters": {"sigma": 50}}),
            Filter::Blur { sigma: 50.0 },
        ),
        (json!({"name": "flipx", "parameters": {}}), Filter::Flipx),
        (
            json!({"name": "negative", "parameters": null}),
            Filter::Negative,
        ),
    ] {
        assert_eq!(submit(filter.clone()).await.unwrap(), expected, "{filter}");
    }
    for filter in [
        json!({"name": "blur", "parameters": {"sigma": 50.000_000_1}}),
        json!({"name": "blur", "parameters": {"sigma": 0.099_999_999}}),
        json!({"name": "flipx", "parameters": {"sigma": null}}),
        json!({"name": "negative", "parameters": {"sigma": 1}}),
    ] {
        assert!(
            matches!(submit(filter.clone()).await, Err(Error::Invalid(_))),
            "{filter}"
        );
    }
}

#[tokio::test]
async fn rejects_bad_requests() {
    let (svc, queue) = service();
    let owner = Uuid::new_v4();
    let bad = [
        code("brainfuck"),
        SubmitRequest {
            compiler: Some(Compiler::Clang),
            ..code("python")
        },
        // Compiler options: compiled languages only, 512 characters, words a shell would
        // make of them.
        SubmitRequest {
            compiler_options: Some("-O2".into()),
            ..code("python")
        },
        SubmitRequest {
            compiler_options: Some("x".repeat(MAX_COMPILER_OPTIONS + 1)),
            ..code("c")
        },
        SubmitRequest {
            compiler_options: Some("-DX='unclosed".into()),
            ..code("c")
        },
        SubmitRequest {
            limits: Some(LimitsRequest {
                cpu_ms: Some(0),
                ..Default::default()
            }),
            ..code("python")
        },
        SubmitRequest {
            limits: Some(LimitsRequest {
                cpu_ms: Some(20_001),
                ..Default::default()
            }),
            ..code("python")
        },
        SubmitRequest {
            kind: Some(TaskKind::Image),
            merge_stderr: Some(true),
            ..Default::default()
        },
        SubmitRequest {
            limits: Some(LimitsRequest {
                time_ms: Some(20_001),
                ..Default::default()
            }),
            ..code("python")
        },
        SubmitRequest {
            code: Some("x".repeat(MAX_CODE_BYTES + 1)),
            ..code("python")
        },
        SubmitRequest {
            tests: Some(vec![]),
            ..code("python")
        },
        SubmitRequest {
            tests: Some(vec![TestRequest::default()]),
            stdin: Some("top-level".into()),
            ..code("python")
        },
        SubmitRequest {
            tests: Some(vec![TestRequest::default()]),
            args: Some(vec![]),
            ..code("python")
        },
        SubmitRequest {
            compare: Some(Some(CompareRequest::default())),
            ..code("python")
        },
        SubmitRequest {
            compare: Some(None),
            ..code("python")
        },
        SubmitRequest {
            stop_on_failure: Some(Some(false)),
            ..code("python")
        },
        SubmitRequest {
            stop_on_failure: Some(None),
            ..code("python")
        },
        SubmitRequest {
            tests: Some(vec![TestRequest::default()]),
            compare: Some(Some(CompareRequest {
                mode: Some(CompareMode::Lines),
                abs_tol: Some(0.5),
                rel_tol: None,
            })),
            ..code("python")
        },
        SubmitRequest {
            kind: Some(TaskKind::Image),
            image_base64: Some("aGVsbG8=".into()),
            filter: Some(FilterRequest {
                name: "negative".into(),
                parameters: None,
            }),
            ..Default::default()
        },
    ];
    for req in bad {
        let err = svc.submit(owner, req, None).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }
    assert_eq!(queue.len(), 0);
}

/// `files`: paths inside the program's directory only, none of its own names, bounded in
/// count and size; taken as text or base64.
#[test]
fn files_stay_inside_the_program_s_directory() {
    let file = |path: &str| FileRequest {
        path: path.into(),
        content: "x".into(),
        encoding: None,
    };
    let submit = |files: Vec<FileRequest>, language: &str| {
        validate_code(SubmitRequest {
            language: Some(language.into()),
            code: Some("1".into()),
            files: Some(files),
            ..Default::default()
        })
    };
    let spec = submit(
        vec![
            file("helper.py"),
            file("data/in.txt"),
            FileRequest {
                path: "blob.bin".into(),
                content: "AAEC/w==".into(),
                encoding: Some(FileEncoding::Base64),
            },
        ],
        "python",
    )
    .unwrap();
    assert_eq!(spec.files.len(), 3);
    assert_eq!(spec.files[2].content.as_bytes(), [0, 1, 2, 255]);
    for (files, language) in [
        (vec![file("../etc/passwd")], "python"),
        (vec![file("/etc/passwd")], "python"),
        (vec![file("a//b")], "python"),
        (vec![file("a/./b")], "python"),
        (vec![file("")], "python"),
        (vec![file("a\\b")], "python"),
        (vec![file("new\nline")], "python"),
        (vec![file(&"x".repeat(MAX_FILE_PATH + 1))], "python"),
        (vec![file(".codebox-stdin")], "python"),
        (vec![file("main.py")], "python"),
        (vec![file("main")], "c"),
        (vec![file("main.c/x")], "c"),
        (vec![file("a"), file("a")], "python"),
        (vec![file("a"), file("a/b")], "python"),
        (
            (0..=MAX_FILES).map(|i| file(&format!("f{i}"))).collect(),
            "python",
        ),
        (
            vec![FileRequest {
                path: "big".into(),
                content: "x".repeat(MAX_FILES_BYTES + 1),
                encoding: None,
            }],
            "python",
        ),
        (
            vec![FileRequest {
                path: "b".into(),
                content: "not base64!".into(),
                encoding: Some(FileEncoding::Base64),
            }],
            "python",
        ),
    ] {
        let first = files.first().map(|f| f.path.clone());
        let e = submit(files, language).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.starts_with("files: ")),
            "{first:?}: {e}"
        );
    }
    // The worker re-checks what a message carries.
    let mut forged = spec;
    forged.files[0].path = "../x".into();
    assert!(check_spec(&TaskSpec::Code(forged)).is_err());
}
