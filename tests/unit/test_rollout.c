/* test_rollout.c: reconcile/rollout.c — rollouts simulated pass by pass, checked at each pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/reconcile.h"

/* ---- the simulation ----
 *
 * A pass: views from the simulated pods → deploy_targets → invariants → apply
 * (deleting unavailable pods first, as the ReplicaSet controller does; new pods
 * start unavailable) → readiness tick (NEXT: every pod is available by the next
 * pass; NEVER: new pods never become available; CAP: at most cap of them do).
 * The trace records the targets of every pass that changed something, as
 * "t0/t1/..." separated by spaces.
 */

enum mode { NEXT, NEVER, CAP };

#define MAX_RS 8
#define MAX_PASSES 200

struct srs {
	int64_t rev;
	bool is_new;
	int64_t pods, avail;
	enum mode mode;
	int64_t cap;
};

struct sim {
	struct deploy_view d;
	int64_t surge, unavail;   /* resolved by hand, for the invariants */
	struct srs rs[MAX_RS];
	size_t n;
	int passes;
	struct sbuf *trace;       /* TRACE: one simulation at a time */
};

static struct sbuf TRACE = SBUF_INIT;

/* JSON values live until the end of the test (release_json). */
static json_t **pool;
static size_t npool, apool;

static json_t *JV(const char *text)
{
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	if (text && !v)
		fail_msg("bad JSON sample %s", text);
	GROW(pool, apool, npool + 1);
	pool[npool++] = v;
	return v;
}

static int release_json(void **state)
{
	while (npool)
		json_decref(pool[--npool]);
	free(pool);
	pool = NULL;
	apool = 0;
	sb_release(&TRACE);
	return 0;
}

static void sim_init(struct sim *s, int64_t replicas, const char *surge, const char *unavail,
		     int64_t exp_surge, int64_t exp_unavail)
{
	*s = (struct sim){ .d = { .replicas = replicas, .revision_history_limit = 10 } };
	s->d.max_surge = JV(surge);
	s->d.max_unavailable = JV(unavail);
	s->surge = exp_surge;
	s->unavail = exp_unavail;
	s->trace = &TRACE;
	sb_reset(&TRACE);
}

static struct srs *sim_add(struct sim *s, int64_t rev, bool is_new, int64_t pods, int64_t avail,
			   enum mode mode)
{
	assert_true(s->n < MAX_RS);
	s->rs[s->n] = (struct srs){ rev, is_new, pods, avail, mode, 0 };
	return &s->rs[s->n++];
}

static void sim_views(const struct sim *s, struct rs_view *v)
{
	for (size_t i = 0; i < s->n; i++)
		v[i] = (struct rs_view){ .hash = "h", .revision = s->rs[i].rev,
					 .is_new = s->rs[i].is_new, .pods = s->rs[i].pods,
					 .ready = s->rs[i].avail, .available = s->rs[i].avail };
}

/* The guarantees of a rolling update, in their inductive form: a pass that
 * starts within bounds stays within them. Recreate: the new RS grows only
 * once no old pod is left. */
static void check_invariants(const struct sim *s, const int64_t *t)
{
	int64_t pods = 0, tot = 0, avail = 0, after = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (t[i] < 0)
			fail_msg("pass %d: negative target %" PRId64, s->passes, t[i]);
		pods += s->rs[i].pods;
		tot += t[i];
		avail += s->rs[i].avail;
		after += t[i] < s->rs[i].avail ? t[i] : s->rs[i].avail;
	}
	int64_t max_total = s->d.replicas + s->surge, min_avail = s->d.replicas - s->unavail;
	size_t ni = 0;
	while (!s->rs[ni].is_new)
		ni++;
	if (s->d.paused)
		return;
	if (s->d.recreate) {
		for (size_t i = 0; i < s->n; i++)
			if (i != ni && t[ni] > s->rs[ni].pods && (s->rs[i].pods || t[i]))
				fail_msg("pass %d: Recreate grows the new RS beside old pods", s->passes);
		return;
	}
	if (pods > max_total)
		return; /* a scaling event: proportional, checked by its own tests */
	if (tot > max_total)
		fail_msg("pass %d: %" PRId64 " pods > replicas + maxSurge = %" PRId64, s->passes,
			 tot, max_total);
	if (avail >= min_avail && after < min_avail)
		fail_msg("pass %d: %" PRId64 " available < replicas - maxUnavailable = %" PRId64,
			 s->passes, after, min_avail);
	for (size_t i = 0; i < s->n; i++)
		if (i != ni && t[i] > s->rs[i].pods)
			fail_msg("pass %d: an old ReplicaSet grows during a rollout", s->passes);
}

