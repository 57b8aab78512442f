// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * NPTv6 (RFC 6296) translator for the tc hooks of an uplink (TCX or cls_bpf
 * in direct-action mode). npt_egress translates the source of packets
 * leaving through the uplink, npt_ingress the destination of packets
 * arriving on it. The arithmetic mirrors the Go core in ../core.go, which is
 * the reference the tests compare this program with.
 *
 * Mappings live in two LPM tries keyed by (ifindex, prefix) and are written
 * by the Go side; every map is pinned by name so the translation survives a
 * restart of the daemon.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_MAPPINGS 1024
#define MAX_IFACES 256
#define NPT_HAIRPIN 1       /* this mapping hairpins (npt_in entries) */
#define NPT_IFACE_HAIRPIN 2 /* some mapping on the device hairpins (npt_out) */

/*
 * Offset of the IPv6 header: 14 on Ethernet devices. The Go side loads a
 * second instance with 0 for layer-3 devices (PPP, tunnels). A load-time
 * constant instead of a per-packet lookup keeps the fast path to one LPM
 * lookup.
 */
volatile const __u32 l3off = ETH_HLEN;

/* IPv6 (RFC 8200 section 3) and ICMPv6 (RFC 4443 section 2.1) layout. */
#define IPV6_HLEN 40
#define OFF_NEXTHDR 6
#define OFF_SRC 8
#define OFF_DST 24
#define ICMP_HLEN 8
#define OFF_EMB (IPV6_HLEN + ICMP_HLEN)
#define MIN_ICMP_ERR (OFF_EMB + IPV6_HLEN)
#define PROTO_ICMPV6 58

struct npt_key {
	__u32 prefixlen; /* 32 (the ifindex) + prefix length */
	__u32 ifindex;
	__u8 addr[8];    /* the first 64 bits of the address */
};

struct npt_mapping {
	__u8 from[8];  /* the matched side's prefix (extended, masked) */
	__u8 to[8];    /* the other side's prefix (extended, masked) */
	__u8 mask[8];  /* mask of the effective prefix length */
	__u16 adj;     /* one's-complement adjustment, network byte order */
	__u8 bits;     /* effective prefix length, 1..64 */
	__u8 flags;    /* NPT_HAIRPIN */
	__u8 internal_bits; /* configured lengths, kept for read-back */
	__u8 external_bits;
	__u16 pad;
	__u32 id;      /* slot in npt_stats */
};

struct npt_counters {
	__u64 out_packets;
	__u64 out_bytes;
	__u64 out_drops;
	__u64 in_packets;
	__u64 in_bytes;
	__u64 in_drops;
	__u64 hairpinned;
};

struct npt_iface {
	__u32 l3off;  /* 14 on Ethernet, 0 on layer-3 devices */
	__u8 mac[6];  /* the device's address, for hairpinned frames */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_MAPPINGS);
	__type(key, struct npt_key);
	__type(value, struct npt_mapping);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} npt_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_MAPPINGS);
	__type(key, struct npt_key);
	__type(value, struct npt_mapping);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} npt_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_MAPPINGS);
	__type(key, __u32);
	__type(value, struct npt_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} npt_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, struct npt_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} npt_ifaces SEC(".maps");

struct addr16 {
	__u16 w[8]; /* raw, network byte order */
};

/*
 * One's-complement addition is the same in either byte order (RFC 1071
 * section 2), so the words are added as loaded, with adj stored in network
 * byte order by the Go side.
 */
static __always_inline __u16 ones_add(__u16 a, __u16 b)
{
	__u32 s = (__u32)a + b;
	return (__u16)((s & 0xffff) + (s >> 16));
}

static __always_inline int zero_iid(const struct addr16 *a)
{
	return (a->w[4] | a->w[5] | a->w[6] | a->w[7]) == 0;
}

static __always_inline __u16 adjust(__u16 w, __u16 adj)
{
	__u16 v = ones_add(w, adj);
	/* RFC 6296 sections 3.2 and 3.3: a result of 0xFFFF is written as 0. */
	return v == 0xffff ? 0 : v;
}

/*
 * npt_map translates a (a local copy) with m. Returns 0, or -1 when RFC 6296
 * says the address must not be translated; a is then unusable.
 */
