//! A virtual service and its destinations, with the kernel's list semantics: new
//! destinations go to the **head** of the list (iteration is newest first), deleted ones
//! leave the list but stay in the arena (the kernel's "trash") while connections use them.

use crate::hash::HashVariant;
use crate::sched::{Algo, Sched};
use std::net::IpAddr;

/// Index of a destination in its service's arena. Stable for the service's lifetime.
pub type DestId = u32;

pub use rvs_types::{Fwd, Tun};

/// Which kernel behaviour to reproduce where kernels differ (spec §0.3, §0.4, §0.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    /// [NEW] `256·A + total` (Linux 6.1.183+ stable) vs [CLASSIC] `256·A + I`.
    pub overhead_new: bool,
    pub hash: HashVariant,
}

impl Default for Compat {
    /// Current stable kernels (Linux 6.1.192, Debian 12): NEW overhead, modern `hash_32`.
    fn default() -> Self {
        Compat {
            overhead_new: true,
            hash: HashVariant::Modern,
        }
    }
}

/// A destination (real server) and the counters the schedulers read.
#[derive(Debug, Clone)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    /// Encapsulation when `fwd` is `Tunnel`.
    pub tun: Tun,
    pub weight: i32,
    /// The latest non-zero weight (used by `mh`).
    pub last_weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub overloaded: bool,
    /// False once deleted (in the trash): schedulers skip it, its connections may live on.
    pub available: bool,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates pointing at this destination.
    pub persist: u32,
}

impl Dest {
    pub fn new(addr: IpAddr, port: u16, weight: i32, fwd: Fwd) -> Dest {
        Dest {
            addr,
            port,
            fwd,
            tun: Tun::default(),
            weight,
            last_weight: weight,
            u_threshold: 0,
            l_threshold: 0,
            overloaded: false,
            available: true,
            active: 0,
            inactive: 0,
            persist: 0,
        }
    }

    /// Non-template connections (the kernel's totalconns).
    pub fn conns(&self) -> u32 {
        self.active + self.inactive
    }

    /// `ip_vs_dest_conn_overhead`, in the kernel's C `int`.
    pub fn overhead(&self, c: Compat) -> i64 {
        let a = i64::from(self.active);
        if c.overhead_new {
            (a << 8) + i64::from(self.conns())
        } else {
            (a << 8) + i64::from(self.inactive)
        }
    }

    fn l_threshold_val(&self) -> u32 {
        if self.l_threshold != 0 {
            self.l_threshold
        } else {
            self.u_threshold - (self.u_threshold >> 2)
        }
    }
}

/// Scheduler flags (`-b`): `sh-fallback`/`mh-fallback` = SCHED1, `sh-port`/`mh-port` = SCHED2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub fallback: bool,
    pub port: bool,
    pub sched3: bool,
    /// One-packet scheduling (UDP only).
    pub ops: bool,
}

/// The service's identity and protocol: the shared vocabulary of `rvs-types`.
pub use rvs_types::{Proto, SvcKey};

/// Persistence: template timeout and client netmask (prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    pub timeout_s: u32,
    pub prefix: u8,
}

/// What the scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy)]
pub struct PktInfo {
    pub proto: Proto,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

#[derive(Debug)]
pub struct Service {
    pub key: SvcKey,
    pub flags: Flags,
    pub persistence: Option<Persistence>,
    pub compat: Compat,
    /// Deleted from the configuration: no new connections; existing ones drain.
    pub removed: bool,
    arena: Vec<Dest>,
    /// Every arena entry by (address, port): each pair is in the arena at most once (a
    /// deleted destination is reused when added again), so lookups are O(1) and a service
    /// with 100k destinations is built in linear time, not quadratic.
    index: std::collections::HashMap<(IpAddr, u16), DestId>,
    /// The live list, head first (newest first).
    order: Vec<DestId>,
    sched: Sched,
}

/// Errors editing a service's destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcError {
    DestExists,
    NoSuchDest,
    /// mh cannot hold more destinations than table slots.
    TooManyDests {
        max: usize,
    },
}

