/* BPF_PROG_RUN harness around Katran's XDP balancer, for the side-by-side figures of
 * bench/xdp.sh (crates/rvs-xdp/examples/progrun.rs --katran). Not part of rvs: built
 * only by the bench, against a Katran checkout (KATRAN_SRC), the way Katran's own
 * Makefile-bpf builds it (clang -emit-llvm | llc -march=bpf).
 *
 * Katran's entry point becomes a subprogram (PROG_SEC_NAME ".text") called by
 * katran_bench, which does what rvs_lb_bench does for rvs — moves the frame to the next
 * flow of a rotation — and then undoes Katran's IP-in-IP encapsulation, because a
 * repeat-mode BPF_PROG_RUN hands each repetition the frame the previous one left.
 * katran_undo measures that undoing alone (an encapsulation's worth of head moved and
 * moved back, the Ethernet header restored). */
#define PROG_SEC_NAME ".text"
#include "katran/lib/bpf/balancer.bpf.c"
/* rvs's rotation (crates/rvs-xdp/bpf, on the include path). */
#include "rotation.h"

/* Back to the client's frame: the outer IPv4 header off, the saved Ethernet header on. */
static __attribute__((__always_inline__)) int undo(struct xdp_md *ctx, struct ethhdr *saved)
{
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr)))
		return -1;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(eth, saved, sizeof(*eth));
	return 0;
}

static __attribute__((__always_inline__)) int save(struct xdp_md *ctx, struct ethhdr *saved)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(saved, eth, sizeof(*eth));
	return 0;
}

SEC("xdp")
int katran_bench(struct xdp_md *ctx)
{
	struct ethhdr saved;
	if (rotate(ctx) || save(ctx, &saved))
		return XDP_ABORTED;
	int v = balancer_ingress(ctx);
	if (v == XDP_TX && undo(ctx, &saved))
		return XDP_ABORTED;
	return v;
}

SEC("xdp")
int katran_undo(struct xdp_md *ctx)
{
	struct ethhdr saved;
	if (save(ctx, &saved) || bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_ABORTED;
	if (undo(ctx, &saved))
		return XDP_ABORTED;
	return XDP_TX;
}
