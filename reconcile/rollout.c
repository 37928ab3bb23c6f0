/* reconcile/rollout.c: Deployment rollout arithmetic, one deployment-controller sync per call. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "reconcile/reconcile.h"

/*
 * Model. Kubernetes keeps a desired size per ReplicaSet (spec.replicas) and
 * the ReplicaSet controller makes pods match it. Here the caller does that
 * job: it creates or deletes pods to reach targets[i], so a ReplicaSet's
 * current size is the number of its pods (rs_view.pods), and that is what the
 * controller formulas below use wherever Kubernetes reads spec.replicas.
 * When the caller deletes pods it must take unavailable ones first, as the
 * ReplicaSet controller does (not ready < ready < available); the
 * availability guarantee of a rolling update rests on that.
 *
 * Differences forced by the view, each the closest reading of upstream:
 *  - "Oldest" is the lowest revision (upstream: creation time).
 *  - Several RSes with is_new: the lowest revision is the new one, the others
 *    count as old (upstream picks the oldest matching ReplicaSet).
 *  - Scaling events: upstream compares each RS's desired-replicas
 *    annotation with spec.replicas. Without annotations, a rolling update
 *    with more pods than replicas + maxSurge is taken as a scale-down event
 *    and goes through sync.go's scale, as upstream; a scale-up during a
 *    rollout goes through the rolling path (the new RS takes the headroom
 *    where upstream would grow every active RS in proportion).
 *  - Proportions are computed against the current pod total, upstream's
 *    fallback when an RS has no max-replicas annotation.
 *  - maxSurge / maxUnavailable absent (NULL) mean the API default, "25%".
 *  - Recreate waits for old pods the view counts; terminating pods are not
 *    in the view, so a caller wanting upstream's strictness counts them in
 *    the old RS's pods.
 *
 * One call is one sync, as upstream: a pass that scales the new RS up does
 * not also scale old ones down; the next pass (with fresh readiness) does.
 * No allocation survives a call; index arrays are freed before returning.
 */

#define SAFE_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
#define SAFE_LEN (sizeof(SAFE_ALPHABET) - 1)
#define MAX_COUNT INT32_MAX   /* Kubernetes' replica counts are int32 */
#define DEFAULT_INTSTR "25%"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- IntOrString over jansson values ---- */

/* intstr.GetScaledValueFromIntOrPercent for a JSON value: an integer is
 * itself, "N%" is N% of total rounded up or down. */
