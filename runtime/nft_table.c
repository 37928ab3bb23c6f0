/* nft_table.c: nf_tables over netlink, read only — the ruleset generation id and a
 * digest of one table that a whole load and a delta giving the same table agree on
 * (handles, reference counts, rule positions, counters and the elements of dynamic
 * sets such as ClientIP affinity are left out). Used by network_load.c for drift checks;
 * loading stays the job of the GPL applier gitops-nft. */
#include "runtime/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_BUF (64u << 10)   /* a dump message is at most 32 KiB */
#define NL_NAME_MAX 256      /* table, chain and set names (the kernel's limit) */

struct nl {
	int fd;
	uint32_t seq;
	char *buf;           /* NL_BUF bytes */
};

static int nl_open(struct nl *nl, struct gerr **err)
{
	nl->buf = NULL;
	nl->seq = (uint32_t)time(NULL);
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (nl->fd < 0)
		return gerr_sys(err, "netlink socket");
	struct timeval tv = { .tv_sec = 5 }; /* the kernel answers at once; never hang on it */
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	nl->buf = xmalloc(NL_BUF);
	return 0;
}

static void nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	free(nl->buf);
}

/* One nf_tables request: `type` with attributes {type, value} until a NULL value (at
 * most three): a string, or for a NLA_F_NESTED type one attribute already laid out
 * (its nla_len is the length). */
struct nl_str {
	uint16_t type;
	const void *value;
};

static int nl_send(struct nl *nl, int type, bool dump, uint8_t family, const struct nl_str *attrs)
{
	union {
		struct nlmsghdr nh;
		char b[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + 3 * NLA_ALIGN(NLA_HDRLEN + NL_NAME_MAX)];
	} req;
	memset(&req, 0, sizeof(req));
	size_t len = NLMSG_HDRLEN;
	struct nfgenmsg *nf = (struct nfgenmsg *)(req.b + len);
	nf->nfgen_family = family;
	nf->version = NFNETLINK_V0;
	len += NLMSG_ALIGN(sizeof(*nf));
	for (int i = 0; i < 3 && attrs && attrs[i].value; i++) {
		size_t n = attrs[i].type & NLA_F_NESTED ? ((const struct nlattr *)attrs[i].value)->nla_len
							: strlen(attrs[i].value) + 1;
		if (n > NL_NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		struct nlattr *a = (struct nlattr *)(req.b + len);
		a->nla_type = attrs[i].type;
		a->nla_len = (uint16_t)(NLA_HDRLEN + n);
		memcpy(req.b + len + NLA_HDRLEN, attrs[i].value, n);
		len += NLA_ALIGN(a->nla_len);
	}
	req.nh.nlmsg_len = (uint32_t)len;
	req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
	req.nh.nlmsg_seq = ++nl->seq;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	return sendto(nl->fd, req.b, len, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)len ? 0 : -1;
}

/* The answers to the last request, each passed to cb, until the end of a dump or
 * the one answer of a get. -1 with errno: ENOENT (no such object), EAGAIN (the
 * ruleset changed during the dump), EMSGSIZE (an answer larger than NL_BUF), … */
static int nl_recv(struct nl *nl, void (*cb)(const struct nlmsghdr *nh, void *arg), void *arg)
{
	bool intr = false;
	for (;;) {
		ssize_t n = recv(nl->fd, nl->buf, NL_BUF, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if ((size_t)n > NL_BUF) {
			errno = EMSGSIZE;
			return -1;
		}
		size_t off = 0;
		while (off + NLMSG_HDRLEN <= (size_t)n) {
			const struct nlmsghdr *nh = (const struct nlmsghdr *)(nl->buf + off);
			if (nh->nlmsg_len < NLMSG_HDRLEN || nh->nlmsg_len > (size_t)n - off) {
				errno = EPROTO;
				return -1;
			}
			off += NLMSG_ALIGN(nh->nlmsg_len);
			if (nh->nlmsg_seq != nl->seq)
				continue;  /* the rest of an answer given up on */
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);
				if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) || e->error == 0)
					return 0;
				errno = -e->error;
				return -1;
			}
			if (nh->nlmsg_type == NLMSG_DONE) {
				if (!intr)
					return 0;
				errno = EAGAIN;
				return -1;
			}
			intr |= (nh->nlmsg_flags & NLM_F_DUMP_INTR) != 0;
			if (!intr)
				cb(nh, arg);
			if (!(nh->nlmsg_flags & NLM_F_MULTI))
				return 0;
		}
	}
}

