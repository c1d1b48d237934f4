//! The 14 IPVS schedulers, each as the kernel computes it (Linux 6.1; spec
//! `ipvs-schedulers.md`). Iteration is over the destination list head first (newest
//! first), comparisons are strict so ties go to the first destination met.

use crate::hash::{addr_fold, gcd, hash_32, hsiphash_u32};
use crate::service::{Change, Compat, Dest, DestId, Flags, PktInfo, Proto};
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

/// The kernel's default Maglev table size (`CONFIG_IP_VS_MH_TAB_INDEX` 12 → 4093).
pub const MH_DEFAULT_TABLE: usize = 4093;
const MH_TAB_BITS: u32 = 6;
/// The `hsiphash` key of `mh` lookups (and of each destination's offset).
pub const MH_KEY1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const MH_KEY2: (u64, u64) = (2_654_446_892, 2_654_446_892);
const HASH_TAB_BITS: u32 = 8;
const HASH_TAB_SIZE: usize = 1 << HASH_TAB_BITS;
/// lblc/lblcr cache limits and timers (kernel constants and sysctl defaults).
const LBLC_MAX_SIZE: usize = 16384;
const LBLC_CHECK_MS: u64 = 60_000;
const LBLC_EXPIRATION_MS: u64 = 24 * 3600 * 1000;
const LBLC_IDLE_MS: u64 = 6 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Dh,
    Sh,
    Mh,
    Lblc,
    Lblcr,
    Fo,
    Ovf,
    Twos,
}

impl Algo {
    /// The scheduler's name, as ipvsadm prints it.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Rr => "rr",
            Algo::Wrr => "wrr",
            Algo::Lc => "lc",
            Algo::Wlc => "wlc",
            Algo::Sed => "sed",
            Algo::Nq => "nq",
            Algo::Dh => "dh",
            Algo::Sh => "sh",
            Algo::Mh => "mh",
            Algo::Lblc => "lblc",
            Algo::Lblcr => "lblcr",
            Algo::Fo => "fo",
            Algo::Ovf => "ovf",
            Algo::Twos => "twos",
        }
    }

    pub fn from_name(s: &str) -> Option<Algo> {
        Some(match s {
            "rr" => Algo::Rr,
            "wrr" => Algo::Wrr,
            "lc" => Algo::Lc,
            "wlc" => Algo::Wlc,
            "sed" => Algo::Sed,
            "nq" => Algo::Nq,
            "dh" => Algo::Dh,
            "sh" => Algo::Sh,
            "mh" => Algo::Mh,
            "lblc" => Algo::Lblc,
            "lblcr" => Algo::Lblcr,
            "fo" => Algo::Fo,
            "ovf" => Algo::Ovf,
            "twos" => Algo::Twos,
            _ => return None,
        })
    }
}

/// What a scheduler sees of its service.
pub struct Ctx<'a> {
    pub arena: &'a [Dest],
    pub order: &'a [DestId],
    pub compat: Compat,
    pub flags: Flags,
    pub now_ms: u64,
}

impl Ctx<'_> {
    fn d(&self, id: DestId) -> &Dest {
        &self.arena[id as usize]
    }
    fn iter(&self) -> impl Iterator<Item = (DestId, &Dest)> + '_ {
        self.order.iter().map(|id| (*id, &self.arena[*id as usize]))
    }
}

#[derive(Debug)]
struct LblcEntry {
    dest: DestId,
    lastuse: u64,
}

#[derive(Debug)]
struct LblcrEntry {
    /// Most recently inserted first.
    set: Vec<DestId>,
    lastmod: u64,
    lastuse: u64,
}

#[derive(Debug)]
struct LblcCache<E> {
    map: HashMap<IpAddr, E>,
    next_check: u64,
    rover: u32,
}

impl<E> LblcCache<E> {
    fn new() -> Self {
        LblcCache {
            map: HashMap::default(),
            next_check: LBLC_CHECK_MS,
            rover: 0,
        }
    }

