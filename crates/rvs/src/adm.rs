//! `rvs adm` (and the binary invoked as `ipvsadm`): ipvsadm's listings of the running
//! daemon's table, fetched through the control API. Listing only for now; the editing
//! commands (`-A -E -D -a -e -d -C -R -S -Z --set`) come with the API's write resources.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use rvs_adm::{Format, ListOpts, Proto, Service, SvcId};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "ipvsadm's command line is a set of independent switches"
)]
pub struct AdmArgs {
    /// List the table (the default command).
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    pub list: bool,
    /// Numeric output (rvs always prints addresses and ports numerically).
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// Counters.
    #[arg(long)]
    pub stats: bool,
    /// Rates.
    #[arg(long)]
    pub rate: bool,
    /// Upper and lower connection thresholds.
    #[arg(long)]
    pub thresholds: bool,
    /// Persistent connection counts.
    #[arg(long = "persistent-conn")]
    pub persistent_conn: bool,
    /// Tunnel information of tunnel real servers.
    #[arg(long = "tun-info")]
    pub tun_info: bool,
    /// Exact numbers (no K/M/G scaling).
    #[arg(short = 'X', long)]
    pub exact: bool,
    /// Kernel order instead of sorted.
    #[arg(long)]
    pub nosort: bool,
    /// Sorted (the default; accepted for compatibility).
    #[arg(long)]
    pub sort: bool,
    /// One TCP service: ADDR:PORT.
    #[arg(short = 't', long = "tcp-service", value_name = "service-address")]
    pub tcp: Option<String>,
    /// One UDP service: ADDR:PORT.
    #[arg(short = 'u', long = "udp-service", value_name = "service-address")]
    pub udp: Option<String>,
    /// One SCTP service: ADDR:PORT.
    #[arg(long = "sctp-service", value_name = "service-address")]
    pub sctp: Option<String>,
    /// One firewall-mark service.
    #[arg(short = 'f', long = "fwmark-service", value_name = "fwmark")]
    pub fwmark: Option<u32>,
    /// IPv6 (with -f).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// The daemon's control socket (default: `$RVS_CONTROL`, else the default socket).
    #[arg(long)]
    pub control: Option<PathBuf>,
}

/// `[v6]:port` or `v4:port`.
fn parse_addrport(s: &str) -> Option<(IpAddr, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip(), sa.port()));
    }
    // ipvsadm accepts a bare address (port 0).
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|a| (a, 0))
}

fn wanted(a: &AdmArgs) -> Result<Option<SvcId>> {
    let one = |proto: Proto, s: &str| -> Result<SvcId> {
        let (addr, port) = parse_addrport(s)
            .with_context(|| format!("illegal virtual server address[:port] specified: {s:?}"))?;
        Ok(SvcId::Addr { proto, addr, port })
    };
    let picked: Vec<SvcId> = [
        a.tcp.as_deref().map(|s| one(Proto::Tcp, s)),
        a.udp.as_deref().map(|s| one(Proto::Udp, s)),
        a.sctp.as_deref().map(|s| one(Proto::Sctp, s)),
        a.fwmark.map(|mark| Ok(SvcId::Fwmark { mark, v6: a.ipv6 })),
    ]
    .into_iter()
    .flatten()
    .collect::<Result<_>>()?;
    if picked.len() > 1 {
        bail!("multiple service types specified");
    }
    Ok(picked.into_iter().next())
}

pub fn run(a: &AdmArgs) -> Result<ExitCode> {
    let _ = (a.list, a.numeric, a.sort);
    let format = if a.stats {
        Format::Stats
    } else if a.rate {
        Format::Rate
    } else if a.thresholds {
        Format::Thresholds
    } else if a.persistent_conn {
        Format::PersistentConn
    } else if a.tun_info {
        Format::TunInfo
    } else {
        Format::Default
    };
    let opts = ListOpts {
        format,
        exact: a.exact,
        nosort: a.nosort,
    };
    let one = wanted(a)?;
    let path = crate::control::client_path(a.control.as_deref());
    let body = crate::control::call(&path, "GET", "/v1/services")?;
    let services: Vec<Service> =
        serde_json::from_str(&body).context("the daemon's table is not valid JSON")?;
    let text = match one {
        None => rvs_adm::list(&services, opts),
        Some(id) => {
            let Some(s) = services.into_iter().find(|s| s.id == id) else {
                eprintln!("No such service");
                return Ok(ExitCode::from(1));
            };
            rvs_adm::list_body(&[s], opts)
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