static bool sim_apply(struct sim *s, const int64_t *t)
{
	bool changed = false;
	for (size_t i = 0; i < s->n; i++) {
		struct srs *r = &s->rs[i];
		if (t[i] < r->pods) {
			int64_t gone = r->pods - t[i], unhealthy = r->pods - r->avail;
			if (gone > unhealthy)
				r->avail -= gone - unhealthy;
		}
		changed |= t[i] != r->pods;
		r->pods = t[i];
	}
	return changed;
}

static bool sim_tick(struct sim *s)
{
	bool changed = false;
	for (size_t i = 0; i < s->n; i++) {
		struct srs *r = &s->rs[i];
		int64_t cap = r->mode == NEXT ? r->pods : r->mode == NEVER ? 0 : r->cap;
		int64_t want = r->avail > cap ? r->avail : cap < r->pods ? cap : r->pods;
		changed |= want != r->avail;
		r->avail = want;
	}
	return changed;
}

static void sim_record(struct sim *s, const int64_t *t)
{
	if (s->trace->len)
		sb_addc(s->trace, ' ');
	for (size_t i = 0; i < s->n; i++)
		sb_addf(s->trace, "%s%" PRId64, i ? "/" : "", t[i]);
}

/* One pass; false at the fixed point. */
static bool sim_step(struct sim *s)
{
	struct rs_view v[MAX_RS];
	int64_t t[MAX_RS];
	struct gerr *err = NULL;
	sim_views(s, v);
	s->passes++;
	if (deploy_targets(&s->d, v, s->n, t, &err) < 0)
		fail_msg("deploy_targets: %s", err->msg);
	check_invariants(s, t);
	bool moved = sim_apply(s, t);
	if (moved)
		sim_record(s, t);
	return sim_tick(s) || moved;
}

static void sim_run(struct sim *s)
{
	int start = s->passes;
	while (sim_step(s))
		if (s->passes - start > MAX_PASSES)
			fail_msg("no fixed point after %d passes: %s", MAX_PASSES, s->trace->buf);
}

static struct deploy_status sim_status(const struct sim *s)
{
	struct rs_view v[MAX_RS];
	struct deploy_status st;
	sim_views(s, v);
	deploy_status(&s->d, v, s->n, &st);
	return st;
}

/* ---- rolling updates from one healthy old ReplicaSet ---- */

struct roll_case {
	const char *name;
	int64_t replicas;
	const char *surge, *unavail;             /* JSON */
	int64_t exp_surge, exp_unavail, old_pods;
	enum mode mode;
	int64_t cap;
	const char *trace;
	int64_t final_old, final_new, final_new_avail;
	bool complete;
};

#define P25 "\"25%\""
static const struct roll_case ROLL[] = {
	/* 25% of 3: surge 1, unavailable 0 */
	{ "3 at 25%", 3, P25, P25, 1, 0, 3, NEXT, 0, "3/1 2/1 2/2 1/2 1/3 0/3", 0, 3, 3, true },
	/* 25% of 10: surge 3, unavailable 2 */
	{ "10 at 25%", 10, P25, P25, 3, 2, 10, NEXT, 0, "10/3 5/3 5/8 0/8 0/10", 0, 10, 10, true },
	{ "surge 0, unavailable 1", 3, "0", "1", 0, 1, 3, NEXT, 0, "2/0 2/1 1/1 1/2 0/2 0/3", 0, 3,
	  3, true },
	{ "surge 2, unavailable 0", 3, "2", "0", 2, 0, 3, NEXT, 0, "3/2 1/2 1/3 0/3", 0, 3, 3, true },
	/* 15% of 10: surge rounds up to 2, unavailable down to 1 */
	{ "15% of 10", 10, "\"15%\"", "\"15%\"", 2, 1, 10, NEXT, 0,
	  "10/2 7/2 7/5 4/5 4/8 1/8 1/10 0/10", 0, 10, 10, true },
	/* both resolve to 0: maxUnavailable becomes 1 */
	{ "0% and 50% of 1", 1, "\"0%\"", "\"50%\"", 0, 1, 1, NEXT, 0, "0/0 0/1", 0, 1, 1, true },
	{ "0% and 49% of 2", 2, "\"0%\"", "\"49%\"", 0, 1, 2, NEXT, 0, "1/0 1/1 0/1 0/2", 0, 2, 2,
	  true },
	{ "maxUnavailable clamped to replicas", 2, "0", "5", 0, 2, 2, NEXT, 0, "0/0 0/2", 0, 2, 2,
	  true },
	{ "100% surge: blue/green", 4, "\"100%\"", "0", 4, 0, 4, NEXT, 0, "4/4 0/4", 0, 4, 4, true },
	{ "absent: 25%", 8, NULL, NULL, 2, 2, 8, NEXT, 0, "8/2 4/2 4/6 0/6 0/8", 0, 8, 8, true },
	{ "first rollout", 3, P25, P25, 1, 0, 0, NEXT, 0, "0/3", 0, 3, 3, true },
	/* a broken new version: the old pods keep serving */
	{ "broken at 10", 10, P25, P25, 3, 2, 10, NEVER, 0, "10/3 8/3 8/5", 8, 5, 0, false },
	{ "broken at 3", 3, P25, P25, 1, 0, 3, NEVER, 0, "3/1", 3, 1, 0, false },
	{ "2 new pods ever ready", 4, P25, P25, 1, 1, 4, CAP, 2, "4/1 2/1 2/3 1/3 1/4", 1, 4, 2,
	  false },
};

