//! CPU affinity for SQLite's writer (Linux; elsewhere these do nothing).
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
