//! The wire format between the worker and the sandbox agent.
//!
//! The worker writes one job on the agent's stdin: `MAGIC`, a little-endian `u32` length,
//! the JSON `Job`, then every file's bytes in order, then the program's stdin. The agent
//! answers on its stdout with frames: a tag byte, a little-endian `u32` length, a payload.
//! The program's output only ever travels inside `Stdout`/`Stderr` frames, so nothing it
//! writes to its own stdout or stderr can pass for a frame of the agent's.
//!
//! The final report is also authenticated: it ends with an HMAC-SHA256 under a key the
//! worker puts in the job, and counts the output bytes the agent forwarded. A program that
//! reaches the agent's stdout some other way (gVisor lets it open `/proc/1/fd/1` although
//! the agent is non-dumpable) cannot forge a report, and bytes it slips in show as a count
//! that does not match.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Where the runner image keeps the agent.
pub const AGENT_PATH: &str = "/usr/local/bin/codebox-agent";
/// The image label that names the protocol its agent speaks.
pub const PROTOCOL_LABEL: &str = "codebox.agent.protocol";
/// 4: file names may name directories inside the job's (`lib/helper.py`), and a job holds
/// up to 128 files (a program and the 64 files of its task).
pub const PROTOCOL: &str = "4";
pub const MAGIC: &[u8; 4] = b"CBX1";
/// Bounds on what either side accepts.
pub const MAX_HEADER: usize = 1024 * 1024;
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
pub const MAX_FILES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The key the report is authenticated with (hex, 32 bytes); fresh for every job.
    pub key: String,
    /// The directory the files go to and the program starts in (made by the agent).
    pub dir: String,
    pub files: Vec<FileSpec>,
    /// Bytes of the program's stdin, after the files.
    pub stdin_size: u64,
    /// The program and its arguments; `argv[0]` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// Wall-clock limit from the program's start; the agent kills everything at it.
    pub wall_ms: u64,
    pub stdout: Cap,
    pub stderr: Cap,
    /// `RLIMIT_NPROC` for the agent and the program together, where the container's pids
    /// limit cannot bound the program (gVisor: there it bounds the Sentry's host threads).
    #[serde(default)]
    pub nproc: Option<u64>,
    /// `RLIMIT_STACK` of the program (its main thread's stack); the container's when absent.
    #[serde(default)]
    pub stack_bytes: Option<u64>,
    /// CPU time of every process of the run together (the container's cgroup), past which
    /// the agent kills them all and the run's stop is `TimeLimit`; `wall_ms` alone when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub name: String,
    pub mode: u32,
    pub size: u64,
}

/// How much of one output stream is kept, and whether going over stops the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub bytes: u64,
    pub kill: bool,
}

/// Why the program stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// By itself: an exit code or a signal it did not get from the agent.
    Exited,
    TimeLimit,
    OutputLimit,
}

/// The facts of one run, measured by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub stop: Stop,
    /// The exit code when the program exited.
    pub exit_code: Option<i32>,
    /// The signal number when the program was killed by one.
    pub signal: Option<i32>,
    /// From the program's start to its end.
    pub wall_us: u64,
    /// User + system time of the program and every process it started.
    pub cpu_us: u64,
    /// Peak resident memory of the largest of those processes (KiB).
    pub memory_kb: u64,
    /// Whether an output stream went over its cap.
    pub truncated: bool,
    /// Bytes forwarded in `Stdout` and `Stderr` frames.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Whether the memory cgroup killed a process during the run; `None` where the agent
    /// cannot read the cgroup's counters.
    pub oom_killed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The program is about to start.
    Started,
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The program and everything it left behind are gone: the last frame of a job.
    Exit(Report),
    /// The agent could not run the job (a malformed job, a file it could not write).
    Failed(String),
}

const STARTED: u8 = b'S';
const STDOUT: u8 = b'O';
const STDERR: u8 = b'E';
const EXIT: u8 = b'X';
const FAILED: u8 = b'!';

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

const MAC_LEN: usize = 32;

/// A job's report key, from its hex form.
pub fn parse_key(hex: &str) -> Result<[u8; 32], ProtocolError> {
    let bad = || ProtocolError("the job's key is not 64 hex digits".into());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(key)
}

pub fn key_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac_of(key: &[u8; 32], payload: &[u8]) -> Hmac<Sha256> {
    // An HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(payload);
    mac
}

