/* netpol-run: run one command (in a network namespace, stdin from a file) and
 * report what it cost, for bench/bench-netpol.sh.
 *
 *   netpol-run [--netns NAME] [--in FILE] [--out FILE] -- COMMAND [ARG...]
 *
 * Prints one line on stdout: "wall S cpu S user S sys S maxrss_kb N status N",
 * times in seconds with microsecond resolution (wait4's rusage of the child: its
 * own user and system time, and its peak resident set). The child's stdout goes
 * to --out (default /dev/null); its stderr is inherited. Exit 0 when the command
 * exited 0, else 1 (2 on usage or setup errors).
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *in = NULL, *out = "/dev/null";
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--netns") && i + 1 < argc)
			netns = argv[++i];
		else if (!strcmp(argv[i], "--in") && i + 1 < argc)
			in = argv[++i];
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else
			break;
	}
	if (i + 1 >= argc || strcmp(argv[i], "--")) {
		fprintf(stderr, "usage: netpol-run [--netns NAME] [--in FILE] [--out FILE] -- COMMAND [ARG...]\n");
		return 2;
	}
	char **cmd = argv + i + 1;
	if (netns) {
		char path[512];
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			die(path);
		close(fd);
	}
	int fin = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC);
	int fout = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fin < 0 || fout < 0)
		die("netpol-run: open");
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		die("netpol-run: fork");
	if (pid == 0) {
		if (dup2(fin, 0) < 0 || dup2(fout, 1) < 0)
			_exit(127);
		execvp(cmd[0], cmd);
		perror(cmd[0]);
		_exit(127);
	}
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0)
		die("netpol-run: wait4");
	double wall = now() - t0;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	printf("wall %.6f cpu %.6f user %.6f sys %.6f maxrss_kb %ld status %d\n", wall,
	       tv(ru.ru_utime) + tv(ru.ru_stime), tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss,
	       status);
	return status == 0 ? 0 : 1;
}
