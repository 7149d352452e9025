// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The SYN filters of tcpcryptd: socket-filter programs that the daemon's iptables rules run as
// matches (`-m bpf --object-pinned`, xt_bpf) on the SYNs they would otherwise queue, so that
// SYNs the daemon has nothing to decide about never cross NFQUEUE. skb->data is the IP header.
//
//   cached_plain_peer  (client, mangle OUTPUT, before NFQUEUE app_syn) matches an application's
//                      SYN to a destination in plain_peers (a server that answered without ENO):
//                      it goes direct. One SYN per destination every probe_ns does not match,
//                      so the daemon offers ENO again (tcpcryptd's plain_peers module).
//   syn_without_eno    (server, raw PREROUTING, before NFQUEUE server_syn) matches a SYN that
//                      carries no ENO option (neither kind 69 nor the legacy 253, RFC 8547 §4.1,
//                      §11): the daemon would only let it pass.
//
// Like the sock_ops program, they decide nothing about ENO: the daemon fills plain_peers.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define MAX_OPT 40
#define TCPOPT_ENO 69

#define IPPROTO_TCP 6
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_EXP 253

struct peer_key {
	__u32 family;
	__u32 addr[4];
	__u16 port; // host byte order
	__u16 pad;
};

struct peer {
	__u64 until_ns;	     // bpf_ktime_get_ns (CLOCK_MONOTONIC) expiry
	__u64 next_probe_ns; // the first SYN at or after it probes
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct peer_key);
	__type(value, struct peer);
} plain_peers SEC(".maps");

// SYNs let go direct by cached_plain_peer, for `tcpcrypt status`.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} direct_count SEC(".maps");

// SYNs syn_without_eno matched (clients without tcpcrypt), for `tcpcrypt status`.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} no_eno_count SEC(".maps");

// Adds one to a per-CPU count; returns 1 (a match) for the caller to return.
static __always_inline int counted(void *count)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(count, &zero);

	if (n)
		*n += 1;
	return 1;
}

const volatile __u64 probe_ns = 10000000000ULL;

// The IP version, destination address and the offset of the TCP header of a TCP packet.
static __always_inline int tcp_dst(struct __sk_buff *skb, struct peer_key *key, __u32 *th)
{
	__u8 vihl, proto;

	__builtin_memset(key, 0, sizeof(*key));
	if (bpf_skb_load_bytes(skb, 0, &vihl, 1))
		return -1;
	if ((vihl >> 4) == 4) {
		if (bpf_skb_load_bytes(skb, 9, &proto, 1) || proto != IPPROTO_TCP)
			return -1;
		if (bpf_skb_load_bytes(skb, 16, &key->addr[0], 4))
			return -1;
		key->family = AF_INET;
		*th = (vihl & 0x0f) * 4;
	} else if ((vihl >> 4) == 6) {
		// No extension headers: a SYN with one is queued, as before.
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) || proto != IPPROTO_TCP)
			return -1;
		if (bpf_skb_load_bytes(skb, 24, key->addr, 16))
			return -1;
		key->family = AF_INET6;
		*th = 40;
	} else {
		return -1;
	}
	return 0;
}

SEC("socket")
int cached_plain_peer(struct __sk_buff *skb)
{
	struct peer_key key;
	struct peer *p;
	__u32 th;
	__u16 port;
	__u64 now;

	if (tcp_dst(skb, &key, &th) || bpf_skb_load_bytes(skb, th + 2, &port, 2))
		return 0;
	key.port = bpf_ntohs(port);
	p = bpf_map_lookup_elem(&plain_peers, &key);
	if (!p)
		return 0;
	now = bpf_ktime_get_ns();
	if (now >= p->until_ns)
		return 0;
	if (now >= p->next_probe_ns) {
		p->next_probe_ns = now + probe_ns;
		return 0;
	}
	return counted(&direct_count);
}

SEC("socket")
int syn_without_eno(struct __sk_buff *skb)
{
	struct peer_key key;
	__u8 opts[MAX_OPT + 1], doff, kind, olen;
	__u32 th, len, next = 0;

	if (tcp_dst(skb, &key, &th) || bpf_skb_load_bytes(skb, th + 12, &doff, 1))
		return 0;
	len = (doff >> 4) * 4;
	if (len <= 20)
		return counted(&no_eno_count);
	len -= 20;
	if (len > MAX_OPT)
		return 0;
	if (bpf_skb_load_bytes(skb, th + 20, opts, len))
		return 0;
	// Walks the options from one start to the next; any doubt (truncated, malformed): no
	// match, the daemon sees the SYN.
#pragma unroll
	for (int k = 0; k < MAX_OPT; k++) {
		if (k != next)
			continue;
		if (k >= len)
			return counted(&no_eno_count);
		kind = opts[k];
		if (kind == TCPOPT_EOL)
			return counted(&no_eno_count);
		if (kind == TCPOPT_ENO || kind == TCPOPT_EXP)
			return 0;
		if (kind == TCPOPT_NOP) {
			next = k + 1;
			continue;
		}
		if (k + 1 >= len)
			return 0;
		olen = opts[k + 1];
		if (olen < 2 || k + olen > len)
			return 0; // malformed, or running past the header
		next = k + olen;
	}
	return counted(&no_eno_count);
}

// The project's licence: no helper used here is GPL-only, so the kernel needs no GPL one.
char _license[] SEC("license") = "MIT OR Apache-2.0";
