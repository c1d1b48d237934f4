//! Carrying the loaded program's state from one rvs to the next (`rvs upgrade`).
//!
//! The old process pins every map and its XDP link in a directory of its own on a BPF
//! file system and describes its slot assignments ([`Carried`]); the new one loads its
//! program *on those maps* (aya reuses a map pinned at the path it is given), then
//! swaps its program into the link with one `BPF_LINK_UPDATE`. No packet is ever
//! without a program, and every flow, persistence template, NAT reply entry, `rr`
//! position and counter is the same object before and after: established connections
//! keep their real server whatever the scheduler.
//!
//! Only maps whose layout is identical on both sides are reused: both sides describe
//! their own object's maps ([`layout`]) and the new one refuses a difference (the old
//! one then takes everything back and goes on). The link is pinned, not passed as a
//! descriptor, because aya opens links only from a pin.
//!
//! Who removes the pins: the old process, once the new one confirmed (or when it takes
//! back); the new one as well once told the old one is done, in case it died between.

use crate::{Xdp, XdpError, OBJECT};
use aya::maps::Array;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::Xdp as XdpProgram;
use aya::EbpfLoader;
use rvs_sched::SvcKey;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `BPF_FS_MAGIC` (statfs(2)).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The pin of the XDP link, beside the maps'.
const LINK_PIN: &str = "link";

/// One map as the object defines it (with the flow table's size as loaded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MapLayout {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// The inner map's (type, key size, value size, entries) of a map of maps.
    pub inner: Option<(u32, u32, u32, u32)>,
}

/// The slot assignments the maps' contents refer to.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Slots {
    pub services: Vec<(SvcKey, u32)>,
    pub free_services: Vec<u32>,
    pub next_service: u32,
    /// (service id, address, port, slot).
    pub reals: Vec<(u32, IpAddr, u16, u32)>,
    pub next_real: u32,
    /// (slot, milliseconds since it was retired).
    pub retired: Vec<(u32, u64)>,
    /// FULLNAT local addresses and their slots.
    #[serde(default)]
    pub laddrs: Vec<(IpAddr, u32)>,
}

/// What the old process hands over: where its maps and link are pinned, the maps'
/// layout, the interface, and the slots.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Carried {
    pub dir: PathBuf,
    pub iface: String,
    pub layout: Vec<MapLayout>,
    pub slots: Slots,
}

/// The maps of the embedded object, the flow table sized `flows` as [`Xdp::load`] sizes it.
pub fn layout(flows: u32) -> Result<Vec<MapLayout>, XdpError> {
    if OBJECT.is_empty() {
        return Err(XdpError::NotBuilt);
    }
    let obj = aya_obj::Object::parse(OBJECT).map_err(|e| XdpError::Carry(e.to_string()))?;
    let mut out: Vec<MapLayout> = obj
        .maps
        .iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .map(|(name, m)| MapLayout {
            name: name.clone(),
            map_type: m.map_type(),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: if name == "flows" {
                flows.max(1024)
            } else {
                m.max_entries()
            },
            flags: m.map_flags(),
            inner: m
                .inner()
                .map(|i| (i.map_type(), i.key_size(), i.value_size(), i.max_entries())),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether `dir`'s parent is on a BPF file system.
#[allow(
    clippy::useless_conversion,
    reason = "f_type's type differs between architectures"
)]
fn on_bpffs(dir: &Path) -> bool {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    rustix::fs::statfs(parent).is_ok_and(|s| i64::from(s.f_type) == BPF_FS_MAGIC)
}

/// Removes a pin directory (the pins in it first); gone already is fine.
pub fn remove_pins(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The name of the directory an rvs with this pid pins its program in for an upgrade.
pub fn pin_dir(bpffs: &Path, pid: u32) -> PathBuf {
    bpffs.join(format!("rvs-upgrade-{pid}"))
}

/// Removes (and logs) what an rvs that died during an upgrade left pinned under `bpffs`
/// (a pinned link would keep its program attached for ever).
pub fn remove_stale_pins(bpffs: &Path) {
    let Ok(rd) = std::fs::read_dir(bpffs) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rvs-upgrade-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_pins(&e.path());
            tracing::warn!(
                "removed {}: an rvs that died during an upgrade left its XDP program pinned there",
                e.path().display()
            );
        }
    }
}

