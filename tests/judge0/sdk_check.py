"""The official Judge0 Python SDK (judge0, pinned in scripts/ensure-tools.sh), unchanged,
against codebox's /judge0 API. Run by tests/tests/judge0_sdk.rs with JUDGE0_URL and
JUDGE0_TOKEN set; exits non-zero with one line per failed check."""

import os
import sys

import judge0
from judge0 import Status

URL = os.environ["JUDGE0_URL"]
TOKEN = os.environ["JUDGE0_TOKEN"]
# Bounded polling: 0.1 s steps for at most 120 s.
RETRY = judge0.MaxWaitTime(120)

C_SUM = """#include <stdio.h>
int main(void){int a,b;if(scanf("%d %d",&a,&b)!=2)return 3;printf("%d\\n",a+b);return 0;}
"""

failures = []


def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


client = judge0.Client(URL, headers={"X-Auth-Token": TOKEN}, retry_strategy=RETRY)
check("about version", client.get_about()["version"], "1.13.1")
ids = {lang.id for lang in client.languages}
for wanted in (71, 50, 52, 54, 75, 76):
    check(f"language {wanted} listed", wanted in ids, True)

# Python and C, by alias and by id.
r = judge0.run(client=client, source_code="print('hello')", language=judge0.PYTHON)
check("python hello status", r.status, Status.ACCEPTED)
check("python hello stdout", r.stdout, "hello\n")
check("python hello memory", isinstance(r.memory, int) and r.memory > 0, True)
r = judge0.run(client=client, source_code=C_SUM, language=judge0.C, stdin="2 3")
check("c sum status", r.status, Status.ACCEPTED)
check("c sum stdout", r.stdout, "5\n")
r = judge0.run(client=client, source_code=C_SUM, language=75, stdin="4 4", expected_output="8")
check("c (clang) expected output", r.status, Status.ACCEPTED)

# Test cases: one submission each, judged on expected_output.
results = judge0.run(
    client=client,
    source_code="print(int(input()) * 2)",
    language=judge0.PYTHON,
    test_cases=[("1", "2"), ("2", "5"), judge0.TestCase(input="3", expected_output="6")],
)
check("python tests", [x.status for x in results], [Status.ACCEPTED, Status.WRONG_ANSWER, Status.ACCEPTED])
results = judge0.run(
    client=client,
    source_code=C_SUM,
    language=judge0.C,
    test_cases=[("1 2", "3"), ("5 7", "13")],
)
check("c tests", [x.status for x in results], [Status.ACCEPTED, Status.WRONG_ANSWER])

# Each failure as Judge0 names it.
r = judge0.run(client=client, source_code="int main(void){ return x; }", language=judge0.C)
check("compile error", r.status, Status.COMPILATION_ERROR)
check("compile output", "error" in (r.compile_output or ""), True)
r = judge0.run(client=client, source_code="while True: pass", language=judge0.PYTHON, cpu_time_limit=1)
check("time limit", r.status, Status.TIME_LIMIT_EXCEEDED)
r = judge0.run(client=client, source_code="import sys; sys.exit(3)", language=judge0.PYTHON)
check("nzec", r.status, Status.RUNTIME_ERROR_NZEC)
check("nzec exit code", r.exit_code, 3)
r = judge0.run(client=client, source_code="int main(void){ int *p = 0; return *p; }", language=judge0.C)
check("sigsegv", r.status, Status.RUNTIME_ERROR_SIGSEGV)

# async_run, then wait.
s = judge0.async_run(client=client, source_code="print(6 * 7)", language=judge0.PYTHON)
check("async token", bool(s.token), True)
s = judge0.wait(client=client, submissions=s, retry_strategy=RETRY)
check("async then wait", (s.status, s.stdout), (Status.ACCEPTED, "42\n"))

# A batch of submissions (created and polled through the batch endpoints).
subs = [judge0.Submission(source_code=f"print({i})", language=judge0.PYTHON) for i in range(5)]
subs = judge0.run(client=client, submissions=subs)
check("batch", [(x.status, x.stdout) for x in subs], [(Status.ACCEPTED, f"{i}\n") for i in range(5)])

# Every other language by the SDK's own alias (its ids are Judge0 CE 1.13.1's), as one
# batch: a hello and an echo of stdin.
HELLO = {
    judge0.JAVASCRIPT: 'console.log("hello " + require("fs").readFileSync(0, "utf8").trim())',
    judge0.TYPESCRIPT: 'const s: string = require("fs").readFileSync(0, "utf8").trim();\nconsole.log("hello " + s);',
    judge0.GO: 'package main\nimport "fmt"\nfunc main() { var s string; fmt.Scan(&s); fmt.Println("hello " + s) }',
    judge0.RUST: 'fn main() { let mut s = String::new(); std::io::stdin().read_line(&mut s).unwrap(); println!("hello {}", s.trim()); }',
    judge0.JAVA: 'import java.util.Scanner;\npublic class Main { public static void main(String[] a) { System.out.println("hello " + new Scanner(System.in).next()); } }',
    judge0.KOTLIN: 'fun main() { println("hello " + readLine()!!.trim()) }',
    judge0.CSHARP: 'class P { static void Main() { System.Console.WriteLine("hello " + System.Console.ReadLine().Trim()); } }',
    judge0.RUBY: 'puts "hello #{gets.strip}"',
    judge0.PHP: '<?php echo "hello " . trim(fgets(STDIN)) . "\\n";',
    judge0.LUA: 'print("hello " .. io.read("l"))',
    judge0.HASKELL: 'main = getLine >>= \\s -> putStrLn ("hello " ++ s)',
    judge0.BASH: 'read -r s; echo "hello $s"',
    judge0.PERL: 'my $s = <STDIN>; chomp $s; print "hello $s\\n";',
}
langs = list(HELLO)
subs = [judge0.Submission(source_code=HELLO[l], language=l, stdin="world\n") for l in langs]
subs = judge0.run(client=client, submissions=subs)
for lang, x in zip(langs, subs):
    check(f"{lang.name} hello", (x.status, x.stdout), (Status.ACCEPTED, "hello world\n"))

if failures:
    for f in failures:
        print("judge0 SDK:", f)
    sys.exit(1)
print("judge0 SDK: every check passed")
