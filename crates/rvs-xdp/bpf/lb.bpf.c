// SPDX-License-Identifier: GPL-2.0-or-later
// rvs XDP load balancer: LVS-DR (MAC rewrite), TUN (IP-in-IP / IPv6-in-IPv6), NAT
// (destination rewrite, reverse rewrite of replies) and FULLNAT (source and destination
// rewrite, from a local address and port of the service's, reverse rewrite of replies)
// for the virtual services userspace writes into the maps below. Built by build.rs with
// clang -target bpf; loaded by aya.
//
// Paths (each documented in docs/xdp.md):
//   not IPv4/IPv6, VLAN-tagged, IPv4 with options or fragments, IPv6 with extension
//   headers, not TCP/UDP, short frames                      -> XDP_PASS (the kernel's)
//   NAT or FULLNAT reply from a real server (nat_rev hit)   -> rewrite source (FULLNAT:
//                                                              and destination), XDP_TX
//   to a VIP:port (vips hit)                                -> flow / template / schedule,
//                                                              forward by the real's method
//   everything else                                         -> XDP_PASS
// Scheduling of a new flow reads one table per service (array of maps, swapped whole by
// userspace): mh, sh, dh hash into it as kernel IPVS does; rr and wrr step through it.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_SVC 1024
#define MAX_REALS 8192
#define TABLE_MAX 65536
#define FB_PROBES 16
/* FULLNAT: local addresses per service, distinct local addresses, tries of a free
 * (local address, port) for a new connection, the first local port. */
#define LADDRS_PER_SVC 16
#define MAX_LADDRS 4096
#define FNAT_TRIES 8
#define FNAT_PORT_LO 1024

enum sched_kind { SCHED_SEQ = 0, SCHED_SH = 1, SCHED_DH = 2, SCHED_MH = 3 };
enum method { M_DR = 0, M_TUN = 1, M_NAT = 2, M_FNAT = 3 };

#define SF_PORT 1      /* sh/mh: hash the source port too (sh-port, mh-port) */
#define SF_FALLBACK 2  /* sh/mh: try other slots when the real is unusable */
#define SF_PERSIST 4   /* persistence templates */
#define SF_BY_TABLE 8  /* mh/sh/dh, TCP, DR/TUN: forward by the table alone (below) */

#define RF_USABLE 1    /* weight > 0 and present: may take new flows */

struct vip_key {
	__u8 addr[16];
	__u16 port; /* network order; 0 = any port (fwmark-like, persistence port 0) */
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

struct svc {
	__u32 id;
	__u32 sched;
	__u32 table_len;
	__u32 flags;
	__u32 persist_s;
	__u32 persist_prefix; /* bits kept of the client address for templates */
	__u32 laddrs; /* FULLNAT: its local addresses, svc_laddrs[id * LADDRS_PER_SVC + i] */
	__u32 pad;
};

struct real {
	__u8 addr[16];
	__u8 mac[6];
	__u16 port; /* network order; NAT rewrites to it */
	__u8 family;
	__u8 method;
	__u16 flags;
	__u32 pad;
};

struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* Times are jiffies (bpf_jiffies64, which the kernel inlines: a load, where
 * bpf_ktime_get_coarse_ns is a helper call reading the timekeeper under its seqcount —
 * 12-15 ns a packet). Idle timeouts are seconds long; a tick is 1-10 ms. */
struct flow {
	__u64 last;
	__u32 real;
	__u32 svc;
	__u16 laddr; /* FULLNAT: its local address's slot in `laddrs` + 1; 0: none */
	__u16 lport; /* FULLNAT: its local port (network order) */
	__u8 toa;    /* FULLNAT: the client's address was sent to the real server (TOA) */
	__u8 mac_wait; /* FULLNAT, adopted (sync): its reply entry waits for the client's MAC */
	__u8 fin;
	__u8 here; /* this director forwarded a packet of it (not only adopted it) */
};

struct tmpl_key {
	__u8 client[16];
	__u32 svc;
};

struct tmpl {
	__u64 last;
	__u32 real;
	__u32 pad;
};

/* A reply's ends as the real server sends it: NAT, to the client; FULLNAT, to the
 * connection's local address and port (`client`, `cport`). */
struct nat_key {
	__u8 real[16];
	__u8 client[16];
	__u16 rport;
	__u16 cport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct nat_val {
	__u8 vip[16];
	__u8 client[16]; /* FULLNAT: the client the reply goes back to */
	__u16 vport;
	__u16 cport;     /* FULLNAT: the client's port (network order) */
	__u8 client_mac[6];
	__u8 fnat;       /* 1: FULLNAT, the destination is rewritten too */
	__u8 pad;
	__u32 svc;
	__u32 real;
};

struct laddr {
	__u8 addr[16];
};

struct config {
	/* In jiffies (hz of them a second). */
	__u64 timeout_tcp;
	__u64 timeout_tcpfin;
	__u64 timeout_udp;
	__u64 hz;
	__u64 mh_k0;
	__u64 mh_k1;
	__u8 tun_src4[4];
	__u8 tun_src6[16];
	__u32 flags; /* CF_* */
	__u8 own_mac[6]; /* the interface's MAC (CF_OWN_MAC) */
	__u16 cpus; /* highest online CPU id + 1: FULLNAT gives each its share of local ports */
};

#define CF_NAT 1   /* some service has NAT real servers: look replies up */
#define CF_PORT0 2 /* some service listens on port 0 (any port) */
#define CF_OWN_MAC 4 /* own_mac is set: frames to other hosts' MACs pass */
#define CF_FNAT 8 /* some service has FULLNAT real servers: look replies up */

struct counters {
	__u64 conns;
	__u64 pkts_in;
	__u64 bytes_in;
	__u64 pkts_out;
	__u64 bytes_out;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SVC);
	__type(key, struct vip_key);
	__type(value, struct svc);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
} reals SEC(".maps");

struct table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TABLE_MAX);
	__type(key, __u32);
	__type(value, __u32); /* real index + 1 (SLOT_REAL); 0: empty slot; SLOT_CHANGED */
};

