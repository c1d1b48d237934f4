//! Relay buffers, held only while data is in flight. A direction of a connection (a UDP
//! flow's replies) takes one when its socket has data and gives it back as soon as a
//! read would block, so an idle connection (and a keep-alive connection between
//! requests, a quiet UDP flow) holds no buffer. Each
//! worker thread keeps a few returned buffers for reuse ([`KEEP`]); beyond that they go
//! back to the allocator. Written here because it is twenty lines: a pool crate would add
//! locking the thread-local list does not need.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of one relay buffer: one read, one write.
pub(crate) const SIZE: usize = 16 * 1024;

/// Bytes of a datagram buffer: the largest UDP payload.
pub(crate) const DATAGRAM: usize = 65536;

/// Idle relay buffers a thread keeps (1 MiB).
const KEEP: usize = 64;

/// Idle datagram buffers a thread keeps (1 MiB).
const KEEP_DATAGRAM: usize = 16;

/// Buffers taken and not yet given back, over every thread (the gauge
/// `rvs_proxy_relay_buffers_in_use`: data in flight, not connections).
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Buffers holding data in flight now.
pub(crate) fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
    static DATAGRAM_POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from the pool of the thread that took it; back to the pool of the thread
/// that drops it.
pub(crate) struct Buf(Option<Box<[u8]>>);

impl Buf {
    /// A relay buffer ([`SIZE`]).
    pub(crate) fn take() -> Buf {
        Buf::from_pool(&POOL, SIZE)
    }

    /// A buffer for one datagram ([`DATAGRAM`]: a smaller one would truncate).
    pub(crate) fn take_datagram() -> Buf {
        Buf::from_pool(&DATAGRAM_POOL, DATAGRAM)
    }

    fn from_pool(
        pool: &'static std::thread::LocalKey<RefCell<Vec<Box<[u8]>>>>,
        size: usize,
    ) -> Buf {
        IN_USE.fetch_add(1, Ordering::Relaxed);
        let pooled = pool.with(|p| p.borrow_mut().pop());
        Buf(Some(
            pooled.unwrap_or_else(|| vec![0u8; size].into_boxed_slice()),
        ))
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            IN_USE.fetch_sub(1, Ordering::Relaxed);
            // A thread being torn down has no pool any more: the buffer is freed.
            let (pool, keep) = if b.len() == DATAGRAM {
                (&DATAGRAM_POOL, KEEP_DATAGRAM)
            } else {
                (&POOL, KEEP)
            };
            let _ = pool.try_with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < keep {
                    p.push(b);
                }
            });
        }
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the gauge is the process's, and tests run in parallel.
    #[test]
    fn buffers_are_reused_counted_and_pooled_within_bounds() {
        let before = in_use();
        let a = Buf::take();
        assert_eq!(a.len(), SIZE);
        assert_eq!(in_use(), before + 1);
        let p = a.as_ptr();
        drop(a);
        assert_eq!(in_use(), before);
        // The thread's returned buffer is the next one taken.
        let b = Buf::take();
        assert_eq!(b.as_ptr(), p);
        drop(b);
        let bufs: Vec<Buf> = (0..KEEP + 10).map(|_| Buf::take()).collect();
        assert_eq!(in_use(), before + KEEP + 10);
        drop(bufs);
        assert_eq!(in_use(), before);
        assert_eq!(POOL.with(|p| p.borrow().len()), KEEP);
        // Datagram buffers: their own size and pool.
        let d = Buf::take_datagram();
        assert_eq!(d.len(), DATAGRAM);
        assert_eq!(in_use(), before + 1);
        drop(d);
        assert_eq!(in_use(), before);
        assert_eq!(DATAGRAM_POOL.with(|p| p.borrow().len()), 1);
        assert_eq!(POOL.with(|p| p.borrow().len()), KEEP);
    }
}
