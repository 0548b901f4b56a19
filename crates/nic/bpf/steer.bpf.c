// SPDX-License-Identifier: Apache-2.0 OR MIT
//
// Rampart's XDP steering programs. Built by build.rs with `clang -O2 -g -target bpf` and loaded
// by rampart-nic's own loader (src/bpf/), which creates the maps declared in the "maps" section
// and patches the map references. Self-contained on purpose: no kernel or libbpf headers.
//
//   rampart_wan: ESP (IP protocol 50) and ESP-in-UDP/4500 addressed to one of the gateway's own
//                addresses go to the AF_XDP socket of the receiving queue; IKE (UDP 500, UDP 4500
//                with the non-ESP marker), ARP, IPv6 ND and everything else pass to the kernel.
//   rampart_lan: IPv4/IPv6 packets whose destination lies in a protected prefix go to the socket,
//                unless addressed to the gateway itself; everything else passes.
//
// Limits (documented in README.md): up to two VLAN tags (802.1Q / 802.1ad); IPv4 options are
// skipped by IHL; IPv6 extension headers are followed for at most four hop-by-hop, routing,
// destination-options or fragment headers, after which the packet passes to the kernel.
//
// This program must never drop a packet: whatever it does not take goes to the kernel.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define INLINE static inline __attribute__((always_inline))

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define be16(x) __builtin_bswap16(x)
#else
#define be16(x) (x)
#endif

enum xdp_action { XDP_ABORTED = 0, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };

struct xdp_md {
    __u32 data;
    __u32 data_end;
    __u32 data_meta;
    __u32 ingress_ifindex;
    __u32 rx_queue_index;
    __u32 egress_ifindex;
};

// Map definitions read by Rampart's loader (not libbpf's format; same idea as the legacy one).
struct rampart_map_def {
    __u32 type;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
};

#define MAP_HASH 1
#define MAP_PERCPU_ARRAY 6
#define MAP_LPM_TRIE 11
#define MAP_XSKMAP 17
#define F_NO_PREALLOC 1

struct lpm_v4 { __u32 prefixlen; __u8 addr[4]; };
struct lpm_v6 { __u32 prefixlen; __u8 addr[16]; };

// Queue index -> AF_XDP socket. max_entries is set by the loader.
struct rampart_map_def SEC("maps") rampart_xsks = { MAP_XSKMAP, 4, 4, 64, 0 };
// The gateway's own addresses on this interface.
struct rampart_map_def SEC("maps") rampart_local4 = { MAP_HASH, 4, 1, 1024, 0 };
struct rampart_map_def SEC("maps") rampart_local6 = { MAP_HASH, 16, 1, 1024, 0 };
// Protected prefixes (LAN only).
struct rampart_map_def SEC("maps") rampart_prot4 = { MAP_LPM_TRIE, sizeof(struct lpm_v4), 1, 65536, F_NO_PREALLOC };
struct rampart_map_def SEC("maps") rampart_prot6 = { MAP_LPM_TRIE, sizeof(struct lpm_v6), 1, 65536, F_NO_PREALLOC };
// Per-CPU verdict counters, indexed by enum counter.
struct rampart_map_def SEC("maps") rampart_stats = { MAP_PERCPU_ARRAY, 4, 8, 16, 0 };