impl Xdp {
    /// The old side: pins every map and the link under `dir` (a new directory on a BPF
    /// file system) and describes the slots. The program stays attached and keeps
    /// forwarding. Undo with [`Xdp::release_pins`].
    pub fn pin_for_upgrade(&mut self, dir: &Path) -> Result<Carried, XdpError> {
        let iface = self
            .iface
            .clone()
            .ok_or_else(|| XdpError::Carry("the program is not attached".into()))?;
        if !on_bpffs(dir) {
            return Err(XdpError::Carry(format!(
                "{} is not on a BPF file system (systemd mounts one on /sys/fs/bpf; \
                 else: mount -t bpf bpf /sys/fs/bpf, or --bpffs DIR)",
                dir.parent().unwrap_or(Path::new("/")).display()
            )));
        }
        if !self.by_bpf_link {
            // Taking a netlink attachment out of aya to find out would detach it.
            return Err(XdpError::Carry(
                "the program is attached through netlink, not a BPF link (the kernel \
                 refused bpf_link_create): it cannot be handed over"
                    .into(),
            ));
        }
        let layout = layout(self.flows_max)?;
        remove_stale_pins(dir.parent().unwrap_or(Path::new("/")));
        remove_pins(dir);
        std::fs::create_dir(dir)
            .map_err(|e| XdpError::Carry(format!("creating {}: {e}", dir.display())))?;
        if let Err(e) = self.pin_all(dir, &layout) {
            // A link already pinned is taken back; else only the map pins go.
            if self.pinned.is_some() {
                let _ = self.release_pins(false);
            }
            remove_pins(dir);
            return Err(e);
        }
        let now = Instant::now();
        let slots = Slots {
            services: self.svc_ids.iter().map(|(k, v)| (*k, *v)).collect(),
            free_services: self.free_svc.clone(),
            next_service: self.next_svc,
            reals: self
                .real_ids
                .iter()
                .map(|((s, a, p), slot)| (*s, *a, *p, *slot))
                .collect(),
            next_real: self.next_real,
            retired: self
                .retired
                .iter()
                .map(|(slot, t)| {
                    let ms = now.duration_since(*t).as_millis();
                    (*slot, u64::try_from(ms).unwrap_or(u64::MAX))
                })
                .collect(),
            laddrs: self.laddr_ids.iter().map(|(a, s)| (*a, *s)).collect(),
        };
        Ok(Carried {
            dir: dir.to_path_buf(),
            iface,
            layout,
            slots,
        })
    }

