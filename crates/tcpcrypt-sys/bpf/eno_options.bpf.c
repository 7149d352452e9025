// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The kernel half of tcpcryptd's BPF option path: a sock_ops program that writes the TCP-ENO
// options (RFC 8547 §4.1, §4.6) the daemon decided into its upstream connections' segments, and
// copies the ENO option of a passive connection's first ACK back to it, so that none of those
// segments has to go through NFQUEUE.
//
// The program decides nothing about ENO. The daemon's sans-IO core (`Negotiation`) chooses every
// byte and puts it in the maps before the segment that carries it is built; this program only
// copies bytes between the maps and the segments:
//
//   active open (the daemon's upstream socket)
//     daemon: connecting[cookie] = { syn_opt }            before connect()
//     TCP_CONNECT_CB      moves it to conns[tuple], turns the header callbacks on
//     HDR_OPT_LEN/WRITE   SYN: syn_opt (byte-identical on every retransmission, §4.6)
//     (the SYN-ACK goes through NFQUEUE: the daemon checks it and sets ack_eno)
//     HDR_OPT_LEN/WRITE   non-SYN: `45 02` while ack_eno, until a non-SYN segment arrives (§4.6)
//     PARSE_HDR_OPT_CB    non-SYN segment received: duty over, entry and callbacks gone
//   passive open (a connection the daemon's TPROXY listener accepts)
//     daemon: connecting[listener cookie] = {}             before listen()
//     TCP_LISTEN_CB       turns the header callbacks on for the listener (its SYN-ACKs)
//     daemon: conns[tuple] = { syn_opt }                   while the SYN is held in NFQUEUE
//     HDR_OPT_LEN/WRITE   SYN-ACK: syn_opt when the daemon gave one. It gives none for an
//                         option longer than the 20 bytes the kernel's own options leave,
//                         padding included (a resumption answer: 21); that SYN-ACK goes
//                         through NFQUEUE, where a rewrite of the whole area makes room
//     PASSIVE_ESTABLISHED the segment that completed the handshake: its ENO option (if any)
//                         into peer_opt, callbacks off; the daemon reads it after accept()
//
// Only sockets in the daemon's network namespace are touched (several daemons may share a
// cgroup, as in tests): `netns_cookie` is set by the loader.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define TCPOPT_ENO 69
#define MAX_OPT 40

#define TH_SYN 0x02

// conn.state bits, set here, read by the daemon (tcpcrypt-sys `bpf.rs` mirrors them).
#define ST_ESTABLISHED 0x10    // passive: peer_opt holds the completing segment's ENO option

struct conn_key {
	__u32 family;
	__u32 local_ip[4];
	__u32 remote_ip[4];
	__u16 local_port;  // host byte order
	__u16 remote_port; // host byte order
};

struct conn {
	__u64 cookie;
	__u8 syn_opt[MAX_OPT];
	__u8 syn_len;
	__u8 ack_eno;
	__u8 state;
	__u8 peer_len;
	__u8 peer_flags;
	__u8 peer_payload;
	__u8 pad[2];
	__u8 peer_opt[MAX_OPT];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

const volatile __u64 netns_cookie = 0;

#define NON_SYN_ENO_LEN 2

static __always_inline int key_of(struct bpf_sock_ops *skops, struct conn_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->family = skops->family;
	if (key->family == AF_INET) {
		key->local_ip[0] = skops->local_ip4;
		key->remote_ip[0] = skops->remote_ip4;
	} else if (key->family == AF_INET6) {
		key->local_ip[0] = skops->local_ip6[0];
		key->local_ip[1] = skops->local_ip6[1];
		key->local_ip[2] = skops->local_ip6[2];
		key->local_ip[3] = skops->local_ip6[3];
		key->remote_ip[0] = skops->remote_ip6[0];
		key->remote_ip[1] = skops->remote_ip6[1];
		key->remote_ip[2] = skops->remote_ip6[2];
		key->remote_ip[3] = skops->remote_ip6[3];
	} else {
		return -1;
	}
	key->local_port = (__u16)skops->local_port;
	// remote_port holds the network-order port in its upper 16 bits.
	key->remote_port = bpf_ntohs((__u16)(skops->remote_port >> 16));
	return 0;
}

static __always_inline void callbacks(struct bpf_sock_ops *skops, int on)
{
	bpf_sock_ops_cb_flags_set(skops, on ? (BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
					       BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG)
					    : 0);
}

// Whether this segment gets an option, and how long it is (0: none).
static __always_inline __u32 wanted(struct bpf_sock_ops *skops, struct conn *c)
{
	if (skops->skb_tcp_flags & TH_SYN)
		return c->syn_len;
	return c->ack_eno ? NON_SYN_ENO_LEN : 0;
}

// The connection of this segment and the length of the option it gets (`*len`), or NULL when
// it gets none.
static __always_inline struct conn *wanted_option(struct bpf_sock_ops *skops, __u32 *len)
{
	struct conn_key key;
	struct conn *c;

	if (key_of(skops, &key))
		return NULL;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return NULL;
	*len = wanted(skops, c);
	if (*len < 2 || *len > MAX_OPT)
		return NULL;
	return c;
}

static __always_inline int on_opt_len(struct bpf_sock_ops *skops)
{
	__u32 len;

	if (!wanted_option(skops, &len))
		return 1;
	// Without room (the daemon sizes the options for the room the kernel leaves, so this is
	// not expected) the segment goes without ENO. For a SYN the peer then falls back, and so
	// does the daemon at the SYN-ACK without ENO (§4.6).
	bpf_reserve_hdr_opt(skops, len, 0);
	return 1;
}

static __always_inline int on_write(struct bpf_sock_ops *skops)
{
	// The non-SYN form: presence only, no contents (§4.1).
	__u8 eno[NON_SYN_ENO_LEN] = {TCPOPT_ENO, NON_SYN_ENO_LEN};
	struct conn *c;
	__u32 len;

	c = wanted_option(skops, &len);
	if (!c)
		return 1;
	if (skops->skb_tcp_flags & TH_SYN)
		bpf_store_hdr_opt(skops, c->syn_opt, len, 0);
	else
		bpf_store_hdr_opt(skops, eno, sizeof(eno), 0);
	return 1;
}

// A listener the daemon announced: its SYN-ACKs get the header callbacks (its connections
// inherit them until PASSIVE_ESTABLISHED turns them off).
static __always_inline int on_listen(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);