/* Forwarding by the table alone (SF_BY_TABLE; docs/xdp.md "Forwarding by the table").
 * A hashing scheduler's choice for a flow is its slot's real server; the flow table is
 * needed only for flows whose real server is not their slot's current one. Invariant:
 * every live flow whose real server differs from its slot's is recorded in `flows`, and
 * its slot is marked SLOT_CHANGED with a `changes` entry whose dirty_until is at least
 * the flow's expiry. A slot without the mark forwards without a flow lookup. Userspace
 * marks a slot whose real server it changes (prev: the real server of the unrecorded
 * flows from before, until prev_until, when they have all timed out); the program marks
 * one when it records or refreshes a flow that goes elsewhere (a fallback, a flow from
 * before a change), and userspace clears marks whose dirty_until has passed. */
#define SLOT_CHANGED 0x80000000u
#define SLOT_REAL 0x7fffffffu

struct change_key {
	__u32 svc;
	__u32 slot;
};

struct change {
	__u64 dirty_until; /* jiffies: until then, look flows up */
	__u64 prev_until;  /* jiffies: until then, unrecorded flows go to prev */
	__u32 prev;        /* real index + 1 of the flows from before the change; 0: none */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct change_key);
	__type(value, struct change);
} changes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SVC);
	__type(key, __u32);
	__array(values, struct table);
} tables SEC(".maps");

/* Per-CPU LRU lists (one shared table): eviction without a global lock, as Katran does. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct flow_key);
	__type(value, struct flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct tmpl_key);
	__type(value, struct tmpl);
} templates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1048576);
	__type(key, struct nat_key);
	__type(value, struct nat_val);
} nat_rev SEC(".maps");

/* FULLNAT's local addresses: a slot per address (userspace never moves one), and each
 * service's, as slots + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_LADDRS);
	__type(key, __u32);
	__type(value, struct laddr);
} laddrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SVC * LADDRS_PER_SVC);
	__type(key, __u32);
	__type(value, __u32);
} svc_laddrs SEC(".maps");

/* FULLNAT: each CPU's next local port, a counter over its own share of the ports (no
 * lock, and no CPU runs into ports another holds; the reply entry's BPF_NOEXIST insert
 * still decides). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fnat_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SVC);
	__type(key, __u32);
	__type(value, struct counters);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct counters);
} real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SVC);
	__type(key, __u32);
	__type(value, __u32);
} rr_pos SEC(".maps");

/* ---- checksums (RFC 1624 incremental update on network-order words) ---- */

static __always_inline __u16 fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u32 c = (__u16)~*sum;
	c += (__u16)~from;
	c += to;
	*sum = ~fold(c);
}

static __always_inline void csum_replace_words(__u16 *sum, const __u8 *from, const __u8 *to, int words)
{
	__u32 c = (__u16)~*sum;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= words)
			break;
		__u16 f, t;
		__builtin_memcpy(&f, from + 2 * i, 2);
		__builtin_memcpy(&t, to + 2 * i, 2);
		c += (__u16)~f;
		c += t;
	}
	*sum = ~fold(c);
}

static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u32 c = 0;
	__u16 *w = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		c += w[i];
	return ~fold(c);
}

/* ---- kernel IPVS hashes ---- */

static __always_inline __u32 addr_fold(const __u8 *a, __u8 family)
{
	__u32 w0 = ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
	if (family == 4)
		return w0;
	__u32 w1 = ((__u32)a[4] << 24) | ((__u32)a[5] << 16) | ((__u32)a[6] << 8) | a[7];
	__u32 w2 = ((__u32)a[8] << 24) | ((__u32)a[9] << 16) | ((__u32)a[10] << 8) | a[11];
	__u32 w3 = ((__u32)a[12] << 24) | ((__u32)a[13] << 16) | ((__u32)a[14] << 8) | a[15];
	return w0 ^ w1 ^ w2 ^ w3;
}

#define ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                         \
	do {                                                                             \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);               \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                   \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                   \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);               \
	} while (0)

/* The kernel's hsiphash(&v, 4, key) on 64-bit: SipHash-1-3 of 4 little-endian bytes. */
static __always_inline __u32 hsiphash_u32(__u32 v, __u64 k0, __u64 k1)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ k0;
	__u64 v3 = 0x7465646279746573ULL ^ k1;
	__u64 b = ((__u64)4 << 56) | (__u64)v;
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