    fn pin_all(&mut self, dir: &Path, layout: &[MapLayout]) -> Result<(), XdpError> {
        for m in layout {
            let map = self
                .ebpf
                .map(&m.name)
                .ok_or_else(|| XdpError::Carry(format!("no map {}", m.name)))?;
            map.pin(dir.join(&m.name))
                .map_err(|e| XdpError::Carry(format!("pinning map {}: {e}", m.name)))?;
        }
        // The maps are pinned in this directory already, so the link's pin cannot fail
        // for want of a BPF file system (a failed pin would close the link).
        let id = self
            .link
            .take()
            .ok_or_else(|| XdpError::Carry("the program has no link".into()))?;
        let prog: &mut XdpProgram = self
            .ebpf
            .program_mut(self.prog)
            .ok_or(XdpError::Missing("program rvs_lb"))?
            .try_into()?;
        let link = prog.take_link(id)?;
        let fd = match FdLink::try_from(link) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(XdpError::Carry(format!(
                    "the program is attached through netlink, not a BPF link ({e}): it \
                     cannot be handed over"
                )))
            }
        };
        match fd.pin(dir.join(LINK_PIN)) {
            Ok(p) => {
                self.pinned = Some((dir.to_path_buf(), p));
                Ok(())
            }
            Err(e) => Err(XdpError::Carry(format!("pinning the XDP link: {e}"))),
        }
    }

    /// The old side, after the hand-over: removes the pins; the link is dropped when
    /// `handed_over` (the successor holds it), else this program takes it back (its own
    /// program again in it, should the successor have swapped its in before failing).
    pub fn release_pins(&mut self, handed_over: bool) -> Result<(), XdpError> {
        let Some((dir, p)) = self.pinned.take() else {
            return Ok(());
        };
        remove_pins(&dir);
        let fd = FdLink::from(p);
        if handed_over {
            return Ok(());
        }
        let link = XdpLink::try_from(fd)
            .map_err(|e| XdpError::Carry(format!("taking the XDP link back: {e}")))?;
        let prog: &mut XdpProgram = self
            .ebpf
            .program_mut(self.prog)
            .ok_or(XdpError::Missing("program rvs_lb"))?
            .try_into()?;
        self.link = Some(prog.attach_to_link(link)?);
        self.by_bpf_link = true;
        Ok(())
    }

    /// The new side: loads the program on the maps `c` pinned and swaps it into the
    /// link, continuing the old process's slots. Refused when the interface or any
    /// map's layout differs.
    pub fn load_carried(opts: &crate::Options, c: &Carried) -> Result<Xdp, XdpError> {
        if opts.iface.as_deref() != Some(c.iface.as_str()) {
            return Err(XdpError::Carry(format!(
                "the running rvs forwards on {}, this one would on {}",
                c.iface,
                opts.iface.as_deref().unwrap_or("no interface")
            )));
        }
        let mine = layout(opts.flows)?;
        if mine != c.layout {
            let differs: Vec<&str> = mine
                .iter()
                .filter(|m| !c.layout.contains(m))
                .map(|m| m.name.as_str())
                .chain(
                    c.layout
                        .iter()
                        .filter(|m| !mine.iter().any(|x| x.name == m.name))
                        .map(|m| m.name.as_str()),
                )
                .collect();
            return Err(XdpError::Carry(format!(
                "the maps of the running program differ from this one's ({}): its flows \
                 cannot be carried; stop and start instead",
                differs.join(", ")
            )));
        }
        let mut loader = EbpfLoader::new();
        loader.map_max_entries("flows", opts.flows.max(1024));
        let paths: Vec<(String, PathBuf)> = c
            .layout
            .iter()
            .map(|m| (m.name.clone(), c.dir.join(&m.name)))
            .collect();
        for (name, path) in &paths {
            loader.map_pin_path(name.as_str(), path.as_path());
        }
        let mut ebpf = loader.load(OBJECT)?;
        crate::load_clock(&mut ebpf)?;
        let name = "rvs_lb";
        let prog: &mut XdpProgram = ebpf
            .program_mut(name)
            .ok_or(XdpError::Missing("program rvs_lb"))?
            .try_into()?;
        prog.load()?;
        let pinned = PinnedLink::from_pin(c.dir.join(LINK_PIN))
            .map_err(|e| XdpError::Carry(format!("opening the XDP link: {e}")))?;
        let link = XdpLink::try_from(FdLink::from(pinned))
            .map_err(|e| XdpError::Carry(format!("the pinned link: {e}")))?;
        let link = prog.attach_to_link(link)?;
        let mut x = Xdp::with(ebpf, name, opts, Some(link), true);
        let cfg: Array<_, crate::maps::Config> =
            Array::try_from(x.ebpf.map("cfg").ok_or(XdpError::Missing("cfg"))?)?;
        x.cfg = cfg.get(&0, 0)?;
        let s = &c.slots;
        x.svc_ids = s.services.iter().copied().collect();
        // What the `vips` map holds: a service the new config drops is removed from it.
        x.applied = s
            .services
            .iter()
            .filter_map(|(k, _)| crate::vip_key(*k).map(|v| (*k, v)))
            .collect();
        x.free_svc.clone_from(&s.free_services);
        x.next_svc = s.next_service;
        x.real_ids = s
            .reals
            .iter()
            .map(|(v, a, p, r)| ((*v, *a, *p), *r))
            .collect();
        x.next_real = s.next_real;
        let now = Instant::now();
        x.retired = s
            .retired
            .iter()
            .map(|(slot, ms)| {
                let t = now.checked_sub(Duration::from_millis(*ms)).unwrap_or(now);
                (*slot, t)
            })
            .collect();
        x.laddr_ids = s.laddrs.iter().copied().collect();
        Ok(x)
    }
}