/* Attributes: of a message (after its nfgenmsg) or nested in an attribute. */
struct nla_iter {
	const char *base;
	size_t off, end;
};

static struct nla_iter msg_attrs(const struct nlmsghdr *nh)
{
	return (struct nla_iter){ (const char *)nh, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)),
				  nh->nlmsg_len };
}

static struct nla_iter nested(const struct nlattr *a)
{
	return (struct nla_iter){ (const char *)a, NLA_HDRLEN, a->nla_len };
}

static const struct nlattr *nla_next(struct nla_iter *it)
{
	if (it->off + NLA_HDRLEN > it->end)
		return NULL;
	const struct nlattr *a = (const struct nlattr *)(it->base + it->off);
	if (a->nla_len < NLA_HDRLEN || a->nla_len > it->end - it->off)
		return NULL;
	it->off += NLA_ALIGN(a->nla_len);
	return a;
}

static int nla_kind(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

static const struct nlattr *msg_attr(const struct nlmsghdr *nh, int type)
{
	struct nla_iter it = msg_attrs(nh);
	const struct nlattr *a;
	while ((a = nla_next(&it)))
		if (nla_kind(a) == type)
			return a;
	return NULL;
}

/* A NUL-terminated string attribute, or NULL. */
static const char *msg_str(const struct nlmsghdr *nh, int type)
{
	const struct nlattr *a = msg_attr(nh, type);
	if (!a || a->nla_len <= NLA_HDRLEN || ((const char *)a)[a->nla_len - 1])
		return NULL;
	return (const char *)a + NLA_HDRLEN;
}

static uint32_t nla_u32(const struct nlattr *a)
{
	uint32_t v = 0;
	if (a && a->nla_len >= NLA_HDRLEN + 4)
		memcpy(&v, (const char *)a + NLA_HDRLEN, 4);
	return ntohl(v);
}

static uint32_t msg_u32(const struct nlmsghdr *nh, int type)
{
	return nla_u32(msg_attr(nh, type));
}

static void on_genid(const struct nlmsghdr *nh, void *arg)
{
	if ((nh->nlmsg_type & 0xff) == NFT_MSG_NEWGEN && msg_attr(nh, NFTA_GEN_ID)) {
		*(uint32_t *)arg = msg_u32(nh, NFTA_GEN_ID);
		((uint32_t *)arg)[1] = 1;
	}
}

/* The kernel's nftables generation id: it changes with every ruleset commit of the
 * network namespace. One netlink round trip, no child process. */
int nft_genid(uint32_t *ret)
{
	struct nl nl;
	uint32_t got[2] = { 0, 0 };
	int r = nl_open(&nl, NULL);
	if (r == 0 && (nl_send(&nl, NFT_MSG_GETGEN, false, AF_UNSPEC, NULL) < 0 ||
		       nl_recv(&nl, on_genid, got) < 0 || !got[1]))
		r = -1;
	nl_close(&nl);
	*ret = got[0];
	return r;
}

/* The digest of our table: an order-free sum (four 64-bit lanes, mod 2^64) of the
 * sha256 of every item, so a change to a few objects updates it without reading the
 * rest (load_delta). Items: the table, each chain, each rule (with its chain and its
 * index there), each set or map, each element (with its set) — their netlink
 * attributes as the kernel dumps them, without what differs between equal tables
 * loaded in different ways (handles, reference counts, rule positions, counters,
 * element timeouts, a set's backend and number of elements) and without the elements of dynamic or timeout sets (ClientIP
 * affinity entries come and go from the packet path). Attributes are hashed whole
 * (header and payload, without padding). No table: all zero. Hex, 64 characters. */
struct tdigest {
	uint64_t lane[4];
	EVP_MD_CTX *md;
	const char *table;
	char chain[NL_NAME_MAX];   /* the chain of the last rule, and its index there */
	uint32_t index;
	struct strvec sets;        /* sets whose elements count (dump_table) */
	const char *set;           /* whose elements are being read */
	bool present;
};

#define BIT(t) (1ull << (t))
static const uint64_t skip_table = BIT(NFTA_TABLE_HANDLE) | BIT(NFTA_TABLE_USE) | BIT(NFTA_TABLE_PAD) |
				   BIT(NFTA_TABLE_OWNER);
static const uint64_t skip_chain = BIT(NFTA_CHAIN_HANDLE) | BIT(NFTA_CHAIN_USE) | BIT(NFTA_CHAIN_COUNTERS) |
				   BIT(NFTA_CHAIN_PAD) | BIT(NFTA_CHAIN_ID);
static const uint64_t skip_rule = BIT(NFTA_RULE_HANDLE) | BIT(NFTA_RULE_POSITION) | BIT(NFTA_RULE_PAD) |
				  BIT(NFTA_RULE_ID) | BIT(NFTA_RULE_POSITION_ID);
/* NFTA_SET_TYPE and NFTA_SET_COUNT of kernels since 6.16 (not in older headers): the
 * backend, and a count that elements change (the packet path too, in dynamic sets) */
enum { SET_ATTR_TYPE = 19, SET_ATTR_COUNT = 20 };
static const uint64_t skip_set = BIT(NFTA_SET_HANDLE) | BIT(NFTA_SET_PAD) | BIT(NFTA_SET_ID) | BIT(SET_ATTR_TYPE) |
				 BIT(SET_ATTR_COUNT);
static const uint64_t skip_elem = BIT(NFTA_SET_ELEM_TIMEOUT) | BIT(NFTA_SET_ELEM_EXPIRATION) |
				  BIT(NFTA_SET_ELEM_PAD) | BIT(NFTA_SET_ELEM_EXPR) | BIT(NFTA_SET_ELEM_EXPRESSIONS);

static void item_begin(struct tdigest *d, char kind, const void *extra, size_t extra_len)
{
	EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
	EVP_DigestUpdate(d->md, &kind, 1);
	EVP_DigestUpdate(d->md, extra, extra_len);
}

static void item_attrs(struct tdigest *d, struct nla_iter it, uint64_t skip)
{
	const struct nlattr *a;
	while ((a = nla_next(&it)))
		if (nla_kind(a) >= 64 || !(skip & BIT(nla_kind(a))))
			EVP_DigestUpdate(d->md, a, a->nla_len);
}

static void item_end(struct tdigest *d)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(d->md, md, &n);
	for (size_t i = 0; i < 4; i++) {
		uint64_t v;
		memcpy(&v, md + 8 * i, 8);
		d->lane[i] += v;
	}
}

