/* Benchmarks only (crates/rvs-xdp/examples/progrun.rs; never attached): the rotation
 * that rvs_lb_bench and bench/katran/harness.bpf.c apply before their balancer.
 *
 * BPF_PROG_RUN repeats one frame without resetting it. rotate() first moves the frame's
 * IPv4 client to the next of `n` 5-tuples, flows base .. base+n-1 (flow k: client
 * 198.19.(k >> 5 as two bytes), source port 10000 + (k & 31)), so that a repeat-mode run
 * measures the hit path across n active flows, or new flows on the first pass, without a
 * syscall per packet. Checksums are left stale (DR forwards without them). */
struct rotation {
	__u32 n;
	__u32 base;
	__u32 i;
};

/* Shared, not per-CPU: a long repeat-mode run may move to another CPU between packets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rotation);
} bench_rotation SEC(".maps");

/* 0, or -1 for a frame too short to rotate. */
static __attribute__((__always_inline__)) int rotate(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct rotation *rot = bpf_map_lookup_elem(&bench_rotation, &zero);
	if (rot && rot->n) {
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		struct iphdr *ip = data + sizeof(struct ethhdr);
		struct tcphdr *th = (void *)(ip + 1);
		if ((void *)(th + 1) > end)
			return -1;
		__u32 k = rot->base + rot->i;
		rot->i = rot->i + 1 >= rot->n ? 0 : rot->i + 1;
		ip->saddr = bpf_htonl(0xc6130000 | ((k >> 5) & 0xffff));
		th->source = bpf_htons(10000 + (k & 31));
	}
	return 0;
}