impl std::fmt::Display for SvcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SvcError::DestExists => f.write_str("destination already exists"),
            SvcError::NoSuchDest => f.write_str("no such destination"),
            SvcError::TooManyDests { max } => {
                write!(f, "the mh table holds at most {max} destinations")
            }
        }
    }
}

impl std::error::Error for SvcError {}

impl Service {
    pub fn new(key: SvcKey, algo: Algo, flags: Flags, compat: Compat) -> Service {
        Service {
            key,
            flags,
            persistence: None,
            compat,
            removed: false,
            arena: Vec::new(),
            index: std::collections::HashMap::new(),
            order: Vec::new(),
            sched: Sched::new(algo, crate::sched::MH_DEFAULT_TABLE),
        }
    }

    /// Sets the Maglev table size (a prime; rvs extension, default 4093).
    pub fn set_mh_table_size(&mut self, m: usize) {
        if m == self.sched.mh_size() {
            return;
        }
        self.sched = Sched::new(self.sched.algo(), m);
        self.sched
            .rebuild(&self.arena, &self.order, self.compat, Change::Init);
    }

    pub fn algo(&self) -> Algo {
        self.sched.algo()
    }

    /// The lookup table of dh, sh and mh.
    pub fn table(&self) -> Option<&[Option<DestId>]> {
        self.sched.table()
    }

    /// Changes the scheduler (`-E -s`): the old state is dropped, the new one built.
    pub fn set_algo(&mut self, algo: Algo) {
        if algo != self.sched.algo() {
            self.sched = Sched::new(algo, self.sched.mh_size());
            self.sched
                .rebuild(&self.arena, &self.order, self.compat, Change::Init);
        }
    }

    /// Adds a destination at the head of the list (a trashed one with the same address
    /// and port is resurrected, counters intact, as the kernel does).
    pub fn add_dest(&mut self, d: Dest) -> Result<DestId, SvcError> {
        if self.find(d.addr, d.port).is_some() {
            return Err(SvcError::DestExists);
        }
        if self.sched.algo() == Algo::Mh && self.order.len() >= self.sched.mh_size() {
            return Err(SvcError::TooManyDests {
                max: self.sched.mh_size(),
            });
        }
        let parked = self
            .index
            .get(&(d.addr, d.port))
            .map(|id| *id as usize)
            .filter(|i| !self.arena[*i].available);
        let id = if let Some(i) = parked {
            let old = &mut self.arena[i];
            old.available = true;
            old.weight = d.weight;
            old.last_weight = d.weight;
            old.fwd = d.fwd;
            old.u_threshold = d.u_threshold;
            old.l_threshold = d.l_threshold;
            old.overloaded = false;
            id_of(i)
        } else {
            let key = (d.addr, d.port);
            self.arena.push(d);
            let id = id_of(self.arena.len() - 1);
            self.index.insert(key, id);
            id
        };
        self.order.insert(0, id);
        self.sched
            .rebuild(&self.arena, &self.order, self.compat, Change::Add);
        Ok(id)
    }

    /// Changes a destination's forwarding method (`-e -g/-m/-i`).
    pub fn set_fwd(&mut self, id: DestId, fwd: Fwd) {
        if let Some(d) = self.arena.get_mut(id as usize) {
            d.fwd = fwd;
        }
    }

    /// Sets a destination's connection counts from another data plane (the kernel's
    /// IPVS, mirrored for listings); the scheduler's own bookkeeping does not run here.
    pub fn set_conn_counts(&mut self, id: DestId, active: u32, inactive: u32, persist: u32) {
        if let Some(d) = self.arena.get_mut(id as usize) {
            d.active = active;
            d.inactive = inactive;
            d.persist = persist;
        }
    }

    pub fn set_tun(&mut self, id: DestId, tun: Tun) {
        if let Some(d) = self.arena.get_mut(id as usize) {
            d.tun = tun;
        }
    }

