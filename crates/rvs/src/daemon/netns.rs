//! keepalived's `net_namespace` and `net_namespace_ipvs`: the daemon enters a named
//! network namespace (`ip netns add NAME` makes `/run/netns/NAME`) before it opens
//! anything, and the kernel IPVS plane can talk to the tables of another one. Through
//! rustix's `setns`, which moves the calling thread only: the daemon enters before its
//! runtime starts any thread (they all inherit it), and a socket for another namespace is
//! opened on a short-lived thread of its own (a socket stays in the namespace it was
//! opened in).

use std::path::PathBuf;

/// Where `ip netns` keeps a namespace's handle; an empty name is the host's own (that of
/// process 1), as keepalived reads `net_namespace_ipvs` without a name.
pub fn path(name: &str) -> PathBuf {
    if name.is_empty() {
        PathBuf::from("/proc/1/ns/net")
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

/// Moves the calling thread into the namespace. Call it before any other thread starts.
pub fn enter(name: &str) -> std::io::Result<()> {
    let p = path(name);
    let f = std::fs::File::open(&p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| std::io::Error::other(format!("entering {}: {e}", p.display())))
}

/// Runs `f` on a thread of its own inside the namespace (the caller's stays where it is)
/// and returns what it returns: what `f` opens lives in that namespace.
pub fn run_in<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    std::thread::scope(|s| {
        s.spawn(|| enter(name).map(|()| f()))
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

/// keepalived's file naming (`make_file_name`): `_NAMESPACE` and `_INSTANCE` go before the
/// extension (`/tmp/keepalived.data` → `/tmp/keepalived_ns1_web.data`).
pub fn file_name(base: &str, namespace: Option<&str>, instance: Option<&str>) -> PathBuf {
    let dir_end = base.rfind('/').map_or(0, |i| i + 1);
    let (stem, ext) = match base[dir_end..].rfind('.') {
        Some(i) => base.split_at(dir_end + i),
        None => (base, ""),
    };
    let mut s = stem.to_owned();
    for part in [namespace, instance].into_iter().flatten() {
        s.push('_');
        s.push_str(part);
    }
    s.push_str(ext);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_as_keepalived_names_them() {
        let f = |b, n, i| file_name(b, n, i).display().to_string();
        assert_eq!(
            f("/tmp/keepalived.data", None, None),
            "/tmp/keepalived.data"
        );
        assert_eq!(
            f("/tmp/keepalived.data", Some("ns1"), None),
            "/tmp/keepalived_ns1.data"
        );
        assert_eq!(
            f("/tmp/keepalived.data", Some("ns1"), Some("web")),
            "/tmp/keepalived_ns1_web.data"
        );
        assert_eq!(
            f("/run/rvs/rvs.sock", None, Some("b")),
            "/run/rvs/rvs_b.sock"
        );
        assert_eq!(f("/a.b/file", Some("n"), None), "/a.b/file_n");
    }
}
