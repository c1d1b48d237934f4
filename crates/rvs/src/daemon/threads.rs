//! The control-plane work that must keep time runs on threads of its own: VRRP (adverts
//! every second or faster, whatever the proxy is doing) and BFD (tens of milliseconds).
//! Each thread runs a current-thread tokio runtime; the daemon hands it work (VRRP's
//! start, reload and stop are spawned there and awaited; BFD's sessions are started with
//! its runtime entered). keepalived's per-process settings apply to these threads as they
//! apply to its child processes: `*_rt_priority` (`SCHED_RR`, reset on fork so that
//! scripts do not inherit it), `*_rlimit_rttime` (`RLIMIT_RTTIME`, soft limit at half, as
//! keepalived sets it; its `SIGXCPU` warning is logged), `*_cpu_affinity`, `*_priority`
//! (nice) and `*_process_name` (the thread's name, which `ps -L` and `top -H` show).

use rvs_conf::model::ProcessSettings;
use std::future::Future;

/// The process's nice value and CPU mask before rvs changed any (for the threads whose
/// own settings are not given: keepalived's other children would keep them).
struct Original {
    nice: i32,
    cpus: Option<rustix::thread::CpuSet>,
}

static ORIGINAL: std::sync::OnceLock<Original> = std::sync::OnceLock::new();

/// Notes the process's nice value and CPU mask; call it before changing either.
pub fn remember_original() {
    let _ = ORIGINAL.set(Original {
        nice: rustix::process::getpriority_process(None).unwrap_or(0),
        cpus: rustix::thread::sched_getaffinity(None).ok(),
    });
}

/// The checkers' settings (`checker_priority`, `checker_cpu_affinity`,
/// `checker_process_name`), for the threads that run them (the runtime's, which the proxy
/// shares) and the daemon's main thread; `process_name` names the process itself.
pub fn apply_to_main(g: &rvs_conf::model::GlobalDefs) {
    if let Some(m) = g.umask {
        rustix::process::umask(rustix::fs::Mode::from_bits_truncate(m));
        tracing::info!("umask {m:04o}");
    }
    if let Some(name) = &g.process_name {
        name_thread("process_name", name);
    }
    apply_checker(&g.checker_process, g.checker_priority);
}

/// Names the calling thread (what `ps -L` and `top -H` show); `label` says which setting.
fn name_thread(label: &str, name: &str) {
    let named = std::ffi::CString::new(name)
        .map_err(|e| e.to_string())
        .and_then(|c| rustix::thread::set_name(&c).map_err(|e| e.to_string()));
    if let Err(e) = named {
        tracing::warn!("{label} {name}: {e}");
    }
}

/// The CPU set of a `*_cpu_affinity` list.
fn cpu_set(cpus: &[usize]) -> rustix::thread::CpuSet {
    let mut set = rustix::thread::CpuSet::new();
    for c in cpus {
        set.set(*c);
    }
    set
}

/// On a runtime worker as it starts (and the main thread): the checkers' CPUs and nice.
pub fn apply_checker(s: &ProcessSettings, nice: Option<i8>) {
    if !s.cpu_affinity.is_empty() {
        if let Err(e) = rustix::thread::sched_setaffinity(None, &cpu_set(&s.cpu_affinity)) {
            tracing::warn!("checker_cpu_affinity {:?}: {e}", s.cpu_affinity);
        }
    }
    if let Some(n) = nice {
        if let Err(e) =
            rustix::process::setpriority_process(Some(rustix::thread::gettid()), i32::from(n))
        {
            tracing::warn!("checker_priority {n}: {e} (a negative nice needs CAP_SYS_NICE)");
        }
    }
}

