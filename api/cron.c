/* api/cron.c: CronJob schedules — the 5-field syntax and macros of robfig/cron's
 * standard parser (what the CronJob controller uses), and the next run time.
 *
 * Differences from robfig, all on input Kubernetes would take: "@every",
 * "TZ=" and "CRON_TZ=" are refused (struct api_cron cannot hold them; times
 * are UTC); empty list items ("1,,2") and "*-5" are errors where robfig skips
 * or ignores them; 7 is accepted as Sunday in day-of-week (robfig refuses it,
 * Vixie cron takes it).
 */
#include <string.h>
#include <strings.h>

#include "api/api.h"

struct cfield {
	const char *name;
	unsigned min, max;   /* what "*" and "N/step" cover */
	unsigned value_max;  /* largest value written out (7 for day-of-week) */
	const char *const *names; /* 3-letter names for min.., or NULL */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
					   "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct cfield cfields[5] = {
	{ "minute", 0, 59, 59, NULL },
	{ "hour", 0, 23, 23, NULL },
	{ "day-of-month", 1, 31, 31, NULL },
	{ "month", 1, 12, 12, month_names },
	{ "day-of-week", 0, 6, 7, dow_names },
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A number or (case-insensitive) name in s[0..n). */
static int cron_value(const struct cfield *f, const char *s, size_t n, unsigned *ret,
		      struct gerr **err)
{
	if (f->names && n == 3) {
		for (unsigned i = 0; f->names[i]; i++) {
			if (strncasecmp(s, f->names[i], 3) == 0) {
				*ret = f->min + i;
				return 0;
			}
		}
	}
	if (n == 0)
		return gerr_set(err, GERR_FAIL, "missing value");
	if (strspn(s, "0123456789") < n)
		return gerr_set(err, GERR_FAIL, "invalid value \"%.*s\"", (int)n, s);
	unsigned v = 0;
	for (size_t i = 0; i < n && v <= f->value_max; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v < f->min || v > f->value_max)
		return gerr_set(err, GERR_FAIL, "value %.*s out of range %u-%u", (int)n, s, f->min,
				f->value_max);
	*ret = v;
	return 0;
}

/* One list item: "*", "?", "v", "a-b", each optionally followed by "/step". */
static int cron_item(const struct cfield *f, const char *s, size_t n, uint64_t *bits,
		     bool *star, struct gerr **err)
{
	const char *slash = memchr(s, '/', n);
	size_t rn = slash ? (size_t)(slash - s) : n;
	unsigned start, end, step = 1;
	if (slash) {
		const char *st = slash + 1;
		size_t sn = n - rn - 1;
		if (memchr(st, '/', sn))
			return gerr_set(err, GERR_FAIL, "too many slashes in \"%.*s\"", (int)n, s);
		if (sn == 0 || sn > 9 || strspn(st, "0123456789") < sn)
			return gerr_set(err, GERR_FAIL, "invalid step \"%.*s\"", (int)sn, st);
		step = 0;
		for (size_t i = 0; i < sn; i++)
			step = step * 10 + (unsigned)(st[i] - '0');
		if (step == 0)
			return gerr_set(err, GERR_FAIL, "step must be at least 1 in \"%.*s\"", (int)n, s);
	}
	bool is_star = rn == 1 && (s[0] == '*' || s[0] == '?');
	const char *dash = memchr(s, '-', rn);
	if (is_star) {
		start = f->min;
		end = f->max;
	} else if (!dash) {
		if (cron_value(f, s, rn, &start, err) < 0)
			return -1;
		/* "N/step" is "N-max/step" */
		end = slash && start < f->max ? f->max : start;
	} else {
		size_t an = (size_t)(dash - s), bn = rn - an - 1;
		if (memchr(dash + 1, '-', bn))
			return gerr_set(err, GERR_FAIL, "too many hyphens in \"%.*s\"", (int)n, s);
		if (cron_value(f, s, an, &start, err) < 0 ||
		    cron_value(f, dash + 1, bn, &end, err) < 0)
			return -1;
		if (start > end)
			return gerr_set(err, GERR_FAIL, "range start %u is after range end %u in "
					"\"%.*s\"", start, end, (int)n, s);
	}
	for (unsigned v = start; v <= end; v += step)
		*bits |= (uint64_t)1 << v;
	if (is_star && step == 1)
		*star = true;
	return 0;
}

static int cron_field(const struct cfield *f, const char *s, size_t n, uint64_t *bits,
		      bool *star, struct gerr **err)
{
	*bits = 0;
	*star = false;
	for (size_t i = 0; i <= n;) {
		const char *comma = memchr(s + i, ',', n - i);
		size_t in = comma ? (size_t)(comma - s) - i : n - i;
		if (in == 0)
			return gerr_set(err, GERR_FAIL, "empty item in list \"%.*s\"", (int)n, s);
		if (cron_item(f, s + i, in, bits, star, err) < 0)
			return -1;
		i += in + 1;
	}
	return 0;
}

static bool cron_macro(const char *s, size_t n, struct api_cron *c)
{
	static const char *const names[] = { "@yearly", "@annually", "@monthly", "@weekly",
					     "@daily", "@midnight", "@hourly" };
	size_t i = 0;
	while (i < ARRAY_SIZE(names) && !(strlen(names[i]) == n && memcmp(names[i], s, n) == 0))
		i++;
	if (i == ARRAY_SIZE(names))
		return false;
	*c = (struct api_cron){
		.minute = 1, .hour = 1, .dom = 0xfffffffe, .month = 0x1ffe, .dow = 0x7f,
		.dom_star = true, .dow_star = true,
	};
	if (i <= 2) { /* yearly, monthly: the 1st */
		c->dom = 1u << 1;
		c->dom_star = false;
	}
	if (i <= 1)
		c->month = 1u << 1;
	if (i == 3) { /* weekly: Sunday */
		c->dow = 1;
		c->dow_star = false;
	}
	if (i == 6)
		c->hour = 0xffffff;
	return true;
}

static int cron_parse(const char *s, size_t n, struct api_cron *ret, struct gerr **err)
{
	if (n == 0)
		return gerr_set(err, GERR_FAIL, "empty schedule");
	if (s[0] == '@') {
		if (cron_macro(s, n, ret))
			return 0;
		if (n >= 6 && memcmp(s, "@every", 6) == 0)
			return gerr_set(err, GERR_FAIL, "@every is not supported");
		return gerr_set(err, GERR_FAIL, "unrecognized descriptor \"%.*s\"", (int)n, s);
	}
	if (str_has_prefix(s, "TZ=") || str_has_prefix(s, "CRON_TZ="))
		return gerr_set(err, GERR_FAIL, "time zones (TZ=, CRON_TZ=) are not supported");
	const char *f[5];
	size_t fn[5], count = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && is_ws(s[i]))
			i++;
		size_t start = i;
		while (i < n && !is_ws(s[i]))
			i++;
		if (i > start) {
			if (count < 5) {
				f[count] = s + start;
				fn[count] = i - start;
			}
			count++;
		}
	}
	if (count != 5)
		return gerr_set(err, GERR_FAIL, "expected 5 fields (minute hour day-of-month month "
				"day-of-week), found %zu", count);
	uint64_t bits[5];
	bool star[5];
	for (int i = 0; i < 5; i++)
		if (cron_field(&cfields[i], f[i], fn[i], &bits[i], &star[i], err) < 0)
			return gerr_wrap(err, "%s field", cfields[i].name);
	*ret = (struct api_cron){
		.minute = bits[0],
		.hour = (uint32_t)bits[1],
		.dom = (uint32_t)bits[2],
		.month = (uint16_t)bits[3],
		.dow = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f), /* 7 is Sunday */
		.dom_star = star[2],
		.dow_star = star[4],
	};
	return 0;
}

