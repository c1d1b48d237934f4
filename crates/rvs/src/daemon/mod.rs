//! `rvs run`: the daemon — its main loop and reloads (`run`), health (`health`), runtime changes (`overlay`), the data planes (`dataplane`), the control API (`control`), metrics, logging.

pub mod alerts;
pub mod control;
pub mod convert;
pub mod dataplane;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod overlay;
pub mod run;
