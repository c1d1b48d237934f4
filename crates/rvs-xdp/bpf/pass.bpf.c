// SPDX-License-Identifier: GPL-2.0-or-later
// A program that passes every frame. On veth, a native-mode (driver) XDP_TX only arrives
// if the peer device runs an XDP program too; `rvs lab up --xdp-mode native` attaches this
// one to the bridge side of each director's veth.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int rvs_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