    /// The kernel's periodic check (every 60 s): a full expiry scan every 30th run,
    /// otherwise trimming of idle entries while the cache is over its size.
    fn expire(&mut self, now: u64, lastuse: impl Fn(&E) -> u64) {
        while now >= self.next_check {
            let t = self.next_check;
            self.next_check += LBLC_CHECK_MS;
            self.rover += 1;
            if self.rover.is_multiple_of(30) {
                self.map
                    .retain(|_, e| t.saturating_sub(lastuse(e)) < LBLC_EXPIRATION_MS);
                continue;
            }
            let n = self.map.len();
            if n <= LBLC_MAX_SIZE {
                continue;
            }
            let mut goal = ((n - LBLC_MAX_SIZE) * 4 / 3).min(LBLC_MAX_SIZE / 2);
            self.map.retain(|_, e| {
                if goal > 0 && t.saturating_sub(lastuse(e)) >= LBLC_IDLE_MS {
                    goal -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn full(&self) -> bool {
        self.map.len() >= LBLC_MAX_SIZE * 3 / 2
    }
}

#[derive(Debug)]
enum State {
    /// The saved node, with its position as a hint (checked before use).
    Rr {
        last: Option<(DestId, usize)>,
    },
    Wrr {
        cl: Option<usize>,
        cw: i64,
        mw: i64,
        di: i64,
    },
    Plain,
    Table(Vec<Option<DestId>>),
    Lblc(LblcCache<LblcEntry>),
    Lblcr(LblcCache<LblcrEntry>),
}

/// A scheduler with its state.
#[derive(Debug)]
pub struct Sched {
    algo: Algo,
    mh_size: usize,
    state: State,
}

impl Sched {
    pub fn new(algo: Algo, mh_size: usize) -> Sched {
        let state = match algo {
            Algo::Rr => State::Rr { last: None },
            Algo::Wrr => State::Wrr {
                cl: None,
                cw: 0,
                mw: 0,
                di: 1,
            },
            Algo::Dh | Algo::Sh => State::Table(vec![None; HASH_TAB_SIZE]),
            Algo::Mh => State::Table(vec![None; mh_size]),
            Algo::Lblc => State::Lblc(LblcCache::new()),
            Algo::Lblcr => State::Lblcr(LblcCache::new()),
            _ => State::Plain,
        };
        Sched {
            algo,
            mh_size,
            state,
        }
    }

    pub fn algo(&self) -> Algo {
        self.algo
    }

    pub fn mh_size(&self) -> usize {
        self.mh_size
    }

    /// The lookup table of dh, sh and mh (for tests and `rvs sim --explain`).
    pub fn table(&self) -> Option<&[Option<DestId>]> {
        match &self.state {
            State::Table(t) => Some(t),
            _ => None,
        }
    }

    /// rr: a deleted saved node moves the pointer to its predecessor.
    pub fn before_delete(&mut self, order: &[DestId], pos: usize) {
        if let State::Rr { last } = &mut self.state {
            if last.map(|l| l.0) == Some(order[pos]) {
                *last = if pos == 0 {
                    None
                } else {
                    Some((order[pos - 1], pos - 1))
                };
            }
        }
    }

    /// The scheduler hooks (spec §16): which changes rebuild which state.
    pub fn rebuild(&mut self, arena: &[Dest], order: &[DestId], compat: Compat, change: Change) {
        let algo = self.algo;
        let mh_size = self.mh_size;
        match &mut self.state {
            State::Wrr { cl, cw, mw, di } => {
                let g = order
                    .iter()
                    .map(|id| arena[*id as usize].weight)
                    .filter(|w| *w > 0)
                    .fold(0u32, |g, w| gcd(g, w.unsigned_abs()));
                let g = i64::from(g.max(1));
                let max = order
                    .iter()
                    .map(|id| i64::from(arena[*id as usize].weight))
                    .max()
                    .unwrap_or(0);
                *di = g;
                *mw = (max - (g - 1)).max(0);
                *cl = None;
                if change == Change::Init || *cw > *mw || *cw == 0 {
                    *cw = *mw;
                } else if *di > 1 {
                    *cw = (*cw / *di) * *di + 1;
                }
            }
            State::Table(t) => match algo {
                Algo::Dh if change != Change::Update => {
                    for (i, slot) in t.iter_mut().enumerate() {
                        *slot = if order.is_empty() {
                            None
                        } else {
                            Some(order[i % order.len()])
                        };
                    }
                }
                Algo::Sh => sh_fill(t, arena, order),
                Algo::Mh => mh_populate(t, arena, order, mh_size),
                _ => {}
            },
            _ => {}
        }
        let _ = compat;
    }

    pub fn schedule(
        &mut self,
        ctx: &Ctx<'_>,
        pkt: &PktInfo,
        rand: &mut dyn FnMut() -> u32,
    ) -> Option<DestId> {
        let c = ctx.compat;
        let usable = |d: &Dest| !d.overloaded && d.weight > 0;
        match (&mut self.state, self.algo) {
            (State::Rr { last }, _) => rr(ctx, last),
            (State::Wrr { cl, cw, mw, di }, _) => wrr(ctx, cl, cw, *mw, *di),
            (_, Algo::Lc) => {
                let mut best: Option<(DestId, i64)> = None;
                for (id, d) in ctx.iter().filter(|(_, d)| usable(d)) {
                    let oh = d.overhead(c);
                    if best.is_none_or(|(_, b)| oh < b) {
                        best = Some((id, oh));
                    }
                }
                best.map(|b| b.0)
            }
            (_, Algo::Wlc) => weighted_least(ctx, |d| d.overhead(c)),
            (_, Algo::Sed) => weighted_least(ctx, |d| i64::from(d.active) + 1),
            (_, Algo::Nq) => {
                let mut least: Option<(DestId, i64)> = None;
                for (id, d) in ctx.iter().filter(|(_, d)| usable(d)) {
                    let doh = i64::from(d.active) + 1;
                    if d.active == 0 {
                        return Some(id);
                    }
                    match least {
                        Some((l, loh))
                            if loh * i64::from(d.weight) <= doh * i64::from(ctx.d(l).weight) => {}
                        _ => least = Some((id, doh)),
                    }
                }
                least.map(|l| l.0)
            }
            (State::Table(t), Algo::Dh) => {
                let b = hash_32(addr_fold(pkt.dst), HASH_TAB_BITS, c.hash) as usize;
                t[b].filter(|id| {
                    let d = ctx.d(*id);
                    d.available && d.weight > 0 && !d.overloaded
                })
            }
            (State::Table(t), Algo::Sh) => sh_lookup(ctx, t, pkt),
            (State::Table(t), Algo::Mh) => mh_lookup(ctx, t, pkt),
            (State::Lblc(cache), _) => {
                cache.expire(ctx.now_ms, |e| e.lastuse);
                if let Some(e) = cache.map.get_mut(&pkt.dst) {
                    e.lastuse = ctx.now_ms;
                    let d = ctx.d(e.dest);
                    if d.available && d.weight > 0 && !lblc_overloaded(ctx, d) {
                        return Some(e.dest);
                    }
                }
                let dest = weighted_least(ctx, |d| d.overhead(c))?;
                if let Some(e) = cache.map.get_mut(&pkt.dst) {
                    e.dest = dest;
                } else if !cache.full() {
                    cache.map.insert(
                        pkt.dst,
                        LblcEntry {
                            dest,
                            lastuse: ctx.now_ms,
                        },
                    );
                }
                Some(dest)
            }
            (State::Lblcr(cache), _) => lblcr(ctx, cache, pkt),
            (_, Algo::Fo) => {
                let mut best: Option<(DestId, i32)> = None;
                for (id, d) in ctx.iter().filter(|(_, d)| !d.overloaded) {
                    if d.weight > best.map_or(0, |b| b.1) {
                        best = Some((id, d.weight));
                    }
                }
                best.map(|b| b.0)
            }
            (_, Algo::Ovf) => {
                let mut best: Option<(DestId, i32)> = None;
                for (id, d) in ctx.iter() {
                    if d.overloaded || d.weight == 0 || i64::from(d.active) > i64::from(d.weight) {
                        continue;
                    }
                    if best.is_none_or(|b| d.weight > b.1) {
                        best = Some((id, d.weight));
                    }
                }
                best.map(|b| b.0)
            }
            (_, Algo::Twos) => twos(ctx, rand),
            _ => None,
        }
    }
}

fn rr(ctx: &Ctx<'_>, last: &mut Option<(DestId, usize)>) -> Option<DestId> {
    let ok = |id: DestId| {
        let d = ctx.d(id);
        !d.overloaded && d.weight > 0
    };
    // The saved node's position: the hint, unless adds or deletes moved it.
    let start = last.and_then(|(id, hint)| {
        if ctx.order.get(hint) == Some(&id) {
            Some(hint)
        } else {
            ctx.order.iter().position(|x| *x == id)
        }
    });
    // Pass 1: after the saved node to the end of the list.
    let from = start.map_or(0, |p| p + 1);
    for (i, &id) in ctx.order.iter().enumerate().skip(from) {
        if ok(id) {
            *last = Some((id, i));
            return Some(id);
        }
    }
    // Pass 2 (only when the walk did not start at the head): from the head up to and
    // including the saved node.
    if let Some(p) = start {
        for (i, &id) in ctx.order[..=p].iter().enumerate() {
            if ok(id) {
                *last = Some((id, i));
                return Some(id);
            }
        }
    }
    None
}

fn wrr(ctx: &Ctx<'_>, cl: &mut Option<usize>, cw: &mut i64, mw: i64, di: i64) -> Option<DestId> {
    if mw == 0 {
        return None;
    }
    let n = ctx.order.len();
    let last = *cl;
    let mut stop: Option<usize> = None;
    let mut last_pass = false;
    let mut restarted = false;
    let mut pos = *cl; // None = the list head
    loop {
        let from = pos.map_or(0, |p| p + 1);
        for i in from..n {
            let d = ctx.d(ctx.order[i]);
            if !d.overloaded && i64::from(d.weight) >= *cw {
                *cl = Some(i);
                return Some(ctx.order[i]);
            }
            if stop == Some(i) {
                *cl = Some(i);
                return None;
            }
        }
        pos = None;
        *cw -= di;
        if *cw <= 0 {
            *cw = mw;
            if last_pass || last.is_none() {
                *cl = None;
                return None;
            }
            restarted = true;
        }
        last_pass = *cw <= di;
        if last_pass && restarted && last.is_some() {
            stop = last;
        }
    }
}

/// wlc/sed (and the wlc step of lblc/lblcr): the first usable dest, then strict
/// `loh·w_d > doh·w_least` over the later ones that are not overloaded.
fn weighted_least(ctx: &Ctx<'_>, oh: impl Fn(&Dest) -> i64) -> Option<DestId> {
    let mut it = ctx.iter();
    let (mut least, mut loh) = loop {
        let (id, d) = it.next()?;
        if !d.overloaded && d.weight > 0 {
            break (id, oh(d));
        }
    };
    for (id, d) in it {
        if d.overloaded {
            continue;
        }
        let doh = oh(d);
        if loh * i64::from(d.weight) > doh * i64::from(ctx.d(least).weight) {
            least = id;
            loh = doh;
        }
    }
    Some(least)
}

fn sh_fill(t: &mut [Option<DestId>], arena: &[Dest], order: &[DestId]) {
    if order.is_empty() {
        t.fill(None);
        return;
    }
    let mut p = 0usize;
    let mut count = 0i64;
    for slot in t.iter_mut() {
        if p >= order.len() {
            p = 0;
        }
        let id = order[p];
        *slot = Some(id);
        count += 1;
        if count >= i64::from(arena[id as usize].weight) {
            p += 1;
            count = 0;
        }
    }
}

fn l4_port(pkt: &PktInfo, flags: Flags) -> u32 {
    if flags.port && matches!(pkt.proto, Proto::Tcp | Proto::Udp | Proto::Sctp) {
        u32::from(pkt.sport)
    } else {
        0
    }
}

fn sh_lookup(ctx: &Ctx<'_>, t: &[Option<DestId>], pkt: &PktInfo) -> Option<DestId> {
    let unavailable = |id: DestId| {
        let d = ctx.d(id);
        d.weight <= 0 || d.overloaded
    };
    let hv = hash_32(
        l4_port(pkt, ctx.flags).wrapping_add(addr_fold(pkt.src)),
        HASH_TAB_BITS,
        ctx.compat.hash,
    );
    let key = |offset: u32| (offset.wrapping_add(hv) & 0xff) as usize;
    let first = t[key(0)]?;
    if !unavailable(first) {
        return Some(first);
    }
    if !ctx.flags.fallback {
        return None;
    }
    let size = u32::try_from(HASH_TAB_SIZE).unwrap_or(256);
    let h = hv & 0xff;
    for o in 0..size {
        let r = (o + h) % size;
        let id = t[key(r)]?;
        if !unavailable(id) {
            return Some(id);
        }
    }
    None
}

/// The `mh` table the kernel's population loop (spec §9, `ip_vs_mh_populate`) builds,
/// written as plainly as the kernel writes it: the oracle the fast fill ([`mh_fill`]) is
/// tested against, and its side-by-side peer in `benches/sched.rs`.
pub fn maglev_table_kernel_loop(dests: &[Dest], m: usize) -> Option<Vec<Option<u32>>> {
    let order: Vec<DestId> = (0..u32::try_from(dests.len()).ok()?).collect();
    let mut t = vec![None; m];
    if let Some(setup) = mh_setup(dests, &order, m) {
        mh_fill_kernel_loop(&mut t, &setup, &order);
    }
    Some(t)
}

/// The kernel's population loop (spec §9, `ip_vs_mh_populate`) as the kernel writes it:
/// a bitmap of the slots taken, each claim walking its permutation from its last slot
/// (`perm += skip`, one conditional subtraction), a global turn counter.
#[expect(
    clippy::many_single_char_names,
    reason = "t, m, n, c, i: the spec's names"
)]
fn mh_fill_kernel_loop(t: &mut [Option<DestId>], setup: &[(u32, u32, u32)], order: &[DestId]) {
    let m = t.len();
    let Ok(mm) = u32::try_from(m) else {
        return;
    };
    let mut perm: Vec<u32> = setup.iter().map(|s| s.0).collect();
    let mut taken = Slots::new(m);
    let (mut n, mut dt_count) = (0usize, 0u32);
    while n < m {
        let mut i = 0;
        while i < order.len() {
            let (_, skip, turns) = setup[i];
            if turns < 1 {
                i += 1;
                continue;
            }
            let mut c = perm[i];
            while taken.has(c) {
                perm[i] += skip;
                if perm[i] >= mm {
                    perm[i] -= mm;
                }
                c = perm[i];
            }
            taken.take(c);
            t[c as usize] = Some(order[i]);
            n += 1;
            if n == m {
                return;
            }
            dt_count += 1;
            if dt_count >= turns {
                dt_count = 0;
                i += 1;
            }
        }
    }
}

/// The lookup table `dh`, `sh` or `mh` builds for these destinations (in the kernel's
/// list order), as indices into `dests`; `None` for the other schedulers. A packet data
/// plane hashes into it exactly as [`Sched::schedule`] does.
pub fn lookup_table(algo: Algo, dests: &[Dest], mh_size: usize) -> Option<Vec<Option<u32>>> {
    if !matches!(algo, Algo::Dh | Algo::Sh | Algo::Mh) {
        return None;
    }
    let order: Vec<DestId> = (0..u32::try_from(dests.len()).ok()?).collect();
    let mut s = Sched::new(algo, mh_size);
    s.rebuild(dests, &order, Compat::default(), Change::Init);
    s.table().map(<[Option<DestId>]>::to_vec)
}

/// One full cycle of kernel IPVS's `wrr` in steady state over these weights (list order):
/// for each current weight from the largest down by their gcd, every destination whose
/// weight reaches it. `rr` is the same with equal weights. Weight-0 entries never appear.
pub fn wrr_cycle(weights: &[i32]) -> Vec<usize> {
    let w: Vec<u32> = weights.iter().map(|w| w.max(&0).unsigned_abs()).collect();
    let g = w.iter().copied().filter(|x| *x > 0).fold(0, gcd);
    let mw = w.iter().copied().max().unwrap_or(0);
    let mut out = Vec::new();
    if g == 0 {
        return out;
    }
    let mut cw = mw;
    while cw > 0 {
        out.extend(
            w.iter()
                .enumerate()
                .filter(|(_, x)| **x >= cw)
                .map(|(i, _)| i),
        );
        cw = cw.saturating_sub(g);
    }
    out
}

fn mh_hash(addr: IpAddr, port: u32, key: (u64, u64), offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(port).wrapping_add(addr_fold(addr)), key)
}

fn fls(x: u32) -> i32 {
    32 - i32::try_from(x.leading_zeros()).unwrap_or(32)
}

/// Maglev table population (spec §9), with `last_weight` turns.
fn mh_populate(t: &mut [Option<DestId>], arena: &[Dest], order: &[DestId], m: usize) {
    t.fill(None);
    if let Some(setup) = mh_setup(arena, order, m) {
        mh_fill(t, &setup, order);
    }
}

/// Each destination's place in its permutation (first its offset), skip and turns, as
/// the kernel computes them (`None`: no table, as when no weight is positive or there
/// are more destinations than slots).
#[expect(
    clippy::many_single_char_names,
    reason = "m, g, w, d: the spec's names"
)]
fn mh_setup(arena: &[Dest], order: &[DestId], m: usize) -> Option<Vec<(u32, u32, u32)>> {
    let lw = |id: &DestId| arena[*id as usize].last_weight.max(0).unsigned_abs();
    let g = order.iter().map(lw).filter(|w| *w > 0).fold(0, gcd);
    if g < 1 || order.len() > m {
        return None;
    }
    let maxw = order.iter().map(lw).max().unwrap_or(0);
    let shift = (fls(maxw / g) - i32::try_from(MH_TAB_BITS).unwrap_or(6)).max(0);
    let mm = u32::try_from(m).ok()?;
    Some(
        order
            .iter()
            .map(|id| {
                let d = &arena[*id as usize];
                let offset = mh_hash(d.addr, u32::from(d.port), MH_KEY1, 0) % mm;
                let skip = mh_hash(d.addr, u32::from(d.port), MH_KEY2, 0) % (mm - 1) + 1;
                let w = lw(id);
                let turns = match (w / g) >> shift {
                    0 => u32::from(w != 0),
                    x => x,
                };
                (offset, skip, turns)
            })
            .collect(),
    )
}

