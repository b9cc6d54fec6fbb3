//! codebox-agent: the first process (PID 1) of every sandbox container.
//!
//! It reads one job from stdin (see the library for the format), places the files, and
//! runs the program with stdout and stderr on pipes it owns, forwarding every byte inside
//! a frame. When the program ends it kills whatever the program left behind, reaps it,
//! and reports the exact facts: exit code or signal, CPU time and peak memory of all the
//! program's processes (from the container's cgroup, which no program can shrink), wall
//! time from its start. It never runs a second job.
//!
//! It makes itself non-dumpable first: the program runs under the same uid, and would
//! otherwise be able to ptrace the agent or open `/proc/1/fd/1` to forge frames.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use codebox_agent::{Cap, Frame, Job, ProtocolError, Report, Stop, parse_key, read_job};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::{Resource, UsageWho, getrusage, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

const CHUNK: usize = 64 * 1024;

/// How often the run's CPU time is read while a CPU limit applies.
const CPU_POLL: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let mut out = io::stdout().lock();
    // No `?` before this: nothing else runs while the agent is dumpable.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        return fail(
            &mut out,
            &format!("cannot make the agent non-dumpable: {e}"),
        );
    }
    // Orphans of the program come to the agent even when it is not PID 1 (tests).
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut input = io::BufReader::new(io::stdin().lock());
    // A warm container whose worker went away before giving it a job: stdin ends at
    // once, and the agent leaves quietly (the engine then removes the container).
    match io::BufRead::fill_buf(&mut input) {
        Ok([]) => return ExitCode::SUCCESS,
        Ok(_) => {}
        Err(e) => return fail(&mut out, &format!("reading the job: {e}")),
    }
    let job = match read_job(&mut input) {
        Ok(job) => job,
        Err(e) => return fail(&mut out, &e.0),
    };
    let key = match parse_key(&job.key) {
        Ok(key) => key,
        Err(e) => return fail(&mut out, &e.0),
    };
    let mut out = Sender { out, key };
    let report = match run(&job, &mut input, &mut out) {
        Ok(report) => report,
        Err(e) => return fail(&mut out.out, &e.0),
    };
    if out.send(&Frame::Exit(report)).is_err() {
        return ExitCode::from(2);
    }
    // The worker removes the container once it has the report; until then stay, so no
    // output is cut off by the container ending first.
    let _ = io::copy(&mut input, &mut io::sink());
    ExitCode::SUCCESS
}

fn fail(out: &mut impl Write, message: &str) -> ExitCode {
    // No key to authenticate with yet, and a failure needs none: the worker gives up.
    let _ = out.write_all(&Frame::Failed(message.to_owned()).encode(&[0; 32]));
    let _ = out.flush();
    eprintln!("codebox-agent: {message}");
    ExitCode::from(2)
}

/// Writes frames to the worker, the report authenticated with the job's key.
struct Sender<W: Write> {
    out: W,
    key: [u8; 32],
}

impl<W: Write> Sender<W> {
    fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.out.write_all(&frame.encode(&self.key))?;
        self.out.flush()
    }
}

fn err(context: &str) -> impl Fn(io::Error) -> ProtocolError + '_ {
    move |e| ProtocolError(format!("{context}: {e}"))
}

/// Copies exactly `size` bytes of the job from `input` to a new file at `path`.
fn receive(
    input: &mut impl Read,
    path: &Path,
    size: u64,
    mode: u32,
) -> Result<File, ProtocolError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(path)
        .map_err(err("creating a file of the job"))?;
    let copied =
        io::copy(&mut input.take(size), &mut file).map_err(err("writing a file of the job"))?;
    if copied != size {
        return Err(ProtocolError(format!(
            "the job ended after {copied} of {size} bytes of a file"
        )));
    }
    // The mode asked for, whatever the umask.
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777))
        .map_err(err("setting a file's mode"))?;
    Ok(file)
}

enum Stream {
    Out,
    Err,
}

enum Event {
    Chunk(Stream, Vec<u8>),
    /// A stream went over its cap; `kill` when that stops the program.
    OverCap {
        kill: bool,
    },
    Eof,
    /// The program ended (at the instant given).
    Program(WaitStatus, Instant),
    /// Another process was reaped.
    Other,
    /// No process is left.
    AllGone,
}