static int intstr_scaled(const json_t *v, int64_t total, bool round_up, int64_t *ret,
			 struct gerr **err)
{
	if (!v)
		return api_scaled_percent(DEFAULT_INTSTR, strlen(DEFAULT_INTSTR), total, round_up, ret, err);
	if (json_is_integer(v)) {
		*ret = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return gerr_set(err, GERR_FAIL,
				"invalid value for IntOrString: invalid type: neither int nor percentage");
	return api_scaled_percent(json_string_value(v), json_string_length(v), total, round_up, ret, err);
}

static int fencepost(const char *field, const json_t *v, int64_t replicas, bool round_up,
		     int64_t *ret, struct gerr **err)
{
	if (intstr_scaled(v, replicas, round_up, ret, err) < 0)
		return gerr_wrap(err, "%s", field);
	if (*ret < 0)
		return gerr_set(err, GERR_FAIL, "%s: invalid value %" PRId64
				": must be greater than or equal to 0", field, *ret);
	if (*ret > MAX_COUNT)
		return gerr_set(err, GERR_FAIL, "%s: invalid value %" PRId64 ": out of range",
				field, *ret);
	return 0;
}

/* ResolveFenceposts, then MaxUnavailable's clamp to [0, replicas]. Recreate
 * has neither. */
static int resolve_fenceposts(const struct deploy_view *d, int64_t *ret_surge,
			      int64_t *ret_unavail, struct gerr **err)
{
	*ret_surge = *ret_unavail = 0;
	if (d->recreate)
		return 0;
	if (fencepost("maxSurge", d->max_surge, d->replicas, true, ret_surge, err) < 0 ||
	    fencepost("maxUnavailable", d->max_unavailable, d->replicas, false, ret_unavail,
		      err) < 0)
		return -1;
	if (*ret_surge == 0 && *ret_unavail == 0)
		*ret_unavail = 1;
	*ret_unavail = min64(*ret_unavail, d->replicas);
	return 0;
}

/* ---- views ---- */

/* The new RS: the lowest revision among those with is_new; n if none. */
static size_t find_new(const struct rs_view *rs, size_t n)
{
	size_t best = n;
	for (size_t i = 0; i < n; i++)
		if (rs[i].is_new && (best == n || rs[i].revision < rs[best].revision))
			best = i;
	return best;
}

static int check_views(const struct deploy_view *d, const struct rs_view *rs, size_t n,
		       struct gerr **err)
{
	if (d->replicas < 0 || d->replicas > MAX_COUNT)
		return gerr_set(err, GERR_FAIL, "replicas %" PRId64 " is out of range", d->replicas);
	for (size_t i = 0; i < n; i++) {
		const struct rs_view *r = &rs[i];
		if (r->pods < 0 || r->pods > MAX_COUNT || r->ready < 0 || r->ready > r->pods ||
		    r->available < 0 || r->available > r->pods)
			return gerr_set(err, GERR_FAIL, "ReplicaSet %s: inconsistent counts "
					"(pods %" PRId64 ", ready %" PRId64 ", available %" PRId64 ")",
					r->hash ? r->hash : "?", r->pods, r->ready, r->available);
	}
	if (find_new(rs, n) == n)
		return gerr_set(err, GERR_FAIL, "no new ReplicaSet for the Deployment's template");
	return 0;
}

/* One sync's working state. Sizes are targets so far (start: pods). */
struct pass {
	const struct deploy_view *d;
	const struct rs_view *rs;
	size_t n, newi;
	int64_t *t;
	int64_t surge, unavail;
	size_t *oldest;   /* old RS indices, lowest revision first */
	size_t nold;
};

typedef bool (*idx_less)(const struct rs_view *rs, size_t a, size_t b);

/* Insertion sort of indices: stable, and n is a Deployment's history. */
static void sort_idx(size_t *idx, size_t m, const struct rs_view *rs, idx_less less)
{
	for (size_t i = 1; i < m; i++) {
		size_t v = idx[i], j = i;
		for (; j > 0 && less(rs, v, idx[j - 1]); j--)
			idx[j] = idx[j - 1];
		idx[j] = v;
	}
}

static bool older(const struct rs_view *rs, size_t a, size_t b)
{
	return rs[a].revision < rs[b].revision;
}

/* ReplicaSetsBySizeNewer / ReplicaSetsBySizeOlder. */
static bool bigger_newer(const struct rs_view *rs, size_t a, size_t b)
{
	if (rs[a].pods != rs[b].pods)
		return rs[a].pods > rs[b].pods;
	return rs[a].revision > rs[b].revision;
}

static bool bigger_older(const struct rs_view *rs, size_t a, size_t b)
{
	if (rs[a].pods != rs[b].pods)
		return rs[a].pods > rs[b].pods;
	return rs[a].revision < rs[b].revision;
}

static int64_t sum_pods(const struct pass *p)
{
	int64_t s = 0;
	for (size_t i = 0; i < p->n; i++)
		s += p->rs[i].pods;
	return s;
}

static int64_t sum_available(const struct pass *p)
{
	int64_t s = 0;
	for (size_t i = 0; i < p->n; i++)
		s += p->rs[i].available;
	return s;
}

static size_t count_active(const struct pass *p, size_t *ret_last)
{
	size_t c = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->rs[i].pods > 0) {
			c++;
			*ret_last = i;
		}
	return c;
}

/* ---- sync.go: scale (paused, scaling events) ---- */

/* Half away from zero of a * b / c, for a, b >= 0 and c > 0 (RoundToInt32). */
static int64_t round_div(int64_t a, int64_t b, int64_t c)
{
	int64_t prod = a * b; /* both <= 2^32: no overflow */
	return prod / c + (2 * (prod % c) >= c);
}

/* GetProportion with getReplicaSetFraction's base: the pod total. */
static int64_t proportion(const struct pass *p, size_t i, int64_t to_add, int64_t added,
			  int64_t base)
{
	int64_t pods = p->rs[i].pods;
	if (pods == 0 || to_add == 0 || to_add == added)
		return 0;
	int64_t fraction = -pods;
	if (p->d->replicas > 0)
		fraction = round_div(pods, p->d->replicas + p->surge, base) - pods;
	int64_t allowed = to_add - added;
	return to_add > 0 ? min64(fraction, allowed) : max64(fraction, allowed);
}

/* Spread replicas + maxSurge over the active RSes in proportion to their size;
 * the leftover goes to the largest. */
