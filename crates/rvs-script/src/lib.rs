//! `rvs-script`: keepalived's script rules, shared by the checkers (`MISC_CHECK`, notify
//! scripts) and VRRP (`vrrp_script`, notify scripts): scripts run as `script_user`
//! (default `keepalived_script` if that user exists, else root), never through a shell
//! string built from config values, and with `enable_script_security` a script that a
//! non-root user could modify (the file or any directory above it writable by someone
//! else) is refused.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Who a script runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// Resolves a user (and optional group) name from /etc/passwd and /etc/group.
pub fn lookup(user: &str, group: Option<&str>) -> Option<RunAs> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let (uid, mut gid) = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })?;
    if let Some(g) = group {
        let groups = std::fs::read_to_string("/etc/group").ok()?;
        gid = groups.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == g).then(|| f[2].parse().ok())?
        })?;
    }
    Some(RunAs { uid, gid })
}

/// The default script user: `script_user` if set, else `keepalived_script` if it exists,
/// else root.
pub fn default_user(script_user: Option<&str>) -> Result<RunAs, String> {
    match script_user {
        Some(u) => {
            let (name, group) = match u.split_once(':') {
                Some((n, g)) if !g.is_empty() => (n, Some(g)),
                _ => (u.trim_end_matches(':'), None),
            };
            lookup(name, group).ok_or_else(|| format!("script_user {u} does not exist"))
        }
        None => Ok(lookup("keepalived_script", None).unwrap_or(RunAs { uid: 0, gid: 0 })),
    }
}

/// Finds a program on PATH (as keepalived does for a bare name).
pub fn resolve(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// `enable_script_security`: a script run as root must not be modifiable by anyone but
/// root, nor any directory above it. Returns why it is refused.
pub fn insecure(prog: &Path, run_as: RunAs) -> Option<String> {
    let path = std::fs::canonicalize(prog).unwrap_or_else(|_| prog.to_path_buf());
    let mut cur = Some(path.as_path());
    while let Some(p) = cur {
        let Ok(m) = std::fs::metadata(p) else {
            return Some(format!("{} does not exist", p.display()));
        };
        let mode = m.mode();
        let others_write = mode & 0o002 != 0 && !(m.is_dir() && mode & 0o1000 != 0);
        let group_write = mode & 0o020 != 0 && m.gid() != 0 && m.gid() != run_as.gid;
        let owner_ok = m.uid() == 0 || m.uid() == run_as.uid;
        if others_write || group_write || !owner_ok {
            return Some(format!(
                "{} is writable by a user other than {} (owner uid {}, mode {:o})",
                p.display(),
                if run_as.uid == 0 {
                    "root".to_owned()
                } else {
                    format!("uid {}", run_as.uid)
                },
                m.uid(),
                mode & 0o7777
            ));
        }
        cur = p.parent();
    }
    None
}

/// How scripts run: `enable_script_security`, and the user (`script_user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScriptPolicy {
    pub security: bool,
    /// `None`: the daemon's own user.
    pub run_as: Option<RunAs>,
}

impl ScriptPolicy {
    /// The policy of a configuration: `enable_script_security` and `script_user`. A
    /// `script_user` that does not exist leaves scripts running as the daemon's user; the
    /// second value says so, for the caller to log.
    pub fn of(security: bool, script_user: Option<&str>) -> (ScriptPolicy, Option<String>) {
        let (run_as, why) = match default_user(script_user) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("{e}: scripts run as the daemon's user"))),
        };
        (ScriptPolicy { security, run_as }, why)
    }

    /// Prepares a script's command: refused (with the reason) when security is on and the
    /// program could be modified by another user; run as the script user when rvs is root.
    #[cfg(feature = "run")]
    pub fn command(&self, argv: &[String]) -> Result<tokio::process::Command, String> {
        self.command_as(argv, None)
    }

    /// [`ScriptPolicy::command`] for a script with a user of its own (`user NAME [GROUP]`
    /// in `vrrp_script` and `MISC_CHECK`, or after a notify script): it runs as that user,
    /// and the security check judges the path for that user. A user that does not exist
    /// refuses the script (keepalived removes it).
    #[cfg(feature = "run")]
    pub fn command_as(
        &self,
        argv: &[String],
        user: Option<(&str, Option<&str>)>,
    ) -> Result<tokio::process::Command, String> {
        let (prog, rest) = argv.split_first().ok_or("empty script")?;
        let path = resolve(prog).ok_or_else(|| format!("{prog} not found on PATH"))?;
        let own = match user {
            Some((u, g)) => Some(
                lookup(u, g)
                    .ok_or_else(|| format!("script user {u} does not exist: {prog} not run"))?,
            ),
            None => None,
        };
        let run_as = own.or(self.run_as).unwrap_or(RunAs { uid: 0, gid: 0 });
        if self.security {
            if let Some(why) = insecure(&path, run_as) {
                return Err(format!(
                    "refusing to run {}: {why} (enable_script_security)",
                    path.display()
                ));
            }
        }
        let mut cmd = tokio::process::Command::new(&path);
        cmd.args(rest)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        cmd.env_remove("LD_PRELOAD")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("IFS");
        // systemd's protocol is the daemon's own: a script must not notify in its name.
        for v in [
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        ] {
            cmd.env_remove(v);
        }
        if let Some(r) = own.or(self.run_as) {
            if is_root() && (r.uid != 0 || r.gid != 0) {
                cmd.uid(r.uid).gid(r.gid);
            }
        }
        Ok(cmd)
    }
}

/// Starts a prepared script. "Text file busy" (`ETXTBSY`) is transient — the program is
/// open for writing somewhere: an editor saving it, or, between `fork` and `exec`, a
/// process that another thread was starting while the file was being written — so it is
/// retried a few times (at most ~0.3 s) before it counts as a failure to run.
#[cfg(feature = "run")]
pub async fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut wait = std::time::Duration::from_millis(10);
    for _ in 0..5 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    cmd.spawn()
}

#[cfg(feature = "run")]
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn root_owned_system_programs_are_secure() {
        let root = RunAs { uid: 0, gid: 0 };
        if let Some(sh) = resolve("sh") {
            // Only meaningful where /bin is root's, which it is on every test machine.
            if std::fs::metadata(&sh).is_ok_and(|m| m.uid() == 0) {
                assert_eq!(insecure(&sh, root), None);
            }
        }
        assert_eq!(lookup("root", None), Some(root));
    }

    #[test]
    fn world_writable_scripts_are_refused() {
        let dir = std::env::temp_dir().join(format!("rvs-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let f = dir.join("check.sh");
        std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap_or_default();
        let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777));
        let why = insecure(&f, RunAs { uid: 0, gid: 0 });
        assert!(why.is_some_and(|w| w.contains("check.sh")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