static __always_inline __u32 hash_32(__u32 x, __u32 bits)
{
	return (x * 0x61C88647u) >> (32 - bits);
}

/* ---- parsing ---- */

/* Headers sit at fixed offsets (no VLAN tag, no IPv4 options, no IPv6 extension headers:
 * those frames are passed), so every packet access uses a constant offset the verifier
 * can bound. */
#define L3_OFF 14
#define L4_OFF4 (L3_OFF + 20)
#define L4_OFF6 (L3_OFF + 40)

struct pkt {
	struct flow_key k;
	__u32 len; /* IP length */
	__u8 tcp_flags;
};

static __always_inline void *l4(void *data, struct pkt *p)
{
	return p->k.family == 4 ? data + L4_OFF4 : data + L4_OFF6;
}

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__u16 proto = eth->h_proto;
	void *l4p;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + L3_OFF;
		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return -1; /* options or a fragment: the kernel's */
		p->k.family = 4;
		p->k.proto = ip->protocol;
		__builtin_memcpy(p->k.src, &ip->saddr, 4);
		__builtin_memcpy(p->k.dst, &ip->daddr, 4);
		p->len = bpf_ntohs(ip->tot_len);
		l4p = data + L4_OFF4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + L3_OFF;
		if ((void *)(ip6 + 1) > end)
			return -1;
		p->k.family = 6;
		p->k.proto = ip6->nexthdr; /* extension headers are not TCP/UDP: passed */
		__builtin_memcpy(p->k.src, &ip6->saddr, 16);
		__builtin_memcpy(p->k.dst, &ip6->daddr, 16);
		p->len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		l4p = data + L4_OFF6;
	} else {
		return -1;
	}
	if (p->k.proto == IPPROTO_TCP) {
		struct tcphdr *t = l4p;
		if ((void *)(t + 1) > end)
			return -1;
		p->k.sport = t->source;
		p->k.dport = t->dest;
		p->tcp_flags = (t->fin ? 1 : 0) | (t->rst ? 4 : 0) | (t->syn ? 2 : 0) | (t->ack ? 16 : 0);
	} else if (p->k.proto == IPPROTO_UDP) {
		struct udphdr *u = l4p;
		if ((void *)(u + 1) > end)
			return -1;
		p->k.sport = u->source;
		p->k.dport = u->dest;
	} else {
		return -1;
	}
	return 0;
}

static __always_inline void count(void *map, __u32 idx, __u32 bytes, int out, int conn)
{
	struct counters *c = bpf_map_lookup_elem(map, &idx);
	if (!c)
		return;
	if (conn)
		c->conns++;
	if (out) {
		c->pkts_out++;
		c->bytes_out += bytes;
	} else {
		c->pkts_in++;
		c->bytes_in += bytes;
	}
}

static __always_inline int usable(__u32 r)
{
	struct real *re = bpf_map_lookup_elem(&reals, &r);
	return re && (re->flags & RF_USABLE);
}

/* mh: the hashed value of a flow, its slot is this % the table's length. */
static __always_inline __u32 mh_base(struct svc *s, struct pkt *p)
{
	__u32 port = (s->flags & SF_PORT) ? bpf_ntohs(p->k.sport) : 0;
	return port + addr_fold(p->k.src, p->k.family);
}

/* sh and dh: 256 buckets by the source (sh) or destination (dh) address. */
static __always_inline __u32 shdh_hash(struct svc *s, struct pkt *p)
{
	__u32 port = (s->flags & SF_PORT) ? bpf_ntohs(p->k.sport) : 0;
	return s->sched == SCHED_SH ? hash_32(port + addr_fold(p->k.src, p->k.family), 8)
				    : hash_32(addr_fold(p->k.dst, p->k.family), 8);
}

/* The slot a hashing scheduler (mh, sh, dh) looks at first for this flow. */
static __always_inline __u32 first_slot(struct svc *s, struct pkt *p, struct config *c)
{
	if (s->sched == SCHED_MH)
		return hsiphash_u32(mh_base(s, p), c->mh_k0, c->mh_k1) % s->table_len;
	return shdh_hash(s, p) & 0xff;
}