static void scale_proportional(struct pass *p)
{
	int64_t total = sum_pods(p);
	int64_t allowed = p->d->replicas > 0 ? p->d->replicas + p->surge : 0;
	int64_t to_add = allowed - total, added = 0;
	if (to_add == 0)
		return;
	size_t *act = xcalloc(p->n, sizeof(*act)), m = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->rs[i].pods > 0)
			act[m++] = i;
	sort_idx(act, m, p->rs, to_add > 0 ? bigger_newer : bigger_older);
	for (size_t k = 0; k < m; k++) {
		int64_t prop = proportion(p, act[k], to_add, added, total);
		p->t[act[k]] = p->rs[act[k]].pods + prop;
		added += prop;
	}
	p->t[act[0]] = max64(0, p->t[act[0]] + to_add - added);
	free(act);
}

static bool saturated(const struct pass *p)
{
	const struct rs_view *nr = &p->rs[p->newi];
	return nr->pods == p->d->replicas && nr->available == p->d->replicas;
}

/* sync.go's scale: one active (or none: the newest) RS takes all replicas; a
 * saturated new RS retires the old ones; else a rolling Deployment scales
 * every active RS proportionally. */
static void sync_scale(struct pass *p)
{
	size_t last = p->newi;
	size_t active = count_active(p, &last);
	if (active <= 1) {
		p->t[last] = p->d->replicas;
		return;
	}
	if (saturated(p)) {
		for (size_t k = 0; k < p->nold; k++)
			p->t[p->oldest[k]] = 0;
		return;
	}
	if (!p->d->recreate)
		scale_proportional(p);
}

/* More pods than a rolling update ever makes: replicas went down (or maxSurge
 * did). Upstream sees it in the desired-replicas annotations. */
static bool scaling_event(const struct pass *p)
{
	return !p->d->recreate && sum_pods(p) > p->d->replicas + p->surge;
}

/* ---- rolling.go ---- */

/* reconcileNewReplicaSet with NewRSNewReplicas; true when the new RS changed. */
static bool reconcile_new(struct pass *p)
{
	int64_t cur = p->rs[p->newi].pods, replicas = p->d->replicas, want = cur;
	if (cur == replicas)
		return false;
	if (cur > replicas) {
		want = replicas;
	} else {
		int64_t max_total = replicas + p->surge, all = sum_pods(p);
		if (all < max_total)
			want = cur + min64(max_total - all, replicas - cur);
	}
	p->t[p->newi] = want;
	return want != cur;
}

/* Scale down unavailable pods of old RSes, oldest first, at most max. */
static void cleanup_unhealthy(struct pass *p, int64_t max)
{
	int64_t done = 0;
	for (size_t k = 0; k < p->nold && done < max; k++) {
		size_t i = p->oldest[k];
		int64_t unhealthy = p->t[i] - p->rs[i].available;
		if (p->t[i] == 0 || unhealthy <= 0)
			continue;
		int64_t c = min64(max - done, unhealthy);
		p->t[i] -= c;
		done += c;
	}
}

/* Scale old RSes down, oldest first, by what availability above
 * replicas - maxUnavailable allows. */
static void scale_down_old(struct pass *p, int64_t min_available)
{
	int64_t avail = sum_available(p);
	if (avail <= min_available)
		return;
	int64_t todo = avail - min_available, done = 0;
	for (size_t k = 0; k < p->nold && done < todo; k++) {
		size_t i = p->oldest[k];
		int64_t c = min64(p->t[i], todo - done);
		p->t[i] -= c;
		done += c;
	}
}

/* reconcileOldReplicaSets. */
static void reconcile_old(struct pass *p)
{
	int64_t old_pods = sum_pods(p) - p->rs[p->newi].pods;
	if (old_pods == 0)
		return;
	const struct rs_view *nr = &p->rs[p->newi];
	int64_t min_available = p->d->replicas - p->unavail;
	int64_t max_down = sum_pods(p) - min_available - (nr->pods - nr->available);
	if (max_down <= 0)
		return;
	cleanup_unhealthy(p, max_down);
	scale_down_old(p, min_available);
}

static void rollout_rolling(struct pass *p)
{
	if (!reconcile_new(p))
		reconcile_old(p);
}

/* ---- recreate.go ---- */