// Keep in sync with `SteeringCounter` in src/steer.rs.
enum counter {
    C_TO_XSK_ESP = 0,        // WAN: ESP to a local address
    C_TO_XSK_ESP_UDP = 1,    // WAN: UDP/4500 without the non-ESP marker (ESP, NAT keepalive)
    C_TO_XSK_PROTECTED = 2,  // LAN: destination in a protected prefix
    C_PASS_IKE = 3,          // WAN: UDP/500, or UDP/4500 with the non-ESP marker
    C_PASS_NOT_LOCAL = 4,    // WAN: not addressed to the gateway
    C_PASS_LOCAL = 5,        // LAN: addressed to the gateway itself
    C_PASS_UNPROTECTED = 6,  // LAN: destination outside every protected prefix
    C_PASS_NOT_IP = 7,       // ARP, LLDP, unknown EtherTypes
    C_PASS_OTHER = 8,        // WAN: local, but neither ESP nor IKE (ICMP, ND, TCP...)
    C_PASS_MALFORMED = 9,    // truncated headers, too many extension headers or VLAN tags
    C_TO_XSK_UDP_FRAGMENT = 10,// WAN: UDP fragment to a local address (the data plane reassembles)
    C_NO_SOCKET = 11,        // chosen for the socket, but no socket on this queue: passed
    C_TO_XSK_AH = 12,        // WAN: AH (IP protocol 51) to a local address
    C_MAX = 13,
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

INLINE void count(__u32 idx)
{
    __u64 *c = bpf_map_lookup_elem(&rampart_stats, &idx);
    if (c)
        *c += 1;
}

INLINE int pass(__u32 idx)
{
    count(idx);
    return XDP_PASS;
}

INLINE int to_xsk(struct xdp_md *ctx, __u32 idx)
{
    long r = bpf_redirect_map(&rampart_xsks, ctx->rx_queue_index, XDP_PASS);
    count(r == XDP_REDIRECT ? idx : C_NO_SOCKET);
    return (int)r;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_HOPOPTS 0
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_ESP 50
#define IPPROTO_DSTOPTS 60
#define IKE_PORT 500
#define NATT_PORT 4500

struct eth { __u8 dst[6]; __u8 src[6]; __u16 proto; };
struct vlan { __u16 tci; __u16 proto; };
struct ipv4 {
    __u8 vihl; __u8 tos; __u16 tot_len; __u16 id; __u16 frag; __u8 ttl; __u8 proto; __u16 csum;
    __u32 saddr; __u32 daddr;
};
struct ipv6 {
    __u32 vtcfl; __u16 payload_len; __u8 nexthdr; __u8 hop_limit; __u8 saddr[16]; __u8 daddr[16];
};
struct ext { __u8 nexthdr; __u8 hdrlen; };
struct frag6 { __u8 nexthdr; __u8 res; __u16 off_m; __u32 id; };
struct udp { __u16 sport; __u16 dport; __u16 len; __u16 csum; };

// What the parser learned about one frame. `l4` points at the transport header (or the first
// byte after the last IPv6 extension header followed); `fragment` is set for any fragment and
// `later_fragment` for a non-first one (no transport header present).
struct pkt {
    void *l4;
    void *end;
    __u16 l3;                // ETH_P_IP, ETH_P_IPV6, or 0 for anything else
    __u8 proto;              // transport protocol
    __u8 fragment;
    __u8 later_fragment;
    __u8 malformed;
    struct ipv4 *ip4;
    struct ipv6 *ip6;
};

INLINE void parse(struct xdp_md *ctx, struct pkt *p)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct eth *eth = data;
    void *cur = data + sizeof(*eth);

    p->end = end;
    p->l3 = 0;
    p->malformed = 0;
    p->fragment = 0;
    p->later_fragment = 0;
    if (cur > end) {
        p->malformed = 1;
        return;
    }
    __u16 proto = eth->proto;

#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (proto == be16(ETH_P_8021Q) || proto == be16(ETH_P_8021AD)) {
            struct vlan *v = cur;
            if ((void *)(v + 1) > end) {
                p->malformed = 1;
                return;
            }
            proto = v->proto;
            cur = v + 1;
        }
    }
    if (proto == be16(ETH_P_8021Q) || proto == be16(ETH_P_8021AD)) {
        p->malformed = 1; // a third tag: not ours to parse
        return;
    }

    if (proto == be16(ETH_P_IP)) {
        struct ipv4 *ip = cur;
        if ((void *)(ip + 1) > end) {
            p->malformed = 1;
            return;
        }
        __u32 ihl = (ip->vihl & 0x0f) * 4;
        if ((ip->vihl >> 4) != 4 || ihl < sizeof(*ip)) {
            p->malformed = 1;
            return;
        }
        p->l3 = ETH_P_IP;
        p->ip4 = ip;
        p->proto = ip->proto;
        __u16 frag = be16(ip->frag);
        if (frag & 0x3fff) { // MF or a fragment offset
            p->fragment = 1;
            p->later_fragment = (frag & 0x1fff) != 0;
        }
        p->l4 = cur + ihl; // options skipped; bounds checked by the users of l4
        return;
    }

    if (proto == be16(ETH_P_IPV6)) {
        struct ipv6 *ip6 = cur;
        if ((void *)(ip6 + 1) > end) {
            p->malformed = 1;
            return;
        }
        p->l3 = ETH_P_IPV6;
        p->ip6 = ip6;
        __u8 nh = ip6->nexthdr;
        cur = ip6 + 1;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
                struct ext *e = cur;
                if ((void *)(e + 1) > end) {
                    p->malformed = 1;
                    return;
                }
                nh = e->nexthdr;
                cur += (e->hdrlen + 1) * 8;
            } else if (nh == IPPROTO_FRAGMENT) {
                struct frag6 *f = cur;
                if ((void *)(f + 1) > end) {
                    p->malformed = 1;
                    return;
                }
                __u16 off_m = be16(f->off_m);
                p->fragment = 1;
                p->later_fragment = (off_m & 0xfff8) != 0;
                nh = f->nexthdr;
                cur = f + 1;
            }
        }
        if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_FRAGMENT) {
            p->malformed = 1; // more extension headers than we follow
            return;
        }
        p->proto = nh;
        p->l4 = cur;
        return;
    }
}