/* The real for a new flow, as kernel IPVS would choose it; -1: none (dropped). */
static __always_inline long schedule(struct svc *s, struct pkt *p, struct config *c)
{
	void *t = bpf_map_lookup_elem(&tables, &s->id);
	if (!t || s->table_len == 0 || s->table_len > TABLE_MAX)
		return -1;
	__u32 len = s->table_len;
	__u32 slot;
	if (s->sched == SCHED_SEQ) {
		__u32 *pos = bpf_map_lookup_elem(&rr_pos, &s->id);
		if (!pos)
			return -1;
		/* Step over unusable entries (weight changed to 0 before the table is rebuilt). */
		for (int i = 0; i < FB_PROBES; i++) {
			slot = *pos % len;
			*pos = slot + 1;
			__u32 *e = bpf_map_lookup_elem(t, &slot);
			if (e && *e && usable(*e - 1))
				return *e - 1;
		}
		return -1;
	}
	if (s->sched == SCHED_MH) {
		__u32 base = mh_base(s, p);
		__u32 h = hsiphash_u32(base, c->mh_k0, c->mh_k1) % len;
		slot = h;
		/* IPVS: the slot of the hash; with mh-fallback, offsets r = (o + h) % M. */
		for (__u32 o = 0; o <= FB_PROBES; o++) {
			__u32 *e = bpf_map_lookup_elem(t, &slot);
			if (!e || !(*e & SLOT_REAL))
				return -1;
			if (usable((*e & SLOT_REAL) - 1))
				return (*e & SLOT_REAL) - 1;
			if (!(s->flags & SF_FALLBACK) || o == FB_PROBES)
				return -1;
			slot = hsiphash_u32(base + (o + h) % len, c->mh_k0, c->mh_k1) % len;
		}
		return -1;
	}
	__u32 hv = shdh_hash(s, p);
	slot = hv & 0xff;
	/* IPVS sh-fallback: buckets ((o + hv) % 256 + hv) & 0xff for o = 0, 1, ... */
	for (__u32 o = 0; o <= FB_PROBES; o++) {
		__u32 *e = bpf_map_lookup_elem(t, &slot);
		if (!e || !(*e & SLOT_REAL))
			return -1;
		if (usable((*e & SLOT_REAL) - 1))
			return (*e & SLOT_REAL) - 1;
		if (!(s->flags & SF_FALLBACK) || s->sched == SCHED_DH || o == FB_PROBES)
			return -1;
		slot = (((o + hv) & 0xff) + hv) & 0xff;
	}
	return -1;
}

/* ---- forwarding ---- */

static __always_inline int fwd_dr(struct xdp_md *ctx, struct real *re)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, re->mac, ETH_ALEN);
	return XDP_TX;
}

static __always_inline int fwd_tun(struct xdp_md *ctx, struct real *re, struct pkt *p, struct config *c)
{
	struct ethhdr old;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + sizeof(old) > end)
		return XDP_DROP;
	__builtin_memcpy(&old, data, sizeof(old));
	int grow = re->family == 4 ? (int)sizeof(struct iphdr) : (int)sizeof(struct ipv6hdr);
	if (bpf_xdp_adjust_head(ctx, -grow))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_source, old.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, re->mac, ETH_ALEN);
	if (re->family == 4) {
		struct iphdr *o = (void *)(eth + 1);
		if ((void *)(o + 1) > end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IP);
		o->version = 4;
		o->ihl = 5;
		o->tos = 0;
		o->tot_len = bpf_htons(p->len + sizeof(*o));
		o->id = 0;
		o->frag_off = 0;
		o->ttl = 64;
		o->protocol = p->k.family == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
		__builtin_memcpy(&o->saddr, c->tun_src4, 4);
		__builtin_memcpy(&o->daddr, re->addr, 4);
		o->check = 0;
		o->check = ipv4_csum(o);
	} else {
		struct ipv6hdr *o = (void *)(eth + 1);
		if ((void *)(o + 1) > end)
			return XDP_DROP;
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		__builtin_memset(o, 0, sizeof(*o));
		o->version = 6;
		o->payload_len = bpf_htons(p->len);
		o->nexthdr = p->k.family == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
		o->hop_limit = 64;
		__builtin_memcpy(&o->saddr, c->tun_src6, 16);
		__builtin_memcpy(&o->daddr, re->addr, 16);
	}
	return XDP_TX;
}

/* Rewrites the destination (dir 0: client -> real) or the source (dir 1: real -> client)
 * address and port, with incremental IP and L4 checksum updates. */
static __always_inline int rewrite(struct xdp_md *ctx, struct pkt *p, int src, const __u8 *addr, __u16 port)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u16 *l4sum = 0;
	__u16 *l4port = 0;
	if (p->k.proto == IPPROTO_TCP) {
		struct tcphdr *t = l4(data, p);
		if ((void *)(t + 1) > end)
			return -1;
		l4sum = &t->check;
		l4port = src ? &t->source : &t->dest;
	} else {
		struct udphdr *u = l4(data, p);
		if ((void *)(u + 1) > end)
			return -1;
		l4sum = u->check ? &u->check : 0; /* UDP over IPv4 without checksum stays so */
		l4port = src ? &u->source : &u->dest;
	}
	if (p->k.family == 4) {
		struct iphdr *ip = data + L3_OFF;
		if ((void *)(ip + 1) > end)
			return -1;
		__u8 *field = src ? (__u8 *)&ip->saddr : (__u8 *)&ip->daddr;
		__u8 old[4];
		__builtin_memcpy(old, field, 4);
		csum_replace_words(&ip->check, old, addr, 2);
		if (l4sum)
			csum_replace_words(l4sum, old, addr, 2);
		__builtin_memcpy(field, addr, 4);
	} else {
		struct ipv6hdr *ip6 = data + L3_OFF;
		if ((void *)(ip6 + 1) > end)
			return -1;
		__u8 *field = src ? (__u8 *)&ip6->saddr : (__u8 *)&ip6->daddr;
		__u8 old[16];
		__builtin_memcpy(old, field, 16);
		if (l4sum)
			csum_replace_words(l4sum, old, addr, 8);
		__builtin_memcpy(field, addr, 16);
	}
	if (l4sum)
		csum_replace2(l4sum, *l4port, port);
	*l4port = port;
	return 0;
}