/// Fills `t` (all `None`) in the kernel's order: destinations in turn, each claiming
/// `turns` slots, each claim the next free slot of its permutation
/// (`offset + k·skip mod M`). The order of the claims decides the table, so it is kept
/// exactly; what is made fast is finding each claim's slot. Walking the permutation costs
/// ~M·ln M probes in all, more than half of them for the last √M claims, when nearly
/// every slot is taken. So:
///
/// - while many slots are free, the walk, on a bitset of the slots taken (M = 65537:
///   8 KiB, in L1; the walk's next positions do not depend on what the probes find, so
///   the CPU runs ahead of the loads);
/// - once at most √M are free, the free slots are listed and a claim takes the one
///   whose place in its permutation comes first: slot `f` is at
///   `k = (f − pos)·skip⁻¹ mod M` (M prime, as the kernel's table sizes are, so `skip`
///   has an inverse), which the walk would have reached first — the same slot, for
///   |free| operations instead of ~M/|free| probes.
#[expect(
    clippy::many_single_char_names,
    reason = "t, m, n, c, i: the spec's names"
)]
fn mh_fill(t: &mut [Option<DestId>], setup: &[(u32, u32, u32)], order: &[DestId]) {
    let m = t.len();
    let Ok(mm) = u32::try_from(m) else {
        return;
    };
    if setup.iter().all(|s| s.2 == 0) {
        return;
    }
    let mut taken = Slots::new(m);
    // Where each destination's walk goes on from: past its last claim (which the
    // kernel's walk starts on and skips, as it is taken).
    let mut pos: Vec<u32> = setup.iter().map(|s| s.0).collect();
    // The late phase: the free slots, and each destination's skip⁻¹ mod M (0: none,
    // or not computed yet).
    let late_at = m.isqrt().max(1);
    let mut free: Option<Vec<u32>> = None;
    let mut inverse: Vec<u32> = Vec::new();
    let reduce = Reducer::new(mm);
    let mut n = 0usize;
    loop {
        for (i, &(_, skip, turns)) in setup.iter().enumerate() {
            let mut c = pos[i];
            for _ in 0..turns {
                if free.is_none() && m - n <= late_at {
                    free = Some((0..mm).filter(|&c| !taken.has(c)).collect());
                    inverse = vec![0; setup.len()];
                }
                if let Some(list) = free.as_mut() {
                    if inverse[i] == 0 {
                        inverse[i] = inverse_mod(skip, mm).unwrap_or(u32::MAX);
                    }
                    let j = match inverse[i] {
                        u32::MAX => walk_to_free(list, c, skip, mm),
                        inv => first_in_permutation(list, c, inv, mm, &reduce),
                    };
                    // (The bitset is not read any more.)
                    c = list.swap_remove(j);
                } else {
                    loop {
                        if !taken.has(c) {
                            taken.take(c);
                            break;
                        }
                        // (perm + skip) mod M with skip < M: one conditional subtraction.
                        c += skip;
                        if c >= mm {
                            c -= mm;
                        }
                    }
                }
                t[c as usize] = Some(order[i]);
                n += 1;
                if n == m {
                    return;
                }
            }
            if turns > 0 {
                c += skip;
                if c >= mm {
                    c -= mm;
                }
                pos[i] = c;
            }
        }
    }
}

