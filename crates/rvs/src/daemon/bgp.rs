//! The BGP speaker's driver (`rvs_bgp`): BIRD runs from a thread of its own — starting
//! it, reconfiguring it and asking its control socket all block — fed the announcements
//! the core decides ([`rvs_daemon::Core::announcements`]). The main loop hands over what
//! it wants and never waits, but on SIGTERM, when the withdrawal must be out before the
//! drain starts.
//!
//! The thread owns BIRD: it restarts it when it exits (BIRD's log says why; the next
//! attempt after a pause that doubles up to 30 s), and BIRD dies with it (the
//! parent-death signal is tied to the spawning thread, which lives as long as the
//! speaker).

use rvs_api::{BgpAnnouncement, BgpSession, BgpStatus};
use rvs_bgp::{Bird, Speaker as _};
use rvs_types::Announcement;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Published by the speaker's thread after each change and each second.
pub type Published = Arc<arc_swap::ArcSwapOption<BgpStatus>>;

enum Msg {
    Settings(Box<rvs_bgp::Settings>),
    Announce(Vec<Announcement>, Option<tokio::sync::oneshot::Sender<()>>),
    Drained(bool),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The speaker, seen from the main loop.
pub struct Bgp {
    tx: mpsc::Sender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What was last handed over (sent again only when it changes).
    wanted: Option<Vec<Announcement>>,
    withdraw_delay: Duration,
    settings: rvs_bgp::Settings,
}

/// The speaker's settings from `rvs_bgp`; its files beside the control socket
/// (`rvs.sock` → `rvs.bird/`).
pub fn settings(b: &rvs_conf::model::Bgp, control: &Path) -> rvs_bgp::Settings {
    rvs_bgp::Settings {
        router_id: b.router_id,
        local_as: b.local_as,
        neighbors: b
            .neighbors
            .iter()
            .map(|n| rvs_bgp::Neighbor {
                address: n.address,
                remote_as: n.remote_as,
                bfd: n.bfd,
                hold_time: n.hold_time,
                source_address: n.source_address,
            })
            .collect(),
        bfd: rvs_bgp::BfdTimers {
            interval: b.bfd_interval,
            multiplier: b.bfd_multiplier,
        },
        dir: control.with_extension("bird"),
        bird: b.bird.clone().into(),
    }
}

impl Bgp {
    /// Starts the speaker's thread (BIRD starts on it with nothing announced).
    pub fn start(b: &rvs_conf::model::Bgp, control: &Path, published: Published) -> Bgp {
        let s = settings(b, control);
        let (tx, rx) = mpsc::channel();
        let first = s.clone();
        let thread = std::thread::Builder::new()
            .name("rvs-bgp".into())
            .spawn(move || speaker(first, &rx, &published))
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the BGP speaker's thread: nothing is announced");
        }
        Bgp {
            tx,
            thread,
            wanted: None,
            withdraw_delay: b.withdraw_delay,
            settings: s,
        }
    }

    /// A reload: new settings (BIRD reconfigures in place when they differ).
    pub fn follow(&mut self, b: &rvs_conf::model::Bgp, control: &Path) {
        self.withdraw_delay = b.withdraw_delay;
        let s = settings(b, control);
        if s != self.settings {
            self.settings = s.clone();
            let _ = self.tx.send(Msg::Settings(Box::new(s)));
        }
    }

    /// What is to be announced now (handed over only when it changed).
    pub fn want(&mut self, routes: Vec<Announcement>) {
        if self.wanted.as_ref() == Some(&routes) {
            return;
        }
        self.wanted = Some(routes.clone());
        let _ = self.tx.send(Msg::Announce(routes, None));
    }

    /// Tells the status whether the director is drained.
    pub fn drained(&self, on: bool) {
        let _ = self.tx.send(Msg::Drained(on));
    }