static __always_inline int set_macs(struct xdp_md *ctx, const __u8 *dst)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	return 0;
}

/* Whether the frame is addressed to this host: its MAC, a VRRP virtual MAC (use_vmac:
 * 00:00:5e:00:01|02:VRID), or a group address (the stack decides those, as before). A
 * frame for another host reaches XDP when a switch floods a MAC it has not learnt, or in
 * promiscuous mode; forwarding it would duplicate another director's work, and with its
 * MAC as our source teach the switch the wrong port. */
static __always_inline int for_us(struct xdp_md *ctx, struct config *c)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	const __u8 *d = eth->h_dest;
	if (d[0] & 1)
		return 1;
	if (d[0] == 0 && d[1] == 0 && d[2] == 0x5e && d[3] == 0 && (d[4] == 1 || d[4] == 2))
		return 1;
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		if (d[i] != c->own_mac[i])
			return 0;
	return 1;
}

/* ---- NAT and FULLNAT reply entries ---- */

/* The key of a reply from real server `real` (port `rport`) to `to` (port `toport`):
 * the client for NAT, the local address for FULLNAT. Ports in network order. */
static __always_inline void nat_key_of(struct nat_key *k, const __u8 *real, __u16 rport,
				       const __u8 *to, __u16 toport, struct pkt *p)
{
	__builtin_memcpy(k->real, real, 16);
	__builtin_memcpy(k->client, to, 16);
	k->rport = rport;
	k->cport = toport;
	k->proto = p->k.proto;
	k->family = p->k.family;
}

/* What the replies of the client's connection `p` are rewritten to (the VIP and port
 * back; FULLNAT: the client too), with the MAC the client's frame came from. -1: a
 * frame too short. */
static __always_inline int nat_val_of(struct xdp_md *ctx, struct pkt *p, __u32 svc, __u32 real,
				      __u8 fnat, struct nat_val *v)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	v->svc = svc;
	v->real = real;
	v->fnat = fnat;
	v->vport = p->k.dport;
	v->cport = p->k.sport;
	__builtin_memcpy(v->vip, p->k.dst, 16);
	__builtin_memcpy(v->client, p->k.src, 16);
	__builtin_memcpy(v->client_mac, eth->h_source, ETH_ALEN);
	return 0;
}

/* ---- FULLNAT ---- */

/* TOA ("TCP option address", the option LVS FULLNAT real servers' `toa` module reads,
 * as DPVS writes it): kind 254, the client's port and address; 8 bytes for IPv4, 20
 * for IPv6. */
#define TCPOPT_TOA 254
#define TOA_LEN4 8
#define TOA_LEN6 20

/* Inserts TOA (the client's address `caddr` and port `cport`, network order) right
 * after the fixed TCP header of a FULLNAT packet to the real server (its addresses
 * already rewritten; `v6`: a constant, so that every size below is one): the headers
 * move `olen` bytes towards the front, and the IP length (and IPv4 checksum), the TCP
 * data offset and checksum are updated. 1: inserted; 0: no room (TCP options full, or
 * the frame would exceed the MTU: the packet goes without). */
static __always_inline int toa(struct xdp_md *ctx, const int v6, const __u8 *caddr, __u16 cport)
{
	const int l4off = v6 ? L4_OFF6 : L4_OFF4;
	const int olen = v6 ? TOA_LEN6 : TOA_LEN4;
	const int h = l4off + 20;
	__u8 hdr[L4_OFF6 + 20];
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + h > end)
		return 0;
	struct tcphdr *t = data + l4off;
	if (t->doff > 15 - olen / 4)
		return 0;
	__u32 mtu = 0;
	if (bpf_check_mtu(ctx, 0, &mtu, olen, 0))
		return 0;
	__builtin_memcpy(hdr, data, h);
	if (bpf_xdp_adjust_head(ctx, -olen))
		return 0;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + h + olen > end)
		return 0;
	__builtin_memcpy(data, hdr, h);
	__u8 *o = data + h;
	o[0] = TCPOPT_TOA;
	o[1] = olen;
	__builtin_memcpy(o + 2, &cport, 2);
	__builtin_memcpy(o + 4, caddr, olen - 4);
	t = data + l4off;
	/* The TCP length (the pseudo-header's) before and after. */
	__u16 old_tl, new_tl;
	if (v6) {
		struct ipv6hdr *ip6 = data + L3_OFF;
		old_tl = ip6->payload_len;
		new_tl = bpf_htons(bpf_ntohs(old_tl) + olen);
		ip6->payload_len = new_tl;
	} else {
		struct iphdr *ip = data + L3_OFF;
		__u16 old_len = ip->tot_len;
		__u16 new_len = bpf_htons(bpf_ntohs(old_len) + olen);
		csum_replace2(&ip->check, old_len, new_len);
		ip->tot_len = new_len;
		old_tl = bpf_htons(bpf_ntohs(old_len) - 20);
		new_tl = bpf_htons(bpf_ntohs(old_len) - 20 + olen);
	}
	/* TCP: the pseudo-header's length, the data offset's word, the option's words. */
	__u16 old_w, new_w;
	__builtin_memcpy(&old_w, (__u8 *)t + 12, 2);
	t->doff += olen / 4;
	__builtin_memcpy(&new_w, (__u8 *)t + 12, 2);
	__u32 c = (__u16)~t->check;
	c += (__u16)~old_tl;
	c += new_tl;
	c += (__u16)~old_w;
	c += new_w;
	__u16 *w = (__u16 *)o;
