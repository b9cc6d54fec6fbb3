"""Cold-start init time of each Lambda binary (target/lambda/<fn>/bootstrap): from process
start to its first `GET /runtime/invocation/next`, under a stand-in Runtime API on
loopback; that span is what Lambda bills as Init. Median of --runs starts per function.

  python3 scripts/lambda-init-times.py --aws-endpoint http://127.0.0.1:55500 register login …
  python3 scripts/lambda-init-times.py --env-file target/lambda.env register …

With --aws-endpoint the functions run BACKEND=aws on resources the LocalStack init hook
makes there (moto or LocalStack), secrets read from Secrets Manager by ARN.
"""

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_from_file(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def aws_env(endpoint):
    """What scripts/moto-env.sh provisions and prints (the LocalStack init hook)."""
    base = dict(os.environ, AWS_ENDPOINT_URL=endpoint, CODEBOX_PREFIX="codebox-coldstart")
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/moto-env.sh")],
        env=base, capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"lambda-init-times: provisioning failed: {out.stderr.strip()}")
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return env


def init_ms(fn, env):
    polled = threading.Event()
    when = {}

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.endswith("/invocation/next") and not polled.is_set():
                when["t"] = time.perf_counter()
                polled.set()
            time.sleep(2)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    full = dict(os.environ, **env)
    full.update(
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_port}",
        AWS_LAMBDA_FUNCTION_NAME=fn, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_LOG_STREAM_NAME="s",
        AWS_LAMBDA_LOG_GROUP_NAME="g", RUST_LOG="error",
    )
    binary = os.path.join(ROOT, "target/lambda", fn, "bootstrap")
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen([binary], env=full, stderr=subprocess.PIPE)
    except OSError as e:
        server.shutdown()
        sys.exit(
            f"lambda-init-times: cannot run {binary} here ({e.strerror}): "
            "build it for this host's architecture (`make lambda-build ARCH=x86_64` on x86)"
        )
    ok = polled.wait(10)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    if not ok:
        sys.exit(f"lambda-init-times: {fn} never polled: {err.decode().strip()[:300]}")
    return (when["t"] - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("functions", nargs="+")
    ap.add_argument("--env-file")
    ap.add_argument("--aws-endpoint")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = env_from_file(a.env_file) if a.env_file else {}
    if a.aws_endpoint:
        env.update(aws_env(a.aws_endpoint))
    print(f"{'function':12} {'size MB':>8} {'init p50 ms':>12} {'min':>6} {'max':>6}")
    for fn in a.functions:
        size = os.path.getsize(os.path.join(ROOT, "target/lambda", fn, "bootstrap")) / 1e6
        times = [init_ms(fn, env) for _ in range(max(1, min(a.runs, 50)))]
        print(f"{fn:12} {size:8.1f} {statistics.median(times):12.1f} {min(times):6.1f} {max(times):6.1f}")


if __name__ == "__main__":
    main()