static void test_rolling_table(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(ROLL); k++) {
		const struct roll_case *c = &ROLL[k];
		struct sim s;
		sim_init(&s, c->replicas, c->surge, c->unavail, c->exp_surge, c->exp_unavail);
		sim_add(&s, 1, false, c->old_pods, c->old_pods, NEXT);
		sim_add(&s, 2, true, 0, 0, c->mode)->cap = c->cap;
		sim_run(&s);
		if (strcmp(s.trace->buf, c->trace) != 0)
			fail_msg("%s: trace\n  got  %s\n  want %s", c->name, s.trace->buf, c->trace);
		if (s.rs[0].pods != c->final_old || s.rs[1].pods != c->final_new ||
		    s.rs[1].avail != c->final_new_avail)
			fail_msg("%s: final old %" PRId64 " new %" PRId64 " (%" PRId64 " available)",
				 c->name, s.rs[0].pods, s.rs[1].pods, s.rs[1].avail);
		if (sim_status(&s).complete != c->complete)
			fail_msg("%s: complete should be %d", c->name, c->complete);
	}
}

/* Old ReplicaSets go oldest revision first, whatever their order in rs[]. */
static void test_multiple_old(void **state)
{
	struct sim s;
	sim_init(&s, 5, "1", "1", 1, 1);
	sim_add(&s, 2, false, 3, 3, NEXT);
	sim_add(&s, 1, false, 2, 2, NEXT);
	sim_add(&s, 3, true, 0, 0, NEXT);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "3/2/1 3/0/1 3/0/3 1/0/3 1/0/5 0/0/5");
	assert_true(sim_status(&s).complete);
}

/* One pass from a given state: the targets. */
static void one_pass(const struct deploy_view *d, const struct rs_view *v, size_t n,
		     const int64_t *want)
{
	int64_t t[MAX_RS];
	struct gerr *err = NULL;
	assert_int_equal(deploy_targets(d, v, n, t, &err), 0);
	assert_null(err);
	for (size_t i = 0; i < n; i++)
		if (t[i] != want[i])
			fail_msg("rs[%zu]: target %" PRId64 ", want %" PRId64, i, t[i], want[i]);
}

#define RS(rev, new, pods, avail) { "h", rev, new, pods, avail, avail }

/* The worked examples in rolling.go's reconcileOldReplicaSets (10 replicas,
 * maxUnavailable 2, maxSurge 3), and cleanupUnhealthyReplicas. */
static void test_upstream_examples(void **state)
{
	json_t *three = JV("3"), *two = JV("2");
	struct deploy_view d = { .replicas = 10, .max_surge = three, .max_unavailable = two };
	/* case 1: a node fails under the old RS while the new one crashloops */
	struct rs_view crash[] = { RS(1, false, 8, 7), RS(2, true, 5, 0) };
	one_pass(&d, crash, 2, (int64_t[]){ 8, 5 });
	/* rollback: the good RS is new again; 4 crashlooping pods go */
	struct rs_view back[] = { RS(3, true, 8, 7), RS(2, false, 5, 0) };
	one_pass(&d, back, 2, (int64_t[]){ 8, 1 });
	/* case 2: roll over onto a third template; the unhealthy RS goes first */
	struct rs_view over[] = { RS(1, false, 8, 8), RS(2, false, 5, 0), RS(3, true, 0, 0) };
	one_pass(&d, over, 3, (int64_t[]){ 8, 0, 0 });
	/* cleanup is capped by maxScaledDown, oldest first */
	json_t *zero = JV("0"), *one = JV("1");
	struct deploy_view d4 = { .replicas = 4, .max_surge = two, .max_unavailable = one };
	struct rs_view sick[] = { RS(1, false, 3, 1), RS(2, false, 3, 1), RS(3, true, 0, 0) };
	one_pass(&d4, sick, 3, (int64_t[]){ 1, 2, 0 });
	/* an unhealthy old pod goes even when availability has no room */
	struct deploy_view d3 = { .replicas = 3, .max_surge = one, .max_unavailable = zero };
	struct rs_view mixed[] = { RS(1, false, 3, 2), RS(2, true, 1, 1) };
	one_pass(&d3, mixed, 2, (int64_t[]){ 2, 1 });
}

