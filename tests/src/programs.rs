//! Programs of every language of the table (`codebox_core::languages::LANGUAGES`): what
//! `tests/tests/languages.rs` runs end to end, and the hellos `make bench` times per
//! language. A language added to the table needs its programs here.

use serde_json::{Value, json};

/// Programs of one language: prints `hello`, echoes one line of stdin, exits with status
/// 3, loops forever, and (compiled) does not compile. Plain text does only the first,
/// SQL (its script is SQLite's input) all but the echo.
pub struct Programs {
    pub hello: &'static str,
    pub echo: Option<&'static str>,
    pub exit3: Option<&'static str>,
    pub forever: Option<&'static str>,
    pub broken: Option<&'static str>,
}

pub fn programs(language: &str) -> Option<Programs> {
    Some(match language {
        "python" => Programs {
            hello: "print('hello')",
            echo: Some("print(input())"),
            exit3: Some("import sys\nsys.exit(3)"),
            forever: Some("while True:\n    pass"),
            broken: None,
        },
        "c" => Programs {
            hello: "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}",
            echo: Some(
                "#include <stdio.h>\nint main(void){char b[256];if(!fgets(b,sizeof b,stdin))return 1;fputs(b,stdout);return 0;}",
            ),
            exit3: Some("int main(void){return 3;}"),
            forever: Some("int main(void){volatile int x=0;for(;;)x++;}"),
            broken: Some("int main(void){ return x; }"),
        },
        "cpp" => Programs {
            hello: "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}",
            echo: Some(
                "#include <iostream>\n#include <string>\nint main(){std::string s;std::getline(std::cin,s);std::cout<<s<<std::endl;}",
            ),
            exit3: Some("int main(){return 3;}"),
            forever: Some("int main(){volatile int x=0;for(;;)x++;}"),
            broken: Some("int main(){ return x; }"),
        },
        "bash" => Programs {
            hello: "echo hello",
            echo: Some("read -r line\necho \"$line\""),
            exit3: Some("exit 3"),
            forever: Some("while :; do :; done"),
            broken: None,
        },
        "perl" => Programs {
            hello: "print \"hello\\n\";",
            echo: Some("my $line = <STDIN>;\nprint $line;"),
            exit3: Some("exit 3;"),
            forever: Some("while (1) {}"),
            broken: None,
        },
        "javascript" => Programs {
            hello: "console.log(\"hello\");",
            echo: Some(
                "const line = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\")[0];\nconsole.log(line);",
            ),
            exit3: Some("process.exit(3);"),
            forever: Some("for (;;) {}"),
            broken: None,
        },
        "typescript" => Programs {
            hello: "const greeting: string = \"hello\";\nconsole.log(greeting);",
            echo: Some(
                "const line: string = require(\"fs\").readFileSync(0, \"utf8\").split(\"\\n\")[0];\nconsole.log(line);",
            ),
            exit3: Some("process.exit(3);"),
            forever: Some("while (true) {}"),
            broken: Some("const n: number = \"not a number\";\nconsole.log(n);"),
        },
        "go" => Programs {
            hello: "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }",
            echo: Some(
                "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tline, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n\tfmt.Print(line)\n}",
            ),
            exit3: Some("package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }"),
            forever: Some("package main\n\nfunc main() {\n\tfor {\n\t}\n}"),
            broken: Some("package main\n\nfunc main() { return x }"),
        },
        "rust" => Programs {
            hello: "fn main() {\n    println!(\"hello\");\n}",
            echo: Some(
                "fn main() {\n    let mut line = String::new();\n    std::io::stdin().read_line(&mut line).unwrap();\n    print!(\"{line}\");\n}",
            ),
            exit3: Some("fn main() {\n    std::process::exit(3);\n}"),
            forever: Some(
                "fn main() {\n    let mut n: u64 = 1;\n    loop {\n        n = n.wrapping_mul(3).wrapping_add(1);\n        if n == 0 {\n            println!(\"{n}\");\n        }\n    }\n}",
            ),
            broken: Some("fn main() {\n    let n: i32 = \"text\";\n}"),
        },
        "java" => Programs {
            hello: "public class Main {\n    public static void main(String[] args) {\n        System.out.println(\"hello\");\n    }\n}",
            echo: Some(
                "import java.io.*;\n\npublic class Main {\n    public static void main(String[] args) throws IOException {\n        System.out.println(new BufferedReader(new InputStreamReader(System.in)).readLine());\n    }\n}",
            ),
            exit3: Some(
                "public class Main {\n    public static void main(String[] args) {\n        System.exit(3);\n    }\n}",
            ),
            forever: Some(
                "public class Main {\n    public static void main(String[] args) {\n        while (true) {}\n    }\n}",
            ),
            broken: Some(
                "public class Main {\n    public static void main(String[] args) {\n        int n = \"text\";\n    }\n}",
            ),
        },
        "kotlin" => Programs {
            hello: "fun main() {\n    println(\"hello\")\n}",
            echo: Some("fun main() {\n    println(readLine())\n}"),
            exit3: Some("import kotlin.system.exitProcess\n\nfun main() {\n    exitProcess(3)\n}"),
            forever: Some("fun main() {\n    while (true) {}\n}"),
            broken: Some("fun main() {\n    val n: Int = \"text\"\n}"),
        },
        "csharp" => Programs {
            hello: "using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine(\"hello\");\n    }\n}",
            echo: Some(
                "using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine(Console.ReadLine());\n    }\n}",
            ),
            exit3: Some("class Program {\n    static int Main() {\n        return 3;\n    }\n}"),
            forever: Some(
                "class Program {\n    static void Main() {\n        while (true) {}\n    }\n}",
            ),
            broken: Some(
                "class Program {\n    static void Main() {\n        int n = \"text\";\n    }\n}",
            ),
        },
        "ruby" => Programs {
            hello: "puts \"hello\"",
            echo: Some("puts gets"),
            exit3: Some("exit 3"),
            forever: Some("loop {}"),
            broken: None,
        },
        "php" => Programs {
            hello: "<?php\necho \"hello\\n\";",
            echo: Some("<?php\necho fgets(STDIN);"),
            exit3: Some("<?php\nexit(3);"),
            forever: Some("<?php\nwhile (true) {}"),
            broken: None,
        },
        "lua" => Programs {
            hello: "print(\"hello\")",
            echo: Some("print(io.read(\"l\"))"),
            exit3: Some("os.exit(3)"),
            forever: Some("while true do end"),
            broken: Some("print(\"hello\""),
        },
        "haskell" => Programs {
            hello: "main :: IO ()\nmain = putStrLn \"hello\"",
            echo: Some("main :: IO ()\nmain = getLine >>= putStrLn"),
            exit3: Some("import System.Exit\n\nmain :: IO ()\nmain = exitWith (ExitFailure 3)"),
            forever: Some(
                "loop :: Int -> IO ()\nloop n = loop (n + 1)\n\nmain :: IO ()\nmain = loop 0",
            ),
            broken: Some("main :: IO ()\nmain = putStrLn 1"),
        },
        "plaintext" => Programs {
            hello: "hello\n",
            echo: None,
            exit3: None,
            forever: None,
            broken: None,
        },
        "assembly" => Programs {
            hello: "section .data\nmsg db \"hello\", 10\nsection .text\nglobal _start\n_start:\n    mov rax, 1\n    mov rdi, 1\n    mov rsi, msg\n    mov rdx, 6\n    syscall\n    mov rax, 60\n    xor rdi, rdi\n    syscall",
            echo: Some(
                "section .bss\nbuf resb 256\nsection .text\nglobal _start\n_start:\n    xor rax, rax\n    xor rdi, rdi\n    mov rsi, buf\n    mov rdx, 256\n    syscall\n    mov rdx, rax\n    mov rax, 1\n    mov rdi, 1\n    mov rsi, buf\n    syscall\n    mov rax, 60\n    xor rdi, rdi\n    syscall",
            ),
            exit3: Some(
                "section .text\nglobal _start\n_start:\n    mov rax, 60\n    mov rdi, 3\n    syscall",
            ),
            forever: Some("section .text\nglobal _start\n_start:\n    jmp _start"),
            broken: Some("section .text\nglobal _start\n_start:\n    mov rax, nowhere"),
        },
        "commonlisp" => Programs {
            hello: "(write-line \"hello\")",
            echo: Some("(write-line (read-line))"),
            exit3: Some("(sb-ext:exit :code 3)"),
            forever: Some("(loop)"),
            broken: None,
        },
        "d" => Programs {
            hello: "import std.stdio;\n\nvoid main() {\n    writeln(\"hello\");\n}",
            echo: Some("import std.stdio;\n\nvoid main() {\n    write(readln());\n}"),
            exit3: Some("int main() {\n    return 3;\n}"),
            forever: Some("void main() {\n    for (;;) {}\n}"),
            broken: Some("void main() {\n    int n = \"text\";\n}"),
        },
        "elixir" => Programs {
            hello: "IO.puts(\"hello\")",
            echo: Some("IO.write(IO.gets(\"\"))"),
            exit3: Some("System.halt(3)"),
            forever: Some("defmodule Loop do\n  def run, do: run()\nend\n\nLoop.run()"),
            broken: None,
        },
        "erlang" => Programs {
            hello: "main(_) ->\n    io:format(\"hello~n\").",
            echo: Some("main(_) ->\n    io:put_chars(io:get_line(\"\"))."),
            exit3: Some("main(_) ->\n    halt(3)."),
            forever: Some("main(_) ->\n    loop().\n\nloop() ->\n    loop()."),
            broken: None,
        },
        "fortran" => Programs {
            hello: "program hello\n  print '(a)', 'hello'\nend program hello",
            echo: Some(
                "program echo\n  character(len=256) :: line\n  read '(a)', line\n  print '(a)', trim(line)\nend program echo",
            ),
            exit3: Some("program three\n  stop 3\nend program three"),
            forever: Some(
                "program forever\n  integer :: n\n  n = 0\n  do\n    n = n + 1\n  end do\nend program forever",
            ),
            broken: Some("program broken\n  integer :: n\n  n = 'text'\nend program broken"),
        },
        "ocaml" => Programs {
            hello: "let () = print_endline \"hello\"",
            echo: Some("let () = print_endline (read_line ())"),
            exit3: Some("let () = exit 3"),
            forever: Some("let rec loop n = loop (n + 1)\nlet () = loop 0"),
            broken: Some("let () = print_endline 1"),
        },
        "octave" => Programs {
            hello: "disp('hello')",
            echo: Some("disp(fgetl(stdin))"),
            exit3: Some("exit(3)"),
            forever: Some("while true\nend"),
            broken: None,
        },
        "pascal" => Programs {
            hello: "program Hello;\nbegin\n  writeln('hello');\nend.",
            echo: Some(
                "program Echo;\nvar line: string;\nbegin\n  readln(line);\n  writeln(line);\nend.",
            ),
            exit3: Some("program Three;\nbegin\n  halt(3);\nend."),
            forever: Some("program Forever;\nbegin\n  while true do;\nend."),
            broken: Some("program Broken;\nvar n: integer;\nbegin\n  n := 'text';\nend."),
        },
        "prolog" => Programs {
            hello: ":- initialization(main).\nmain :- write(hello), nl.",
            echo: Some(
                ":- initialization(main).\necho :- get_char(C), ( C == end_of_file -> true ; put_char(C), ( C == '\\n' -> true ; echo ) ).\nmain :- echo.",
            ),
            exit3: Some(":- initialization(main).\nmain :- halt(3)."),
            forever: Some(":- initialization(main).\nloop :- loop.\nmain :- loop."),
            broken: Some(":- initialization(main).\nmain :- write(hello"),
        },
        "cobol" => Programs {
            hello: "IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\nPROCEDURE DIVISION.\n    DISPLAY \"hello\".\n    STOP RUN.",
            echo: Some(
                "IDENTIFICATION DIVISION.\nPROGRAM-ID. ECHO.\nDATA DIVISION.\nWORKING-STORAGE SECTION.\n01 LINE-IN PIC X(80).\nPROCEDURE DIVISION.\n    ACCEPT LINE-IN.\n    DISPLAY FUNCTION TRIM(LINE-IN).\n    STOP RUN.",
            ),
            exit3: Some(
                "IDENTIFICATION DIVISION.\nPROGRAM-ID. THREE.\nPROCEDURE DIVISION.\n    STOP RUN RETURNING 3.",
            ),
            forever: Some(
                "IDENTIFICATION DIVISION.\nPROGRAM-ID. FOREVER.\nPROCEDURE DIVISION.\n    PERFORM UNTIL 1 = 0\n    END-PERFORM.\n    STOP RUN.",
            ),
            broken: Some(
                "IDENTIFICATION DIVISION.\nPROGRAM-ID. BROKEN.\nPROCEDURE DIVISION.\n    MOVE X TO Y.",
            ),
        },
        "objectivec" => Programs {
            hello: "#import <Foundation/Foundation.h>\n\nint main(void) {\n    NSAutoreleasePool *pool = [NSAutoreleasePool new];\n    NSString *s = @\"hello\";\n    printf(\"%s\\n\", [s UTF8String]);\n    [pool drain];\n    return 0;\n}",
            echo: Some(
                "#import <stdio.h>\n\nint main(void) {\n    char b[256];\n    if (!fgets(b, sizeof b, stdin)) return 1;\n    fputs(b, stdout);\n    return 0;\n}",
            ),
            exit3: Some("int main(void) {\n    return 3;\n}"),
            forever: Some("int main(void) {\n    volatile int x = 0;\n    for (;;) x++;\n}"),
            broken: Some("int main(void) {\n    return x;\n}"),
        },
        "r" => Programs {
            hello: "cat(\"hello\\n\")",
            echo: Some("cat(readLines(file(\"stdin\"), n = 1), \"\\n\", sep = \"\")"),
            exit3: Some("quit(status = 3)"),
            forever: Some("repeat {}"),
            broken: None,
        },
        "scala" => Programs {
            hello: "object Main {\n  def main(args: Array[String]): Unit = println(\"hello\")\n}",
            echo: Some(
                "object Main {\n  def main(args: Array[String]): Unit = println(scala.io.StdIn.readLine())\n}",
            ),
            exit3: Some("object Main {\n  def main(args: Array[String]): Unit = sys.exit(3)\n}"),
            forever: Some(
                "object Main {\n  def main(args: Array[String]): Unit = while (true) {}\n}",
            ),
            broken: Some(
                "object Main {\n  def main(args: Array[String]): Unit = { val n: Int = \"text\" }\n}",
            ),
        },
        "sql" => Programs {
            hello: "SELECT 'hello';",
            echo: None,
            exit3: Some(".exit 3"),
            forever: Some(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n;",
            ),
            broken: None,
        },
        "clojure" => Programs {
            hello: "(println \"hello\")",
            echo: Some("(println (read-line))"),
            exit3: Some("(System/exit 3)"),
            forever: Some("(loop [] (recur))"),
            broken: None,
        },
        "groovy" => Programs {
            hello: "println 'hello'",
            echo: Some("println System.in.newReader().readLine()"),
            exit3: Some("System.exit(3)"),
            forever: Some("while (true) {}"),
            broken: Some("println('hello'"),
        },
        // C programs, built by the task's `compile` script and run by its `run` (see
        // `multi_file`).
        "multifile" => return programs("c"),
        _ => return None,
    })
}

/// A multi-file program of the C program `code`: `prog.c` among its files, a `compile`
/// script that builds it into a directory of its own, and a `run` script that starts it
/// from there with the task's arguments (so the run gets more than one file).
pub fn multi_file(body: &mut Value, code: &str) {
    body["code"] = json!("cd out && exec ./prog \"$@\"\n");
    body["files"] = json!([
        {"path": "compile", "content": "mkdir -p out && gcc -O2 -o out/prog prog.c\n"},
        {"path": "prog.c", "content": code},
    ]);
}