static bool ours(const struct tdigest *d, const struct nlmsghdr *nh, int table_attr)
{
	const char *t = msg_str(nh, table_attr);
	return t && !strcmp(t, d->table);
}

static void on_table(const struct nlmsghdr *nh, void *arg)
{
	struct tdigest *d = arg;
	if (!ours(d, nh, NFTA_TABLE_NAME))
		return;
	d->present = true;
	item_begin(d, 't', NULL, 0);
	item_attrs(d, msg_attrs(nh), skip_table);
	item_end(d);
}

static void on_chain(const struct nlmsghdr *nh, void *arg)
{
	struct tdigest *d = arg;
	if (!ours(d, nh, NFTA_CHAIN_TABLE))
		return;
	item_begin(d, 'c', NULL, 0);
	item_attrs(d, msg_attrs(nh), skip_chain);
	item_end(d);
}

static void on_rule(const struct nlmsghdr *nh, void *arg)
{
	struct tdigest *d = arg;
	const char *chain = msg_str(nh, NFTA_RULE_CHAIN);
	if (!ours(d, nh, NFTA_RULE_TABLE) || !chain)
		return;
	if (strcmp(chain, d->chain)) {   /* a dump gives each chain's rules together, in order */
		snprintf(d->chain, sizeof(d->chain), "%s", chain);
		d->index = 0;
	}
	item_begin(d, 'r', &d->index, sizeof(d->index));
	item_attrs(d, msg_attrs(nh), skip_rule);
	item_end(d);
	d->index++;
}

