//! The system's name lookups for `rvs adm` without `-n`, as ipvsadm makes them: host names
//! by reverse lookup (`getnameinfo` with `NI_NAMEREQD`: /etc/hosts, then DNS, per NSS),
//! service names from /etc/services (the first entry for a port and protocol, as
//! `getservbyport`), and the reverse for the command line (`getservbyname`, and
//! `gethostbyname`, IPv4 only).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs as _};

#[derive(Default)]
pub struct SystemNames {
    /// (name, port, proto) in file order; aliases share the entry's port.
    services: Vec<(String, u16, String)>,
    hosts: RefCell<HashMap<IpAddr, Option<String>>>,
}

impl SystemNames {
    pub fn new() -> SystemNames {
        let mut services = Vec::new();
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            let (Some(name), Some(pp)) = (w.next(), w.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            services.push((name.to_owned(), port, proto.to_owned()));
            for alias in w {
                services.push((alias.to_owned(), port, proto.to_owned()));
            }
        }
        SystemNames {
            services,
            hosts: RefCell::default(),
        }
    }
}

fn reverse(a: IpAddr) -> Option<String> {
    let sa = socket2::SockAddr::from(SocketAddr::new(a, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid socket address of the length it reports; `host` is a live
    // buffer of the length passed; no service buffer is requested (null, 0). getnameinfo
    // writes a NUL-terminated string into `host` on success.
    let r = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            u32::try_from(host.len()).unwrap_or(1025),
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: on success `host` holds a NUL-terminated string within its length.
    let c = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    c.to_str().ok().map(str::to_owned)
}

impl rvs_adm::Names for SystemNames {
    fn host_of(&self, a: IpAddr) -> Option<String> {
        self.hosts
            .borrow_mut()
            .entry(a)
            .or_insert_with(|| reverse(a))
            .clone()
    }

    fn service_of(&self, port: u16, proto: &str) -> Option<String> {
        self.services
            .iter()
            .find(|(_, p, pr)| *p == port && pr == proto)
            .map(|(n, _, _)| n.clone())
    }

    fn addr_of(&self, host: &str) -> Option<Ipv4Addr> {
        (host, 0)
            .to_socket_addrs()
            .ok()?
            .find_map(|s| match s.ip() {
                IpAddr::V4(v) => Some(v),
                IpAddr::V6(_) => None,
            })
    }

    fn port_of(&self, name: &str, proto: &str) -> Option<u16> {
        self.services
            .iter()
            .find(|(n, _, pr)| n == name && pr == proto)
            .map(|(_, p, _)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_adm::Names as _;

    #[test]
    fn services_and_hosts_from_the_system_files() {
        let n = SystemNames::new();
        if n.services.is_empty() {
            return; // no /etc/services on this system
        }
        assert_eq!(n.service_of(80, "tcp").as_deref(), Some("http"));
        assert_eq!(n.port_of("https", "tcp"), Some(443));
        assert_eq!(n.service_of(65_000, "tcp"), None);
        assert_eq!(n.addr_of("localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            n.host_of(IpAddr::from([127, 0, 0, 1])).as_deref(),
            Some("localhost")
        );
    }
}