fn run<W: Write>(
    job: &Job,
    input: &mut impl Read,
    out: &mut Sender<W>,
) -> Result<Report, ProtocolError> {
    let dir = Path::new(&job.dir);
    fs::create_dir_all(dir).map_err(err("creating the job's directory"))?;
    for f in &job.files {
        let path = dir.join(&f.name);
        // A file in a directory of its own (`lib/helper.py`): the directory first. Nothing
        // of the program runs yet, so no link can be waiting on the way.
        if let Some(parent) = path.parent()
            && parent != dir
        {
            fs::create_dir_all(parent).map_err(err("creating a directory of the job"))?;
        }
        receive(input, &path, f.size, f.mode)?;
    }
    // The program's stdin: a file read from the start, unlinked before the program runs.
    let stdin_path = dir.join(".codebox-stdin");
    let mut stdin = receive(input, &stdin_path, job.stdin_size, 0o600)?;
    io::Seek::rewind(&mut stdin).map_err(err("rewinding stdin"))?;
    fs::remove_file(&stdin_path).map_err(err("unlinking stdin"))?;

    if let Some(n) = job.nproc {
        // Before the program and the agent's own threads exist; inherited by the program.
        setrlimit(Resource::RLIMIT_NPROC, n, n)
            .map_err(|e| ProtocolError(format!("setting the process limit: {e}")))?;
    }
    // Every thread the agent needs exists before the program starts: a program that
    // fills the pids limit at once cannot keep the agent from watching it.
    let (tx, rx) = mpsc::channel();
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| ProtocolError(format!("making the stdout pipe: {e}")))?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| ProtocolError(format!("making the stderr pipe: {e}")))?;
    let mut open_streams = 0;
    for (pipe, stream, cap) in [
        (out_read, Stream::Out, job.stdout),
        (err_read, Stream::Err, job.stderr),
    ] {
        open_streams += 1;
        let tx = tx.clone();
        thread::Builder::new()
            .spawn(move || forward(Box::new(File::from(pipe)), stream, cap, &tx))
            .map_err(err("starting an output thread"))?;
    }
    let (program_tx, program_rx) = mpsc::channel::<Pid>();
    {
        let tx = tx.clone();
        thread::Builder::new()
            .spawn(move || {
                if let Ok(pid) = program_rx.recv() {
                    reap(pid, &tx);
                }
            })
            .map_err(err("starting the reaper thread"))?;
    }
    drop(tx);
    // The stack limit is the run's own (deep recursion is a program's right up to it);
    // set last, for the program alone to inherit.
    if let Some(bytes) = job.stack_bytes {
        setrlimit(Resource::RLIMIT_STACK, bytes, bytes)
            .map_err(|e| ProtocolError(format!("setting the stack limit: {e}")))?;
    }
    let oom_before = oom_kills();
    let cpu_before = cgroup_cpu_us();
    // The run's CPU time is watched in the cgroup, which counts every process of it.
    let cpu_limit_us = job.cpu_ms.map(|ms| ms.saturating_mul(1000));
    let watch_cpu = cpu_limit_us.is_some();
    let mut command = Command::new(&job.argv[0]);
    command
        .args(&job.argv[1..])
        .current_dir(dir)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write))
        .process_group(0);
    out.send(&Frame::Started).map_err(err("writing a frame"))?;
    let started = Instant::now();
    let spawned = command.spawn();
    // The write ends live in the program alone now: its end is the streams' end.
    drop(command);
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            drop(program_tx);
            // As a shell would: the command cannot run, exit status 127.
            let message = format!("codebox: cannot run {}: {e}\n", job.argv[0]);
            let stderr_bytes = message.len() as u64;
            out.send(&Frame::Stderr(message.into_bytes()))
                .map_err(err("writing a frame"))?;
            return Ok(Report {
                stop: Stop::Exited,
                exit_code: Some(127),
                signal: None,
                wall_us: started.elapsed().as_micros() as u64,
                cpu_us: 0,
                memory_kb: 0,
                truncated: false,
                stdout_bytes: 0,
                stderr_bytes,
                oom_killed: None,
            });
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    program_tx
        .send(pid)
        .map_err(|_| ProtocolError("the reaper thread is gone".into()))?;

    let deadline = started + Duration::from_millis(job.wall_ms);
    let mut stop = Stop::Exited;
    let mut ended: Option<(WaitStatus, Instant)> = None;
    let mut all_gone = false;
    let mut truncated = false;
    let (mut stdout_bytes, mut stderr_bytes) = (0u64, 0u64);
    let mut next_check = started + CPU_POLL;
    while !(all_gone && open_streams == 0) {
        let wait = match ended {
            None if watch_cpu => deadline
                .min(next_check)
                .saturating_duration_since(Instant::now()),
            None => deadline.saturating_duration_since(Instant::now()),
            // Stragglers are being killed; look again now and then.
            Some(_) => Duration::from_millis(100),
        };
        match rx.recv_timeout(wait) {
            Ok(Event::Chunk(Stream::Out, bytes)) => {
                stdout_bytes += bytes.len() as u64;
                out.send(&Frame::Stdout(bytes))
                    .map_err(err("writing a frame"))?
            }
            Ok(Event::Chunk(Stream::Err, bytes)) => {
                stderr_bytes += bytes.len() as u64;
                out.send(&Frame::Stderr(bytes))
                    .map_err(err("writing a frame"))?
            }
            Ok(Event::OverCap { kill }) => {
                truncated = true;
                if kill && ended.is_none() && stop == Stop::Exited {
                    stop = Stop::OutputLimit;
                    kill_all(pid);
                }
            }
            Ok(Event::Eof) => open_streams -= 1,
            Ok(Event::Program(status, at)) => {
                ended = Some((status, at));
                kill_all(pid);
            }
            Ok(Event::Other) => {
                if ended.is_some() {
                    kill_all(pid);
                }
            }
            Ok(Event::AllGone) => all_gone = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Stragglers are killed until they are gone; a poll of the CPU time is
                // what follows the match.
                if ended.is_some() || Instant::now() >= deadline {
                    if ended.is_none() && stop == Stop::Exited {
                        stop = Stop::TimeLimit;
                    }
                    kill_all(pid);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // The wall and CPU limits however busy the channel is: a program writing a byte
        // every millisecond never lets a receive time out.
        let now = Instant::now();
        if ended.is_none() && stop == Stop::Exited {
            if now >= deadline {
                stop = Stop::TimeLimit;
                kill_all(pid);
            } else if watch_cpu && now >= next_check {
                next_check = now + CPU_POLL;
                let used = match (cpu_before, cgroup_cpu_us()) {
                    (Some(before), Some(now)) => now.saturating_sub(before),
                    // No cgroup of its own to read (gVisor): the run's processes.
                    _ => tree_cpu_us(pid),
                };
                if cpu_limit_us.is_some_and(|limit| used >= limit) {
                    stop = Stop::TimeLimit;
                    kill_all(pid);
                }
            }
        }
    }
    let (status, at) = ended.ok_or_else(|| ProtocolError("the program was never reaped".into()))?;
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (Some(code), None),
        WaitStatus::Signaled(_, signal, _) => (None, Some(signal as i32)),
        other => {
            return Err(ProtocolError(format!(
                "an unexpected wait status {other:?}"
            )));
        }
    };
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| ProtocolError(format!("reading the resource usage: {e}")))?;
    let micros = |t: nix::sys::time::TimeVal| {
        (t.tv_sec().max(0) as u64) * 1_000_000 + t.tv_usec().max(0) as u64
    };
    let oom_killed = match (oom_before, oom_kills()) {
        (Some(before), Some(after)) => Some(after > before),
        _ => None,
    };
    // The container's cgroup counts every process of the run, whatever became of it: a
    // child reaped by the kernel (SIGCHLD ignored) never reaches the agent's rusage, and
    // the program cannot shrink what the cgroup recorded. rusage stands in where the
    // cgroup is not readable, and as a floor.
    let rusage_cpu = micros(usage.user_time()) + micros(usage.system_time());
    let cpu_us = match (cpu_before, cgroup_cpu_us()) {
        (Some(before), Some(after)) => after.saturating_sub(before).max(rusage_cpu),
        _ => rusage_cpu,
    };
    // Over the CPU limit is a time limit however the run ended: killed by the agent's
    // watch, by the backstop's SIGXCPU, or by itself just past it.
    if stop == Stop::Exited && cpu_limit_us.is_some_and(|limit| cpu_us >= limit) {
        stop = Stop::TimeLimit;
    }
    let rusage_kb = usage.max_rss().max(0) as u64;
    let memory_kb = cgroup_peak_kb().map_or(rusage_kb, |peak| peak.max(rusage_kb));
    Ok(Report {
        stop,
        exit_code,
        signal,
        wall_us: at.duration_since(started).as_micros() as u64,
        cpu_us,
        memory_kb,
        truncated,
        stdout_bytes,
        stderr_bytes,
        oom_killed,
    })
}

