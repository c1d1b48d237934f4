//! A kernel handle (a loaded XDP program, an IPVS netlink socket) owned by one OS thread
//! of its own. Everything that touches the handle runs there, in order: the daemon's
//! calls ([`Owner::call`], awaited without blocking the runtime) and the periodic pass
//! that copies counters and walks flow tables (blocking syscalls, up to millions).
//! Nothing else can reach the handle, so no lock is shared between `apply` and the
//! copier, and the async runtime (the proxy, the checkers, the control API) never waits
//! on a system call of theirs.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

type Job<T> = Box<dyn FnOnce(&mut T) + Send>;

pub struct Owner<T> {
    jobs: Option<Sender<Job<T>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> Owner<T> {
    /// Moves `value` to a new thread named `name`, which runs `periodic` about every
    /// time it asks for (its return value), between calls, until stopped.
    pub fn spawn(
        name: &str,
        mut value: T,
        mut periodic: impl FnMut(&mut T) -> Duration + Send + 'static,
    ) -> std::io::Result<Owner<T>> {
        let (tx, rx) = channel::<Job<T>>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut next = Instant::now() + Duration::from_secs(1);
                loop {
                    match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                        Ok(job) => job(&mut value),
                        Err(RecvTimeoutError::Timeout) => {
                            next = Instant::now() + periodic(&mut value);
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                // Dropped here, on its own thread (an XDP program detaches).
                drop(value);
            })?;
        Ok(Owner {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the owning thread and returns its result; `None` once stopped.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
    ) -> Option<R> {
        call(self.jobs.as_ref()?, f).await
    }

    /// A handle that calls into the owner from another task (`None` once stopped). A
    /// caller keeps the thread running: end the task that holds it before
    /// [`Owner::stop`], which waits for the thread.
    pub fn caller(&self) -> Option<Caller<T>> {
        self.jobs.clone().map(|jobs| Caller { jobs })
    }

    /// Stops the thread after the job or pass under way, and waits for it (off the
    /// runtime) so that the handle is gone when this returns.
    pub async fn stop(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// Calls into an [`Owner`] from another task.
pub struct Caller<T> {
    jobs: Sender<Job<T>>,
}

impl<T: Send + 'static> Caller<T> {
    /// As [`Owner::call`].
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
    ) -> Option<R> {
        call(&self.jobs, f).await
    }
}

async fn call<T: Send + 'static, R: Send + 'static>(
    jobs: &Sender<Job<T>>,
    f: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    jobs.send(Box::new(move |v: &mut T| {
        let _ = tx.send(f(v));
    }))
    .ok()?;
    rx.await.ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Calls run in order on the owning thread, between periodic passes, and the value
    /// is dropped on that thread when stopped.
    #[tokio::test]
    async fn calls_and_passes_share_one_owner() {
        struct Value {
            calls: Vec<u32>,
            passes: Arc<AtomicU64>,
            dropped_on: Arc<std::sync::Mutex<Option<String>>>,
        }
        impl Drop for Value {
            fn drop(&mut self) {
                *self.dropped_on.lock().unwrap() = std::thread::current().name().map(str::to_owned);
            }
        }
        let passes = Arc::new(AtomicU64::new(0));
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let owner = Owner::spawn(
            "rvs-test-owner",
            Value {
                calls: Vec::new(),
                passes: passes.clone(),
                dropped_on: dropped_on.clone(),
            },
            |v| {
                v.passes.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(1)
            },
        )
        .unwrap();
        for i in 0..100 {
            let n = owner
                .call(move |v| {
                    v.calls.push(i);
                    v.calls.len()
                })
                .await;
            assert_eq!(n, Some(i as usize + 1));
        }
        let name = owner
            .call(|_| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("rvs-test-owner"));
        owner.stop().await;
        assert_eq!(
            dropped_on.lock().unwrap().as_deref(),
            Some("rvs-test-owner")
        );
    }
}
