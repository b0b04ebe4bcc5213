//! What the standard library cannot do for a child, and so the one place
//! besides `log::mmap` that uses `unsafe`: limits set between fork and exec,
//! and the child's own resource usage from `wait4`.
//!
//! Safety argument. `pre_exec` runs its closure in the forked child, where
//! only async-signal-safe calls are allowed: the closure here makes plain
//! system calls (`prctl`, `getppid`, `close`, `read`, `getrlimit`,
//! `setrlimit`) on values copied in before the fork and a stack buffer,
//! allocates nothing and takes no lock; its errors are raw OS errors (no
//! allocation either). `wait4` writes into
//! two locals that outlive the call.
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

/// What the kernel counted for the child and the descendants it waited for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu_ms: u64,
    /// Peak resident set size (`ru_maxrss`, KiB on Linux).
    pub peak_rss_kb: u64,
}

/// The child's side of the gate: the pipe it waits on before `exec`.
#[derive(Clone, Copy)]
pub struct Gate {
    /// Read end: one byte means run, end of file means give up.
    pub read_fd: RawFd,
    /// Write end, which the child closes so that the parent's is the last.
    pub write_fd: RawFd,
}

/// Sets up `cmd` so that the child
/// - dies with the thread that forked it (`SIGKILL`; that thread lives
///   until it has reaped the child), so no tool outlives its recorder;
/// - waits at `gate` before it `exec`s (forked early, while argusctl is
///   small, so that `ru_maxrss` measures the command and not a copy of
///   argusctl's memory; released once the call is recorded);
/// - with `cpu_s`, runs under `RLIMIT_CPU`: `SIGXCPU` at `cpu_s` seconds of
///   CPU, `SIGKILL` one second later, inherited by all it starts. A
///   namespace's pid 1 (a sandboxed command) ignores `SIGXCPU`, so with
///   `kill_at_limit` the hard limit is `cpu_s` itself: `SIGKILL` then.
pub fn confine(cmd: &mut Command, cpu_s: Option<u64>, kill_at_limit: bool, gate: Gate) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: see the module comment; the closure only makes system calls
    // on copied integers and a stack buffer.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // Our death before the prctl would go unnoticed: refuse to run.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            libc::close(gate.write_fd);
            let mut go = [0u8; 1];
            loop {
                let n = libc::read(gate.read_fd, go.as_mut_ptr().cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(std::io::Error::from_raw_os_error(libc::ECANCELED));
            }
            if let Some(secs) = cpu_s {
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_CPU, &mut cur) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let want = secs as libc::rlim_t;
                // Never above a hard limit already set (only root may raise it).
                let hard = want
                    .saturating_add(if kill_at_limit { 0 } else { 1 })
                    .min(cur.rlim_max);
                let new = libc::rlimit {
                    rlim_cur: want.min(hard),
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_CPU, &new) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Waits for the child `pid` (blocking) and returns its status with its
/// own resource usage.
pub fn wait(pid: u32) -> std::io::Result<(ExitStatus, Usage)> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ECHILD))?;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is plain integers, for which all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to locals that live across the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            let ms = |tv: libc::timeval| {
                u64::try_from(tv.tv_sec)
                    .unwrap_or(0)
                    .saturating_mul(1000)
                    .saturating_add(u64::try_from(tv.tv_usec).unwrap_or(0) / 1000)
            };
            let usage = Usage {
                cpu_ms: ms(ru.ru_utime).saturating_add(ms(ru.ru_stime)),
                peak_rss_kb: u64::try_from(ru.ru_maxrss).unwrap_or(0),
            };
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