int api_cron_parse(const char *s, struct api_cron *ret, struct gerr **err)
{
	const char *p = s, *end = s + strlen(s);
	while (p < end && is_ws(*p))
		p++;
	while (end > p && is_ws(end[-1]))
		end--;
	if (cron_parse(p, (size_t)(end - p), ret, err) < 0)
		return gerr_wrap(err, "invalid schedule \"%s\"", s);
	return 0;
}

/* ---- next run ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back
 * (Howard Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool day_matches(const struct api_cron *c, int64_t days, unsigned dom)
{
	unsigned dow = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
	bool dom_ok = c->dom >> dom & 1, dow_ok = c->dow >> dow & 1;
	if (c->dom_star || c->dow_star)
		return dom_ok && dow_ok;
	return dom_ok || dow_ok;
}

/* The first matching minute of a day at or after hh:mm, or -1. */
static int first_minute(const struct api_cron *c, int hh, int mm)
{
	for (int h = hh; h < 24; h++, mm = 0) {
		if (!(c->hour >> h & 1))
			continue;
		for (int m = mm; m < 60; m++)
			if (c->minute >> m & 1)
				return h * 60 + m;
	}
	return -1;
}

/* Like robfig's Next: searches through the end of the year five years on. */
time_t api_cron_next(const struct api_cron *c, time_t after)
{
	const int64_t span = 7 * 366 * 86400LL; /* more than the search covers */
	int64_t a = (int64_t)after;
	if (a > INT64_MAX - span || a < INT64_MIN + span)
		return -1;
	int64_t t = floor_div(a, 60) * 60 + 60;
	int64_t days = floor_div(t, 86400);
	int secs = (int)(t - days * 86400);
	int64_t y0, y;
	unsigned m, d;
	civil_from_days(days, &y0, &m, &d);
	for (y = y0; y <= y0 + 5; civil_from_days(days, &y, &m, &d)) {
		if (!(c->month >> m & 1)) {
			days = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
			secs = 0;
			continue;
		}
		int min = day_matches(c, days, d) ? first_minute(c, secs / 3600, secs % 3600 / 60)
						  : -1;
		if (min >= 0) {
			int64_t r = days * 86400 + min * 60;
			return (time_t)r == r ? (time_t)r : -1;
		}
		days++;
		secs = 0;
	}
	return -1;
}