/* maxSurge and maxUnavailable as resolved, seen through a first pass. */
static void test_fencepost_rounding(void **state)
{
	static const struct {
		int64_t replicas;
		const char *surge, *unavail;
		int64_t want_old, want_new;
	} cases[] = {
		{ 10, "\"15%\"", "0", 10, 2 },     /* ceil(1.5) */
		{ 10, "\"0%\"", "\"15%\"", 9, 0 }, /* floor(1.5) */
		{ 10, "\"0%\"", "\"19%\"", 9, 0 }, /* floor(1.9) */
		{ 10, "\"11%\"", "0", 10, 2 },     /* ceil(1.1) */
		{ 10, "\"10%\"", "0", 10, 1 },     /* exact */
		{ 3, "\"1%\"", "0", 3, 1 },        /* ceil(0.03) */
		{ 3, "0", "\"99%\"", 1, 0 },       /* floor(2.97) */
		{ 3, "0", "0", 2, 0 },             /* both 0: maxUnavailable 1 */
		{ 3, "\"0%\"", "\"0%\"", 2, 0 },
		{ 3, "\"200%\"", "0", 3, 3 },      /* surge is not clamped, the new RS is */
		{ 3, "0", "\"100%\"", 0, 0 },
	};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		json_t *s = JV(cases[k].surge), *u = JV(cases[k].unavail);
		struct deploy_view d = { .replicas = cases[k].replicas, .max_surge = s,
					 .max_unavailable = u };
		struct rs_view v[] = { RS(1, false, cases[k].replicas, cases[k].replicas),
				       RS(2, true, 0, 0) };
		one_pass(&d, v, 2, (int64_t[]){ cases[k].want_old, cases[k].want_new });
	}
}

/* ---- Recreate ---- */

static void test_recreate(void **state)
{
	struct sim s;
	sim_init(&s, 3, "\"bogus\"", "[]", 0, 0); /* fenceposts are not read */
	s.d.recreate = true;
	sim_add(&s, 1, false, 3, 3, NEXT);
	sim_add(&s, 2, true, 0, 0, NEXT);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "0/0 0/3");
	assert_true(sim_status(&s).complete);

	/* several old RSes and a partly started new one: all old first */
	sim_init(&s, 3, NULL, NULL, 0, 0);
	s.d.recreate = true;
	sim_add(&s, 1, false, 2, 2, NEXT);
	sim_add(&s, 2, false, 1, 0, NEXT);
	sim_add(&s, 3, true, 1, 1, NEVER);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "0/0/1 0/0/3");
	assert_false(sim_status(&s).complete); /* the new version never gets ready */

	/* a new RS above replicas shrinks */
	sim_init(&s, 2, NULL, NULL, 0, 0);
	s.d.recreate = true;
	sim_add(&s, 1, true, 4, 4, NEXT);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "2");
}

/* ---- scaling ---- */

static void test_scale_without_template_change(void **state)
{
	static const struct {
		int64_t replicas;
		const char *trace;
	} steps[] = { { 5, "5" }, { 2, "2" }, { 0, "0" }, { 4, "4" }, { 4, "" } };
	struct sim s;
	sim_init(&s, 3, "1", "0", 1, 0);
	sim_add(&s, 1, true, 3, 3, NEXT);
	for (size_t k = 0; k < ARRAY_SIZE(steps); k++) {
		s.d.replicas = steps[k].replicas; /* 5 -> 2 goes straight to 2, not 2 + surge */
		sb_reset(s.trace);
		sim_run(&s);
		assert_string_equal(s.trace->buf, steps[k].trace);
		assert_true(sim_status(&s).complete);
	}
}

/* Paused: replica changes spread over the active RSes (sync.go's scale). */
static void test_paused_proportional(void **state)
{
	static const struct {
		const char *name;
		int64_t replicas;
		const char *surge;
		int64_t old_pods, new_pods, want_old, want_new;
	} cases[] = {
		/* 25 allowed: round(8*25/13) = 15, round(5*25/13) = 10 */
		{ "up 10 -> 20", 20, "\"25%\"", 8, 5, 15, 10 },
		/* 7 allowed: round(8*7/13) = 4, round(5*7/13) = 3 */
		{ "down 10 -> 5", 5, "\"25%\"", 8, 5, 4, 3 },
		/* ties: up grows the newer first, down shrinks the older first */
		{ "up with equal sizes", 10, "1", 4, 4, 5, 6 },
		{ "down with equal sizes", 4, "1", 4, 4, 2, 3 },
		{ "down to zero", 0, "\"25%\"", 8, 5, 0, 0 },
		/* round(3*6/4) = round(4.5) = 5: half away from zero, as math.Round */
		{ "half rounds up", 6, "0", 3, 1, 5, 1 },
		{ "unchanged", 10, "\"25%\"", 8, 5, 8, 5 },
		/* a template change while paused does not progress */
		{ "only the old RS active", 5, "\"25%\"", 3, 0, 5, 0 },
		{ "nothing active: the new RS", 3, "\"25%\"", 0, 0, 0, 3 },
	};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		json_t *s = JV(cases[k].surge), *u = JV("0");
		struct deploy_view d = { .replicas = cases[k].replicas, .paused = true,
					 .max_surge = s, .max_unavailable = u };
		struct rs_view v[] = { RS(1, false, cases[k].old_pods, cases[k].old_pods),
				       RS(2, true, cases[k].new_pods, 0) };
		print_message("%s\n", cases[k].name);
		one_pass(&d, v, 2, (int64_t[]){ cases[k].want_old, cases[k].want_new });
	}
}