static void on_set(const struct nlmsghdr *nh, void *arg)
{
	struct tdigest *d = arg;
	const char *name = msg_str(nh, NFTA_SET_NAME);
	if (!ours(d, nh, NFTA_SET_TABLE) || !name)
		return;
	item_begin(d, 's', NULL, 0);
	item_attrs(d, msg_attrs(nh), skip_set);
	item_end(d);
	if (!(msg_u32(nh, NFTA_SET_FLAGS) & (NFT_SET_TIMEOUT | NFT_SET_EVAL)))
		strvec_push(&d->sets, name);
}

static void on_elems(const struct nlmsghdr *nh, void *arg)
{
	struct tdigest *d = arg;
	const struct nlattr *list = msg_attr(nh, NFTA_SET_ELEM_LIST_ELEMENTS), *e;
	if (!list || !ours(d, nh, NFTA_SET_ELEM_LIST_TABLE))
		return;
	struct nla_iter it = nested(list);
	while ((e = nla_next(&it))) {
		item_begin(d, 'e', d->set, strlen(d->set) + 1);
		item_attrs(d, nested(e), skip_elem);
		item_end(d);
	}
}

static uint8_t nfproto(const char *family)
{
	return !strcmp(family, "ip6") ? NFPROTO_IPV6 : !strcmp(family, "inet") ? NFPROTO_INET : NFPROTO_IPV4;
}

/* The elements of the sets in d->sets[from..]. */
static int dump_elements(struct nl *nl, uint8_t fam, struct tdigest *d, size_t from)
{
	for (size_t i = from; i < d->sets.n; i++) {
		d->set = d->sets.v[i];
		struct nl_str a[] = { { NFTA_SET_ELEM_LIST_TABLE, d->table }, { NFTA_SET_ELEM_LIST_SET, d->set },
				      { 0, NULL } };
		if (nl_send(nl, NFT_MSG_GETSETELEM, true, fam, a) < 0 || nl_recv(nl, on_elems, d) < 0)
			return -1;
	}
	return 0;
}

/* Adds the whole table to d (nothing when it is absent). */
static int dump_table(struct nl *nl, uint8_t fam, struct tdigest *d)
{
	struct nl_str t[] = { { NFTA_TABLE_NAME, d->table }, { 0, NULL } };
	if (nl_send(nl, NFT_MSG_GETTABLE, false, fam, t) < 0 || nl_recv(nl, on_table, d) < 0)
		return errno == ENOENT ? 0 : -1;
	struct nl_str c[] = { { NFTA_CHAIN_TABLE, d->table }, { 0, NULL } };
	struct nl_str r[] = { { NFTA_RULE_TABLE, d->table }, { 0, NULL } };
	struct nl_str s[] = { { NFTA_SET_TABLE, d->table }, { 0, NULL } };
	if (nl_send(nl, NFT_MSG_GETCHAIN, true, fam, c) < 0 || nl_recv(nl, on_chain, d) < 0 ||
	    nl_send(nl, NFT_MSG_GETRULE, true, fam, r) < 0 || nl_recv(nl, on_rule, d) < 0 ||
	    nl_send(nl, NFT_MSG_GETSET, true, fam, s) < 0 || nl_recv(nl, on_set, d) < 0)
		return -1;
	return dump_elements(nl, fam, d, 0);
}

