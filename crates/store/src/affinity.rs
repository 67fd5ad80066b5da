//! CPU affinity and scheduling policy for SQLite's writer (Linux; elsewhere these do nothing).
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a
//! round trip between the caller and that thread. On a small VM, waking a thread on the
//! other vCPU costs tens of microseconds each way; a batch makes a dozen such round trips.
//! The group commit's SQLite lane therefore runs on a thread of its own, on the same CPU
//! as the writer connection's thread ([`Db::sqlite_writer_thread`](crate::Db)).

/// The ids of this process's threads whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.starts_with(prefix).then_some(tid)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Pin thread `tid` (0: the calling thread) to `cpu`. False when that is not possible.
#[cfg(target_os = "linux")]
pub fn pin(tid: i32, cpu: usize) -> bool {
    // SAFETY: `set` is a plain bit set, zeroed and filled by libc's own macros;
    // `sched_setaffinity` only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin(_tid: i32, _cpu: usize) -> bool {
    false
}

/// Make the calling thread a batch thread (`SCHED_BATCH`): when another thread wakes it,
/// it does not preempt that thread, but waits for its turn. False when that is not
/// possible.
///
/// The SQLite lane needs this. sqlx's worker thread sends a query's rows one at a time
/// over a channel, and each send wakes the lane. With the lane an ordinary thread on the
/// same CPU, the scheduler ran it at once, so the worker and the lane switched places
/// for every row (about 170 switches a batch of 32 checkouts). As a batch thread, the
/// lane wakes once the worker waits for its next statement, and takes every row then.
#[cfg(target_os = "linux")]
pub fn batch_scheduling() -> bool {
    // SAFETY: `param` is a plain struct, zeroed (priority 0, the only one SCHED_BATCH
    // takes); `sched_setscheduler` only reads it.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn batch_scheduling() -> bool {
    false
}

/// Whether thread `tid` (0: the calling thread) is a batch thread ([`batch_scheduling`]).
#[cfg(target_os = "linux")]
pub fn is_batch_scheduled(tid: i32) -> bool {
    // SAFETY: `sched_getscheduler` takes a thread id and reads nothing else.
    unsafe { libc::sched_getscheduler(tid) == libc::SCHED_BATCH }
}

#[cfg(not(target_os = "linux"))]
pub fn is_batch_scheduled(_tid: i32) -> bool {
    false
}

/// The CPUs thread `tid` (0: the calling thread) may run on.
#[cfg(target_os = "linux")]
pub fn cpus_of(tid: i32) -> Option<Vec<usize>> {
    // SAFETY: as in `pin`; `sched_getaffinity` writes at most `size_of::<cpu_set_t>()`
    // bytes into `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some((0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn cpus_of(_tid: i32) -> Option<Vec<usize>> {
    None
}

/// The CPU time thread `tid` of this process has used, in nanoseconds (Linux's
/// `schedstat`).
pub fn cpu_ns(tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}
