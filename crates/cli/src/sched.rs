//! How the kernel schedules the server's runtime threads.
//!
//! The embedded store commits on a writer thread of its own, apart from the runtime's (only a
//! lone write, when commits do not wait for the disk, is committed on the runtime's). When the
//! server has one CPU (a small VM, a container or process pinned to one core) the two take
//! turns on it, and a runtime thread woken by the network preempted the writer mid-commit to
//! read one request, then slept again: under sixteen writers, one context switch per write and
//! a fifth of the server's CPU. Runtime threads under `SCHED_BATCH` never preempt on waking;
//! they run when the writer sleeps or yields (it yields before taking a batch and after
//! answering one), and then find every request that arrived meanwhile. With several CPUs the
//! writer and the runtime rarely share one, while another busy process on a runtime thread's
//! CPU would keep it waiting up to a time slice; so by default only a server with one CPU
//! asks for it.

use serde::Deserialize;

/// The policy the runtime's threads run under (`serve --thread-scheduling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ThreadScheduling {
    /// `batch` when the process may use one CPU only, else `normal`.
    #[default]
    Auto,
    /// `SCHED_BATCH`: a woken runtime thread waits for the running thread to sleep, yield or
    /// use up its slice.
    Batch,
    /// The kernel's default (`SCHED_OTHER`).
    Normal,
}

impl ThreadScheduling {
    /// `Batch` or `Normal`: what `Auto` means for a process that may use `cpus` CPUs (its
    /// affinity and CPU quota, as `std::thread::available_parallelism` reads them).
    pub fn resolve(self, cpus: usize) -> ThreadScheduling {
        match self {
            ThreadScheduling::Auto if cpus <= 1 => ThreadScheduling::Batch,
            ThreadScheduling::Auto => ThreadScheduling::Normal,
            chosen => chosen,
        }
    }
}

/// Puts the calling thread under `policy`; its nice value is kept. A kernel that refuses (a
/// sandbox filtering the call) leaves the thread as it was, which costs only speed.
pub fn apply(policy: ThreadScheduling) -> std::io::Result<()> {
    match policy {
        ThreadScheduling::Batch => set_batch(),
        ThreadScheduling::Auto | ThreadScheduling::Normal => Ok(()),
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_batch() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` living across the call, which only reads it;
    // pid 0 is the calling thread. Moving to SCHED_BATCH needs no privilege.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if result == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn set_batch() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    /// The calling thread's policy as the kernel reports it.
    fn policy() -> i32 {
        // SAFETY: no arguments but the calling thread's pid 0.
        unsafe { libc::sched_getscheduler(0) }
    }

    /// The calling thread's nice value.
    fn nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // After the parenthesised name: state is field 3, nice field 19.
        stat.rsplit_once(')').expect("name").1.split_whitespace().nth(16).expect("nice").parse().expect("a number")
    }

    #[test]
    fn batch_moves_the_calling_thread_only_and_keeps_its_nice_value() {
        let outside = policy();
        let (inside, niceness) = std::thread::spawn(|| {
            // SAFETY: plain integer arguments; on Linux, `who` 0 is the calling thread, and
            // raising one's own nice value needs no privilege.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) }, 0);
            apply(ThreadScheduling::Batch).expect("SCHED_BATCH needs no privilege");
            (policy(), nice())
        })
        .join()
        .expect("thread");
        assert_eq!(inside, libc::SCHED_BATCH);
        assert_eq!(niceness, 3, "the thread's nice value is kept");
        assert_eq!(policy(), outside, "the caller's own thread is untouched");
    }

    #[test]
    fn auto_is_batch_on_one_cpu_only() {
        use ThreadScheduling::*;
        assert_eq!(Auto.resolve(1), Batch);
        assert_eq!(Auto.resolve(2), Normal);
        assert_eq!(Normal.resolve(1), Normal);
        assert_eq!(Batch.resolve(64), Batch);
    }

    #[test]
    fn normal_leaves_the_thread_as_it_was() {
        let policy_after = std::thread::spawn(|| {
            apply(ThreadScheduling::Normal).expect("nothing to do");
            policy()
        })
        .join()
        .expect("thread");
        assert_eq!(policy_after, libc::SCHED_OTHER);
    }
}
