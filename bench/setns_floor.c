/* The floor under an exec into a running container: what any runtime must
 * do at least, with no RPC, no CLI and no cgroup placement.
 *
 *   setns_floor PID N    N x (fork; setns(pidfd of PID, its namespaces);
 *                        fork; execve /bin/true inside; wait both)
 *
 * Joins exactly the namespaces PID does not share with this process (as
 * cvisor's exec does; setns with a user namespace we share is EINVAL).
 * Prints one JSON line {"p50_us","p99_us","n","samples_us"}; any failure
 * exits 1. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* CLONE_NEW* of every namespace of pid that differs from ours. */
static int ns_flags_of(pid_t pid)
{
	static const struct {
		const char *name;
		int flag;
	} t[] = { { "mnt", CLONE_NEWNS },   { "pid", CLONE_NEWPID },       { "net", CLONE_NEWNET },
		  { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },       { "cgroup", CLONE_NEWCGROUP } };
	int flags = 0;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char theirs[64], ours[64];
		struct stat a, b;
		snprintf(theirs, sizeof(theirs), "/proc/%d/ns/%s", (int)pid, t[i].name);
		snprintf(ours, sizeof(ours), "/proc/self/ns/%s", t[i].name);
		if (stat(theirs, &a) == 0 && stat(ours, &b) == 0 && a.st_ino != b.st_ino)
			flags |= t[i].flag;
	}
	return flags;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: setns_floor PID N\n");
		return 2;
	}
	pid_t target = (pid_t)atoi(argv[1]);
	int n = atoi(argv[2]);
	if (target <= 0 || n <= 0) {
		fprintf(stderr, "setns_floor: bad PID or N\n");
		return 2;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, target, 0);
	if (pidfd < 0) {
		fprintf(stderr, "setns_floor: pidfd_open %d: %s\n", (int)target, strerror(errno));
		return 1;
	}
	int flags = ns_flags_of(target);
	double *t = calloc((size_t)n, sizeof(double));
	if (!t)
		return 1;
	char *const args[] = { "/bin/true", NULL };
	char *const env[] = { "PATH=/bin:/usr/bin", NULL };
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		pid_t mid = fork();
		if (mid < 0)
			return 1;
		if (mid == 0) {
			if (flags && setns(pidfd, flags) < 0)
				_exit(120);
			pid_t c = fork(); /* the pid namespace applies to children */
			if (c < 0)
				_exit(121);
			if (c == 0) {
				execve(args[0], args, env);
				_exit(122);
			}
			int st;
			if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st))
				_exit(123);
			_exit(WEXITSTATUS(st));
		}
		int st;
		if (waitpid(mid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "setns_floor: iteration %d failed (status %#x)\n", i, st);
			return 1;
		}
		t[i] = now_us() - t0;
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	int p99 = (int)((double)n * 0.99);
	if (p99 >= n)
		p99 = n - 1;
	printf("{\"p50_us\": %.1f, \"p99_us\": %.1f, \"n\": %d, \"samples_us\": [", t[n / 2],
	       t[p99], n);
	/* Every sample (sorted), so that a caller can pool interleaved runs. */
	for (int i = 0; i < n; i++)
		printf("%s%.1f", i ? ", " : "", t[i]);
	printf("]}\n");
	free(t);
	close(pidfd);
	return 0;
}
