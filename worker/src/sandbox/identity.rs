//! A distinct identity (uid = gid) for every live sandbox, from a range reserved for
//! codebox, as IOI's isolate gives each box its own uid.
//!
//! The kernel keeps several quotas per user, not per container: inotify instances and
//! watches, pipe buffer pages, POSIX message queue bytes, pending signals, `RLIMIT_NPROC`.
//! Sandboxes sharing one uid (in the host's user namespace) share each of them, so one
//! tenant holding every inotify instance leaves another none. With an identity each, a
//! program can only exhaust its own. An identity goes back to the range only once its
//! sandbox is gone (its processes ended), and nothing the program wrote outlives the
//! sandbox (its only writable places are its own tmpfs mounts), so the next sandbox that
//! takes it inherits nothing.
//!
//! Workers sharing a host never hand out the same id: each claims a block of 4 096 ids of
//! the range that no other process on the host holds, by locking the block's file in
//! `/run/codebox-uids` for as long as it runs (the kernel drops the lock when the process
//! ends, however it ends). A worker in a container sees the host's claims when that
//! directory is mounted from the host (the compose file and the AWS task do); otherwise
//! give each one a range of its own (`CODEBOX_SANDBOX_UIDS`). A worker whose blocks are
//! all in use (ids kept for good by sandboxes that could not be confirmed gone add up over
//! a long life) claims another block, as it claimed the first.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use codebox_core::Error;
use codebox_core::config::{self, ConfigError};

/// The default range: 65 536 ids far above any distribution's users and the usual
/// subordinate ranges (`/etc/subuid` starts at 100 000).
pub const DEFAULT_RANGE: RangeInclusive<u32> = 2_000_000..=2_065_535;
/// Fewer ids than this cannot serve a worker's slots and warm pool.
const MIN_IDS: u32 = 1024;
/// The ids a worker claims on a host (16 workers per host on the default range): room for
/// the ids kept for good when a sandbox could not be confirmed gone.
const BLOCK: u32 = 4096;

/// Where the workers of this host lock the blocks they claim (host-wide, unlike
/// `CODEBOX_RUN_DIR`: uids are the host's).
pub const LOCK_DIR: &str = "/run/codebox-uids";

/// Why a claim failed.
#[derive(Debug)]
pub enum ClaimError {
    /// The lock directory cannot be used (not root, say): another may.
    Io(String),
    /// Every block is held by another worker.
    Full(String),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Io(m) | ClaimError::Full(m) => f.write_str(m),
        }
    }
}

/// The ids a worker gives its sandboxes, each to one live sandbox at a time.
pub struct Identities {
    /// The ids this worker may hand out, or claim blocks of.
    range: RangeInclusive<u32>,
    /// Where further blocks are claimed once those held are used up (ids kept for good by
    /// sandboxes that could not be confirmed gone fill a block over a long life); none for
    /// a range used whole (not claimed).
    claims: Option<PathBuf>,
    state: Mutex<Vec<Block>>,
}

/// A run of ids handed out in turn: an id just given back is the last of its block to be
/// given again.
struct Block {
    ids: RangeInclusive<u32>,
    next: u32,
    taken: HashSet<u32>,
    /// The locked file of a claimed block (see [`Identities::claim`]).
    _lock: Option<File>,
}

impl Block {
    /// Starts its turn at a place of its own: workers that cannot see each other's claims
    /// (no shared `/run`) then rarely meet.
    fn new(ids: RangeInclusive<u32>, lock: Option<File>) -> Self {
        let span = ids.end() - ids.start() + 1;
        let offset = (uuid::Uuid::new_v4().as_u128() % u128::from(span.max(1))) as u32;
        Self {
            next: ids.start() + offset,
            ids,
            taken: HashSet::new(),
            _lock: lock,
        }
    }

    fn is_full(&self) -> bool {
        self.taken.len() as u64 > u64::from(self.ids.end() - self.ids.start())
    }

    fn take(&mut self) -> u32 {
        let (first, last) = (*self.ids.start(), *self.ids.end());
        let mut id = self.next;
        while self.taken.contains(&id) {
            id = if id == last { first } else { id + 1 };
        }
        self.taken.insert(id);
        self.next = if id == last { first } else { id + 1 };
        id
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identities({:?})", self.range)
    }
}