#pragma unroll
	for (int i = 0; i < TOA_LEN6 / 2; i++)
		if (i < olen / 2)
			c += w[i];
	t->check = ~fold(c);
	return 1;
}

static __always_inline __u64 idle_timeout(__u8 proto, __u8 fin, struct config *c)
{
	if (fin)
		return c->timeout_tcpfin;
	return proto == IPPROTO_UDP ? c->timeout_udp : c->timeout_tcp;
}

/* Whether a FULLNAT reply entry still belongs to a live connection: its flow is in the
 * table, not idle past its timeout, and holds this local address and port. */
static __always_inline int fnat_live(struct nat_key *k, struct nat_val *v, __u64 now, struct config *c)
{
	struct flow_key fk = {};
	__builtin_memcpy(fk.src, v->client, 16);
	__builtin_memcpy(fk.dst, v->vip, 16);
	fk.sport = v->cport;
	fk.dport = v->vport;
	fk.proto = k->proto;
	fk.family = k->family;
	struct flow *f = bpf_map_lookup_elem(&flows, &fk);
	if (!f || !f->laddr || f->lport != k->cport)
		return 0;
	if (now - f->last > idle_timeout(k->proto, f->fin, c))
		return 0;
	__u32 li = f->laddr - 1;
	struct laddr *la = bpf_map_lookup_elem(&laddrs, &li);
	if (!la)
		return 0;
	__u32 diff = 0;
#pragma unroll
	for (int i = 0; i < 16; i++)
		diff |= la->addr[i] ^ k->client[i];
	return diff == 0;
}

/* A local address and port for a new FULLNAT connection to real server `re` (port
 * `rport`, network order), with its reply entry `rv` inserted: the service's local
 * addresses in turn, each with the next port of this CPU's share (ports are reused in
 * the order they were given, so the first met again are the oldest, the likeliest
 * expired). A (real server, port, local address, local port) a live connection holds
 * is never taken; an expired one is. 0: *laddr (slot + 1) and *lport set; -1: none free
 * within FNAT_TRIES (the packet is dropped, as kernel FULLNAT does when it runs out of
 * ports). */
static __always_inline int fnat_alloc(struct svc *s, struct pkt *p, struct real *re, __u16 rport,
				      struct nat_val *rv, __u64 now, struct config *c, __u16 *laddr,
				      __u16 *lport)
{
	__u32 zero = 0;
	__u32 *ctr = bpf_map_lookup_elem(&fnat_port, &zero);
	__u32 n = s->laddrs;
	if (!ctr || n == 0 || n > LADDRS_PER_SVC)
		return -1;
	if (*ctr == 0)
		*ctr = bpf_get_prandom_u32() | 1; /* not the same ports after each restart */
	__u32 cpus = c->cpus ? c->cpus : 1;
	__u32 share = (65536 - FNAT_PORT_LO) / cpus;
	if (share == 0)
		share = 1;
	__u32 first = FNAT_PORT_LO + (bpf_get_smp_processor_id() % cpus) * share;
	for (__u32 i = 0; i < FNAT_TRIES; i++) {
		__u32 next = *ctr;
		*ctr = next + 1;
		__u32 idx = s->id * LADDRS_PER_SVC + next % n;
		__u32 *slot = bpf_map_lookup_elem(&svc_laddrs, &idx);
		if (!slot || *slot == 0 || *slot > MAX_LADDRS)
			return -1;
		__u32 li = *slot - 1;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &li);
		if (!la)
			return -1;
		__u16 port = bpf_htons((__u16)(first + (next / n) % share));
		struct nat_key k = {};
		nat_key_of(&k, re->addr, rport, la->addr, port, p);
		int free = bpf_map_update_elem(&nat_rev, &k, rv, BPF_NOEXIST) == 0;
		if (!free) {
			struct nat_val *old = bpf_map_lookup_elem(&nat_rev, &k);
			free = !old || !fnat_live(&k, old, now, c);
			if (free)
				bpf_map_update_elem(&nat_rev, &k, rv, BPF_ANY);
		}
		if (free) {
			*laddr = (__u16)*slot;
			*lport = port;
			return 0;
		}
	}
	return -1;
}

