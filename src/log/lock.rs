//! The single-writer lock: an OS `flock`, so a writer killed with -9 never
//! leaves a stale lock. The holder's pid and command line are written into
//! the file only so that a waiting writer can say who holds it.
//!
//! A writer waits for the lock up to a bound instead of failing at once: a
//! policy check or an approval that arrives while a long `append` runs
//! should wait its turn, but never hang. The file's text is hostile input
//! (anyone who can write the directory can write it), so it is read capped
//! and printed without control characters.
use crate::error::{Error, IoContext, Result};
use crate::log::safe_fs;
use crate::log::storage::{self, LockFile, Storage};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a writer waits for another's lock unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Longest holder line read back from `LOCK` (and written into it).
pub const HOLDER_TEXT_MAX: usize = 256;
/// Poll interval while waiting: short enough that a released lock is taken
/// promptly, long enough not to spin.
const POLL: Duration = Duration::from_millis(25);

pub struct WriterLock {
    _file: Box<dyn LockFile>,
}

impl WriterLock {
    /// Takes the writer lock of `dir`, waiting up to `wait` for another
    /// holder to let go. `operation` ("append", "approve", ...) names what
    /// this process wanted to do, for the error if it gives up.
    pub fn acquire(dir: &Path, operation: &str, wait: Duration) -> Result<Self> {
        Self::acquire_on(&*storage::real(), dir, operation, wait)
    }

    /// `acquire` through `s` (the writer takes its lock so).
    pub fn acquire_on(
        s: &dyn Storage,
        dir: &Path,
        operation: &str,
        wait: Duration,
    ) -> Result<Self> {
        let path = dir.join("LOCK");
        let file = s.open_lock(&path)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(true) => break,
                Ok(false) => {
                    let waited = start.elapsed();
                    if waited >= wait {
                        let holder = read_holder(&*file);
                        return Err(Error::Locked {
                            dir: dir.into(),
                            operation: operation.to_string(),
                            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                            holder_pid: holder_pid(&holder),
                            holder,
                        });
                    }
                    std::thread::sleep(POLL.min(wait - waited));
                }
                Err(e) => return Err(e).at(&path),
            }
        }
        let args = std::env::args().collect::<Vec<_>>().join(" ");
        let me = safe_fs::printable(
            format!("pid {} ({args})", std::process::id()).as_bytes(),
            HOLDER_TEXT_MAX,
        );
        file.replace_text(me.as_bytes()).at(&path)?;
        Ok(Self { _file: file })
    }
}

/// The holder's line, capped and printable; empty if unreadable.
fn read_holder(file: &dyn LockFile) -> String {
    safe_fs::printable(&file.read_text(HOLDER_TEXT_MAX), HOLDER_TEXT_MAX)
}

/// The pid in a holder line written by `acquire` ("pid 4242 (...)").
fn holder_pid(holder: &str) -> Option<u32> {
    holder.strip_prefix("pid ")?.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_pid_reads_only_well_formed_lines() {
        assert_eq!(holder_pid("pid 4242 (argusctl append ./a)"), Some(4242));
        assert_eq!(holder_pid("pid 7"), Some(7));
        assert_eq!(holder_pid("pid x (y)"), None);
        assert_eq!(holder_pid(""), None);
    }
}