    /// Edits weight and thresholds (`-e`): the position in the list is kept.
    pub fn edit_dest(&mut self, id: DestId, weight: i32, u: u32, l: u32) -> Result<(), SvcError> {
        if !self.order.contains(&id) {
            return Err(SvcError::NoSuchDest);
        }
        let d = &mut self.arena[id as usize];
        if weight != 0 {
            d.last_weight = weight;
        }
        d.weight = weight;
        if u == 0 || u > d.u_threshold {
            d.overloaded = false;
        }
        d.u_threshold = u;
        d.l_threshold = l;
        if self.compat.overhead_new && u != 0 {
            // [NEW] threshold edit: set if conns >= u, clear if below l_val, else keep.
            if d.conns() >= u {
                d.overloaded = true;
            } else if d.conns() < d.l_threshold_val() {
                d.overloaded = false;
            }
        }
        self.sched
            .rebuild(&self.arena, &self.order, self.compat, Change::Update);
        Ok(())
    }

    /// Deletes a destination (`-d`): it leaves the list; connections keep it as unavailable.
    pub fn del_dest(&mut self, id: DestId) -> Result<(), SvcError> {
        let Some(pos) = self.order.iter().position(|x| *x == id) else {
            return Err(SvcError::NoSuchDest);
        };
        self.sched.before_delete(&self.order, pos);
        self.order.remove(pos);
        self.arena[id as usize].available = false;
        self.sched
            .rebuild(&self.arena, &self.order, self.compat, Change::Del);
        Ok(())
    }

    /// The live destination at (address, port).
    pub fn find(&self, addr: IpAddr, port: u16) -> Option<DestId> {
        self.index
            .get(&(addr, port))
            .copied()
            .filter(|id| self.arena[*id as usize].available)
    }

    pub fn dest(&self, id: DestId) -> &Dest {
        &self.arena[id as usize]
    }

    /// The live destinations in list order (newest first).
    pub fn dests(&self) -> impl Iterator<Item = (DestId, &Dest)> {
        self.order.iter().map(|id| (*id, &self.arena[*id as usize]))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Picks a destination for a new connection. `now_ms` drives lblc/lblcr cache expiry;
    /// `rand` supplies `twos`'s random numbers.
    pub fn schedule(
        &mut self,
        pkt: &PktInfo,
        now_ms: u64,
        rand: &mut dyn FnMut() -> u32,
    ) -> Option<DestId> {
        let ctx = crate::sched::Ctx {
            arena: &self.arena,
            order: &self.order,
            compat: self.compat,
            flags: self.flags,
            now_ms,
        };
        self.sched.schedule(&ctx, pkt, rand)
    }

    /// A connection is bound to `id` (kernel `ip_vs_bind_dest`).
    pub fn bind(&mut self, id: DestId, template: bool) {
        let new = self.compat.overhead_new;
        let d = &mut self.arena[id as usize];
        if template {
            d.persist += 1;
            return;
        }
        d.inactive += 1;
        if d.u_threshold != 0 {
            if new {
                if d.conns() == d.u_threshold {
                    d.overloaded = true;
                }
            } else if d.conns() >= d.u_threshold {
                d.overloaded = true;
            }
        }
    }

    /// A connection is released from `id` (kernel `ip_vs_unbind_dest`).
    pub fn unbind(&mut self, id: DestId, template: bool, active: bool) {
        let new = self.compat.overhead_new;
        let d = &mut self.arena[id as usize];
        if template {
            d.persist = d.persist.saturating_sub(1);
            return;
        }
        let before = d.conns();
        if active {
            d.active = d.active.saturating_sub(1);
        } else {
            d.inactive = d.inactive.saturating_sub(1);
        }
        if new {
            if d.u_threshold == 0 || before == d.l_threshold_val() {
                d.overloaded = false;
            }
        } else if d.l_threshold != 0 {
            if d.conns() < d.l_threshold {
                d.overloaded = false;
            }
        } else if d.u_threshold != 0 {
            if u64::from(d.conns()) * 4 < u64::from(d.u_threshold) * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
    }

    /// A connection moved between active and inactive (TCP state change).
    pub fn set_active(&mut self, id: DestId, active: bool) {
        let d = &mut self.arena[id as usize];
        if active {
            d.inactive = d.inactive.saturating_sub(1);
            d.active += 1;
        } else {
            d.active = d.active.saturating_sub(1);
            d.inactive += 1;
        }
    }
}

fn id_of(i: usize) -> DestId {
    DestId::try_from(i).unwrap_or(DestId::MAX)
}

/// What changed in the destination list (schedulers rebuild their state on some).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Init,
    Add,
    Del,
    Update,
}