static void rollout_recreate(struct pass *p)
{
	bool scaled_down = false;
	for (size_t k = 0; k < p->nold; k++) {
		size_t i = p->oldest[k];
		if (p->rs[i].pods > 0) {
			p->t[i] = 0;
			scaled_down = true;
		}
	}
	if (!scaled_down)
		p->t[p->newi] = p->d->replicas;
}

/* ---- entry points ---- */

static void pass_init(struct pass *p, const struct deploy_view *d, const struct rs_view *rs,
		      size_t n, int64_t *targets)
{
	*p = (struct pass){ .d = d, .rs = rs, .n = n, .t = targets, .newi = find_new(rs, n) };
	p->oldest = xcalloc(n, sizeof(*p->oldest));
	for (size_t i = 0; i < n; i++) {
		targets[i] = rs[i].pods;
		if (i != p->newi)
			p->oldest[p->nold++] = i;
	}
	sort_idx(p->oldest, p->nold, rs, older);
}

int deploy_targets(const struct deploy_view *d, const struct rs_view *rs, size_t n,
		   int64_t *targets, struct gerr **err)
{
	if (!d || !targets || (n && !rs))
		return gerr_set(err, GERR_FAIL, "deploy_targets: missing argument");
	int64_t surge, unavail;
	if (check_views(d, rs, n, err) < 0 || resolve_fenceposts(d, &surge, &unavail, err) < 0)
		return -1;
	struct pass p;
	pass_init(&p, d, rs, n, targets);
	p.surge = surge;
	p.unavail = unavail;
	if (d->paused || scaling_event(&p))
		sync_scale(&p);
	else if (d->recreate)
		rollout_recreate(&p);
	else
		rollout_rolling(&p);
	free(p.oldest);
	return 0;
}

void deploy_status(const struct deploy_view *d, const struct rs_view *rs, size_t n,
		   struct deploy_status *ret)
{
	*ret = (struct deploy_status){ 0 };
	size_t newi = find_new(rs, n);
	for (size_t i = 0; i < n; i++) {
		ret->replicas += rs[i].pods;
		ret->ready += rs[i].ready;
		ret->available += rs[i].available;
	}
	if (newi < n)
		ret->updated = rs[newi].pods;
	ret->unavailable = max64(0, ret->replicas - ret->available);
	ret->complete = ret->updated == d->replicas && ret->replicas == d->replicas &&
			ret->available == d->replicas;
}

/* cleanupDeployment: of the old RSes beyond the limit (oldest revisions first),
 * those without pods go; a negative limit or MaxInt32 keeps everything. */
void deploy_history_prune(const struct deploy_view *d, const struct rs_view *rs, size_t n,
			  bool *ret_drop)
{
	for (size_t i = 0; i < n; i++)
		ret_drop[i] = false;
	int64_t limit = d->revision_history_limit;
	if (limit < 0 || limit >= MAX_COUNT)
		return;
	struct pass p;
	int64_t *scratch = xcalloc(n ? n : 1, sizeof(*scratch));
	pass_init(&p, d, rs, n, scratch);
	for (int64_t k = 0; k < (int64_t)p.nold - limit; k++)
		if (rs[p.oldest[k]].pods == 0)
			ret_drop[p.oldest[k]] = true;
	free(p.oldest);
	free(scratch);
}

/* ---- names ---- */

static int dump_to_sbuf(const char *buf, size_t size, void *data)
{
	sb_add(data, buf, size);
	return 0;
}

/* rand.SafeEncodeString of the decimal rendering, as ComputeHash does. */
char *pod_template_hash(const json_t *template_spec)
{
	struct sbuf sb = SBUF_INIT;
	size_t flags = JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY;
	if (!template_spec || json_dump_callback(template_spec, dump_to_sbuf, &sb, flags) != 0) {
		sb_reset(&sb);
		sb_adds(&sb, "null");
	}
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sb.len; i++)
		h = (h ^ (unsigned char)sb.buf[i]) * 16777619u;
	sb_release(&sb);
	char *s = xasprintf("%" PRIu32, h);
	for (char *c = s; *c; c++)
		*c = SAFE_ALPHABET[(unsigned char)*c % SAFE_LEN];
	return s;
}

char *name_suffix(const char *seed)
{
	uint64_t h = 14695981039346656037u;
	for (const char *c = seed ? seed : ""; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211u;
	char *s = xmalloc(6);
	for (int i = 0; i < 5; i++, h /= SAFE_LEN)
		s[i] = SAFE_ALPHABET[h % SAFE_LEN];
	s[5] = '\0';
	return s;
}