static __always_inline int npt_map(struct addr16 *a, const struct npt_mapping *m)
{
	__u64 hi, mask, to;

	/* All-zero IID: the Subnet-Router anycast address (RFC 4291 2.6.1). */
	if (zero_iid(a))
		return -1;
	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mask, m->mask, 8);
	__builtin_memcpy(&to, m->to, 8);
	hi = (hi & ~mask) | to;
	__builtin_memcpy(a, &hi, 8);

	if (m->bits <= 48) {
		/* RFC 6296 section 3.4: bits 48..63; subnet 0xFFFF is unmappable. */
		if (a->w[3] == 0xffff)
			return -1;
		a->w[3] = adjust(a->w[3], m->adj);
	} else if (a->w[4] != 0xffff) {
		/* RFC 6296 section 3.5: the first of words 4..7 not 0xFFFF. */
		a->w[4] = adjust(a->w[4], m->adj);
	} else if (a->w[5] != 0xffff) {
		a->w[5] = adjust(a->w[5], m->adj);
	} else if (a->w[6] != 0xffff) {
		a->w[6] = adjust(a->w[6], m->adj);
	} else if (a->w[7] != 0xffff) {
		a->w[7] = adjust(a->w[7], m->adj);
	} else {
		return -1;
	}
	if (zero_iid(a))
		return -1;
	return 0;
}

static __always_inline int l3_offset(void)
{
	return l3off ? ETH_HLEN : 0;
}

/*
 * ICMPv6 error messages (types 1-4) carry the invoking packet; its address
 * at offset off (relative to the outer IPv6 header) is translated too when
 * it lies in m's matched prefix. Returns 0 if it was translated; otherwise
 * the packet is left as it is.
 */
static __always_inline int npt_icmp_error(struct __sk_buff *skb, int l3, const struct npt_mapping *m, int off)
{
	void *data, *end;
	__u8 *ip;
	struct addr16 e;
	__u64 hi, mask, from;

	if (skb->len < (__u32)l3 + MIN_ICMP_ERR)
		return -1;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + l3 + MIN_ICMP_ERR > end) {
		if (bpf_skb_pull_data(skb, l3 + MIN_ICMP_ERR))
			return -1;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	ip = data + l3;
	if ((void *)(ip + MIN_ICMP_ERR) > end)
		return -1;
	if (ip[IPV6_HLEN] < 1 || ip[IPV6_HLEN] > 4)
		return -1;
	__builtin_memcpy(&e, ip + off, 16);
	__builtin_memcpy(&hi, &e, 8);
	__builtin_memcpy(&mask, m->mask, 8);
	__builtin_memcpy(&from, m->from, 8);
	if ((hi & mask) != from)
		return -1;
	if (npt_map(&e, m))
		return -1;
	__builtin_memcpy(ip + off, &e, 16);
	return 0;
}

/* ip6_header returns the IPv6 header, pulling it into the linear area. */
static __always_inline __u8 *ip6_header(struct __sk_buff *skb, int l3)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *ip;

	if (data + l3 + IPV6_HLEN > end) {
		if (bpf_skb_pull_data(skb, l3 + IPV6_HLEN))
			return 0;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	ip = data + l3;
	if ((void *)(ip + IPV6_HLEN) > end)
		return 0;
	if ((ip[0] >> 4) != 6)
		return 0;
	return ip;
}

/*
 * An ICMPv6 error leaving with a source outside every internal prefix (the
 * edge itself, typically a Packet Too Big for an inbound packet too big for
 * the LAN link) that quotes a packet sent to an internal address: translate
 * the quoted destination so the sender can match the error. Mirrors
 * Table.outboundForeignError in ../packet.go.
 */
static __always_inline void npt_foreign_error(struct __sk_buff *skb, int l3, struct npt_key *k)
{
	void *data, *end;
	__u8 *ip;
	struct npt_mapping *m;
	struct npt_counters *c;

	if (skb->len < (__u32)l3 + MIN_ICMP_ERR)
		return;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + l3 + MIN_ICMP_ERR > end) {
		if (bpf_skb_pull_data(skb, l3 + MIN_ICMP_ERR))
			return;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	ip = data + l3;
	if ((void *)(ip + MIN_ICMP_ERR) > end)
		return;
	if (ip[IPV6_HLEN] < 1 || ip[IPV6_HLEN] > 4)
		return;
	__builtin_memcpy(k->addr, ip + OFF_EMB + OFF_DST, 8);
	m = bpf_map_lookup_elem(&npt_out, k);
	if (!m)
		return;
	if (npt_icmp_error(skb, l3, m, OFF_EMB + OFF_DST))
		return;
	c = bpf_map_lookup_elem(&npt_stats, &m->id);
	if (c) {
		c->out_packets++;
		c->out_bytes += skb->len;
	}
}