impl Identities {
    /// A range used whole, that starts its turn at a place of its own, so two workers
    /// sharing a host (each should have a range of its own: `CODEBOX_SANDBOX_UIDS`)
    /// rarely meet.
    pub fn new(range: RangeInclusive<u32>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(vec![Block::new(range.clone(), None)]),
            range,
            claims: None,
        })
    }

    /// A block of this range (4 096 ids, or the whole range when smaller) that no other
    /// worker on this host holds, held as long as the returned identities live; another
    /// such block is claimed whenever those held are all in use.
    pub fn claim(&self, dir: &Path) -> Result<Arc<Self>, ClaimError> {
        let first = claim_block(&self.range, dir)?;
        Ok(Arc::new(Self {
            range: self.range.clone(),
            claims: Some(dir.to_owned()),
            state: Mutex::new(vec![first]),
        }))
    }

    /// The blocks it hands out ids of.
    pub fn blocks(&self) -> Vec<RangeInclusive<u32>> {
        self.state
            .lock()
            .map(|blocks| blocks.iter().map(|b| b.ids.clone()).collect())
            .unwrap_or_default()
    }

    /// `CODEBOX_SANDBOX_UIDS` (`first-last`, default 2000000-2065535): ids of no user of
    /// the host (65 536 and above), at least 1 024 of them. Workers sharing a host take
    /// ranges of their own.
    pub fn from_env() -> Result<Arc<Self>, ConfigError> {
        const VAR: &str = "CODEBOX_SANDBOX_UIDS";
        match config::var(VAR) {
            None => Ok(Self::new(DEFAULT_RANGE)),
            Some(v) => parse_range(&v)
                .map(Self::new)
                .map_err(|problem| ConfigError {
                    var: VAR.to_owned(),
                    problem: format!("{problem} (e.g. 2000000-2065535)"),
                }),
        }
    }

    /// An id no other live sandbox of this worker has, from the newest block with one
    /// free; when every block held is in use, from a block claimed now.
    pub fn take(self: &Arc<Self>) -> Result<Identity, Error> {
        let mut blocks = self
            .state
            .lock()
            .map_err(|_| Error::Unavailable("the sandbox identities' lock is poisoned".into()))?;
        if let Some(block) = blocks.iter_mut().rev().find(|b| !b.is_full()) {
            return Ok(self.identity(block.take()));
        }
        let Some(dir) = &self.claims else {
            return Err(Error::Unavailable(
                "every sandbox identity of this worker is in use".into(),
            ));
        };
        let mut block = claim_block(&self.range, dir).map_err(|e| {
            Error::Unavailable(format!(
                "every sandbox identity of this worker is in use, and no other can be claimed: {e}"
            ))
        })?;
        tracing::warn!(
            uids = ?block.ids,
            held = blocks.len(),
            "every sandbox uid of this worker's blocks is in use (some kept for good by sandboxes not confirmed gone): claimed another block"
        );
        let id = block.take();
        blocks.push(block);
        Ok(self.identity(id))
    }

    fn identity(self: &Arc<Self>, id: u32) -> Identity {
        Identity {
            id,
            owner: self.clone(),
        }
    }

    fn give_back(&self, id: u32) {
        if let Ok(mut blocks) = self.state.lock()
            && let Some(block) = blocks.iter_mut().find(|b| b.ids.contains(&id))
        {
            block.taken.remove(&id);
        }
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.state
            .lock()
            .map(|blocks| blocks.iter().map(|b| b.taken.len()).sum())
            .unwrap_or(0)
    }
}