    /// SIGTERM: every VIP withdrawn (waited for: BIRD has taken the configuration), then
    /// `withdraw_delay` while the routers move new connections to the other directors
    /// and this one still serves, then BIRD stopped. The drain comes after.
    pub async fn shutdown(mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Announce(Vec::new(), Some(tx))).is_ok()
            && tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .is_ok()
        {
            tracing::info!(
                "stopping: every VIP withdrawn from the routers; serving {:?} more before the drain",
                self.withdraw_delay
            );
            tokio::time::sleep(self.withdraw_delay).await;
        }
        self.stop().await;
    }

    /// Stops BIRD (its sessions end; the routers withdraw) and the thread.
    pub async fn stop(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Stop(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn api(routes: &[Announcement]) -> Vec<BgpAnnouncement> {
    routes
        .iter()
        .map(|r| BgpAnnouncement {
            vip: r.vip,
            communities: r.communities.iter().map(ToString::to_string).collect(),
            med: r.med,
        })
        .collect()
}

/// The speaker's thread: BIRD, supervised.
fn speaker(mut settings: rvs_bgp::Settings, rx: &mpsc::Receiver<Msg>, published: &Published) {
    let mut bird: Option<Bird> = None;
    let mut want: Vec<Announcement> = Vec::new();
    let mut acks: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    let mut drained = false;
    let mut error: Option<String> = None;
    let mut next_start = Instant::now();
    let mut pause = Duration::from_secs(1);
    let mut states: Vec<(std::net::IpAddr, String)> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Msg::Settings(s)) => {
                settings = *s;
                if let Some(b) = &mut bird {
                    match b.reconfigure(settings.clone()) {
                        Ok(()) => {
                            tracing::info!("BGP speaker reconfigured");
                            error = None;
                        }
                        Err(e) => {
                            tracing::error!("BGP speaker: {e}; the previous configuration runs");
                            error = Some(e.to_string());
                        }
                    }
                }
            }
            Ok(Msg::Announce(v, ack)) => {
                want = v;
                acks.extend(ack);
            }
            Ok(Msg::Drained(on)) => drained = on,
            Ok(Msg::Stop(reply)) => {
                if let Some(b) = bird.take() {
                    b.stop();
                }
                published.store(None);
                let _ = reply.send(());
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(b) = bird.take() {
                    b.stop();
                }
                return;
            }
        }
        if let Some(st) = bird.as_mut().and_then(Bird::exited) {
            tracing::error!("BIRD exited ({st}): its sessions are down; starting it again");
            error = Some(format!("BIRD exited ({st})"));
            bird = None;
        }
        if bird.is_none() && Instant::now() >= next_start {
            match Bird::start(settings.clone(), &want) {
                Ok(b) => {
                    bird = Some(b);
                    error = None;
                    pause = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::error!("BGP speaker: {e}; trying again in {pause:?}");
                    error = Some(e.to_string());
                    next_start = Instant::now() + pause;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
        let mut sessions = Vec::new();
        if let Some(b) = &mut bird {
            if b.routes() != want.as_slice() {
                let before: Vec<_> = b.routes().iter().map(|r| r.vip).collect();
                match b.announce(&want) {
                    Ok(()) => {
                        let now: Vec<_> = want.iter().map(|r| r.vip).collect();
                        for v in before.iter().filter(|v| !now.contains(v)) {
                            tracing::info!("BGP: {v} withdrawn");
                        }
                        for v in now.iter().filter(|v| !before.contains(v)) {
                            tracing::info!("BGP: {v} announced");
                        }
                        error = None;
                    }
                    Err(e) => {
                        tracing::error!("BGP speaker: {e}");
                        error = Some(e.to_string());
                    }
                }
            }
            if b.routes() == want.as_slice() {
                for a in acks.drain(..) {
                    let _ = a.send(());
                }
            }
            match b.sessions() {
                Ok(s) => sessions = s,
                Err(e) => tracing::debug!("BGP sessions: {e}"),
            }
            for s in &sessions {
                let was = states
                    .iter()
                    .find(|(n, _)| *n == s.neighbor)
                    .map(|(_, st)| st);
                if was != Some(&s.state) {
                    if s.established() {
                        tracing::info!("BGP session with {}: Established", s.neighbor);
                    } else if was.is_some_and(|w| w == "Established") {
                        tracing::warn!("BGP session with {}: {} {}", s.neighbor, s.state, s.info);
                    }
                }
            }
            states = sessions
                .iter()
                .map(|s| (s.neighbor, s.state.clone()))
                .collect();
        }
        published.store(Some(Arc::new(BgpStatus {
            pid: bird.as_ref().map(Bird::pid),
            drained,
            announced: api(bird.as_ref().map(Bird::routes).unwrap_or_default()),
            sessions: sessions
                .into_iter()
                .map(|s| BgpSession {
                    neighbor: s.neighbor,
                    state: s.state,
                    since: s.since,
                    info: s.info,
                })
                .collect(),
            error: error.clone(),
        })));
    }
}
