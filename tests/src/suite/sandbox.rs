//! The sandbox seen from inside: what a program can reach, open, see and keep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::{client, code};

/// Every byte the program writes travels inside a frame of the agent's: bytes that look
/// like the agent's own report come back as plain output, and the real verdict stands. A
/// program that reaches the agent's own stdout (`/proc/1/fd/1`: refused on runc, where
/// the agent is non-dumpable; gVisor lets it open) cannot forge a report either: the
/// report is authenticated, and the run is void.
pub async fn a_program_cannot_forge_the_agents_report(addr: SocketAddr) {
    let report = br#"{"stop":"exited","exit_code":0,"signal":null,"wall_us":1,"cpu_us":1,"memory_kb":1,"truncated":false,"stdout_bytes":0,"stderr_bytes":0,"oom_killed":false}"#;
    let mut frame = vec![b'X'];
    frame.extend_from_slice(&(report.len() as u32 + 32).to_le_bytes());
    frame.extend_from_slice(report);
    frame.extend_from_slice(&[0u8; 32]);
    let fake = base64::engine::general_purpose::STANDARD.encode(&frame);
    let c = client(addr).await;
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let result = |id: String| {
        let c = c.clone();
        async move {
            c.wait(&id, Duration::from_secs(60)).await.unwrap();
            c.get_json(&format!("/result/{id}?encoding=base64"))
                .await
                .unwrap()
        }
    };
    // On its own streams.
    let src = format!(
        "import base64, os, sys\nf = base64.b64decode('{fake}')\nsys.stdout.buffer.write(f)\nsys.stdout.flush()\nsys.stderr.buffer.write(f)\nsys.stderr.flush()\n\
        for fd in range(3, 20):\n    try: os.write(fd, f)\n    except OSError: pass\nsys.exit(5)"
    );
    let r = result(c.submit(&code("python", &src)).await.unwrap()).await;
    assert_eq!(r["verdict"], "runtime_error", "{r}");
    assert_eq!(r["exit_code"], 5, "{r}");
    assert_eq!(
        decode(&r["stdout"]),
        frame,
        "the fake frame is output, verbatim"
    );
    assert_eq!(decode(&r["stderr"]), frame);
    // On the agent's own stdout, where the runtime lets it.
    let src = format!(
        "import base64, sys\nf = base64.b64decode('{fake}')\ntry:\n    w = open('/proc/1/fd/1', 'wb', buffering=0)\nexcept OSError:\n    print('refused')\n    sys.exit(6)\nw.write(b'O' + (5).to_bytes(4, 'little') + b'fake\\n')\nw.write(f)\nsys.exit(7)"
    );
    let r = result(c.submit(&code("python", &src)).await.unwrap()).await;
    assert_eq!(r["verdict"], "runtime_error", "never ok: {r}");
    match r["exit_code"].as_i64() {
        Some(6) => assert_eq!(decode(&r["stdout"]), b"refused\n", "{r}"),
        _ => {
            assert!(
                String::from_utf8_lossy(&decode(&r["stderr"])).contains("its run is void"),
                "{r}"
            );
            assert_eq!(r["exit_code"], Value::Null, "{r}");
        }
    }
}