/// The slots of a Maglev table taken so far: a bitmap, as the kernel keeps them
/// (M = 65537: 8 KiB).
struct Slots(Vec<u64>);

impl Slots {
    fn new(m: usize) -> Slots {
        Slots(vec![0; m.div_ceil(64)])
    }

    fn has(&self, c: u32) -> bool {
        self.0[(c >> 6) as usize] & (1u64 << (c & 63)) != 0
    }

    fn take(&mut self, c: u32) {
        self.0[(c >> 6) as usize] |= 1u64 << (c & 63);
    }
}

/// The index in `free` of the slot whose place in the permutation `pos + k·skip mod M`
/// (`inv` = skip⁻¹ mod M) is first.
fn first_in_permutation(free: &[u32], pos: u32, inv: u32, m: u32, r: &Reducer) -> usize {
    let mut best = (u64::MAX, 0usize);
    for (j, &f) in free.iter().enumerate() {
        let d = if f >= pos { f - pos } else { f + m - pos };
        let k = r.rem(u64::from(d) * u64::from(inv));
        if k < best.0 {
            best = (k, j);
        }
    }
    best.1
}

/// The index in `free` of the first free slot the walk from `pos` reaches (a table size
/// without an inverse of `skip`: not prime, which the configuration does not accept). A
/// walk whose cycle holds no free slot — possible only then — takes the first one.
fn walk_to_free(free: &[u32], mut c: u32, skip: u32, m: u32) -> usize {
    for _ in 0..m {
        if let Some(j) = free.iter().position(|&f| f == c) {
            return j;
        }
        c += skip;
        if c >= m {
            c -= m;
        }
    }
    0
}