SEC("tc")
int npt_egress(struct __sk_buff *skb)
{
	struct npt_mapping *m, *h;
	struct npt_counters *c, *hc;
	struct npt_key k = {.prefixlen = 32 + 64, .ifindex = skb->ifindex};
	struct addr16 src, dst;
	__u8 *ip;
	int l3;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_UNSPEC;
	l3 = l3_offset();
	ip = ip6_header(skb, l3);
	if (!ip)
		return TC_ACT_UNSPEC;
	__builtin_memcpy(k.addr, ip + OFF_SRC, 8);
	m = bpf_map_lookup_elem(&npt_out, &k);
	if (!m) {
		if (ip[OFF_NEXTHDR] == PROTO_ICMPV6)
			npt_foreign_error(skb, l3, &k);
		return TC_ACT_UNSPEC;
	}
	c = bpf_map_lookup_elem(&npt_stats, &m->id);
	__builtin_memcpy(&src, ip + OFF_SRC, 16);
	if (npt_map(&src, m)) {
		if (c)
			c->out_drops++;
		return TC_ACT_SHOT;
	}

	/*
	 * RFC 6296 section 4.3: hairpinning. The second lookup is only paid on
	 * devices where some mapping hairpins.
	 */
	h = 0;
	if (m->flags & NPT_IFACE_HAIRPIN) {
		__builtin_memcpy(k.addr, ip + OFF_DST, 8);
		h = bpf_map_lookup_elem(&npt_in, &k);
	}
	if (h && (h->flags & NPT_HAIRPIN)) {
		hc = bpf_map_lookup_elem(&npt_stats, &h->id);
		__builtin_memcpy(&dst, ip + OFF_DST, 16);
		if (npt_map(&dst, h)) {
			if (hc)
				hc->in_drops++;
			return TC_ACT_SHOT;
		}
		__builtin_memcpy(ip + OFF_SRC, &src, 16);
		__builtin_memcpy(ip + OFF_DST, &dst, 16);
		if (l3) {
			/* Address the frame to ourselves so the stack takes it. */
			void *data = (void *)(long)skb->data;
			void *end = (void *)(long)skb->data_end;
			struct ethhdr *eth = data;
			__u32 ifindex = skb->ifindex;
			struct npt_iface *ifc = bpf_map_lookup_elem(&npt_ifaces, &ifindex);

			if (!ifc || (void *)(eth + 1) > end)
				return TC_ACT_SHOT;
			__builtin_memcpy(eth->h_dest, ifc->mac, ETH_ALEN);
		}
		if (c) {
			c->out_packets++;
			c->out_bytes += skb->len;
			c->hairpinned++;
		}
		return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
	}

	__builtin_memcpy(ip + OFF_SRC, &src, 16);
	if (c) {
		c->out_packets++;
		c->out_bytes += skb->len;
	}
	/*
	 * An error sent from inside about a packet that came in: the embedded
	 * destination is our internal address.
	 */
	if (ip[OFF_NEXTHDR] == PROTO_ICMPV6)
		npt_icmp_error(skb, l3, m, OFF_EMB + OFF_DST);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int npt_ingress(struct __sk_buff *skb)
{
	struct npt_mapping *m;
	struct npt_counters *c;
	struct npt_key k = {.prefixlen = 32 + 64, .ifindex = skb->ifindex};
	struct addr16 dst;
	__u8 *ip;
	int l3;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_UNSPEC;
	l3 = l3_offset();
	ip = ip6_header(skb, l3);
	if (!ip)
		return TC_ACT_UNSPEC;
	__builtin_memcpy(k.addr, ip + OFF_DST, 8);
	m = bpf_map_lookup_elem(&npt_in, &k);
	if (!m)
		return TC_ACT_UNSPEC;
	c = bpf_map_lookup_elem(&npt_stats, &m->id);
	__builtin_memcpy(&dst, ip + OFF_DST, 16);
	if (npt_map(&dst, m)) {
		if (c)
			c->in_drops++;
		return TC_ACT_SHOT;
	}
	__builtin_memcpy(ip + OFF_DST, &dst, 16);
	if (c) {
		c->in_packets++;
		c->in_bytes += skb->len;
	}
	/* An error from outside about a packet we sent: the embedded source. */
	if (ip[OFF_NEXTHDR] == PROTO_ICMPV6)
		npt_icmp_error(skb, l3, m, OFF_EMB + OFF_SRC);
	return TC_ACT_UNSPEC;
}

char __license[] SEC("license") = "Dual BSD/GPL";
