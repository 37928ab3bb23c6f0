/* file.c: durable file writes and directory creation. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct gerr **err)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	char *dcopy = xstrdup(path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int r = -1;
	if (fd < 0) {
		gerr_sys(err, "create %s", tmp);
		goto out;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		gerr_sys(err, "write %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		gerr_sys(err, "rename %s", path);
		unlink(tmp);
		goto out;
	}
	int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	r = 0;
out:
	free(tmp);
	free(dcopy);
	return r;
}

int mkdir_p(const char *path, mode_t mode, struct gerr **err)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			gerr_sys(err, "mkdir %s", p);
			free(p);
			return -1;
		}
		*s = '/';
	}
	int r = 0;
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		r = gerr_sys(err, "mkdir %s", p);
	free(p);
	return r;
}
