/* netpol/intervals.c: address ranges and address x port boxes made disjoint for interval sets. */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <stdlib.h>
#include <string.h>

static int cmp_range(const void *a, const void *b)
{
	const struct np_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sort, then merge overlapping and adjacent ranges. */
size_t np_ranges_normalize(struct np_range *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_range);
	size_t w = 0;
	for (size_t i = 1; i < n; i++) {
		if (v[w].hi == UINT32_MAX || v[i].lo <= v[w].hi + 1) {
			if (v[i].hi > v[w].hi)
				v[w].hi = v[i].hi;
		} else
			v[++w] = v[i];
	}
	return w + 1;
}

void np_range_minus(struct arena *a, struct np_range net, const struct np_range *ex,
		    size_t nex, struct np_range **ret, size_t *ret_n)
{
	struct np_range *cut = arena_alloc(a, (nex + 1) * sizeof(*cut));
	struct np_range *out = arena_alloc(a, (nex + 1) * sizeof(*out));
	size_t nc = 0, n = 0;
	for (size_t i = 0; i < nex; i++) {
		if (ex[i].hi < net.lo || ex[i].lo > net.hi)
			continue;
		cut[nc].lo = ex[i].lo < net.lo ? net.lo : ex[i].lo;
		cut[nc++].hi = ex[i].hi > net.hi ? net.hi : ex[i].hi;
	}
	nc = np_ranges_normalize(cut, nc);
	uint64_t next = net.lo; /* first address not yet handled */
	for (size_t i = 0; i < nc; i++) {
		if (cut[i].lo > next)
			out[n++] = (struct np_range){ (uint32_t)next, cut[i].lo - 1 };
		next = (uint64_t)cut[i].hi + 1;
	}
	if (next <= net.hi)
		out[n++] = (struct np_range){ (uint32_t)next, net.hi };
	*ret = out;
	*ret_n = n;
}

/* ---- boxes: per protocol, sweep the address axis -------------------------- */

struct prange { uint16_t lo, hi; };
struct ports {
	struct prange *v;
	size_t n;
};
struct boxvec { struct np_box *v; size_t n, cap; };

static int cmp_port(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* The union of the active boxes' port ranges, merged. */
static struct ports active_ports(struct arena *a, const struct np_box *const *act, size_t n)
{
	struct ports p;
	p.v = arena_alloc(a, (n ? n : 1) * sizeof(*p.v));
	for (size_t i = 0; i < n; i++) {
		p.v[i].lo = act[i]->plo;
		p.v[i].hi = act[i]->phi;
	}
	if (n)
		qsort(p.v, n, sizeof(*p.v), cmp_port);
	size_t w = 0;
	for (size_t i = 1; i < n; i++) {
		if (p.v[w].hi == UINT16_MAX || p.v[i].lo <= p.v[w].hi + 1) {
			if (p.v[i].hi > p.v[w].hi)
				p.v[w].hi = p.v[i].hi;
		} else
			p.v[++w] = p.v[i];
	}
	p.n = n ? w + 1 : 0;
	return p;
}

static bool same_ports(const struct ports *x, const struct ports *y)
{
	return x->n == y->n && !memcmp(x->v, y->v, x->n * sizeof(*x->v));
}

static int cmp_box_alo(const void *a, const void *b)
{
	const struct np_box *x = *(const struct np_box *const *)a, *y = *(const struct np_box *const *)b;
	return x->alo < y->alo ? -1 : x->alo > y->alo;
}

struct sweep {
	struct arena *a;
	struct boxvec *out;
	uint8_t proto;
	bool open;            /* a slab is pending */
	uint32_t slo, shi;    /* pending slab */
	struct ports sp;
};

static void flush_slab(struct sweep *w)
{
	for (size_t i = 0; w->open && i < w->sp.n; i++) {
		struct np_box *b = NP_PUSH(w->a, *w->out);
		*b = (struct np_box){ w->slo, w->shi, w->sp.v[i].lo, w->sp.v[i].hi, w->proto };
	}
	w->open = false;
}

/* Slab [lo, hi] with ports p: extend the pending slab or start a new one. */
static void add_slab(struct sweep *w, uint32_t lo, uint32_t hi, struct ports p)
{
	if (w->open && w->shi + 1 == lo && same_ports(&w->sp, &p)) {
		w->shi = hi;
		return;
	}
	flush_slab(w);
	if (!p.n)
		return;
	w->open = true;
	w->slo = lo;
	w->shi = hi;
	w->sp = p;
}

static void sweep_proto(struct sweep *w, const struct np_box **bx, size_t n)
{
	struct arena *a = w->a;
	uint32_t *pts = arena_alloc(a, (2 * n + 1) * sizeof(*pts));
	size_t np = 0, next = 0, nact = 0;
	for (size_t i = 0; i < n; i++) {
		pts[np++] = bx[i]->alo;
		if (bx[i]->ahi != UINT32_MAX)
			pts[np++] = bx[i]->ahi + 1;
	}
	np_sort_u32(pts, &np);
	qsort(bx, n, sizeof(*bx), cmp_box_alo);
	const struct np_box **act = arena_alloc(a, (n + 1) * sizeof(*act));
	for (size_t k = 0; k < np; k++) {
		uint32_t lo = pts[k], hi = k + 1 < np ? pts[k + 1] - 1 : UINT32_MAX;
		size_t keep = 0;
		for (size_t i = 0; i < nact; i++)
			if (act[i]->ahi >= lo)
				act[keep++] = act[i];
		nact = keep;
		while (next < n && bx[next]->alo <= lo)
			act[nact++] = bx[next++];
		add_slab(w, lo, hi, active_ports(a, act, nact));
	}
	flush_slab(w);
}

static int cmp_box(const void *a, const void *b)
{
	const struct np_box *x = a, *y = b;
	if (x->alo != y->alo)
		return x->alo < y->alo ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->plo < y->plo ? -1 : x->plo > y->plo;
}

void np_boxes_normalize(struct arena *a, const struct np_box *in, size_t n,
			struct np_box **ret, size_t *ret_n)
{
	static const uint8_t protos[] = { NP_TCP, NP_UDP, NP_SCTP };
	struct boxvec out = { NULL, 0, 0 };
	const struct np_box **bx = arena_alloc(a, (n + 1) * sizeof(*bx));
	for (size_t k = 0; k < ARRAY_SIZE(protos); k++) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (in[i].proto == protos[k])
				bx[m++] = &in[i];
		struct sweep w = { a, &out, protos[k], false, 0, 0, { NULL, 0 } };
		if (m)
			sweep_proto(&w, bx, m);
	}
	if (out.n)
		qsort(out.v, out.n, sizeof(*out.v), cmp_box);
	*ret = out.v;
	*ret_n = out.n;
}

void np_fmt_port_range(struct sbuf *sb, uint16_t lo, uint16_t hi)
{
	if (lo == hi)
		sb_addf(sb, "%u", lo);
	else
		sb_addf(sb, "%u-%u", lo, hi);
}