/// `a⁻¹ mod m`, if `a` and `m` are coprime.
fn inverse_mod(a: u32, m: u32) -> Option<u32> {
    let (mut r0, mut r1) = (i64::from(m), i64::from(a));
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    if r0 != 1 {
        return None;
    }
    u32::try_from(t0.rem_euclid(i64::from(m))).ok()
}

/// `x mod m` by a multiplication: `m` is fixed for a whole table, and a division per
/// free slot would cost more than the probes it saves. `x < m²` and `m ≤ 2²⁰` (the
/// largest `rvs_mh_table_size`), so `x` is exact in an `f64` and the estimated quotient
/// is off by at most one.
struct Reducer {
    m: u64,
    inv: f64,
}

impl Reducer {
    fn new(m: u32) -> Reducer {
        let m = u64::from(m.max(1));
        #[expect(clippy::cast_precision_loss, reason = "m ≤ 2²⁰: exact")]
        let inv = 1.0 / m as f64;
        Reducer { m, inv }
    }

    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "x < 2⁴⁰: exact in an f64; the quotient is ≥ 0 and < 2²⁰"
    )]
    fn rem(&self, x: u64) -> u64 {
        let q = (x as f64 * self.inv) as u64;
        let mut r = x.wrapping_sub(q.wrapping_mul(self.m));
        if r > x {
            // The quotient was one too many: r wrapped below zero.
            r = r.wrapping_add(self.m);
        }
        if r >= self.m {
            r -= self.m;
        }
        r
    }
}

