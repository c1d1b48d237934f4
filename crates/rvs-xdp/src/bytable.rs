//! Forwarding by the table alone ([`crate::Options::by_table`]): userspace's half.
//!
//! For a hashing scheduler (`mh`, `sh`, `dh`) a flow's real server is its table slot's,
//! so the program forwards without a flow lookup — the lookup that misses the CPU's
//! caches once the flow table is large — and consults the flow table only for slots
//! marked `SLOT_CHANGED`. The invariant (`bpf/lb.bpf.c`, above `changes`): every live
//! flow whose real server is not its slot's is recorded in `flows`, and its slot is
//! marked with a `changes` entry whose `dirty_until` is at least the flow's expiry.
//!
//! Userspace keeps it across its own changes: a slot whose real server changes gets
//! its entry (the earlier real server as `prev` until every unrecorded flow from before
//! may have timed out, `dirty_until` as long) *before* its new value with the mark;
//! adopted flows mark their slot; marks whose `dirty_until` has passed are cleared (the
//! program marks again whatever it records going elsewhere). All times are jiffies.

use crate::maps::{self, Change, ChangeKey};
use crate::{Xdp, XdpError};
use aya::maps::{Array, ArrayOfMaps, HashMap as BpfHashMap, MapData, MapError};
use rvs_sched::hash::{addr_fold, hash_32, hsiphash_u32, HashVariant};
use std::collections::HashSet;
use std::net::SocketAddr;

/// The slot a hashing scheduler looks at first for a flow, as the program computes it
/// (`first_slot` in `bpf/lb.bpf.c`).
pub(crate) fn first_slot(
    sched: u32,
    flags: u32,
    len: u32,
    client: SocketAddr,
    vip: std::net::IpAddr,
) -> u32 {
    let port = if flags & maps::SF_PORT != 0 {
        u32::from(client.port())
    } else {
        0
    };
    match sched {
        maps::SCHED_MH => {
            let base = port.wrapping_add(addr_fold(client.ip()));
            hsiphash_u32(base, rvs_sched::sched::MH_KEY1) % len.max(1)
        }
        maps::SCHED_SH => {
            hash_32(
                port.wrapping_add(addr_fold(client.ip())),
                8,
                HashVariant::Modern,
            ) & 0xff
        }
        _ => hash_32(addr_fold(vip), 8, HashVariant::Modern) & 0xff,
    }
}

/// What [`Xdp::sweep_changes`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Services forwarded by their table.
    pub services: usize,
    /// Their slots whose flows are looked up: changed within the flows' timeout, or
    /// holding flows that go elsewhere.
    pub changed: usize,
    /// Marks cleared by this sweep (their flows have ended).
    pub cleared: usize,
}

/// Slot `k`'s `changes` entry, or an empty one.
fn entry_or_default(
    changes: &BpfHashMap<&mut MapData, ChangeKey, Change>,
    k: ChangeKey,
) -> Result<Change, XdpError> {
    match changes.get(&k, 0) {
        Ok(c) => Ok(c),
        Err(MapError::KeyNotFound) => Ok(Change::default()),
        Err(e) => Err(e.into()),
    }
}

impl Xdp {
    /// The longest a TCP flow may stay idle (jiffies): how long the unrecorded flows of
    /// a changed slot may live on.
    fn tcp_window(&self) -> u64 {
        self.cfg.timeout_tcp.max(self.cfg.timeout_tcpfin)
    }

    /// The live table of service `id` (the program's, with its marks).
    fn live_table(&self, id: u32) -> Result<Array<MapData, u32>, XdpError> {
        let outer: ArrayOfMaps<&MapData, Array<MapData, u32>> =
            ArrayOfMaps::try_from(self.ebpf.map("tables").ok_or(XdpError::Missing("tables"))?)?;
        Ok(outer.get(&id, 0)?)
    }

    fn changes_mut(&mut self) -> Result<BpfHashMap<&mut MapData, ChangeKey, Change>, XdpError> {
        Ok(BpfHashMap::try_from(self.map_mut("changes")?)?)
    }

