/* sbuf.c: the growable string, and whole-file reads into it. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char sbuf_empty[1];

void sb_init(struct sbuf *sb)
{
	sb->buf = sbuf_empty;
	sb->len = sb->alloc = 0;
}

void sb_grow(struct sbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->alloc)
		return;
	if (extra > SIZE_MAX - sb->len - 1)
		abort();
	char *old = sb->alloc ? sb->buf : NULL;
	sb->buf = xgrow(old, &sb->alloc, sb->len + extra + 1, 1);
	if (!old)
		sb->buf[0] = '\0';
}

void sb_add(struct sbuf *sb, const void *data, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addc(struct sbuf *sb, char c)
{
	sb_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void sb_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sb_addf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

void sb_reset(struct sbuf *sb)
{
	sb_setlen(sb, 0);
}

void sb_setlen(struct sbuf *sb, size_t len)
{
	if (!sb->alloc)
		return;
	sb->len = len;
	sb->buf[len] = '\0';
}

void sb_release(struct sbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	sb_init(sb);
}

char *sb_detach(struct sbuf *sb, size_t *ret_len)
{
	if (!sb->alloc)
		sb_grow(sb, 0);
	char *r = sb->buf;
	if (ret_len)
		*ret_len = sb->len;
	sb_init(sb);
	return r;
}

int sb_read_fd(struct sbuf *sb, int fd, size_t max, struct gerr **err)
{
	for (;;) {
		sb_grow(sb, 8192);
		ssize_t n = read(fd, sb->buf + sb->len, sb->alloc - sb->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gerr_sys(err, "read");
		}
		if (n == 0)
			break;
		sb->len += (size_t)n;
		sb->buf[sb->len] = '\0';
		if (max && sb->len > max)
			return gerr_set(err, GERR_FAIL, "input larger than %zu bytes", max);
	}
	return 0;
}

int sb_read_file(struct sbuf *sb, const char *path, size_t max, struct gerr **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gerr_sys(err, "open %s", path);
	struct stat st;   /* grown once, not doubled read by read (3 MB: copied and faulted again) */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (!max || (size_t)st.st_size <= max))
		sb_grow(sb, (size_t)st.st_size + 1);
	int r = sb_read_fd(sb, fd, max, err);
	close(fd);
	if (r < 0)
		return gerr_wrap(err, "%s", path);
	return 0;
}
