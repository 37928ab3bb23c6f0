/* journal_format.c: the journal file on disk (store.h has the format): its header,
 * CRC32C, encoding a record, and the scanner that reads and checks records one at a
 * time. What a run of records must look like (sequence, snapshots) is recovery's
 * (journal_state.c). */
#include "store/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define REC_LEN_MAX (REC_FIXED + JOURNAL_TYPE_MAX + JOURNAL_SNAPSHOT_MAX)
#define READ_CHUNK (256u << 10)

const char jr_magic[8] = { 'G', 'O', 'J', 'R', 'N', 'L', '\0', '\1' };

/* ---- CRC32C ---------------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw_raw(uint32_t c, const unsigned char *p, size_t n)
{
	while (n >= 8) { /* slicing-by-8, byte order independent */
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				   (uint32_t)p[3] << 24);
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^
		    crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw_raw(uint32_t c, const unsigned char *p,
							     size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t journal_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw_raw(~crc, data, n);
}

uint32_t journal_crc32c(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_hw_raw(~crc, data, n);
#endif
	return ~crc_sw_raw(~crc, data, n);
}

/* ---- encoding --------------------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint16_t jr_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t jr_get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

bool jr_type_ok(const char *t, size_t n)
{
	if (n < 1 || n > JOURNAL_TYPE_MAX || t[0] < 'a' || t[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '.' ||
		      t[i] == '_' || t[i] == '-'))
			return false;
	return true;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Replace sb's contents with one encoded record. */
void jr_encode(struct sbuf *sb, uint64_t seq, uint16_t flags, const char *type,
		   const void *body, size_t body_len)
{
	size_t tlen = strlen(type);
	uint32_t len = (uint32_t)(REC_FIXED + tlen + body_len);
	sb_reset(sb);
	sb_grow(sb, REC_PREFIX + len);
	unsigned char *p = (unsigned char *)sb->buf;
	put32(p, len);
	put64(p + 8, seq);
	put64(p + 16, (uint64_t)now_ns());
	put16(p + 24, (uint16_t)tlen);
	put16(p + 26, flags);
	put32(p + 28, (uint32_t)body_len);
	memcpy(p + REC_HDR, type, tlen);
	if (body_len)
		memcpy(p + REC_HDR + tlen, body, body_len);
	put32(p + 4, journal_crc32c(journal_crc32c(0, p, 4), p + REC_PREFIX, len));
	sb_setlen(sb, REC_PREFIX + len);
}

/* ---- scanning --------------------------------------------------------------- */

void jr_scan_init(struct scan *s, struct journal *j, int fd, uint64_t start, uint64_t limit)
{
	*s = (struct scan){ .fd = fd, .base = start, .buf = j->rbuf, .alloc = j->rbuf_alloc,
			    .limit = limit };
}

void jr_scan_done(struct scan *s, struct journal *j)
{
	j->rbuf = s->buf; /* keep the (possibly grown) buffer for the next scan */
	j->rbuf_alloc = s->alloc;
}

uint64_t jr_scan_off(const struct scan *s)
{
	return s->base + s->pos;
}

/* Make at least n bytes available at pos unless the file or limit ends first.
 * Returns the bytes available, or -1 on a read error. */
static ssize_t scan_fill(struct scan *s, size_t n, struct gerr **err)
{
	if (s->len - s->pos >= n)
		return (ssize_t)(s->len - s->pos);
	if (s->pos)
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
	s->base += s->pos;
	s->len -= s->pos;
	s->pos = 0;
	size_t want = n < READ_CHUNK ? READ_CHUNK : n;
	if (want + 1 > s->alloc) {
		s->buf = xrealloc(s->buf, want + 1);
		s->alloc = want + 1;
	}
	while (s->len < n && !s->eof) {
		uint64_t off = s->base + s->len;
		size_t room = s->alloc - 1 - s->len;
		if (s->limit != UINT64_MAX)
			room = off >= s->limit ? 0 : (s->limit - off < room ? s->limit - off : room);
		ssize_t r = room ? pread(s->fd, s->buf + s->len, room, (off_t)off) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return gerr_sys(err, "read journal at offset %llu", (unsigned long long)off);
		if (r == 0)
			s->eof = true;
		s->len += (size_t)r;
	}
	return (ssize_t)(s->len - s->pos);
}

/* Decode the record at pos. SCAN_REC: r filled, pos moved past it. SCAN_BAD:
 * *reason set, pos unchanged, r->size is the record's size when it was whole
 * (so a caller can look past it), else 0. SCAN_END: no bytes left. -1: I/O. */
int jr_scan_next(struct scan *s, struct raw *r, const char **reason, struct gerr **err)
{
	r->size = 0;
	ssize_t have = scan_fill(s, REC_HDR, err);
	if (have <= 0)
		return have < 0 ? -1 : SCAN_END;
	const unsigned char *p = (const unsigned char *)s->buf + s->pos;
	uint32_t len = get32(p);
	if (len < REC_FIXED + 1 || len > REC_LEN_MAX) {
		*reason = have < (ssize_t)REC_HDR ? "torn record" : "bad record length";
		return SCAN_BAD;
	}
	size_t size = REC_PREFIX + len;
	have = scan_fill(s, size, err);
	if (have < 0)
		return -1;
	if ((size_t)have < size) {
		*reason = "torn record";
		return SCAN_BAD;
	}
	p = (const unsigned char *)s->buf + s->pos;
	r->size = size;
	if (journal_crc32c(journal_crc32c(0, p, 4), p + REC_PREFIX, len) != get32(p + 4)) {
		*reason = "CRC mismatch";
		return SCAN_BAD;
	}
	r->seq = jr_get64(p + 8);
	r->time_ns = (int64_t)jr_get64(p + 16);
	r->type_len = jr_get16(p + 24);
	r->flags = jr_get16(p + 26);
	r->body_len = get32(p + 28);
	r->type = (const char *)p + REC_HDR;
	r->body = r->type + r->type_len;
	if (r->seq == 0 || (r->flags & ~JOURNAL_F_SNAPSHOT) ||
	    r->type_len + r->body_len + REC_FIXED != len || !jr_type_ok(r->type, r->type_len) ||
	    (!(r->flags & JOURNAL_F_SNAPSHOT) && r->body_len > JOURNAL_BODY_MAX)) {
		*reason = "bad record header";
		return SCAN_BAD;
	}
	r->off = jr_scan_off(s);
	s->pos += size;
	return SCAN_REC;
}

/* ---- the file's header ------------------------------------------------------ */

int jr_check_header(int fd, const char *path, struct gerr **err)
{
	char h[HDR_SIZE];
	ssize_t n;
	while ((n = pread(fd, h, sizeof(h), 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return gerr_sys(err, "read %s", path);
	if (n != (ssize_t)HDR_SIZE || memcmp(h, jr_magic, HDR_SIZE) != 0)
		return gerr_set(err, GERR_IO, "%s is not a journal (bad header)", path);
	return 0;
}