static void test_paused_misc(void **state)
{
	json_t *q = JV("\"25%\"");
	struct deploy_view d = { .replicas = 3, .paused = true, .max_surge = q,
				 .max_unavailable = q };
	/* a saturated new RS retires the old ones */
	struct rs_view sat[] = { RS(1, false, 1, 1), RS(2, true, 3, 3) };
	one_pass(&d, sat, 2, (int64_t[]){ 0, 3 });
	/* three RSes, 6 -> 3 pods: round(3/6) = round(0.5) = 1 keeps one pod in each
	 * small RS, the largest takes the leftover -1 */
	json_t *zero = JV("0");
	struct deploy_view d3 = { .replicas = 3, .paused = true, .max_surge = zero,
				  .max_unavailable = q };
	struct rs_view three[] = { RS(1, false, 4, 4), RS(2, false, 1, 1), RS(3, true, 1, 0) };
	one_pass(&d3, three, 3, (int64_t[]){ 1, 1, 1 });
	/* Recreate is not scaled proportionally */
	d.recreate = true;
	d.replicas = 6;
	struct rs_view two[] = { RS(1, false, 2, 2), RS(2, true, 2, 0) };
	one_pass(&d, two, 2, (int64_t[]){ 2, 2 });

	/* paused mid-template-change, then resumed: the rollout runs */
	struct sim s;
	sim_init(&s, 4, "\"25%\"", "\"25%\"", 1, 1);
	s.d.paused = true;
	sim_add(&s, 1, false, 4, 4, NEXT);
	sim_add(&s, 2, true, 0, 0, NEXT);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "");
	s.d.paused = false;
	sim_run(&s);
	assert_string_equal(s.trace->buf, "4/1 2/1 2/3 0/3 0/4");
}

/* Unpaused, replicas lowered during a stuck rollout: more pods than
 * replicas + maxSurge is a scaling event, scaled proportionally; the rollout
 * then goes on under the new bounds. */
static void test_scale_during_rollout(void **state)
{
	struct sim s;
	sim_init(&s, 10, "\"25%\"", "\"25%\"", 3, 2);
	sim_add(&s, 1, false, 10, 10, NEXT);
	struct srs *nr = sim_add(&s, 2, true, 0, 0, NEVER);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "10/3 8/3 8/5");
	s.d.replicas = 5;
	s.surge = 2;
	s.unavail = 1;
	sb_reset(s.trace);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "4/3");
	nr->mode = NEXT;
	sb_reset(s.trace);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "1/3 1/5 0/5");
	assert_true(sim_status(&s).complete);
	/* raised: the rolling path gives the headroom to the new RS */
	s.d.replicas = 20;
	s.surge = s.unavail = 5;
	sb_reset(s.trace);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "0/20");

	/* lowered together with a template change: the one active RS, old, takes
	 * the new size first (sync.go's scale), then the rollout runs */
	sim_init(&s, 2, "1", "1", 1, 1);
	sim_add(&s, 1, false, 5, 5, NEXT);
	sim_add(&s, 2, true, 0, 0, NEXT);
	sim_run(&s);
	assert_string_equal(s.trace->buf, "2/0 2/1 0/1 0/2");
	assert_true(sim_status(&s).complete);
}

/* ---- random rollouts: invariants at every pass, convergence ---- */

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state % n;
}

struct fence {
	const char *json;
	int64_t v;      /* integer, or percent when pct */
	bool pct;
};

static const struct fence FENCES[] = {
	{ "0", 0, false }, { "1", 1, false }, { "2", 2, false }, { "\"0%\"", 0, true },
	{ "\"25%\"", 25, true }, { "\"33%\"", 33, true }, { "\"50%\"", 50, true },
	{ "\"100%\"", 100, true },
};

static int64_t resolve(const struct fence *f, int64_t replicas, bool up)
{
	if (!f->pct)
		return f->v;
	int64_t x = f->v * replicas;
	return up ? (x + 99) / 100 : x / 100;
}