/// A block of `range` (4 096 ids, or the whole range when smaller) that no process on this
/// host holds: the first whose lock file in `dir` this process can lock (flock: a block
/// this very process holds is refused too), looking from a block of its own choosing (a
/// worker started again does not take the block of the one before, whose last sandboxes
/// the reaper may not have ended yet). The kernel drops the lock when the process ends,
/// however it ends.
fn claim_block(range: &RangeInclusive<u32>, dir: &Path) -> Result<Block, ClaimError> {
    let failed = |e: std::io::Error| {
        ClaimError::Io(format!("claiming sandbox uids in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let (first, last) = (*range.start(), *range.end());
    let block = BLOCK.min(last - first + 1);
    let blocks = (last - first + 1) / block;
    let from = (uuid::Uuid::new_v4().as_u128() % u128::from(blocks)) as u32;
    for n in (0..blocks).map(|i| (from + i) % blocks) {
        let start = first + n * block;
        let end = start + block - 1;
        let path = dir.join(format!("{start}-{end}.lock"));
        // Locking works on a file opened for reading too: one a root worker made.
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                File::open(&path).map_err(failed)?
            }
            opened => opened.map_err(failed)?,
        };
        match file.try_lock() {
            Ok(()) => return Ok(Block::new(start..=end, Some(file))),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
    Err(ClaimError::Full(format!(
        "every block of {block} uids of {first}-{last} is held by a worker on this host; give this worker a range of its own (CODEBOX_SANDBOX_UIDS)"
    )))
}

fn parse_range(v: &str) -> Result<RangeInclusive<u32>, String> {
    let (first, last) = v
        .trim()
        .split_once('-')
        .ok_or_else(|| format!("{v:?} is not a range first-last"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not a uid"))
    };
    let (first, last) = (number(first)?, number(last)?);
    // Below 65 536 are the host's own users (Debian's run to 59 999) and `nobody`.
    if first < 65_536 {
        return Err(format!(
            "{first} may be one of the host's users; start at 65536 or above"
        ));
    }
    // 4294967295 is (uid_t)-1, which means "no change" to the kernel.
    if last == u32::MAX {
        return Err("4294967295 is not a valid uid".into());
    }
    if last < first || last - first + 1 < MIN_IDS {
        return Err(format!("{first}-{last} holds fewer than {MIN_IDS} ids"));
    }
    if (first..=last).contains(&65534) {
        return Err("the range holds 65534 (nobody), which the host's own processes use".into());
    }
    Ok(first..=last)
}

/// A sandbox's uid and gid, given back when dropped (after its sandbox is gone).
pub struct Identity {
    id: u32,
    owner: Arc<Identities>,
}

impl Identity {
    pub fn uid(&self) -> u32 {
        self.id
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.id)
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.owner.give_back(self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn live_sandboxes_never_share_an_id() {
        let ids = Identities::new(70_000..=71_023);
        let held: Vec<Identity> = (0..1024).map(|_| ids.take().unwrap()).collect();
        let distinct: HashSet<u32> = held.iter().map(Identity::uid).collect();
        assert_eq!(distinct.len(), 1024);
        assert!(distinct.iter().all(|id| (70_000..=71_023).contains(id)));
        assert!(
            matches!(ids.take(), Err(Error::Unavailable(_))),
            "a full range refuses"
        );
        let first = held[0].uid();
        drop(held);
        assert_eq!(ids.in_use(), 0, "every id went back");
        // Handed out in turn: after a whole turn of the range, the first comes again.
        assert_eq!(ids.take().unwrap().uid(), first);
    }

    #[test]
    fn an_id_given_back_is_the_last_to_be_given_again() {
        let ids = Identities::new(70_000..=71_023);
        let first = ids.take().unwrap().uid();
        for _ in 0..1022 {
            assert_ne!(ids.take().unwrap().uid(), first);
        }
    }

    /// Two workers (two claims, as two processes make them) get blocks of their own; a
    /// block is free again once its holder is gone, and a range with no free block says so.
    #[test]
    fn workers_on_one_host_claim_blocks_of_their_own() {
        let dir = std::env::temp_dir().join(format!("codebox-uids-{}", uuid::Uuid::new_v4()));
        let range = Identities::new(70_000..=78_191);
        let a = range.claim(&dir).unwrap();
        let b = range.claim(&dir).unwrap();
        let blocks = [70_000..=74_095, 74_096..=78_191];
        assert!(blocks.contains(&a.blocks()[0]) && blocks.contains(&b.blocks()[0]));
        assert_ne!(a.blocks(), b.blocks());
        let refused = range.claim(&dir).err().unwrap();
        assert!(
            matches!(&refused, ClaimError::Full(m) if m.contains("CODEBOX_SANDBOX_UIDS")),
            "{refused}"
        );
        let freed = a.blocks();
        drop(a);
        assert_eq!(range.claim(&dir).unwrap().blocks(), freed);
        // A range smaller than a block is one block.
        let small = Identities::new(80_000..=81_023).claim(&dir).unwrap();
        assert_eq!(small.blocks(), [80_000..=81_023]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ids kept for good (their sandboxes not confirmed gone) fill a block over a long
    /// life: the worker then claims another block rather than refusing every task, and
    /// says so clearly once the range has none left.
    #[test]
    fn a_worker_whose_block_is_used_up_claims_another() {
        let dir = std::env::temp_dir().join(format!("codebox-uids-{}", uuid::Uuid::new_v4()));
        let range = Identities::new(70_000..=78_191);
        let ids = range.claim(&dir).unwrap();
        let first = ids.blocks()[0].clone();
        let kept = ids.take().unwrap();
        for _ in 1..4096 {
            std::mem::forget(ids.take().unwrap());
        }
        let next = ids.take().unwrap();
        assert!(
            !first.contains(&next.uid()),
            "{} is of the used-up block",
            next.uid()
        );
        assert_eq!(ids.blocks().len(), 2);
        assert!(ids.blocks()[1].contains(&next.uid()));
        // The second block is this worker's: no other worker on the host gets it.
        assert!(matches!(range.claim(&dir), Err(ClaimError::Full(_))));
        // An id of the first block given back waits while the newer block has free ones.
        let back = kept.uid();
        drop(kept);
        std::mem::forget(next);
        for _ in 1..4096 {
            let id = ids.take().unwrap();
            assert!(!first.contains(&id.uid()));
            std::mem::forget(id);
        }
        let last = ids.take().unwrap();
        assert_eq!(last.uid(), back);
        std::mem::forget(last);
        let refused = ids.take().err().unwrap();
        assert!(
            matches!(&refused, Error::Unavailable(m) if m.contains("no other can be claimed") && m.contains("CODEBOX_SANDBOX_UIDS")),
            "{refused:?}"
        );
        assert_eq!(ids.in_use(), 8192);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_range_is_checked() {
        assert_eq!(parse_range("2000000-2065535"), Ok(2_000_000..=2_065_535));
        for bad in [
            "",
            "2000000",
            "a-b",
            "0-70000",
            "999-5000",
            "1000-70000",
            "60000-70000",
            "3000000-3000010",
            "3000000-2000000",
            "4294960000-4294967295",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
