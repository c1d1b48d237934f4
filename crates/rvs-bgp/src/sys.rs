//! The one system call rvs-bgp makes itself: the parent-death signal of BIRD.

use std::os::unix::process::CommandExt as _;

/// The child gets SIGKILL when the thread that spawned it ends (rvs exits or crashes):
/// its BGP sessions end with it and the routers withdraw this director's VIPs at once,
/// instead of drawing traffic to a director that no longer serves it.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(cmd: &mut std::process::Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec; it only makes the
    // prctl and getppid system calls (async-signal-safe, no allocation, no lock).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)?;
            // The parent died before the signal was set: it would never come.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
            }
            Ok(())
        });
    }
}