/* The simulation's bounds for its replicas, worked out independently. */
static void sim_bounds(struct sim *s, const struct fence *fs, const struct fence *fu)
{
	int64_t r = s->d.replicas;
	s->surge = resolve(fs, r, true);
	s->unavail = resolve(fu, r, false);
	if (s->surge == 0 && s->unavail == 0)
		s->unavail = 1;
	s->unavail = s->unavail < r ? s->unavail : r;
}

static void random_rollout(unsigned seed)
{
	rng_state = 0x9e3779b97f4a7c15ull ^ seed;
	int64_t r = (int64_t)rnd(13);
	const struct fence *fs = &FENCES[rnd(ARRAY_SIZE(FENCES))];
	const struct fence *fu = &FENCES[rnd(ARRAY_SIZE(FENCES))];
	struct sim s;
	sim_init(&s, r, fs->json, fu->json, 0, 0);
	sim_bounds(&s, fs, fu);
	int64_t left = r;
	size_t nold = 1 + rnd(3);
	for (size_t i = 0; i < nold; i++) {
		int64_t p = i + 1 == nold ? left : (int64_t)rnd((uint64_t)left + 1);
		sim_add(&s, (int64_t)(nold - i), false, p, p, NEXT);
		left -= p;
	}
	enum mode m = (enum mode)rnd(3);
	sim_add(&s, (int64_t)nold + 1, true, 0, 0, m)->cap = (int64_t)rnd((uint64_t)r + 2);
	sim_run(&s);
	struct deploy_status st = sim_status(&s);
	bool all_ready = r == 0 || m == NEXT || (m == CAP && s.rs[nold].cap >= r);
	if (all_ready != st.complete)
		fail_msg("seed %u: complete %d, trace %s", seed, st.complete, s.trace->buf);
	assert_true(st.replicas <= r + s.surge);
	assert_true(st.available >= r - s.unavail);
	assert_true(s.rs[nold].pods <= r);
	/* then a replica change, unpaused, with every pod getting ready */
	s.rs[nold].mode = NEXT;
	s.d.replicas = (int64_t)rnd(13);
	sim_bounds(&s, fs, fu);
	sim_run(&s);
	if (!sim_status(&s).complete)
		fail_msg("seed %u: rescaled rollout incomplete: %s", seed, s.trace->buf);
}

static void test_random_rollouts(void **state)
{
	for (unsigned seed = 1; seed <= 3000; seed++)
		random_rollout(seed);
}

/* ---- bad input ---- */

static void expect_error(const struct deploy_view *d, const struct rs_view *v, size_t n,
			 const char *want)
{
	int64_t t[MAX_RS];
	struct gerr *err = NULL;
	assert_int_equal(deploy_targets(d, v, n, t, &err), -1);
	assert_non_null(err);
	assert_string_equal(err->msg, want);
	gerr_free(err);
	assert_int_equal(deploy_targets(d, v, n, t, NULL), -1); /* err is optional */
}

static void test_errors(void **state)
{
#define IOS "invalid value for IntOrString: "
#define ATOI(v, n, why) IOS "invalid value \"" v "%\": strconv.Atoi: parsing \"" n "\": " why
	static const struct {
		bool surge;
		const char *value, *msg;
	} cases[] = {
		{ true, "\"abc\"", IOS "invalid type: string is not a percentage" },
		{ false, "\"\"", IOS "invalid type: string is not a percentage" },
		{ false, "\"x%\"", ATOI("x", "x", "invalid syntax") },
		{ false, "\"%\"", ATOI("", "", "invalid syntax") },
		{ true, "\" 5%\"", ATOI(" 5", " 5", "invalid syntax") },
		{ true, "\"99999999999999999999%\"",
		  ATOI("99999999999999999999", "99999999999999999999", "value out of range") },
		{ true, "1.5", IOS "invalid type: neither int nor percentage" },
		{ true, "true", IOS "invalid type: neither int nor percentage" },
		{ true, "-1", "invalid value -1: must be greater than or equal to 0" },
		{ false, "\"-15%\"", "invalid value -2: must be greater than or equal to 0" },
		{ true, "4294967296", "invalid value 4294967296: out of range" },
		{ true, "\"922337203685477581%\"", IOS "922337203685477581% of 10 is out of range" },
	};
	struct rs_view v[] = { RS(1, false, 10, 10), RS(2, true, 0, 0) };
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		json_t *bad = JV(cases[k].value), *one = JV("1");
		struct deploy_view d = { .replicas = 10, .max_surge = cases[k].surge ? bad : one,
					 .max_unavailable = cases[k].surge ? one : bad };
		char *want = xasprintf("%s: %s", cases[k].surge ? "maxSurge" : "maxUnavailable",
				       cases[k].msg);
		expect_error(&d, v, 2, want);
		free(want);
	}
	struct deploy_view d = { .replicas = 3 };
	struct rs_view no_new[] = { RS(1, false, 3, 3) };
	expect_error(&d, no_new, 1, "no new ReplicaSet for the Deployment's template");
	expect_error(&d, NULL, 0, "no new ReplicaSet for the Deployment's template");
	struct rs_view bad[] = { RS(1, false, 3, 4), RS(2, true, 0, 0) };
	expect_error(&d, bad, 2, "ReplicaSet h: inconsistent counts (pods 3, ready 4, available 4)");
	struct rs_view neg[] = { RS(1, true, -1, 0) };
	expect_error(&d, neg, 1, "ReplicaSet h: inconsistent counts (pods -1, ready 0, available 0)");
	d.replicas = -1;
	struct rs_view ok[] = { RS(1, true, 0, 0) };
	expect_error(&d, ok, 1, "replicas -1 is out of range");
	d.replicas = 3;
	expect_error(&d, NULL, 1, "deploy_targets: missing argument");
}