INLINE int is_local(struct pkt *p)
{
    if (p->l3 == ETH_P_IP) {
        __u32 daddr = p->ip4->daddr;
        return bpf_map_lookup_elem(&rampart_local4, &daddr) != 0;
    }
    __u8 daddr[16];
    __builtin_memcpy(daddr, p->ip6->daddr, 16);
    return bpf_map_lookup_elem(&rampart_local6, daddr) != 0;
}

SEC("xdp/wan")
int rampart_wan(struct xdp_md *ctx)
{
    struct pkt p;
    parse(ctx, &p);
    if (p.malformed)
        return pass(C_PASS_MALFORMED);
    if (!p.l3)
        return pass(C_PASS_NOT_IP);
    if (!is_local(&p))
        return pass(C_PASS_NOT_LOCAL);

    // ESP, fragments included: the data plane reassembles before ESP processing.
    if (p.proto == IPPROTO_ESP)
        return to_xsk(ctx, C_TO_XSK_ESP);
    // AH (RFC 4302), fragments included, likewise; it never comes in UDP.
    if (p.proto == IPPROTO_AH)
        return to_xsk(ctx, C_TO_XSK_AH);
    if (p.proto != IPPROTO_UDP)
        return pass(C_PASS_OTHER);
    // A UDP fragment may be IKE or ESP-in-UDP and only the first one says which: the data plane
    // reassembles every one (RFC 4303 section 3.4.1) and hands what is not ESP to the kernel whole.
    if (p.fragment)
        return to_xsk(ctx, C_TO_XSK_UDP_FRAGMENT);

    struct udp *udp = p.l4;
    if ((void *)(udp + 1) > p.end)
        return pass(C_PASS_MALFORMED);
    __u16 dport = be16(udp->dport);
    if (dport == IKE_PORT)
        return pass(C_PASS_IKE);
    if (dport != NATT_PORT)
        return pass(C_PASS_OTHER);

    // RFC 3948 section 2.2: a payload starting with four zero octets (the non-ESP marker) is
    // IKE. The UDP length, not the frame length, says how much payload there is: Ethernet pads
    // short frames with zeros, which must not pass for a marker.
    __u16 ulen = be16(udp->len);
    if (ulen >= sizeof(*udp) + 4) {
        __u8 *pl = (__u8 *)(udp + 1);
        if ((void *)(pl + 4) > p.end)
            return pass(C_PASS_MALFORMED);
        if ((pl[0] | pl[1] | pl[2] | pl[3]) == 0)
            return pass(C_PASS_IKE);
    }
    // ESP-in-UDP, and the one-byte 0xFF NAT keepalive (RFC 3948 section 2.3), which the data
    // plane consumes.
    return to_xsk(ctx, C_TO_XSK_ESP_UDP);
}

SEC("xdp/lan")
int rampart_lan(struct xdp_md *ctx)
{
    struct pkt p;
    parse(ctx, &p);
    if (p.malformed)
        return pass(C_PASS_MALFORMED);
    if (!p.l3)
        return pass(C_PASS_NOT_IP);
    if (is_local(&p))
        return pass(C_PASS_LOCAL);

    if (p.l3 == ETH_P_IP) {
        struct lpm_v4 k4 = { .prefixlen = 32 };
        __builtin_memcpy(k4.addr, &p.ip4->daddr, 4);
        if (bpf_map_lookup_elem(&rampart_prot4, &k4))
            return to_xsk(ctx, C_TO_XSK_PROTECTED);
        return pass(C_PASS_UNPROTECTED);
    }
    struct lpm_v6 k6 = { .prefixlen = 128 };
    __builtin_memcpy(k6.addr, p.ip6->daddr, 16);
    if (bpf_map_lookup_elem(&rampart_prot6, &k6))
        return to_xsk(ctx, C_TO_XSK_PROTECTED);
    return pass(C_PASS_UNPROTECTED);
}

char _license[] SEC("license") = "Dual MIT/GPL";
