//! `rvs run`: the drivers around the sans-IO core (`rvs_daemon::Core`, which decides
//! reloads, health, quorum and runtime changes): the main loop (`run`), the checker
//! tasks and BFD (`health`), the data planes (`dataplane`), the control API (`control`),
//! metrics, alerts, logging.

pub mod alerts;
pub mod bgp;
pub mod control;
pub mod dataplane;
pub mod dbus;
pub mod drift;
pub mod dumps;
pub mod fifo;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod netns;
pub mod plan;
pub mod reload_time;
pub mod run;
pub mod snmp;
pub mod systemd;
pub mod threads;
pub mod upgrade;