/* Several RSes claim the template: the lowest revision is the new one. */
static void test_two_new(void **state)
{
	json_t *one = JV("1");
	struct deploy_view d = { .replicas = 2, .max_surge = one, .max_unavailable = one };
	struct rs_view v[] = { RS(4, true, 1, 1), RS(5, true, 1, 1) };
	/* rs[0] is new at 1 of 2: it grows, within 2 + 1 pods */
	one_pass(&d, v, 2, (int64_t[]){ 2, 1 });
	struct rs_view w[] = { RS(5, true, 1, 1), RS(4, true, 1, 1) };
	one_pass(&d, w, 2, (int64_t[]){ 1, 2 });
	struct deploy_status st;
	deploy_status(&d, v, 2, &st);
	assert_int_equal(st.updated, 1);
}

/* ---- status ---- */

static void test_status(void **state)
{
	static const struct {
		int64_t replicas;
		struct rs_view old, new;
		struct deploy_status want;
	} cases[] = {
		{ 3, { "a", 1, false, 2, 2, 2 }, { "b", 2, true, 2, 2, 1 }, { 4, 2, 4, 3, 1, false } },
		{ 3, { "a", 1, false, 0, 0, 0 }, { "b", 2, true, 3, 3, 3 }, { 3, 3, 3, 3, 0, true } },
		{ 3, { "a", 1, false, 1, 1, 1 }, { "b", 2, true, 3, 3, 3 }, { 4, 3, 4, 4, 0, false } },
		{ 3, { "a", 1, false, 0, 0, 0 }, { "b", 2, true, 3, 3, 2 }, { 3, 3, 3, 2, 1, false } },
		{ 3, { "a", 1, false, 0, 0, 0 }, { "b", 2, true, 4, 4, 4 }, { 4, 4, 4, 4, 0, false } },
		{ 3, { "a", 1, false, 0, 0, 0 }, { "b", 2, true, 3, 1, 0 }, { 3, 3, 1, 0, 3, false } },
		{ 0, { "a", 1, false, 0, 0, 0 }, { "b", 2, true, 0, 0, 0 }, { 0, 0, 0, 0, 0, true } },
	};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		struct deploy_view d = { .replicas = cases[k].replicas };
		struct rs_view v[] = { cases[k].old, cases[k].new };
		struct deploy_status st, w = cases[k].want;
		deploy_status(&d, v, 2, &st);
		if (st.replicas != w.replicas || st.updated != w.updated || st.ready != w.ready ||
		    st.available != w.available || st.unavailable != w.unavailable ||
		    st.complete != w.complete)
			fail_msg("case %zu: got %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
				 " %" PRId64 " %d", k, st.replicas, st.updated, st.ready,
				 st.available, st.unavailable, st.complete);
	}
	struct deploy_status st;
	deploy_status(&(struct deploy_view){ .replicas = 1 }, NULL, 0, &st);
	assert_false(st.complete);
}

/* ---- history ---- */