/// Forwards one output stream up to its cap, then drains the rest so the program never
/// blocks on a full pipe.
fn forward(mut pipe: Box<dyn Read + Send>, stream: Stream, cap: Cap, tx: &mpsc::Sender<Event>) {
    let mut buf = vec![0u8; CHUNK];
    let mut seen: u64 = 0;
    let mut over = false;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let room = cap.bytes.saturating_sub(seen).min(n as u64) as usize;
        seen = seen.saturating_add(n as u64);
        if room > 0 {
            let chunk = buf[..room].to_vec();
            let event = match stream {
                Stream::Out => Event::Chunk(Stream::Out, chunk),
                Stream::Err => Event::Chunk(Stream::Err, chunk),
            };
            let _ = tx.send(event);
        }
        if room < n && !over {
            over = true;
            let _ = tx.send(Event::OverCap { kill: cap.kill });
        }
    }
    let _ = tx.send(Event::Eof);
}

/// Reaps every child (the program, and all it leaves behind, which come to the agent as
/// init or subreaper) until none is left.
fn reap(program: Pid, tx: &mpsc::Sender<Event>) {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(status) if status.pid() == Some(program) => {
                let _ = tx.send(Event::Program(status, Instant::now()));
            }
            Ok(_) => {
                let _ = tx.send(Event::Other);
            }
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Event::AllGone);
}

