//! The operator's commands against a running daemon or a file: `rvs adm` (ipvsadm's CLI), `rvs check`, `rvs status`, `rvs plan`, and the name lookups ipvsadm makes.

pub mod adm;
pub mod check;
pub mod names;
pub mod plan;
pub mod status;
pub mod upgrade;