static __always_inline int lb(struct xdp_md *ctx)
{
	struct pkt p = {};
	if (parse(ctx, &p))
		return XDP_PASS;
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&cfg, &zero);
	if (!c)
		return XDP_PASS;
	if ((c->flags & CF_OWN_MAC) && !for_us(ctx, c))
		return XDP_PASS;
	/* A NAT reply from a real server to a client, or a FULLNAT one to a local address
	 * (only looked up when NAT or FULLNAT is in use). */
	if (c->flags & (CF_NAT | CF_FNAT)) {
		struct nat_key nk = {};
		nat_key_of(&nk, p.k.src, p.k.sport, p.k.dst, p.k.dport, &p);
		struct nat_val *nv = bpf_map_lookup_elem(&nat_rev, &nk);
		if (nv) {
			/* An adopted connection's reply before the client's first packet here
			 * (which gives its MAC): dropped, the real server sends it again. */
			__u8 mac = 0;
#pragma unroll
			for (int i = 0; i < ETH_ALEN; i++)
				mac |= nv->client_mac[i];
			if (!mac)
				return XDP_DROP;
			if (nv->fnat && rewrite(ctx, &p, 0, nv->client, nv->cport))
				return XDP_DROP;
			if (rewrite(ctx, &p, 1, nv->vip, nv->vport) || set_macs(ctx, nv->client_mac))
				return XDP_DROP;
			count(&svc_stats, nv->svc, p.len, 1, 0);
			count(&real_stats, nv->real, p.len, 1, 0);
			return XDP_TX;
		}
	}

	struct vip_key vk = {};
	__builtin_memcpy(vk.addr, p.k.dst, 16);
	vk.port = p.k.dport;
	vk.proto = p.k.proto;
	vk.family = p.k.family;
	struct svc *s = bpf_map_lookup_elem(&vips, &vk);
	if (!s) {
		if (!(c->flags & CF_PORT0))
			return XDP_PASS;
		vk.port = 0;
		s = bpf_map_lookup_elem(&vips, &vk);
		if (!s)
			return XDP_PASS;
	}

	__u64 now = bpf_jiffies64();

	/* Forwarding by the table alone: a slot without a change forwards to its real
	 * server with no flow lookup (see `changes`). */
	__u32 *slotp = 0;
	__u32 cur = 0; /* the slot's real server + 1 */
	struct change_key ck = {};
	if (s->flags & SF_BY_TABLE) {
		void *tbl = bpf_map_lookup_elem(&tables, &s->id);
		if (tbl && s->table_len && s->table_len <= TABLE_MAX) {
			ck.svc = s->id;
			ck.slot = first_slot(s, &p, c);
			slotp = bpf_map_lookup_elem(tbl, &ck.slot);
		}
		if (slotp) {
			__u32 v = *slotp;
			cur = v & SLOT_REAL;
			int clean = cur && !(v & SLOT_CHANGED);
			if (cur && !clean) {
				struct change *ch = bpf_map_lookup_elem(&changes, &ck);
				clean = ch && now >= ch->dirty_until;
			}
			if (clean) {
				__u32 ri = cur - 1;
				struct real *re = bpf_map_lookup_elem(&reals, &ri);
				if (re && (re->flags & RF_USABLE) && (re->method == M_DR || re->method == M_TUN)) {
					/* A connection begins with a SYN without ACK. */
					int syn = (p.tcp_flags & 18) == 2;
					count(&svc_stats, s->id, p.len, 0, syn);
					count(&real_stats, ri, p.len, 0, syn);
					if (re->method == M_DR)
						return fwd_dr(ctx, re);
					return fwd_tun(ctx, re, &p, c);
				}
			}
		}
	}

	long r = -1;
	int new_conn = 0, hit = 0;
	struct flow *f = bpf_map_lookup_elem(&flows, &p.k);
	if (f && f->svc == s->id) {
		if (now - f->last <= idle_timeout(p.k.proto, f->fin, c)) {
			r = f->real;
			hit = 1;
		}
	}
	/* By table: a flow of a changed slot from before the change, never recorded, goes on
	 * to the slot's earlier real server (it is not a SYN: not a new connection). */
	if (r < 0 && slotp && p.k.proto == IPPROTO_TCP && !(p.tcp_flags & 2)) {
		struct change *ch = bpf_map_lookup_elem(&changes, &ck);
		if (ch && ch->prev && now < ch->prev_until)
			r = ch->prev - 1;
	}
	if (r < 0) {
		/* A new flow: persistence template first, then the scheduler. */
		struct tmpl_key tk = {};
		if (s->flags & SF_PERSIST) {
			__u32 words = p.k.family == 4 ? 1 : 4;
			__u32 bits = s->persist_prefix;
#pragma unroll
			for (int i = 0; i < 16; i++) {
				__u32 keep = bits >= 8 ? 8 : bits;
				bits -= keep;
				if (i < (int)(words * 4))
					tk.client[i] = p.k.src[i] & (__u8)(0xff00 >> keep);
			}
			tk.svc = s->id;
			struct tmpl *t = bpf_map_lookup_elem(&templates, &tk);
			if (t && now - t->last <= (__u64)s->persist_s * c->hz && usable(t->real))
				r = t->real;
		}
		if (r < 0)
			r = schedule(s, &p, c);
		if (r < 0)
			return XDP_DROP; /* no usable real server: as IPVS, the packet is dropped */
		if (s->flags & SF_PERSIST) {
			struct tmpl nt = { .last = now, .real = (__u32)r };
			bpf_map_update_elem(&templates, &tk, &nt, BPF_ANY);
		}
		new_conn = 1;
	}
	__u32 ri = (__u32)r;
	struct real *re = bpf_map_lookup_elem(&reals, &ri);
	if (!re)
		return XDP_DROP;

	/* NAT and FULLNAT: the real server's port (0: the client's destination port). */
	__u16 rport = re->port ? re->port : p.k.dport;
	struct flow nf = { .last = now, .real = ri, .svc = s->id };
	/* FULLNAT: the connection's local address and port, chosen with its first packet (or
	 * when a flow adopted from another director's sync has none). */
	__u16 laddr = 0, lport = 0;
	if (re->method == M_FNAT) {
		if (hit && f->laddr) {
			laddr = f->laddr;
			lport = f->lport;
		} else {
			struct nat_val rv = {};
			if (re->family != p.k.family || nat_val_of(ctx, &p, s->id, ri, 1, &rv))
				return XDP_DROP;
			if (fnat_alloc(s, &p, re, rport, &rv, now, c, &laddr, &lport))
				return XDP_DROP;
			if (hit) {
				f->laddr = laddr;
				f->lport = lport;
			}
		}
		nf.laddr = laddr;
		nf.lport = lport;
	}
	if (hit) {
		f->last = now;
		f->here = 1;
		if (p.tcp_flags & 5)
			f->fin = 1;
	} else {
		nf.fin = (p.tcp_flags & 5) ? 1 : 0;
		nf.here = 1;
		bpf_map_update_elem(&flows, &p.k, &nf, BPF_ANY);
	}
	/* By table: a recorded flow that goes elsewhere than its slot keeps the slot marked
	 * until it may time out. */
	if (slotp && ri + 1 != cur) {
		__u64 until = now + idle_timeout(p.k.proto, hit ? f->fin : nf.fin, c);
		struct change *ch = bpf_map_lookup_elem(&changes, &ck);
		if (ch) {
			if (ch->dirty_until < until)
				ch->dirty_until = until;
		} else {
			struct change nc = { .dirty_until = until };
			bpf_map_update_elem(&changes, &ck, &nc, BPF_NOEXIST);
		}
		if (!(*slotp & SLOT_CHANGED))
			__sync_fetch_and_or(slotp, SLOT_CHANGED);
	}
	count(&svc_stats, s->id, p.len, 0, new_conn);
	count(&real_stats, ri, p.len, 0, new_conn);

	switch (re->method) {
	case M_DR:
		return fwd_dr(ctx, re);
	case M_TUN:
		return fwd_tun(ctx, re, &p, c);
	case M_NAT: {
		struct nat_val rv = {};
		if (re->family != p.k.family || nat_val_of(ctx, &p, s->id, ri, 0, &rv))
			return XDP_DROP;
		if (new_conn) {
			struct nat_key rk = {};
			nat_key_of(&rk, re->addr, rport, p.k.src, p.k.sport, &p);
			bpf_map_update_elem(&nat_rev, &rk, &rv, BPF_ANY);
		}
		if (rewrite(ctx, &p, 0, re->addr, rport) || set_macs(ctx, re->mac))
			return XDP_DROP;
		return XDP_TX;
	}
	case M_FNAT: {
		__u32 li = (__u32)laddr - 1;
		struct laddr *la = bpf_map_lookup_elem(&laddrs, &li);
		if (!la)
			return XDP_DROP;
		if (hit && f->mac_wait) {
			/* Adopted from another director: its reply entry learns where the
			 * client's packets come from. */
			struct nat_key rk = {};
			nat_key_of(&rk, re->addr, rport, la->addr, lport, &p);
			struct nat_val *rv = bpf_map_lookup_elem(&nat_rev, &rk);
			void *data = (void *)(long)ctx->data;
			void *end = (void *)(long)ctx->data_end;
			struct ethhdr *eth = data;
			if (rv && (void *)(eth + 1) <= end)
				__builtin_memcpy(rv->client_mac, eth->h_source, ETH_ALEN);
			f->mac_wait = 0;
		}
		if (rewrite(ctx, &p, 1, la->addr, lport) || rewrite(ctx, &p, 0, re->addr, rport))
			return XDP_DROP;
		/* TOA on the connection's first packet after the SYN (the ACK that completes
		 * the handshake, which the real server's `toa` module reads), once. */
		if (hit && p.k.proto == IPPROTO_TCP && !(p.tcp_flags & 2) && !f->toa) {
			f->toa = 1;
			if (p.k.family == 4)
				toa(ctx, 0, p.k.src, p.k.sport);
			else
				toa(ctx, 1, p.k.src, p.k.sport);
		}
		if (set_macs(ctx, re->mac))
			return XDP_DROP;
		return XDP_TX;
	}
	}
	return XDP_DROP;
}

SEC("xdp")
int rvs_lb(struct xdp_md *ctx)
{
	return lb(ctx);
}

/* ---- the clock, for userspace (run by BPF_PROG_RUN; never attached) ----
 * Userspace has no jiffies: this program reads them with the monotonic clock in one
 * go, which gives userspace "now" in the program's unit and, from two readings, the
 * kernel's HZ. */
struct clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock);
} clock SEC(".maps");

SEC("xdp")
int rvs_clock(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct clock *k = bpf_map_lookup_elem(&clock, &zero);
	if (k) {
		k->jiffies = bpf_jiffies64();
		k->ns = bpf_ktime_get_ns();
	}
	return XDP_PASS;
}

/* ---- benchmark only (crates/rvs-xdp/examples/progrun.rs; never attached) ---- */
#include "rotation.h"

SEC("xdp")
int rvs_lb_bench(struct xdp_md *ctx)
{
	if (rotate(ctx))
		return XDP_ABORTED;
	return lb(ctx);
}

char LICENSE[] SEC("license") = "GPL";