/// Kills every process but the agent: all of the container's PID namespace when the
/// agent is its init, else the program's process group.
fn kill_all(program: Pid) {
    if nix::unistd::getpid() == Pid::from_raw(1) {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    } else {
        let _ = kill(Pid::from_raw(-program.as_raw()), Signal::SIGKILL);
    }
}

/// Whether `/sys/fs/cgroup` is the run's own: the agent is the first process of its
/// container there (every engine starts it so). Run by hand on a host, as its tests run
/// it, the cgroup it would read is the host's, shared with everything else (a run once
/// "used" half a second of the host's CPU and 24 GB of its memory): then the facts come
/// from rusage alone.
fn own_cgroup() -> bool {
    std::process::id() == 1
}

/// How many processes the container's memory cgroup has killed (cgroup v2 or v1).
fn oom_kills() -> Option<u64> {
    if !own_cgroup() {
        return None;
    }
    for path in [
        "/sys/fs/cgroup/memory.events",
        "/sys/fs/cgroup/memory/memory.oom_control",
    ] {
        if let Ok(text) = fs::read_to_string(path) {
            let count = text.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            });
            if count.is_some() {
                return count;
            }
        }
    }
    None
}

/// CPU time of every process the container's cgroup has held, in µs (cgroup v2's
/// `cpu.stat`, or v1's `cpuacct.usage` in ns).
fn cgroup_cpu_us() -> Option<u64> {
    if !own_cgroup() {
        return None;
    }
    if let Ok(text) = fs::read_to_string("/sys/fs/cgroup/cpu.stat") {
        return text.lines().find_map(|l| {
            l.strip_prefix("usage_usec ")
                .and_then(|n| n.trim().parse().ok())
        });
    }
    [
        "/sys/fs/cgroup/cpuacct/cpuacct.usage",
        "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage",
    ]
    .iter()
    .find_map(|path| fs::read_to_string(path).ok())
    .and_then(|ns| ns.trim().parse::<u64>().ok())
    .map(|ns| ns / 1000)
}

/// `/proc`'s clock tick, fixed by the kernel's ABI (`USER_HZ`).
const USER_HZ: u64 = 100;

/// CPU time of the run's live processes and of the children they waited for, in µs, from
/// `/proc` (where no cgroup of the sandbox's own can be read), plus what the agent reaped:
/// as the sandbox's first process, every other process is the run's; run by hand, those of
/// the program's process group. A child that ended unwaited by anyone still escapes it
/// (gVisor only; the cgroup sees everything).
fn tree_cpu_us(program: Pid) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let everyone = own_cgroup();
    let mut ticks = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, pgrp, …, utime (14th
        // field of the line), stime, cutime, cstime.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        if !everyone && number(2) != Some(program.as_raw() as u64) {
            continue;
        }
        ticks += (11..=14).filter_map(number).sum::<u64>();
    }
    // Processes that ended and were reaped by the agent (the sandbox's orphans) are no
    // longer in /proc: theirs is in the agent's own children's usage.
    let reaped = getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| {
        let micros = |t: nix::sys::time::TimeVal| {
            (t.tv_sec().max(0) as u64) * 1_000_000 + t.tv_usec().max(0) as u64
        };
        micros(u.user_time()) + micros(u.system_time())
    });
    ticks * (1_000_000 / USER_HZ) + reaped
}

/// The container's memory high-water mark in KiB (cgroup v2's `memory.peak`, or v1's
/// `memory.max_usage_in_bytes`): what its processes and their files in `/tmp` held at
/// most at once.
fn cgroup_peak_kb() -> Option<u64> {
    if !own_cgroup() {
        return None;
    }
    [
        "/sys/fs/cgroup/memory.peak",
        "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
    ]
    .iter()
    .find_map(|path| fs::read_to_string(path).ok())
    .and_then(|bytes| bytes.trim().parse::<u64>().ok())
    .map(|bytes| bytes / 1024)
}
