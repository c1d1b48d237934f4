//! A reload's outcome, as `rvs reload`, `POST /v1/reload`, the counters and the logs see
//! it: typed per part (data plane, VRRP), printed in one place.

/// What a refused reload says (and how the VRRP part knows to do nothing).
pub const KEPT: &str = "the running configuration is kept";

/// Why a new configuration must not replace a running one: errors, or lines rvs could
/// not read at all (unknown keywords, binary data: a truncated or garbage file would
/// otherwise remove running services). keepalived would skip those lines; a start does
/// too, a reload does not (docs/compat.md).
pub fn refuse_reload(parsed: &rvs_conf::Parsed) -> Option<String> {
    if parsed.errors() > 0 {
        return Some(format!("has {} errors", parsed.errors()));
    }
    let n = parsed.unreadable();
    (n > 0).then(|| {
        format!(
            "has {n} lines rvs cannot read (unknown keywords or binary data); \
             fix them, or restart to run the file as keepalived would, skipping them"
        )
    })
}

/// What a reload did to the data plane and the checkers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataReload {
    /// Not applied (the text says why): the running configuration is kept, VRRP too.
    Refused(String),
    /// Applied by difference.
    Applied(rvs_sched::table::ApplyReport),
    /// `-P`: no data plane, the BFD sessions reconciled.
    VrrpOnly,
    /// Applied, but these parts failed (a listener that could not bind…).
    Failed(Vec<String>),
}

/// What a reload did to VRRP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrrpReload {
    /// VRRP runs neither before nor after (`-C`, or no `vrrp_instance`), or the data
    /// plane refused the file.
    NotRun,
    Started,
    Reloaded(rvs_vrrp::ReloadOutcome),
    /// The new instances are invalid: VRRP was left as it ran.
    Invalid(String),
    /// Starting the first instances failed.
    StartFailed(String),
}

/// A reload's outcome, as `rvs reload`, `POST /v1/reload` and the counters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub data: DataReload,
    pub vrrp: VrrpReload,
}

impl ReloadReport {
    pub fn is_ok(&self) -> bool {
        let vrrp_ok = match &self.vrrp {
            VrrpReload::NotRun | VrrpReload::Started => true,
            VrrpReload::Reloaded(o) => o.is_ok(),
            VrrpReload::Invalid(_) | VrrpReload::StartFailed(_) => false,
        };
        matches!(self.data, DataReload::Applied(_) | DataReload::VrrpOnly) && vrrp_ok
    }

    /// The status text `rvs reload` prints: errors first, then what was done.
    pub fn message(&self) -> String {
        let data = match &self.data {
            DataReload::Refused(text) => return text.clone(),
            DataReload::Applied(r) => format!(
                "ok: services +{} -{}, real servers +{} -{} ~{}",
                r.services_added,
                r.services_removed,
                r.dests_added,
                r.dests_removed,
                r.dests_changed
            ),
            DataReload::VrrpOnly => "ok".to_owned(),
            DataReload::Failed(list) => format!("error: {}", list.join("; ")),
        };
        match &self.vrrp {
            VrrpReload::NotRun => data,
            VrrpReload::Started => format!("{data}; VRRP started"),
            VrrpReload::Reloaded(o) if o.is_ok() => format!("{data}; {o}"),
            VrrpReload::Reloaded(o) => format!("{o}; {data}"),
            VrrpReload::Invalid(e) => format!("error: VRRP not reloaded: {e}; {data}"),
            VrrpReload::StartFailed(e) => format!("error: VRRP: {e}; {data}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn applied() -> DataReload {
        DataReload::Applied(rvs_sched::table::ApplyReport {
            services_added: 1,
            ..Default::default()
        })
    }

    #[test]
    fn a_reload_is_ok_only_when_every_part_is() {
        let ok = ReloadReport {
            data: applied(),
            vrrp: VrrpReload::Reloaded(rvs_vrrp::ReloadOutcome::Unchanged),
        };
        assert!(ok.is_ok());
        assert_eq!(
            ok.message(),
            "ok: services +1 -0, real servers +0 -0 ~0; VRRP unchanged"
        );
        let vrrp_refused = ReloadReport {
            data: applied(),
            vrrp: VrrpReload::Reloaded(rvs_vrrp::ReloadOutcome::Refused("eth9 is gone".into())),
        };
        assert!(!vrrp_refused.is_ok());
        assert!(
            vrrp_refused
                .message()
                .starts_with("error: VRRP not reloaded, the running instances are kept: eth9"),
            "{}",
            vrrp_refused.message()
        );
        let refused = ReloadReport {
            data: DataReload::Refused(format!("error: has 2 errors; {KEPT}")),
            vrrp: VrrpReload::NotRun,
        };
        assert!(!refused.is_ok());
        assert!(refused.message().ends_with(KEPT));
        let partly = ReloadReport {
            data: DataReload::Failed(vec!["cannot listen on 127.0.0.1:80".into()]),
            vrrp: VrrpReload::Started,
        };
        assert!(!partly.is_ok());
        assert_eq!(
            partly.message(),
            "error: cannot listen on 127.0.0.1:80; VRRP started"
        );
    }
}