    fn change_entries(&self) -> Result<Vec<(ChangeKey, Change)>, XdpError> {
        let m: BpfHashMap<&MapData, ChangeKey, Change> = BpfHashMap::try_from(
            self.ebpf
                .map("changes")
                .ok_or(XdpError::Missing("changes"))?,
        )?;
        // An entry removed between the key walk and its lookup is skipped.
        Ok(m.iter().filter_map(Result::ok).collect())
    }

    /// Rewrites the slots of service `id` that differ between `old` and `new` (same
    /// length) in its live table, each entry of `changes` first; the count.
    pub(crate) fn change_slots(
        &mut self,
        id: u32,
        old: &[u32],
        new: &[u32],
    ) -> Result<usize, XdpError> {
        let now = self.jiffies()?;
        let window = self.tcp_window();
        let slots: Vec<u32> = old
            .iter()
            .zip(new)
            .enumerate()
            .filter(|(_, (o, n))| o != n)
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        {
            let mut changes = self.changes_mut()?;
            for &slot in &slots {
                let k = ChangeKey { svc: id, slot };
                let mut c = entry_or_default(&changes, k)?;
                // The flows nobody recorded went to the slot's real server since its
                // last change's window closed; within that window they are the earlier
                // ones', and every flow since was recorded (the slot was marked).
                if c.prev_until <= now {
                    c.prev = old[slot as usize];
                    c.prev_until = now + window;
                }
                c.dirty_until = c.dirty_until.max(now + window);
                changes.insert(k, c, 0)?;
            }
        }
        let mut live = self.live_table(id)?;
        for &slot in &slots {
            live.set(slot, new[slot as usize] | maps::SLOT_CHANGED, 0)?;
        }
        self.tables.insert(id, new.to_vec());
        Ok(slots.len())
    }

    /// The slots of service `id` with a live `changes` entry: marked again when its
    /// table is replaced whole.
    pub(crate) fn marked_slots(&self, id: u32) -> Result<HashSet<u32>, XdpError> {
        let now = self.jiffies()?;
        Ok(self
            .change_entries()?
            .into_iter()
            .filter(|(k, c)| k.svc == id && (c.dirty_until > now || c.prev_until > now))
            .map(|(k, _)| k.slot)
            .collect())
    }

    /// Drops the `changes` entries of a removed service (its id may be reused).
    pub(crate) fn forget_changes(&mut self, id: u32) -> Result<(), XdpError> {
        let gone: Vec<ChangeKey> = self
            .change_entries()?
            .into_iter()
            .filter(|(k, _)| k.svc == id)
            .map(|(k, _)| k)
            .collect();
        self.remove_changes(gone)
    }

