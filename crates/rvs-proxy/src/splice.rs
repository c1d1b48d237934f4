//! splice(2) through a pipe: the zero-copy relay of bulk TCP data on Linux.

use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
use std::os::fd::{AsFd, OwnedFd};

/// A non-blocking pipe used as the kernel-side buffer between two sockets.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    pub fn new() -> std::io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // A larger pipe moves more per call; the default 64 KiB is kept if refused.
        let _ = rustix::pipe::fcntl_setpipe_size(&write, 1 << 20);
        Ok(Pipe { read, write })
    }

    /// Moves up to `len` bytes from the socket into the pipe; 0 means end of stream.
    pub fn fill_from(&self, src: impl AsFd, len: usize) -> std::io::Result<usize> {
        Ok(splice(
            src,
            None,
            &self.write,
            None,
            len,
            SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
        )?)
    }

    /// Moves up to `len` bytes from the pipe into the socket.
    pub fn drain_to(&self, dst: impl AsFd, len: usize) -> std::io::Result<usize> {
        Ok(splice(
            &self.read,
            None,
            dst,
            None,
            len,
            SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
        )?)
    }
}