static void test_history_prune(void **state)
{
	static const struct {
		int64_t limit;
		int64_t pods[6];     /* revisions 3 1 6(new) 5 2 4, in that order */
		const char *drop;    /* per rs[], '1' = dropped */
	} cases[] = {
		{ 2, { 0, 0, 0, 0, 0, 0 }, "110010" },  /* revisions 1, 2, 3 go */
		{ 2, { 0, 4, 0, 0, 0, 0 }, "100010" },  /* rev 1 has pods: kept, not replaced */
		{ 0, { 0, 0, 0, 1, 0, 0 }, "110011" },  /* every empty old RS; never the new one */
		{ 5, { 0, 0, 0, 0, 0, 0 }, "000000" },
		{ 10, { 0, 0, 0, 0, 0, 0 }, "000000" },
		{ -1, { 0, 0, 0, 0, 0, 0 }, "000000" },
		{ INT32_MAX, { 0, 0, 0, 0, 0, 0 }, "000000" },
		{ 4, { 0, 0, 0, 0, 0, 0 }, "010000" },
	};
	static const int64_t revs[] = { 3, 1, 6, 5, 2, 4 };
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		struct deploy_view d = { .replicas = 1, .revision_history_limit = cases[k].limit };
		struct rs_view v[6];
		bool drop[6];
		char got[7] = { 0 };
		for (size_t i = 0; i < 6; i++)
			v[i] = (struct rs_view)RS(revs[i], revs[i] == 6, cases[k].pods[i], 0);
		deploy_history_prune(&d, v, 6, drop);
		for (size_t i = 0; i < 6; i++)
			got[i] = drop[i] ? '1' : '0';
		if (strcmp(got, cases[k].drop) != 0)
			fail_msg("limit %" PRId64 ": got %s want %s", cases[k].limit, got, cases[k].drop);
	}
	struct deploy_view d = { .revision_history_limit = 0 };
	deploy_history_prune(&d, NULL, 0, NULL);
}

/* ---- names ---- */

/* A returned name: 1..maxlen characters of the safe alphabet, want if given; freed. */
static void check_name(char *got, size_t maxlen, const char *want)
{
	assert_true(strlen(got) >= 1 && strlen(got) <= maxlen);
	assert_int_equal(got[strspn(got, "bcdfghjklmnpqrstvwxz2456789")], '\0');
	if (want)
		assert_string_equal(got, want);
	free(got);
}

static void test_pod_template_hash(void **state)
{
	/* golden values: FNV-32a of the canonical JSON, decimal, safe-encoded */
	check_name(pod_template_hash(JV("{\"a\": 1}")), 10, "67868497f7");
	check_name(pod_template_hash(NULL), 10, "5ffbfbbd64");
	check_name(pod_template_hash(json_null()), 10, "5ffbfbbd64");
	/* key order does not matter; any change does */
	check_name(pod_template_hash(JV("{\"spec\": {\"containers\": [{\"name\": \"web\", "
					"\"image\": \"nginx:1.25\"}]}, \"metadata\": {\"labels\": "
					"{\"app\": \"web\"}}}")), 10, "59bd5955b7");
	check_name(pod_template_hash(JV("{\"metadata\": {\"labels\": {\"app\": \"web\"}}, \"spec\": "
					"{\"containers\": [{\"image\": \"nginx:1.25\", \"name\": "
					"\"web\"}]}}")), 10, "59bd5955b7");
	char *h = pod_template_hash(JV("{\"metadata\": {\"labels\": {\"app\": \"web\"}}, \"spec\": "
				       "{\"containers\": [{\"image\": \"nginx:1.26\", \"name\": "
				       "\"web\"}]}}"));
	assert_string_not_equal(h, "59bd5955b7");
	check_name(h, 10, NULL);
	for (int i = 0; i < 200; i++) {
		char *text = xasprintf("{\"n\": %d}", i);
		check_name(pod_template_hash(JV(text)), 10, NULL);
		free(text);
	}
}

static void test_name_suffix(void **state)
{
	static const char *const golden[][2] = { { "web-7d4b9c", "9fnw7" }, { "", "s6vf8" },
						  { NULL, "s6vf8" }, { "default/web/0", "9lzc7" } };
	for (size_t k = 0; k < ARRAY_SIZE(golden); k++)
		check_name(name_suffix(golden[k][0]), 5, golden[k][1]);
	enum { N = 1000 };
	char **all = xcalloc(N, sizeof(*all));
	int dups = 0;
	for (int i = 0; i < N; i++) {
		char *seed = xasprintf("web-59bd5955b7/%d", i);
		all[i] = name_suffix(seed);
		assert_int_equal(strlen(all[i]), 5);
		check_name(name_suffix(seed), 5, all[i]); /* deterministic */
		free(seed);
		for (int j = 0; j < i; j++)
			dups += strcmp(all[i], all[j]) == 0;
	}
	assert_true(dups <= 1); /* 27^5 names: about 0.035 collisions expected */
	for (int i = 0; i < N; i++)
		free(all[i]);
	free(all);
}

int main(void)
{
#define T(fn) cmocka_unit_test_teardown(fn, release_json)
	const struct CMUnitTest tests[] = {
		T(test_rolling_table), T(test_multiple_old), T(test_upstream_examples),
		T(test_fencepost_rounding), T(test_recreate), T(test_scale_without_template_change),
		T(test_paused_proportional), T(test_paused_misc), T(test_scale_during_rollout),
		T(test_random_rollouts), T(test_errors), T(test_two_new), T(test_status),
		T(test_history_prune), T(test_pod_template_hash), T(test_name_suffix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