/* Adds set `name` and its elements (those that count) to d; nothing when it is absent. */
static int read_set(struct nl *nl, uint8_t fam, struct tdigest *d, const char *name)
{
	size_t sets = d->sets.n;
	struct nl_str a[] = { { NFTA_SET_TABLE, d->table }, { NFTA_SET_NAME, name }, { 0, NULL } };
	if (nl_send(nl, NFT_MSG_GETSET, false, fam, a) < 0 || nl_recv(nl, on_set, d) < 0)
		return -1;
	return dump_elements(nl, fam, d, sets);
}

/* A set's key as the kernel keeps it: flags, length, and nft's datatype of each
 * field (NFTA_SET_KEY_TYPE, opaque to the kernel: 6 bits a field, the first
 * highest). nft 1.0.6 gives the kernel the field lengths (NFTA_SET_DESC_CONCAT) of
 * interval sets only, so the lengths come from the datatypes. */
struct keylayout {
	uint32_t flags, key_len, key_type;
};

enum { TYPE_INTEGER = 4, TYPE_IPADDR = 7, TYPE_IP6ADDR = 8, TYPE_INET_PROTOCOL = 12, TYPE_INET_SERVICE = 13,
       TYPE_MARK = 19 };   /* nft's datatype ids (src/datatype.h) */

static void on_layout(const struct nlmsghdr *nh, void *arg)
{
	*(struct keylayout *)arg = (struct keylayout){ msg_u32(nh, NFTA_SET_FLAGS), msg_u32(nh, NFTA_SET_KEY_LEN),
						       msg_u32(nh, NFTA_SET_KEY_TYPE) };
}

/* The key as our compiler writes it ("10.96.0.20 . tcp . 80") in the set's layout:
 * the fields of a concatenation each in whole 32-bit registers, zero padded;
 * addresses and ports in network order, integers (numgen, mark: 32 bits in a
 * concatenation) in host order. Its length, or 0 when the text does not fit. */
static size_t key_encode(const struct keylayout *l, const char *text, uint8_t key[64])
{
	size_t off = 0, n = 0;
	for (uint32_t t = l->key_type; t; t >>= 6)
		n++;
	memset(key, 0, 64);
	for (size_t i = 0; i < n; i++) {
		unsigned type = (l->key_type >> 6 * (n - 1 - i)) & 63;
		const char *end = strstr(text, " . ");
		size_t tl = end ? (size_t)(end - text) : strlen(text);
		size_t len = type == TYPE_IPADDR ? 4 : type == TYPE_IP6ADDR ? 16 : type == TYPE_INET_PROTOCOL ? 1
			   : type == TYPE_INET_SERVICE ? 2 : n == 1 ? l->key_len : 4;
		size_t step = n > 1 ? (len + 3) & ~(size_t)3 : len;
		char f[48];
		int64_t v = -1;
		if ((i + 1 < n) != (end != NULL) || tl >= sizeof(f) || off + step > 64)
			return 0;
		memcpy(f, text, tl);
		f[tl] = '\0';
		text = end ? end + 3 : text + tl;
		uint8_t *p = key + off;
		off += step;
		if (type == TYPE_IPADDR || type == TYPE_IP6ADDR) {
			if (inet_pton(type == TYPE_IPADDR ? AF_INET : AF_INET6, f, p) != 1)
				return 0;
			continue;
		}
		if (type == TYPE_INET_PROTOCOL)
			v = !strcmp(f, "tcp") ? 6 : !strcmp(f, "udp") ? 17 : !strcmp(f, "sctp") ? 132 : -1;
		else if (type != TYPE_INET_SERVICE && type != TYPE_INTEGER && type != TYPE_MARK)
			return 0;
		if ((len != 1 && len != 2 && len != 4) ||
		    (v < 0 && parse_i64(f, 0, (int64_t)(UINT32_MAX >> (32 - 8 * len)), &v) < 0))
			return 0;
		if (type == TYPE_INET_SERVICE)
			memcpy(p, &(uint16_t){ htons((uint16_t)v) }, 2);
		else if (len == 4)
			memcpy(p, &(uint32_t){ (uint32_t)v }, 4);
		else if (len == 2)
			memcpy(p, &(uint16_t){ (uint16_t)v }, 2);
		else
			*p = (uint8_t)v;
	}
	return n && off == l->key_len ? off : 0;
}

