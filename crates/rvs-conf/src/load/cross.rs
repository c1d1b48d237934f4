//! The checks across blocks once everything is read: references, duplicate VRIDs per interface, port remapping in DR/TUN, sync-group tracking weights, …

#[allow(clippy::wildcard_imports)]
use super::*;

impl Loader<'_> {
    pub(super) fn cross_checks(&mut self) {
        let a = &mut self.a;
        let cfg = &mut self.cfg;
        // keepalived refuses to call this safe: scripts run as root from paths it has not
        // checked. Its `-t` fails on it (exit 6) when a script it would run exists on the
        // checking host, and says nothing when none does (it drops the scripts it cannot
        // find). rvs judges the host it checks on the same way (run `rvs check` on the
        // director), and still advises where no script is there yet.
        if !cfg.global_defs.enable_script_security {
            // A bare name is looked up on PATH, as keepalived looks it up.
            let present = self
                .locs
                .scripts
                .iter()
                .find(|(_, prog)| rvs_script::resolve(prog).is_some_and(|p| p.is_file()));
            let msg =
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled";
            let hint = "add 'enable_script_security' (and 'script_user') to global_defs";
            if let Some((loc, prog)) = present {
                a.diags
                    .ka_warning(*loc, 1, format!("{msg} ({prog} exists on this host)"))
                    .hint(hint);
            } else if let Some((loc, _)) = self.locs.scripts.first() {
                a.diags
                    .warning(
                        *loc,
                        1,
                        format!(
                            "{msg}; none of the scripts exists on this host, where keepalived \
                             -t says nothing, but it will refuse the file where they do"
                        ),
                    )
                    .hint(hint);
            }
        }
        // keepalived: "lvs_sync_daemon vrrp instance X not found" at run time, and no sync
        // daemon; its -t says nothing. rvs says so here, and runs none either.
        if let Some(ls) = &cfg.global_defs.lvs_sync_daemon {
            if let Some(inst) = &ls.instance {
                if !cfg.vrrp_instances.iter().any(|v| &v.name == inst) {
                    let (loc, width) = ls.instance_at;
                    a.diags.warning(
                        loc,
                        width,
                        format!(
                            "lvs_sync_daemon: unknown vrrp_instance '{inst}': no sync daemon runs"
                        ),
                    );
                }
            }
        }
        // Sync groups: members exist, and belong to one group only.
        for (group, tok) in &self.locs.sync_members {
            match cfg.vrrp_instances.iter_mut().find(|v| v.name == tok.text) {
                None => {
                    a.diags.error(
                        tok.loc,
                        tok.width,
                        format!(
                            "vrrp_sync_group {group}: unknown vrrp_instance '{}'",
                            tok.text
                        ),
                    );
                }
                Some(vi) => {
                    if let Some(prev) = &vi.sync_group {
                        if prev != group {
                            a.diags.error(
                                tok.loc,
                                tok.width,
                                format!(
                                    "vrrp_instance {} is already in sync group {prev}",
                                    tok.text
                                ),
                            );
                        }
                    } else {
                        vi.sync_group = Some(group.clone());
                    }
                }
            }
        }
        // Members of a sync group move together: tracker weights would make one member
        // change priority alone, so keepalived ignores them unless the group allows it.
        for (loc, idx) in &self.locs.instances {
            let vi = &mut cfg.vrrp_instances[*idx];
            let Some(gname) = &vi.sync_group else {
                continue;
            };
            let allowed = cfg
                .vrrp_sync_groups
                .iter()
                .any(|g| &g.name == gname && g.sync_group_tracking_weight);
            if allowed {
                continue;
            }
            let scripts = &cfg.vrrp_scripts;
            let files = &cfg.track_files;
            let mut ignored = Vec::new();
            vi.trackers.track_script.retain(|r| {
                let w = r
                    .weight
                    .or_else(|| scripts.iter().find(|s| s.name == r.name).map(|s| s.weight))
                    .unwrap_or(0);
                (w == 0).then_some(()).is_some() || {
                    ignored.push(format!("script {}", r.name));
                    false
                }
            });
            vi.trackers.track_file.retain(|r| {
                let w = r
                    .weight
                    .or_else(|| files.iter().find(|s| s.name == r.name).map(|s| s.weight))
                    .unwrap_or(1);
                (w == 0).then_some(()).is_some() || {
                    ignored.push(format!("file {}", r.name));
                    false
                }
            });
            vi.trackers.track_interface.retain(|r| {
                r.weight.unwrap_or(0) == 0 || {
                    ignored.push(format!("interface {}", r.name));
                    false
                }
            });
            for what in ignored {
                a.diags
                    .ka_warning(*loc, 13, format!("({}) ignoring tracked {what} with weights due to SYNC group {gname}", vi.name))
                    .hint(format!("add 'sync_group_tracking_weight' to vrrp_sync_group {gname}, or use weight 0 (fault on failure)"));
            }
        }
        // Tracker references.
        for (kind, what, tok) in &self.locs.track_refs {
            let known = match kind.as_str() {
                "script" => cfg.vrrp_scripts.iter().any(|s| s.name == tok.text),
                "file" => cfg.track_files.iter().any(|s| s.name == tok.text),
                "bfd" => cfg.bfd_instances.iter().any(|s| s.name == tok.text),
                "process" => cfg.track_processes.iter().any(|s| s.name == tok.text),
                _ => true,
            };
            if !known {
                let names: Vec<&str> = match kind.as_str() {
                    "script" => cfg.vrrp_scripts.iter().map(|s| s.name.as_str()).collect(),
                    "bfd" => cfg.bfd_instances.iter().map(|s| s.name.as_str()).collect(),
                    "process" => cfg
                        .track_processes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect(),
                    _ => cfg.track_files.iter().map(|s| s.name.as_str()).collect(),
                };
                let d = a.diags.ka_warning(
                    tok.loc,
                    tok.width,
                    format!(
                        "track_{kind} refers to unknown {what} '{}': ignored, as keepalived \
                         ignores it",
                        tok.text
                    ),
                );
                if let Some(b) = suggest::closest(&tok.text, &names) {
                    d.hint(format!("did you mean {b}?"));
                }
            }
        }
        for tok in &self.locs.file_check_refs {
            if !cfg.track_files.iter().any(|s| s.name == tok.text) {
                a.diags.ka_warning(
                    tok.loc,
                    tok.width,
                    format!(
                        "FILE_CHECK refers to unknown track_file '{}': the checker is \
                         ignored, as keepalived ignores it",
                        tok.text
                    ),
                );
            }
        }
        for tok in &self.locs.bfd_check_refs {
            if !cfg.bfd_instances.iter().any(|b| b.name == tok.text) {
                let names: Vec<&str> = cfg.bfd_instances.iter().map(|b| b.name.as_str()).collect();
                let d = a.diags.ka_warning(
                    tok.loc,
                    tok.width,
                    format!(
                        "BFD_CHECK refers to unknown bfd_instance '{}': the checker is \
                         ignored, as keepalived ignores it",
                        tok.text
                    ),
                );
                if let Some(b) = suggest::closest(&tok.text, &names) {
                    d.hint(format!("did you mean {b}?"));
                }
            }
        }
        // Duplicate VRID on one interface (same family).
        let mut seen: BTreeMap<(String, u8, bool), String> = BTreeMap::new();
        for (i, (_, idx)) in self.locs.instances.iter().enumerate() {
            let vi = &cfg.vrrp_instances[*idx];
            let (Some(vrid), Some(ifname)) = (vi.virtual_router_id, &vi.interface) else {
                continue;
            };
            let key = (ifname.clone(), vrid, vi.family == Family::Inet6);
            if let Some(prev) = seen.get(&key) {
                if let Some(t) = &self.locs.vrid[i] {
                    a.diags
                        .error(t.loc, t.width, format!("({}) virtual_router_id {vrid} is already used on {ifname} by {prev}", vi.name))
                        .hint("each VRRP group on an interface needs its own virtual_router_id");
                }
            } else {
                seen.insert(key, vi.name.clone());
            }
        }
        // Virtual server groups referenced exist; duplicate services.
        let mut services: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut twice = Vec::new();
        for (i, vs) in cfg.virtual_servers.iter().enumerate() {
            let tok = &self.locs.vs[i];
            if let VsKey::Group { group } = &vs.key {
                if !self.locs.vs_groups.contains_key(group) {
                    a.diags.error(
                        tok.loc,
                        tok.width,
                        format!(
                            "virtual_server group {group}: no virtual_server_group of that name"
                        ),
                    );
                }
            }
            let label = vs_label(&vs.key, vs.protocol);
            if services.contains(&label) {
                // keepalived 2.2.7 runs such a file (its `-t` says nothing), so rvs must
                // not refuse it; it says which definition runs.
                a.diags
                    .warning(
                        tok.loc,
                        tok.width,
                        format!(
                            "virtual server {label} is defined twice: rvs runs the first definition and ignores this one"
                        ),
                    )
                    .hint("merge the two blocks, or remove one");
                twice.push(i);
            } else {
                services.insert(label);
            }
        }
        for i in twice.into_iter().rev() {
            cfg.virtual_servers.remove(i);
            self.locs.vs.remove(i);
        }
    }
}
