//! The daemon's one system call that no safe crate wraps: `sched_setscheduler` (rustix
//! has affinity and nice, not the real-time policies).
#![allow(unsafe_code)]

/// Makes the calling thread real-time (`SCHED_RR` at `priority`, 1..99), with
/// `SCHED_RESET_ON_FORK` so that processes it starts (notify scripts) run normally.
pub fn set_round_robin(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0
    // is the calling thread; the kernel only reads the struct.
    let r = unsafe {
        libc::sched_setscheduler(
            0,
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            &raw const param,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