impl Frame {
    /// The frame on the wire; a report is authenticated with `key`.
    pub fn encode(&self, key: &[u8; 32]) -> Vec<u8> {
        let (tag, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Started => (STARTED, (&[][..]).into()),
            Frame::Stdout(b) => (STDOUT, b.as_slice().into()),
            Frame::Stderr(b) => (STDERR, b.as_slice().into()),
            Frame::Exit(r) => {
                let mut body = serde_json::to_vec(r).unwrap_or_default();
                let mac = mac_of(key, &body).finalize().into_bytes();
                body.extend_from_slice(&mac);
                (EXIT, body.into())
            }
            Frame::Failed(m) => (FAILED, m.as_bytes().into()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Splits the agent's stdout into frames, whatever chunks it arrives in, and checks the
/// report's authentication.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    key: [u8; 32],
}

impl Decoder {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            buf: Vec::new(),
            key,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError(format!("a frame of {len} bytes")));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let tag = self.buf[0];
        let payload: Vec<u8> = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        let frame = match tag {
            STARTED => Frame::Started,
            STDOUT => Frame::Stdout(payload),
            STDERR => Frame::Stderr(payload),
            EXIT => {
                let at = payload
                    .len()
                    .checked_sub(MAC_LEN)
                    .ok_or_else(|| ProtocolError("a report without authentication".into()))?;
                let (body, mac) = payload.split_at(at);
                mac_of(&self.key, body)
                    .verify_slice(mac)
                    .map_err(|_| ProtocolError("a report that fails authentication".into()))?;
                Frame::Exit(
                    serde_json::from_slice(body)
                        .map_err(|e| ProtocolError(format!("an unreadable report: {e}")))?,
                )
            }
            FAILED => Frame::Failed(String::from_utf8_lossy(&payload).into_owned()),
            other => return Err(ProtocolError(format!("an unknown frame tag {other:#04x}"))),
        };
        Ok(Some(frame))
    }

    /// Bytes received that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The bytes the worker writes to the agent's stdin for `job`; `files` in the order of
/// `job.files` (their sizes are taken from the slices).
pub fn encode_job(job: &Job, files: &[&[u8]], stdin: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if files.len() != job.files.len() {
        return Err(ProtocolError(
            "file specs and contents differ in number".into(),
        ));
    }
    let mut job = job.clone();
    for (spec, bytes) in job.files.iter_mut().zip(files) {
        spec.size = bytes.len() as u64;
    }
    job.stdin_size = stdin.len() as u64;
    let header =
        serde_json::to_vec(&job).map_err(|e| ProtocolError(format!("encoding the job: {e}")))?;
    if header.len() > MAX_HEADER {
        return Err(ProtocolError("the job header is too large".into()));
    }
    let total = files.iter().map(|f| f.len()).sum::<usize>() + stdin.len();
    let mut out = Vec::with_capacity(8 + header.len() + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for f in files {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(stdin);
    Ok(out)
}

/// Reads and checks a job's header (the agent's side); the contents follow on `input`.
pub fn read_job(input: &mut impl std::io::Read) -> Result<Job, ProtocolError> {
    let io = |e: std::io::Error| ProtocolError(format!("reading the job: {e}"));
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(ProtocolError(
            "not a codebox job (wrong magic; is the worker speaking another protocol?)".into(),
        ));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(io)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_HEADER {
        return Err(ProtocolError(format!("a job header of {len} bytes")));
    }
    let mut header = vec![0u8; len];
    input.read_exact(&mut header).map_err(io)?;
    let job: Job = serde_json::from_slice(&header)
        .map_err(|e| ProtocolError(format!("an unreadable job: {e}")))?;
    check(&job)?;
    Ok(job)
}

fn check(job: &Job) -> Result<(), ProtocolError> {
    parse_key(&job.key)?;
    if job.argv.is_empty() || job.argv[0].is_empty() {
        return Err(ProtocolError("the job has no command".into()));
    }
    if !job.dir.starts_with('/') {
        return Err(ProtocolError("the job's directory is not absolute".into()));
    }
    if job.files.len() > MAX_FILES {
        return Err(ProtocolError(format!("more than {MAX_FILES} files")));
    }
    for f in &job.files {
        // Names inside the job's directory: plain parts, `/`-separated.
        let parts_ok = f
            .name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
        if !parts_ok || f.name.contains('\0') {
            return Err(ProtocolError(format!("a bad file name {:?}", f.name)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn job() -> Job {
        Job {
            key: key_hex(&KEY),
            dir: "/tmp/box".into(),
            files: vec![FileSpec {
                name: "main.py".into(),
                mode: 0o644,
                size: 0,
            }],
            stdin_size: 0,
            argv: vec!["python3".into(), "main.py".into()],
            wall_ms: 1000,
            stdout: Cap {
                bytes: 10,
                kill: true,
            },
            stderr: Cap {
                bytes: 10,
                kill: false,
            },
            nproc: None,
            stack_bytes: None,
            cpu_ms: None,
        }
    }

    #[test]
    fn a_job_round_trips_with_its_contents() {
        let bytes = encode_job(&job(), &[b"print(1)"], b"in").unwrap();
        let mut input = std::io::Cursor::new(bytes);
        let read = read_job(&mut input).unwrap();
        assert_eq!(read.files[0].size, 8);
        assert_eq!(read.stdin_size, 2);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut input, &mut rest).unwrap();
        assert_eq!(rest, b"print(1)in");
    }

    #[test]
    fn bad_jobs_are_refused() {
        let mut j = job();
        j.files[0].name = "../etc/passwd".into();
        let bytes = encode_job(&j, &[b""], b"").unwrap();
        assert!(read_job(&mut std::io::Cursor::new(bytes)).is_err());
        for name in ["/etc/passwd", "lib/../../x", "a//b", "a/./b", "", "a/"] {
            let mut j = job();
            j.files[0].name = name.into();
            let bytes = encode_job(&j, &[b""], b"").unwrap();
            assert!(
                read_job(&mut std::io::Cursor::new(bytes)).is_err(),
                "{name:?}"
            );
        }
        let mut j = job();
        j.files[0].name = "lib/helper.py".into();
        let bytes = encode_job(&j, &[b""], b"").unwrap();
        assert!(read_job(&mut std::io::Cursor::new(bytes)).is_ok());
        let mut j = job();
        j.argv.clear();
        let bytes = encode_job(&j, &[b""], b"").unwrap();
        assert!(read_job(&mut std::io::Cursor::new(bytes)).is_err());
        assert!(read_job(&mut std::io::Cursor::new(b"GET / HTTP/1.1\r\n".to_vec())).is_err());
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_job(&mut std::io::Cursor::new(huge)).is_err());
    }

    #[test]
    fn frames_decode_from_any_split() {
        let report = Report {
            stop: Stop::Exited,
            exit_code: Some(137),
            signal: None,
            wall_us: 1,
            cpu_us: 2,
            memory_kb: 3,
            truncated: false,
            stdout_bytes: 10,
            stderr_bytes: 0,
            oom_killed: None,
        };
        let frames = vec![
            Frame::Started,
            Frame::Stdout(b"X\0\0\0\x05hello".to_vec()),
            Frame::Stderr(vec![]),
            Frame::Exit(report),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode(&KEY)).collect();
        for split in [1, 3, 7, wire.len()] {
            let mut d = Decoder::new(KEY);
            let mut got = Vec::new();
            for chunk in wire.chunks(split) {
                d.push(chunk);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames);
            assert_eq!(d.pending(), 0);
        }
        let mut d = Decoder::new(KEY);
        d.push(&[b'?', 0, 0, 0, 0]);
        assert!(d.next_frame().is_err());
        let mut d = Decoder::new(KEY);
        d.push(&[b'O', 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().is_err(), "an oversized frame is refused");
    }

    #[test]
    fn a_report_under_another_key_is_refused() {
        let report = Frame::Exit(Report {
            stop: Stop::Exited,
            exit_code: Some(0),
            signal: None,
            wall_us: 1,
            cpu_us: 1,
            memory_kb: 1,
            truncated: false,
            stdout_bytes: 0,
            stderr_bytes: 0,
            oom_killed: None,
        });
        let mut d = Decoder::new(KEY);
        d.push(&report.encode(&[8; 32]));
        assert!(d.next_frame().is_err());
        let mut d = Decoder::new(KEY);
        let mut wire = report.encode(&KEY);
        let last = wire.len() - 40;
        wire[last] ^= 1; // one bit of the report changed
        d.push(&wire);
        assert!(d.next_frame().is_err());
        assert!(parse_key("00").is_err() && parse_key(&"zz".repeat(32)).is_err());
    }
}
