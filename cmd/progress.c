/* A progress line for long checkpoints and restores (cmd/progress.h). */
#include "cmd/progress.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t progress_start(int fd, const char *what, bool by_offset)
{
	if (!isatty(STDERR_FILENO))
		return -1;
	pid_t pid = fork();
	if (pid != 0)
		return pid; /* -1: no progress line, nothing else changes */
	double t0 = now_s();
	for (;;) {
		struct timespec tick = {0, 250 * 1000 * 1000};
		nanosleep(&tick, NULL);
		off_t n;
		if (by_offset) {
			n = lseek(fd, 0, SEEK_CUR);
		} else {
			struct stat st;
			n = fstat(fd, &st) == 0 ? st.st_size : -1;
		}
		if (n < 0)
			_exit(0);
		double dt = now_s() - t0;
		fprintf(stderr, "\r%s: %.1f MiB, %.0f MB/s   ", what, (double)n / (1 << 20),
			dt > 0 ? (double)n / 1e6 / dt : 0.0);
	}
}

void progress_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	fputs("\r\033[K", stderr);
}
