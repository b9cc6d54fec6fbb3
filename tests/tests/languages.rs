//! Every language of the table, end to end on the embedded stack: hello, stdin echo, a
//! runtime error, a time limit, and for compiled ones a compile error (with each
//! compiler). A language added to the table without programs here fails the first test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use codebox_core::languages::LANGUAGES;
use codebox_tests::{Client, start_embedded};
use serde_json::{Value, json};

/// Programs of one language: prints `hello`, echoes one line of stdin, exits with status
/// 3, loops forever, and (compiled) does not compile.
struct Programs {
    hello: &'static str,
    echo: &'static str,
    exit3: &'static str,
    forever: &'static str,
    broken: Option<&'static str>,
}

fn programs(language: &str) -> Programs {
    match language {
        "python" => Programs {
            hello: "print('hello')",
            echo: "print(input())",
            exit3: "import sys\nsys.exit(3)",
            forever: "while True:\n    pass",
            broken: None,
        },
        "c" => Programs {
            hello: "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}",
            echo: "#include <stdio.h>\nint main(void){char b[256];if(!fgets(b,sizeof b,stdin))return 1;fputs(b,stdout);return 0;}",
            exit3: "int main(void){return 3;}",
            forever: "int main(void){volatile int x=0;for(;;)x++;}",
            broken: Some("int main(void){ return x; }"),
        },
        "cpp" => Programs {
            hello: "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}",
            echo: "#include <iostream>\n#include <string>\nint main(){std::string s;std::getline(std::cin,s);std::cout<<s<<std::endl;}",
            exit3: "int main(){return 3;}",
            forever: "int main(){volatile int x=0;for(;;)x++;}",
            broken: Some("int main(){ return x; }"),
        },
        "bash" => Programs {
            hello: "echo hello",
            echo: "read -r line\necho \"$line\"",
            exit3: "exit 3",
            forever: "while :; do :; done",
            broken: None,
        },
        "perl" => Programs {
            hello: "print \"hello\\n\";",
            echo: "my $line = <STDIN>;\nprint $line;",
            exit3: "exit 3;",
            forever: "while (1) {}",
            broken: None,
        },
        "javascript" => Programs {
            hello: "console.log(\"hello\");",
            echo: "const line = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\")[0];\nconsole.log(line);",
            exit3: "process.exit(3);",
            forever: "for (;;) {}",
            broken: None,
        },
        "typescript" => Programs {
            hello: "const greeting: string = \"hello\";\nconsole.log(greeting);",
            echo: "const line: string = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\")[0];\nconsole.log(line);",
            exit3: "process.exit(3);",
            forever: "while (true) {}",
            broken: Some("const n: number = \"not a number\";\nconsole.log(n);"),
        },
        "go" => Programs {
            hello: "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }",
            echo: "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tline, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n\tfmt.Print(line)\n}",
            exit3: "package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }",
            forever: "package main\n\nfunc main() {\n\tfor {\n\t}\n}",
            broken: Some("package main\n\nfunc main() { return x }"),
        },
        "rust" => Programs {
            hello: "fn main() {\n    println!(\"hello\");\n}",
            echo: "fn main() {\n    let mut line = String::new();\n    std::io::stdin().read_line(&mut line).unwrap();\n    print!(\"{line}\");\n}",
            exit3: "fn main() {\n    std::process::exit(3);\n}",
            forever: "fn main() {\n    let mut n: u64 = 1;\n    loop {\n        n = n.wrapping_mul(3).wrapping_add(1);\n        if n == 0 {\n            println!(\"{n}\");\n        }\n    }\n}",
            broken: Some("fn main() {\n    let n: i32 = \"text\";\n}"),
        },
        "java" => Programs {
            hello: "public class Main {\n    public static void main(String[] args) {\n        System.out.println(\"hello\");\n    }\n}",
            echo: "import java.io.*;\n\npublic class Main {\n    public static void main(String[] args) throws IOException {\n        System.out.println(new BufferedReader(new InputStreamReader(System.in)).readLine());\n    }\n}",
            exit3: "public class Main {\n    public static void main(String[] args) {\n        System.exit(3);\n    }\n}",
            forever: "public class Main {\n    public static void main(String[] args) {\n        while (true) {}\n    }\n}",
            broken: Some(
                "public class Main {\n    public static void main(String[] args) {\n        int n = \"text\";\n    }\n}",
            ),
        },
        "kotlin" => Programs {
            hello: "fun main() {\n    println(\"hello\")\n}",
            echo: "fun main() {\n    println(readLine())\n}",
            exit3: "import kotlin.system.exitProcess\n\nfun main() {\n    exitProcess(3)\n}",
            forever: "fun main() {\n    while (true) {}\n}",
            broken: Some("fun main() {\n    val n: Int = \"text\"\n}"),
        },
        "csharp" => Programs {
            hello: "using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine(\"hello\");\n    }\n}",
            echo: "using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine(Console.ReadLine());\n    }\n}",
            exit3: "class Program {\n    static int Main() {\n        return 3;\n    }\n}",
            forever: "class Program {\n    static void Main() {\n        while (true) {}\n    }\n}",
            broken: Some(
                "class Program {\n    static void Main() {\n        int n = \"text\";\n    }\n}",
            ),
        },
        "ruby" => Programs {
            hello: "puts \"hello\"",
            echo: "puts gets",
            exit3: "exit 3",
            forever: "loop {}",
            broken: None,
        },
        "php" => Programs {
            hello: "<?php\necho \"hello\\n\";",
            echo: "<?php\necho fgets(STDIN);",
            exit3: "<?php\nexit(3);",
            forever: "<?php\nwhile (true) {}",
            broken: None,
        },
        "lua" => Programs {
            hello: "print(\"hello\")",
            echo: "print(io.read(\"l\"))",
            exit3: "os.exit(3)",
            forever: "while true do end",
            broken: None,
        },
        "haskell" => Programs {
            hello: "main :: IO ()\nmain = putStrLn \"hello\"",
            echo: "main :: IO ()\nmain = getLine >>= putStrLn",
            exit3: "import System.Exit\n\nmain :: IO ()\nmain = exitWith (ExitFailure 3)",
            forever: "loop :: Int -> IO ()\nloop n = loop (n + 1)\n\nmain :: IO ()\nmain = loop 0",
            broken: Some("main :: IO ()\nmain = putStrLn 1"),
        },
        other => panic!("no programs for {other}: add them to tests/tests/languages.rs"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_runs_reads_fails_and_times_out() {
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    // (what, body, check) for every language, submitted together, then waited for.
    type Check = Box<dyn Fn(&Value) -> bool>;
    let mut cases: Vec<(String, Value, Check)> = Vec::new();
    for l in LANGUAGES {
        let p = programs(l.id);
        let compilers: Vec<Option<&str>> = if l.compilers().is_empty() {
            vec![None]
        } else {
            l.compilers().iter().map(|c| Some(c.as_str())).collect()
        };
        for compiler in compilers {
            let body = |code: &str| {
                let mut b = json!({"language": l.id, "code": code});
                if let Some(cc) = compiler {
                    b["compiler"] = json!(cc);
                }
                b
            };
            let name = |what: &str| format!("{}/{}: {what}", l.id, compiler.unwrap_or("-"));
            cases.push((
                name("hello"),
                body(p.hello),
                Box::new(|r| r["verdict"] == "ok" && r["stdout"] == "hello\n"),
            ));
            let mut echo = body(p.echo);
            echo["stdin"] = json!("a line of input\n");
            cases.push((
                name("stdin echo"),
                echo,
                Box::new(|r| r["verdict"] == "ok" && r["stdout"] == "a line of input\n"),
            ));
            cases.push((
                name("runtime error"),
                body(p.exit3),
                Box::new(|r| r["verdict"] == "runtime_error" && r["exit_code"] == 3),
            ));
            let mut forever = body(p.forever);
            forever["limits"] = json!({"time_ms": 1000});
            cases.push((
                name("time limit"),
                forever,
                Box::new(|r| r["verdict"] == "time_limit"),
            ));
            assert_eq!(
                p.broken.is_some(),
                l.compiled(),
                "{}: a compile error",
                l.id
            );
            if let Some(broken) = p.broken {
                cases.push((
                    name("compile error"),
                    body(broken),
                    Box::new(|r| {
                        r["verdict"] == "compile_error"
                            && r["compile_output"].as_str().is_some_and(|o| !o.is_empty())
                    }),
                ));
            }
        }
    }
    let mut ids = Vec::new();
    for (_, body, _) in &cases {
        ids.push(c.submit(body).await.unwrap());
    }
    let mut failures = Vec::new();
    for ((what, _, check), id) in cases.iter().zip(&ids) {
        let r = c.wait(id, Duration::from_secs(180)).await.unwrap();
        if !check(&r) {
            failures.push(format!("{what}: {r}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Each version as the runner image has it (reported by the worker once it is up).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let langs: Value = loop {
        let langs: Value = c.get_json("/languages").await.unwrap();
        let all = langs
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["version"].is_string());
        if all || std::time::Instant::now() > deadline {
            break langs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for l in LANGUAGES {
        let listed = langs
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == l.id)
            .unwrap_or_else(|| panic!("{} not listed", l.id));
        assert!(
            listed["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{listed}"
        );
    }
    running.stop().await;
}