	if (!bpf_map_lookup_elem(&connecting, &cookie))
		return 1;
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
	bpf_map_delete_elem(&connecting, &cookie);
	return 1;
}

static __always_inline int on_connect(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct conn_key key;
	struct conn *c;

	c = bpf_map_lookup_elem(&connecting, &cookie);
	if (!c)
		return 1;
	if (key_of(skops, &key) == 0) {
		c->cookie = cookie;
		if (bpf_map_update_elem(&conns, &key, c, BPF_ANY) == 0)
			callbacks(skops, 1);
	}
	bpf_map_delete_elem(&connecting, &cookie);
	return 1;
}

// Active side: a segment received after the handshake. A non-SYN one ends the duty to send
// ENO (§4.6).
static __always_inline int on_parse(struct bpf_sock_ops *skops)
{
	struct conn_key key;

	if (skops->skb_tcp_flags & TH_SYN)
		return 1;
	callbacks(skops, 0);
	if (key_of(skops, &key) == 0)
		bpf_map_delete_elem(&conns, &key);
	return 1;
}

// The length of the received segment's TCP header (its data offset), or 60 if unreadable.
static __always_inline __u32 tcp_header_len(struct bpf_sock_ops *skops)
{
	__u8 *th = skops->skb_data;

	if (th + 13 > (__u8 *)skops->skb_data_end)
		return 60;
	return (th[12] >> 4) * 4;
}

// Passive side: `skb` is the segment that completed the handshake (normally the third ACK).
static __always_inline int on_passive_established(struct bpf_sock_ops *skops)
{
	__u8 opt[MAX_OPT] = {TCPOPT_ENO, 0};
	struct conn_key key;
	struct conn *c;
	long n;

	// The accepted socket inherited the listener's callbacks: nothing more to write.
	callbacks(skops, 0);
	if (key_of(skops, &key))
		return 1;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 1;
	n = bpf_load_hdr_opt(skops, opt, sizeof(opt), 0);
	if (n > 0 && n <= MAX_OPT) {
		__builtin_memcpy(c->peer_opt, opt, MAX_OPT);
		c->peer_len = n;
	} else {
		c->peer_len = 0;
	}
	c->peer_flags = skops->skb_tcp_flags;
	c->peer_payload = skops->skb_len > tcp_header_len(skops);
	c->state |= ST_ESTABLISHED;
	return 1;
}

SEC("sockops")
int eno_options(struct bpf_sock_ops *skops)
{
	if (bpf_get_netns_cookie(skops) != netns_cookie)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		return on_connect(skops);
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		return on_listen(skops);
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		return on_opt_len(skops);
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		return on_write(skops);
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		return on_parse(skops);
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return on_passive_established(skops);
	}
	return 1;
}

// The project's licence: no helper used here is GPL-only, so the kernel needs no GPL one.
char _license[] SEC("license") = "MIT OR Apache-2.0";
