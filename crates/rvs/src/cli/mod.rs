//! The operator's commands against a running daemon or a file: `rvs adm` (ipvsadm's CLI), `rvs check`, `rvs status`, `rvs plan`, and the name lookups ipvsadm makes.

pub mod adm;
pub mod bgp;
pub mod check;
pub mod cleanup;
pub mod doctor;
pub mod names;
pub mod plan;
pub mod status;
pub mod upgrade;

/// A path given on the command line, made absolute for the daemon (whose working
/// directory is not the caller's); `what` names it in the error.
pub fn absolute_arg(p: Option<&std::path::Path>, what: &str) -> anyhow::Result<Option<String>> {
    p.map(|p| {
        std::fs::canonicalize(p)
            .map(|a| a.display().to_string())
            .map_err(|e| anyhow::anyhow!("cannot {what} {}: {e}", p.display()))
    })
    .transpose()
}