fn mh_lookup(ctx: &Ctx<'_>, t: &[Option<DestId>], pkt: &PktInfo) -> Option<DestId> {
    let m = u32::try_from(t.len()).unwrap_or(u32::MAX);
    let port = l4_port(pkt, ctx.flags);
    let unavailable = |id: DestId| {
        let d = ctx.d(id);
        d.weight <= 0 || d.overloaded
    };
    let h = mh_hash(pkt.src, port, MH_KEY1, 0) % m;
    let first = t[h as usize]?;
    if !unavailable(first) {
        return Some(first);
    }
    if !ctx.flags.fallback {
        return None;
    }
    for o in 0..m {
        let r = (o + h) % m;
        let idx = mh_hash(pkt.src, port, MH_KEY1, r) % m;
        let id = t[idx as usize]?;
        if !unavailable(id) {
            return Some(id);
        }
    }
    None
}

/// lblc's "overloaded": more active connections than its weight while some other dest
/// is under half its weight.
fn lblc_overloaded(ctx: &Ctx<'_>, d: &Dest) -> bool {
    i64::from(d.active) > i64::from(d.weight)
        && ctx
            .iter()
            .any(|(_, x)| i64::from(x.active) * 2 < i64::from(x.weight))
}

fn lblcr(ctx: &Ctx<'_>, cache: &mut LblcCache<LblcrEntry>, pkt: &PktInfo) -> Option<DestId> {
    let c = ctx.compat;
    cache.expire(ctx.now_ms, |e| e.lastuse);
    let now = ctx.now_ms;
    if let Some(e) = cache.map.get_mut(&pkt.dst) {
        e.lastuse = now;
        // set_min: first usable element, then weighted least over the rest.
        let ok = |id: &DestId| {
            let d = ctx.d(*id);
            !d.overloaded && d.weight > 0 && d.available
        };
        let mut min: Option<(DestId, i64)> = None;
        for id in &e.set {
            let d = ctx.d(*id);
            if !d.available || d.overloaded {
                continue;
            }
            match min {
                None if ok(id) => min = Some((*id, d.overhead(c))),
                Some((l, loh)) => {
                    let doh = d.overhead(c);
                    if loh * i64::from(d.weight) > doh * i64::from(ctx.d(l).weight) {
                        min = Some((*id, doh));
                    }
                }
                None => {}
            }
        }
        // Shrink an old set: drop the most loaded member (set_max, strict <).
        if e.set.len() > 1 && now > e.lastmod + LBLC_EXPIRATION_MS {
            let mut most: Option<(usize, i64)> = None;
            for (i, id) in e.set.iter().enumerate() {
                let d = ctx.d(*id);
                if d.weight <= 0 && most.is_none() {
                    continue;
                }
                let doh = d.overhead(c);
                match most {
                    None => most = Some((i, doh)),
                    Some((m, moh)) => {
                        if moh * i64::from(d.weight) < doh * i64::from(ctx.d(e.set[m]).weight) {
                            most = Some((i, doh));
                        }
                    }
                }
            }
            if let Some((i, _)) = most {
                e.set.remove(i);
                e.lastmod = now;
            }
        }
        if let Some((d, _)) = min {
            if !lblc_overloaded(ctx, ctx.d(d)) {
                return Some(d);
            }
        }
        let dest = weighted_least(ctx, |d| d.overhead(c))?;
        if !e.set.contains(&dest) {
            e.set.insert(0, dest);
            e.lastmod = now;
        }
        return Some(dest);
    }
    let dest = weighted_least(ctx, |d| d.overhead(c))?;
    if !cache.full() {
        cache.map.insert(
            pkt.dst,
            LblcrEntry {
                set: vec![dest],
                lastmod: now,
                lastuse: now,
            },
        );
    }
    Some(dest)
}