/* Adds the element of set d->set with this key as a dump of the set would. */
static int read_element(struct nl *nl, uint8_t fam, struct tdigest *d, const uint8_t *key, size_t len)
{
	struct {
		struct nlattr elem, key, value;
		uint8_t v[64];
	} e = { .v = { 0 } };   /* the padding of a short key is sent too */
	e.value = (struct nlattr){ (uint16_t)(NLA_HDRLEN + len), NFTA_DATA_VALUE };
	e.key = (struct nlattr){ (uint16_t)(NLA_HDRLEN + NLA_ALIGN(e.value.nla_len)), NLA_F_NESTED | NFTA_SET_ELEM_KEY };
	e.elem = (struct nlattr){ (uint16_t)(NLA_HDRLEN + e.key.nla_len), NLA_F_NESTED | NFTA_LIST_ELEM };
	memcpy(e.v, key, len);
	struct nl_str a[] = { { NFTA_SET_ELEM_LIST_TABLE, d->table }, { NFTA_SET_ELEM_LIST_SET, d->set },
			      { NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS, &e }, { 0, NULL } };
	return nl_send(nl, NFT_MSG_GETSETELEM, false, fam, a) < 0 || nl_recv(nl, on_elems, d) < 0 ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool listed(const struct strvec *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

/* Adds elements e[0..n) ("SET KEY", sorted, of one set: `set`, its name's length
 * skip) to d, each once, each alone; or when the set is an interval set or a key
 * does not fit it, the set whole (once: it joins `whole`). Nothing for a set that is
 * absent, in `whole` already, or whose elements do not count. */
static int read_elements(struct nl *nl, uint8_t fam, struct tdigest *d, const char *set, const char *const *e,
			 size_t n, size_t skip, struct strvec *whole)
{
	struct nl_str a[] = { { NFTA_SET_TABLE, d->table }, { NFTA_SET_NAME, set }, { 0, NULL } };
	struct keylayout l = { 0, 0, 0 };
	uint8_t key[64];
	if (listed(whole, set))
		return 0;
	if (nl_send(nl, NFT_MSG_GETSET, false, fam, a) < 0 || nl_recv(nl, on_layout, &l) < 0)
		return errno == ENOENT ? 0 : -1;
	if (l.flags & (NFT_SET_TIMEOUT | NFT_SET_EVAL))
		return 0;
	bool fit = !(l.flags & NFT_SET_INTERVAL);
	for (size_t i = 0; fit && i < n; i++)
		fit = key_encode(&l, e[i] + skip + !!e[i][skip], key) > 0;
	if (!fit) {
		strvec_push(whole, set);
		return read_set(nl, fam, d, set) < 0 && errno != ENOENT ? -1 : 0;
	}
	d->set = set;
	for (size_t i = 0; i < n; i++)
		if ((!i || strcmp(e[i], e[i - 1])) &&
		    read_element(nl, fam, d, key, key_encode(&l, e[i] + skip + !!e[i][skip], key)) < 0 && errno != ENOENT)
			return -1;
	return 0;
}

/* Adds the objects `touched` names to d, those that exist, each once: chains, sets
 * whole, then elements by set (sorted, so the set is asked for its layout once). */
static int dump_objects(struct nl *nl, uint8_t fam, struct tdigest *d, const struct strvec *touched)
{
	struct strvec whole = STRVEC_INIT;   /* the sets read whole */
	const char **elems = xcalloc(touched->n + 1, sizeof(*elems));
	size_t ne = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && i < touched->n; i++) {
		const char *o = touched->v[i];
		if (str_has_prefix(o, "element ")) {
			elems[ne++] = o + 8;
		} else if (str_has_prefix(o, "chain ")) {
			struct nl_str a[] = { { NFTA_CHAIN_TABLE, d->table }, { NFTA_CHAIN_NAME, o + 6 }, { 0, NULL } };
			struct nl_str b[] = { { NFTA_RULE_TABLE, d->table }, { NFTA_RULE_CHAIN, o + 6 }, { 0, NULL } };
			d->chain[0] = '\0';
			r = nl_send(nl, NFT_MSG_GETCHAIN, false, fam, a) < 0 || nl_recv(nl, on_chain, d) < 0 ||
			    nl_send(nl, NFT_MSG_GETRULE, true, fam, b) < 0 || nl_recv(nl, on_rule, d) < 0 ? -1 : 0;
		} else if (!listed(&whole, o + 4)) {
			strvec_push(&whole, o + 4);
			r = read_set(nl, fam, d, o + 4);
		}
		if (r < 0 && errno == ENOENT)
			r = 0;
	}
	qsort(elems, ne, sizeof(*elems), cmp_str);
	for (size_t i = 0, j; r == 0 && i < ne; i = j) {
		size_t n = strcspn(elems[i], " ");
		for (j = i + 1; j < ne && !strncmp(elems[j], elems[i], n) && (!elems[j][n] || elems[j][n] == ' '); j++)
			;
		char *set = xstrndup(elems[i], n);
		r = read_elements(nl, fam, d, set, elems + i, j - i, n, &whole);
		free(set);
	}
	d->set = NULL;
	free(elems);
	strvec_clear(&whole);
	return r;
}

char *nft_lanes_hex(const uint64_t lane[4])
{
	return xasprintf("%016llx%016llx%016llx%016llx", (unsigned long long)lane[0],
			 (unsigned long long)lane[1], (unsigned long long)lane[2], (unsigned long long)lane[3]);
}

bool nft_hex_lanes(const char *hex, uint64_t lane[4])
{
	if (!hex || strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
		return false;
	for (size_t i = 0; i < 4; i++) {
		char part[17];
		memcpy(part, hex + 16 * i, 16);
		part[16] = '\0';
		lane[i] = strtoull(part, NULL, 16);
	}
	return true;
}

/* The digest of the whole table (touched NULL) or the sum of the objects touched
 * names, into ret_lane. A dump the ruleset changed under is read again. */
int nft_table_digest(const char *family, const char *table, const struct strvec *touched,
		     uint64_t ret_lane[4], bool *ret_present, struct gerr **err)
{
	struct nl nl;
	if (nl_open(&nl, err) < 0)
		return -1;
	uint8_t fam = nfproto(family);
	struct tdigest d = { .md = EVP_MD_CTX_new(), .table = table, .sets = STRVEC_INIT };
	int r = -1;
	for (int attempt = 0; r < 0 && attempt < 5; attempt++) {
		memset(d.lane, 0, sizeof(d.lane));
		d.chain[0] = '\0';
		d.present = false;
		strvec_clear(&d.sets);
		r = touched ? dump_objects(&nl, fam, &d, touched) : dump_table(&nl, fam, &d);
		if (r < 0 && errno != EAGAIN)
			break;
	}
	if (r < 0)
		gerr_sys(err, "reading table %s %s over netlink", family, d.table);
	memcpy(ret_lane, d.lane, sizeof(d.lane));
	if (ret_present)
		*ret_present = d.present;
	strvec_clear(&d.sets);
	EVP_MD_CTX_free(d.md);
	nl_close(&nl);
	return r;
}

int nft_table_digest_hex(const char *family, const char *table, char **ret, bool *ret_present,
			 struct gerr **err)
{
	uint64_t lane[4];
	if (nft_table_digest(family, table, NULL, lane, ret_present, err) < 0)
		return -1;
	*ret = nft_lanes_hex(lane);
	return 0;
}