    /// Removes these `changes` entries (one already gone is no error).
    fn remove_changes(&mut self, keys: Vec<ChangeKey>) -> Result<(), XdpError> {
        let mut changes = self.changes_mut()?;
        for k in keys {
            match changes.remove(&k) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Marks the slot of an adopted flow (to `real`) of a service forwarded by table,
    /// live until `until` (jiffies), unless the slot's real server is the flow's: the
    /// flow goes where the director it came from sent it, which may not be this table's
    /// choice.
    pub(crate) fn mark_adopted(
        &mut self,
        id: u32,
        (client, vip): (SocketAddr, std::net::IpAddr),
        real: u32,
        until: u64,
    ) -> Result<(), XdpError> {
        let Some(&(sched, flags)) = self.by_table_svc.get(&id) else {
            return Ok(());
        };
        let Some(table) = self.tables.get(&id) else {
            return Ok(());
        };
        let len = u32::try_from(table.len()).unwrap_or(0);
        let slot = first_slot(sched, flags, len, client, vip);
        if table.get(slot as usize) == Some(&(real + 1)) {
            return Ok(());
        }
        {
            let mut changes = self.changes_mut()?;
            let k = ChangeKey { svc: id, slot };
            let mut c = entry_or_default(&changes, k)?;
            c.dirty_until = c.dirty_until.max(until);
            changes.insert(k, c, 0)?;
        }
        let mut live = self.live_table(id)?;
        let v = live.get(&slot, 0)?;
        if v & maps::SLOT_CHANGED == 0 {
            live.set(slot, v | maps::SLOT_CHANGED, 0)?;
        }
        Ok(())
    }

    /// Marks the slots of service `id`'s live recorded flows that go elsewhere than
    /// their slot, until each may time out: the service is about to be forwarded by its
    /// table, and until now every flow was looked up (those of a fallback, adopted
    /// ones, persistence's). A walk of the flow table, once per such change.
    pub(crate) fn mark_recorded(&mut self, id: u32) -> Result<(), XdpError> {
        let now = self.jiffies()?;
        let live: BpfHashMap<&MapData, maps::FlowKey, maps::Flow> =
            BpfHashMap::try_from(self.ebpf.map("flows").ok_or(XdpError::Missing("flows"))?)?;
        let mut found = Vec::new();
        // An entry evicted between the key walk and its lookup is skipped.
        for (k, f) in live.iter().filter_map(Result::ok) {
            let timeout = self.flow_timeout(k.proto, f.fin != 0);
            if f.svc == id && now.saturating_sub(f.last) < timeout {
                let client = crate::sockaddr(k.src, k.family, k.sport);
                let vip = crate::sockaddr(k.dst, k.family, k.dport).ip();
                found.push(((client, vip), f.real, f.last + timeout));
            }
        }
        for (ends, real, until) in found {
            self.mark_adopted(id, ends, real, until)?;
        }
        Ok(())
    }

    /// Clears the marks whose `dirty_until` has passed and drops entries that say
    /// nothing any more. Run about once a second.
    ///
    /// The program extends an entry before it marks the slot, so a mark is cleared
    /// first and the entry read again: extended meanwhile, the mark is put back.
    pub fn sweep_changes(&mut self) -> Result<Sweep, XdpError> {
        let entries = self.change_entries()?;
        let services = self.by_table_svc.len();
        if entries.is_empty() {
            return Ok(Sweep {
                services,
                ..Sweep::default()
            });
        }
        let now = self.jiffies()?;
        let looked_up = entries
            .iter()
            .filter(|(k, c)| c.dirty_until > now && self.by_table_svc.contains_key(&k.svc))
            .count();
        let mut cleared = 0;
        let mut drop = Vec::new();
        // The entries whose flows have ended, by service: each live table opened once.
        let mut due: std::collections::BTreeMap<u32, Vec<(ChangeKey, Change)>> =
            std::collections::BTreeMap::new();
        for (k, c) in entries.into_iter().filter(|(_, c)| c.dirty_until <= now) {
            if self.by_table_svc.contains_key(&k.svc) {
                due.entry(k.svc).or_default().push((k, c));
            } else {
                drop.push(k);
            }
        }
        for (svc, list) in due {
            let mut live = self.live_table(svc)?;
            for (k, c) in list {
                if self.clear_mark(&mut live, k, now)? {
                    cleared += 1;
                }
                if c.prev_until <= now && live.get(&k.slot, 0)? & maps::SLOT_CHANGED == 0 {
                    drop.push(k);
                }
            }
        }
        self.remove_changes(drop)?;
        Ok(Sweep {
            services,
            changed: looked_up,
            cleared,
        })
    }

    /// Clears slot `k`'s mark, unless the program extended its entry meanwhile (it
    /// extends before it marks: cleared first, the entry read again, the mark put back
    /// if extended). Whether a mark was cleared.
    fn clear_mark(
        &mut self,
        live: &mut Array<MapData, u32>,
        k: ChangeKey,
        now: u64,
    ) -> Result<bool, XdpError> {
        let v = live.get(&k.slot, 0)?;
        if v & maps::SLOT_CHANGED == 0 {
            return Ok(false);
        }
        live.set(k.slot, v & maps::SLOT_REAL, 0)?;
        let again = self.changes_mut()?.get(&k, 0).ok();
        if again.is_some_and(|c| c.dirty_until > now) {
            live.set(k.slot, v, 0)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// How many slots are marked now, read slot by slot from the live tables (tests and
    /// benchmarks; `rvs status` counts `changes` entries in [`Xdp::sweep_changes`]).
    pub fn changed_slots(&self) -> Result<usize, XdpError> {
        let mut n = 0;
        for &id in self.by_table_svc.keys() {
            let live = self.live_table(id)?;
            let len = self.tables.get(&id).map_or(0, Vec::len);
            for slot in 0..u32::try_from(len).unwrap_or(0) {
                if live.get(&slot, 0)? & maps::SLOT_CHANGED != 0 {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