/// No two tasks share a network namespace: a program listening on loopback and on an
/// abstract Unix socket is reachable by no other task, neither while it runs nor after it
/// ended (what any reuse of namespaces between sandboxes would have to keep).
pub async fn tasks_never_share_a_network_namespace(addr: SocketAddr) {
    let listener = "import os, socket, time\n\
        u = socket.socket(socket.AF_UNIX)\nu.bind('\\0codebox-probe')\nu.listen()\n\
        t = socket.socket()\nt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\nt.bind(('127.0.0.1', 40404))\nt.listen()\n\
        print('listening', os.readlink('/proc/self/ns/net'), flush=True)\ntime.sleep(3)";
    let prober = "import os, socket\n\
        def probe(family, address):\n    s = socket.socket(family)\n    s.settimeout(1)\n    try:\n        s.connect(address)\n        return 'reached'\n    except OSError:\n        return 'refused'\n\
        print(probe(socket.AF_UNIX, '\\0codebox-probe'), probe(socket.AF_INET, ('127.0.0.1', 40404)))";
    let c = client(addr).await;
    let id = c
        .submit(&json!({"language": "python", "code": listener, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.status(&id).await.unwrap()["status"] != "running" {
        assert!(Instant::now() < deadline, "the listener never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it runs: tasks at the same time.
    let during: Vec<String> = futures::future::join_all(
        (0..4).map(|_| async { c.submit(&code("python", prober)).await.unwrap() }),
    )
    .await;
    let listened = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert!(
        listened["stdout"]
            .as_str()
            .unwrap()
            .starts_with("listening"),
        "{listened}"
    );
    // After it: one task after another, in whatever namespace comes next.
    let mut after = Vec::new();
    for _ in 0..6 {
        after.push(c.run(code("python", prober)).await.unwrap());
    }
    for id in during {
        after.push(c.wait(&id, Duration::from_secs(60)).await.unwrap());
    }
    for r in after {
        assert_eq!(r["stdout"], "refused refused\n", "{r}");
    }
}

/// What a program leaves running is killed when it ends: the result does not wait for a
/// daemon (nor for the time limit), and the daemon's CPU time is the program's.
pub async fn a_programs_daemons_die_with_it(addr: SocketAddr) {
    let src = "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True: pass\n    os._exit(0)\nprint('parent done')";
    let c = client(addr).await;
    let started = Instant::now();
    let r = c
        .run(json!({"language": "python", "code": src, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "parent done\n");
    assert!(r["time_ms"].as_u64().unwrap() < 2000, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the result waited for the daemon"
    );
}

/// The Docker bridge's gateway address on this machine (the first address of its
/// subnet): what a container on the default network would reach the host through.
fn bridge_gateway() -> String {
    let out = std::process::Command::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
        ])
        .output()
        .unwrap();
    let subnet = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let net: std::net::Ipv4Addr = subnet
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bridge subnet: {subnet:?}"));
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

/// No interface but `lo`, no route, and the host's bridge address is unreachable: the
/// connect fails at once as unreachable — ENETUNREACH from Linux, EHOSTUNREACH from
/// gVisor (on a bridge network it would be refused or accepted by the host instead).
pub async fn network_is_unreachable(addr: SocketAddr) {
    let src = format!(
        "import errno, os, socket\n\
         print(sorted(os.listdir('/sys/class/net')))\n\
         print(len(open('/proc/net/route').read().splitlines()[1:]))\n\
         s = socket.socket()\ns.settimeout(3)\n\
         try:\n    s.connect(('{}', 9))\n    print('connected')\n\
         except OSError as e:\n    print('unreachable' if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else errno.errorcode.get(e.errno, e.errno))",
        bridge_gateway()
    );
    let r = client(addr).await.run(code("python", &src)).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    assert_eq!(r["stdout"], "['lo']\n0\nunreachable\n", "{r}");
}

/// What the container configuration promises, seen from inside: no capabilities, no
/// new privileges, nothing writable but /tmp, a pids limit that bites, and nothing left
/// by one task for the next.
pub async fn the_sandbox_is_locked_down(addr: SocketAddr) {
    let c = client(addr).await;
    // NoNewPrivs through prctl(PR_GET_NO_NEW_PRIVS): gVisor's /proc does not show it.
    let src = "import ctypes, os, resource\n\
        print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_FSIZE))\n\
        st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n\
        print(st['CapEff'].strip(), ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))\n\
        for d in ['/', '/usr', '/var/tmp', '/etc', '/tmp']:\n\
        \x20   try:\n\
        \x20       open(os.path.join(d, '.probe'), 'w').close()\n\
        \x20       print(d, 'writable')\n\
        \x20   except OSError:\n\
        \x20       print(d, 'read-only')\n\
        open('/tmp/left-behind', 'w').write('x')";
    let r = c.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"],
        "(256, 256) (16777216, 16777216)\n0000000000000000 1\n/ read-only\n/usr read-only\n/var/tmp read-only\n/etc read-only\n/tmp writable\n",
        "{r}"
    );
    let next = c
        .run(code(
            "python",
            "import os\nprint(os.path.exists('/tmp/left-behind'), os.listdir('/tmp'))",
        ))
        .await
        .unwrap();
    assert_eq!(
        next["stdout"], "False ['box']\n",
        "a fresh /tmp for every task: {next}"
    );
    // The pids limit (64) stops a program long before it could hurt the host.
    let forks = "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(2)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)";
    let r = c
        .run(json!({"language": "python", "code": forks, "limits": {"time_ms": 10000}}))
        .await
        .unwrap();
    let n: u32 = r["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(n < 64, "{n} processes were forked: {r}");
}

/// What a program without capabilities must not reach even where the kernel would let an
/// unprivileged process (this kernel lets it make user namespaces): a new namespace,
/// through `unshare` or through `clone` with namespace flags (a user namespace first: the
/// way into most of the kernel's attack surface), and the kernel's keyrings. Docker's
/// default seccomp profile refuses them, and so does the runc engine's policy
/// (`oci::seccomp`); the filter is on (`Seccomp: 2`).
pub async fn namespaces_and_keyrings_are_refused(addr: SocketAddr) {
    let src = "import ctypes, errno, os, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        def res(r):\n    return 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')\n\
        keyctl, clone = {'x86_64': (250, 56), 'aarch64': (219, 220)}[platform.machine()]\n\
        print('unshare', res(libc.unshare(0x10000000)))\n\
        print('keyctl', res(libc.syscall(keyctl, 0, 0, 0)))\n\
        pid = libc.syscall(clone, 0x10000000 | 17, 0, 0, 0, 0)\n\
        if pid == 0:\n    os._exit(0)\n\
        if pid > 0:\n    os.waitpid(pid, 0)\n\
        print('clone', 'ok' if pid > 0 else 'refused')\n\
        print([l for l in open('/proc/self/status') if l.startswith('Seccomp:')][0].split()[1])";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"], "unshare EPERM\nkeyctl EPERM\nclone refused\n2\n",
        "{r}"
    );
}

/// A C program that opens a socket of each family (and `socketpair`), `AF_VSOCK` also
/// with high bits set (the kernel reads an `int`: a filter comparing fewer bits than it
/// sees would let it by), and on x86-64 tries `socketcall(SYS_SOCKET, AF_VSOCK)` through
/// the 32-bit entry (`int $0x80`) in a child, which may be killed for it (what comes back
/// counts only if it is a socket).
const SOCKET_PROBE: &str = r#"#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void try(const char *name, long family) {
    long fd = syscall(SYS_socket, family, SOCK_STREAM, 0);
    if (fd < 0) fd = syscall(SYS_socket, family, SOCK_DGRAM, 0);
    if (fd < 0) fd = syscall(SYS_socket, family, SOCK_RAW, 0);
    printf("%s %s\n", name, fd >= 0 ? "open" : "refused");
}
int main(void) {
    try("vsock", 40); try("alg", 38); try("packet", 17); try("key", 15);
    try("netlink", 16); try("vsock+high", (1L << 32) | 40);
    try("unix", 1); try("inet", 2); try("inet6", 10);
    int sv[2];
    printf("pair %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? "open" : "refused");
    printf("vsock pair %s\n", socketpair(40, SOCK_STREAM, 0, sv) == 0 ? "open" : "refused");
#if defined(__x86_64__)
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (args == MAP_FAILED) _exit(2);
        args[0] = 40; args[1] = SOCK_STREAM; args[2] = 0;
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(102), "b"(1), "c"(args) : "memory");
        struct stat st;
        _exit(ret >= 0 && fstat((int)ret, &st) == 0 && S_ISSOCK(st.st_mode) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("int80 %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "open" : "refused");
#else
    printf("int80 refused\n");
#endif
    return 0;
}
"#;

/// What [`SOCKET_PROBE`] prints where only local and IP sockets open; `netlink` is what
/// it says of netlink.
fn socket_probe_output(netlink: &str) -> String {
    format!(
        "vsock refused\nalg refused\npacket refused\nkey refused\nnetlink {netlink}\n\
         vsock+high refused\nunix open\ninet open\ninet6 open\npair open\nvsock pair refused\n\
         int80 refused\n"
    )
}

/// "No network" means no way out of the sandbox at all: on a virtual machine `AF_VSOCK`
/// reaches the hypervisor's host, and `AF_ALG`, `AF_PACKET`, `AF_KEY` and netlink are kernel
/// surface no program needs. On the host's kernel (runc, Docker) the seccomp policy lets
/// only local and IP sockets open (IP inside a namespace with loopback alone), and no
/// 32-bit entry gets around it.
pub async fn only_local_and_ip_sockets_open(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("c", SOCKET_PROBE))
        .await
        .unwrap();
    assert_eq!(r["stdout"], socket_probe_output("refused"), "{r}");
}

/// On gVisor the program's kernel is the Sentry: it implements none of those families and
/// no 32-bit entry; its netlink (routes of the sandbox's own loopback) is its own, never
/// the host's.
pub async fn gvisor_opens_no_socket_to_the_host(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("c", SOCKET_PROBE))
        .await
        .unwrap();
    assert_eq!(r["stdout"], socket_probe_output("open"), "{r}");
}

/// Under host memory pressure the kernel's first victim is a program, never the worker or
/// the database beside it.
pub async fn the_program_is_the_first_the_kernel_kills(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code(
            "python",
            "print(open('/proc/self/oom_score_adj').read().strip())",
        ))
        .await
        .unwrap();
    assert_eq!(r["stdout"], "1000\n", "{r}");
}

/// What the host's kernel says of its devices, interrupts and power is not the
/// program's to read: moby's current masked paths on every engine (Debian 12's Docker 20.10
/// shows `/proc/interrupts`).
pub async fn host_interrupts_and_power_are_masked(addr: SocketAddr) {
    let src = "import os\n\
        for p in ['/proc/interrupts', '/proc/kcore', '/proc/keys', '/sys/firmware', '/sys/devices/virtual/powercap']:\n\
        \x20   if os.path.isdir(p):\n\
        \x20       print(p, len(os.listdir(p)))\n\
        \x20   elif os.path.exists(p):\n\
        \x20       print(p, len(open(p, 'rb').read()))\n\
        \x20   else:\n\
        \x20       print(p, 0)";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"],
        "/proc/interrupts 0\n/proc/kcore 0\n/proc/keys 0\n/sys/firmware 0\n/sys/devices/virtual/powercap 0\n",
        "{r}"
    );
}

/// The sandboxes' policy's denial beyond Docker 20.10's default profile, on both engines
/// (the Docker engine passes the same policy): io_uring (a kernel interface with a long
/// record of exploits); and userfaultfd (a common exploit aid, which Docker's profile
/// denies too).
pub async fn io_uring_and_userfaultfd_are_refused(addr: SocketAddr) {
    let src = "import ctypes, errno, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        def res(r):\n    return 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), '?')\n\
        nr = {'x86_64': (425, 323), 'aarch64': (425, 282)}[platform.machine()]\n\
        print('io_uring_setup', res(libc.syscall(nr[0], 1, 0)))\n\
        print('userfaultfd', res(libc.syscall(nr[1], 0)))";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    assert_eq!(
        r["stdout"], "io_uring_setup EPERM\nuserfaultfd EPERM\n",
        "{r}"
    );
}

/// The kernel keeps some quotas per user (inotify instances: 128 here), and every
/// sandbox has a uid of its own: a task holding every inotify instance it can get leaves
/// a concurrent task of another user the five it asks for. (With one uid for all
/// sandboxes the second task got none on runc and Docker. That needs the host's
/// `fs.inotify.max_user_instances` below the sandbox's 256 descriptors, as Debian's
/// default is; gVisor keeps no such quota.)
pub async fn a_task_cannot_take_another_tasks_kernel_quota(addr: SocketAddr) {
    let hog = "import ctypes, errno, time\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        held = []\n\
        while len(held) < 1000:\n\
        \x20   fd = libc.inotify_init1(0)\n\
        \x20   if fd < 0:\n\
        \x20       break\n\
        \x20   held.append(fd)\n\
        print(len(held), errno.errorcode.get(ctypes.get_errno(), '?'), flush=True)\n\
        time.sleep(12)";
    let other = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        fds = [libc.inotify_init1(0) for _ in range(5)]\n\
        print(sum(1 for fd in fds if fd >= 0))";
    let (a, b) = (client(addr).await, client(addr).await);
    let hog_id = a
        .submit(&json!({"language": "python", "code": hog, "limits": {"time_ms": 20_000}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.status(&hog_id).await.unwrap()["status"] != "running" {
        assert!(Instant::now() < deadline, "the first task never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // It takes what it can within milliseconds of its start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = b.run(code("python", other)).await.unwrap();
    assert_eq!(
        a.status(&hog_id).await.unwrap()["status"],
        "running",
        "the first task still holds its instances"
    );
    assert_eq!(r["stdout"], "5\n", "the second task's own instances: {r}");
    let held = a.wait(&hog_id, Duration::from_secs(30)).await.unwrap();
    let line = held["stdout"].as_str().unwrap();
    let count: usize = line.split(' ').next().unwrap().parse().unwrap();
    assert!(count >= 5, "the first task held {line}");
}

/// The runner image's files are read-only, `nosuid` and `nodev` in the sandbox: neither a
/// set-uid bit nor a device node in the image takes effect. Each of the image's
/// directories is looked up on the mount that holds it (runc: the root, bound with the
/// host mount's flags; crun: a bind of its own, crun's root keeping none of them), and the
/// root itself is read-only and holds nothing but directories and symbolic links.
pub async fn the_root_is_nosuid_and_nodev(addr: SocketAddr) {
    let src = "import os\n\
        mounts = {}\n\
        for line in open('/proc/self/mountinfo'):\n\
        \x20   f = line.split()\n\
        \x20   mounts[f[4]] = set(f[5].split(','))\n\
        def flags(path):\n\
        \x20   at = max((m for m in mounts if path == m or path.startswith(m.rstrip('/') + '/')), key=len)\n\
        \x20   return sorted(mounts[at] & {'ro', 'nosuid', 'nodev'})\n\
        for path in ['/usr/bin', '/usr/lib', '/etc', '/opt', '/var', '/root']:\n\
        \x20   print(path, flags(path))\n\
        print('/', 'ro' in mounts['/'], [n for n in os.listdir('/') if not (os.path.islink('/' + n) or os.path.isdir('/' + n))])";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    let all = "['nodev', 'nosuid', 'ro']";
    let expected: String = ["/usr/bin", "/usr/lib", "/etc", "/opt", "/var", "/root"]
        .iter()
        .map(|p| format!("{p} {all}\n"))
        .chain(["/ True []\n".to_owned()])
        .collect();
    assert_eq!(r["stdout"], expected.as_str(), "{r}");
}

pub async fn only_tmp_is_writable_and_the_user_is_not_root(addr: SocketAddr) {
    let src = "import os\nprint(os.getuid(), os.geteuid())\ntry:\n    open('/etc/owned', 'w')\n    print('wrote /etc')\nexcept OSError as e:\n    print('refused', e.errno)\nopen('/tmp/ok', 'w').write('fine')\nprint(open('/tmp/ok').read())";
    let r = client(addr).await.run(code("python", src)).await.unwrap();
    let out = r["stdout"].as_str().unwrap();
    let mut lines = out.lines();
    let ids = lines.next().unwrap();
    assert!(
        !ids.starts_with("0 ") && !ids.ends_with(" 0"),
        "runs as non-root: {ids}"
    );
    assert!(lines.next().unwrap().starts_with("refused"), "{out}");
    assert_eq!(lines.next(), Some("fine"));
}

pub async fn the_workers_environment_is_not_visible(addr: SocketAddr) {
    let r = client(addr)
        .await
        .run(code("python", "import os\nprint(sorted(os.environ))"))
        .await
        .unwrap();
    let out = r["stdout"].as_str().unwrap();
    for secret in ["JWT_SECRET", "WORKER_TOKEN", "CARGO", "RUST"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
}

/// The sandbox's first process (the agent) killed by SIGKILL mid-run — what the memory
/// limit does when a program's memory is not its own process's (files in `/tmp`) — gives
/// the task its own verdict on every engine, once: `memory_limit`, never a platform
/// failure retried (a rerun would end `accepted`, its sleep over, or `failed`). The
/// Docker engine learns how its auto-removed container ended from its events.
pub async fn a_sandbox_killed_mid_run_ends_its_task_once(addr: SocketAddr) {
    let c = client(addr).await;
    let src = "import time\nprint('up', flush=True)\ntime.sleep(15)";
    let id = c
        .submit(&json!({"language": "python", "code": src, "limits": {"time_ms": 20_000}}))
        .await
        .unwrap();
    let pid = sandbox_once_it_prints(&c, &id).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    let r = c.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(r["verdict"], "memory_limit", "{r}");
    assert_eq!(r["signal"], "SIGKILL", "{r}");
    assert_eq!(r["stdout"], "up\n", "its output so far is kept: {r}");
}

/// On gVisor the program's `/proc` is the Sentry's, which shows `oom_score_adj` 0: what
/// the host's kernel weighs is the sandbox's process on the host, and that is the kernel's
/// first victim under host memory pressure, as a program is on the other engines.
pub async fn the_sandbox_is_the_first_the_hosts_kernel_kills(addr: SocketAddr) {
    let c = client(addr).await;
    let src = "import time\nprint('up', flush=True)\ntime.sleep(10)";
    let id = c
        .submit(&json!({"language": "python", "code": src, "limits": {"time_ms": 15_000}}))
        .await
        .unwrap();
    let pid = sandbox_once_it_prints(&c, &id).await;
    let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(adj.trim(), "1000", "the sandbox's process on the host");
    assert_eq!(c.cancel(&id).await.status(), 204);
}

/// The host pid of the first process of the one sandbox running task `id`, once its
/// program has printed its first line (so the program runs). The sandbox is named for
/// the task a moment after it starts, off the step's path.
async fn sandbox_once_it_prints(c: &crate::Client, id: &str) -> u32 {
    let mut events = c.open_events(id).await.unwrap();
    let printed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await.unwrap() {
            if event.name == "stdout" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(printed.ok(), Some(true), "the program never printed");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let pids = crate::sandbox_agent_pids_of(id).unwrap();
        if !pids.is_empty() || Instant::now() > deadline {
            break pids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pids.len(), 1, "one sandbox runs the task: {pids:?}");
    pids[0]
}