fn twos(ctx: &Ctx<'_>, rand: &mut dyn FnMut() -> u32) -> Option<DestId> {
    let c = ctx.compat;
    let eligible = |d: &Dest| !d.overloaded && d.weight > 0;
    let total: i64 = ctx
        .iter()
        .filter(|(_, d)| eligible(d))
        .map(|(_, d)| i64::from(d.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let total = total + 1;
    let pick = |r: u32| -> i64 {
        ((u64::from(r) * total.unsigned_abs()) >> 32)
            .try_into()
            .unwrap_or(0)
    };
    let mut r1 = pick(rand());
    let mut r2 = pick(rand());
    let (mut c1, mut c2): (Option<DestId>, Option<DestId>) = (None, None);
    for (id, d) in ctx.iter().filter(|(_, d)| eligible(d)) {
        if c1.is_none() {
            r1 -= i64::from(d.weight);
            if r1 <= 0 {
                c1 = Some(id);
            }
        }
        if c2.is_none() {
            r2 -= i64::from(d.weight);
            if r2 <= 0 {
                c2 = Some(id);
            }
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    // r is at most the sum of the weights, so both walks end on an eligible dest.
    let (c1, c2) = (c1?, c2?);
    let (d1, d2) = (ctx.d(c1), ctx.d(c2));
    if i64::from(d2.weight) * d1.overhead(c) > i64::from(d1.weight) * d2.overhead(c) {
        Some(c2)
    } else {
        Some(c1)
    }
}

#[cfg(test)]
mod cycle_tests {
    use super::*;

    #[test]
    fn wrr_cycle_is_the_kernels() {
        assert_eq!(wrr_cycle(&[3, 2, 1]), vec![0, 0, 1, 0, 1, 2]);
        assert_eq!(wrr_cycle(&[2, 4]), vec![1, 0, 1]);
        assert_eq!(wrr_cycle(&[1, 0, 1]), vec![0, 2]);
        assert!(wrr_cycle(&[0, 0]).is_empty());
    }

    #[test]
    fn lookup_tables_index_the_dests() {
        let d = |last: u8, w: i32| {
            Dest::new(IpAddr::from([198, 18, 1, last]), 80, w, crate::Fwd::Route)
        };
        let dests = vec![d(1, 1), d(2, 3)];
        let t = lookup_table(Algo::Sh, &dests, 0).unwrap();
        assert_eq!(t.len(), 256);
        assert_eq!(&t[..4], &[Some(0), Some(1), Some(1), Some(1)]);
        let m = lookup_table(Algo::Mh, &dests, 251).unwrap();
        assert_eq!(m.len(), 251);
        let ones = m.iter().filter(|x| **x == Some(1)).count();
        assert!(ones > 150, "weight 3 gets about 3/4 of the slots: {ones}");
        assert!(lookup_table(Algo::Rr, &dests, 0).is_none());
    }

    #[test]
    fn the_reducer_is_the_remainder() {
        for m in [2u32, 3, 251, 4093, 65537, 1_048_573] {
            let r = Reducer::new(m);
            let mm = u64::from(m);
            let mut x: u64 = 1;
            for k in 0..20_000u64 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(k) % (mm * mm);
                assert_eq!(r.rem(x), x % mm, "{x} mod {m}");
            }
            for x in [0, 1, mm - 1, mm, mm + 1, mm * mm - 1, mm * (mm - 1)] {
                assert_eq!(r.rem(x), x % mm, "{x} mod {m}");
            }
        }
        assert_eq!(inverse_mod(3, 7), Some(5));
        assert_eq!(inverse_mod(4, 8), None);
    }

    /// The fast fill builds the reference's table exactly, for tables of the kernel's
    /// sizes and random destinations and weights (zero weights included).
    #[test]
    fn the_fast_maglev_fill_is_the_kernels() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: u32| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            u32::try_from(x % u64::from(bound)).unwrap()
        };
        for case in 0..300 {
            let m = [251usize, 509, 1021, 4093, 65537][case % 5];
            let n = 1 + next(if m == 65537 { 300 } else { 60 });
            let dests: Vec<Dest> = (0..n)
                .map(|k| {
                    let ip = IpAddr::from([
                        198,
                        18,
                        u8::try_from(k / 250).unwrap(),
                        u8::try_from(k % 250).unwrap(),
                    ]);
                    let mut d =
                        Dest::new(ip, 80, i32::try_from(next(6)).unwrap(), crate::Fwd::Route);
                    d.last_weight = d.weight;
                    d
                })
                .collect();
            let order: Vec<DestId> = (0..n).collect();
            let Some(setup) = mh_setup(&dests, &order, m) else {
                continue;
            };
            let (mut fast, mut slow) = (vec![None; m], vec![None; m]);
            mh_fill(&mut fast, &setup, &order);
            mh_fill_kernel_loop(&mut slow, &setup, &order);
            assert!(fast == slow, "case {case}: M={m} N={n}");
            assert!(
                fast.iter().all(Option::is_some),
                "case {case}: every slot filled"
            );
        }
    }
}