/// One control-plane thread and its runtime.
pub struct TaskThread {
    handle: tokio::runtime::Handle,
    done: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TaskThread {
    /// Starts the thread `name` (unless the settings name it) and applies the settings
    /// there; a setting the kernel refuses is logged, and the thread runs without it.
    pub fn spawn(
        name: &str,
        what: &'static str,
        settings: &ProcessSettings,
        nice: Option<i8>,
    ) -> std::io::Result<TaskThread> {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
        let s = settings.clone();
        // The thread takes its configured name (`*_process_name`) only once its settings
        // are applied: whoever sees the name sees the settings.
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = htx.send(Err(e));
                        return;
                    }
                };
                apply(what, &s, nice);
                if let Some(n) = &s.name {
                    name_thread(what, n);
                }
                let _ = htx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = done_rx.await;
                });
            })?;
        let handle = hrx
            .recv()
            .map_err(|_| std::io::Error::other(format!("the {what} thread did not start")))??;
        Ok(TaskThread {
            handle,
            done: Some(done),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the thread and waits for it (without blocking the caller's runtime);
    /// `None` if it panicked.
    pub async fn run<F>(&self, f: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f).await.ok()
    }

    /// The thread's runtime, to start tasks and sockets there (`Handle::enter`).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Ends the runtime (its remaining tasks are dropped) and waits for the thread.
    pub async fn stop(mut self) {
        self.done.take();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The settings, on the calling thread. What is not set goes back to the process's
/// original (the thread inherits the checkers' settings from the thread that made it).
fn apply(what: &str, s: &ProcessSettings, nice: Option<i8>) {
    let original = ORIGINAL.get();
    let me = rustix::thread::gettid();
    if let Some(n) = nice {
        match rustix::process::setpriority_process(Some(me), i32::from(n)) {
            Ok(()) => tracing::info!("{what}: nice {n}"),
            Err(e) => tracing::warn!("{what}: nice {n}: {e} (a negative nice needs CAP_SYS_NICE)"),
        }
    } else if let Some(o) = original {
        let _ = rustix::process::setpriority_process(Some(me), o.nice);
    }
    if s.cpu_affinity.is_empty() {
        if let Some(set) = original.and_then(|o| o.cpus.as_ref()) {
            let _ = rustix::thread::sched_setaffinity(None, set);
        }
    } else {
        match rustix::thread::sched_setaffinity(None, &cpu_set(&s.cpu_affinity)) {
            Ok(()) => tracing::info!("{what}: on CPU(s) {:?}", s.cpu_affinity),
            Err(e) => tracing::warn!("{what}: cpu_affinity {:?}: {e}", s.cpu_affinity),
        }
    }
    if let Some(p) = s.rt_priority {
        match rvs_vrrpd::sys::set_round_robin(p) {
            Ok(()) => {
                let limit = s.rlimit_rttime.unwrap_or(rvs_vrrpd::sys::RT_RLIMIT_DEFAULT);
                match rvs_vrrpd::sys::set_rttime_limit(limit) {
                    Ok(()) => tracing::info!(
                        "{what}: real-time priority {p} (SCHED_RR), at most {limit} µs without blocking"
                    ),
                    Err(e) => tracing::warn!(
                        "{what}: real-time priority {p}, but no RLIMIT_RTTIME ({e})"
                    ),
                }
            }
            Err(e) => tracing::warn!(
                "{what}: cannot raise to real-time priority {p}: {e} (needs CAP_SYS_NICE)"
            ),
        }
    }
}

/// VRRP (`rvs_vrrpd::Vrrp`) on its thread: every call runs there, so its sockets, timers
/// and netlink requests are served by that thread alone.
#[derive(Default)]
pub struct VrrpHost {
    thread: Option<TaskThread>,
    vrrp: Option<rvs_vrrpd::Vrrp>,
}

impl VrrpHost {
    pub fn is_running(&self) -> bool {
        self.vrrp.is_some()
    }

    fn thread(&mut self, g: &rvs_conf::model::GlobalDefs) -> std::io::Result<&TaskThread> {
        if self.thread.is_none() {
            self.thread = Some(TaskThread::spawn(
                "rvs-vrrp",
                "VRRP",
                &g.vrrp_process,
                g.vrrp_priority,
            )?);
        }
        self.thread
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no VRRP thread"))
    }

    /// Starts VRRP with `plan` (nothing runs yet).
    pub async fn start(
        &mut self,
        g: &rvs_conf::model::GlobalDefs,
        plan: rvs_vrrpd::Plan,
        status: std::sync::Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
        bfd: rvs_bfd::driver::Registry,
        carried: Option<Vec<rvs_vrrpd::Carried>>,
    ) -> Result<(), String> {
        let t = self.thread(g).map_err(|e| e.to_string())?;
        let started = match carried {
            Some(c) => {
                t.run(async move { rvs_vrrpd::Vrrp::start_carried(plan, status, bfd, &c).await })
                    .await
            }
            None => t.run(rvs_vrrpd::Vrrp::start(plan, status, bfd)).await,
        };
        match started {
            Some(Ok(v)) => {
                self.vrrp = Some(v);
                Ok(())
            }
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the VRRP task panicked".into()),
        }
    }

    /// Reloads the running VRRP with `plan`; `None` when none runs. On an error the old
    /// instances are kept or gone as `rvs_vrrpd::Vrrp::reload` says.
    pub async fn reload(
        &mut self,
        plan: rvs_vrrpd::Plan,
    ) -> Option<(Result<(), String>, rvs_vrrp::ReloadOutcome)> {
        let v = self.vrrp.take()?;
        let t = self.thread.as_ref()?;
        let Some((r, o)) = t.run(v.reload(plan)).await else {
            return Some((
                Err("the VRRP task panicked".into()),
                rvs_vrrp::ReloadOutcome::Refused("the VRRP task panicked".into()),
            ));
        };
        Some((
            r.map(|v| {
                self.vrrp = Some(v);
            })
            .map_err(|e| e.to_string()),
            o,
        ))
    }

    /// Starts instances whose interface has come (see `rvs_vrrpd::Vrrp::poll_waiting`).
    pub async fn poll_waiting(&mut self) -> Option<String> {
        let mut v = self.vrrp.take()?;
        let t = self.thread.as_ref()?;
        let (v, msg) = t
            .run(async move {
                let m = v.poll_waiting().await;
                (v, m)
            })
            .await?;
        self.vrrp = Some(v);
        msg
    }

    /// Stops VRRP for `rvs upgrade`: MASTERs keep their VIPs and send no priority 0; the
    /// instances as they were, for the successor.
    pub async fn leave_for_upgrade(&mut self) -> Vec<rvs_vrrpd::Carried> {
        let mut carried = Vec::new();
        if let (Some(v), Some(t)) = (self.vrrp.take(), self.thread.as_ref()) {
            carried = t.run(v.leave_for_upgrade()).await.unwrap_or_default();
        }
        if let Some(t) = self.thread.take() {
            t.stop().await;
        }
        carried
    }

    /// Stops VRRP (a MASTER sends its priority-0 advert) and its thread.
    pub async fn stop(&mut self) {
        if let (Some(v), Some(t)) = (self.vrrp.take(), self.thread.as_ref()) {
            t.run(v.stop()).await;
        }
        if let Some(t) = self.thread.take() {
            t.stop().await;
        }
    }
}
