/* Checkpoint victim: counts every INTERVAL ms, appending "n=<counter>" to
 * a file opened O_APPEND and to stdout, checks a patterned heap of MiB
 * mebibytes and an FP value kept alongside the counter, and reports
 * SIGUSR1. With THREADS > 1, that many extra threads count too and the
 * line carries their sum. FILL "rand" makes the heap incompressible (a
 * hash of the index), "pat" (the default) a repeating pattern. Built
 * static by the GNUmakefile.
 *   counter MIB FILE INTERVAL_MS [THREADS [FILL]] */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1;
static int fill_rand;

/* The heap's word i: a hash of i (incompressible) or a 4 KiB pattern. */
static uint32_t word(size_t i)
{
	if (!fill_rand)
		return (uint32_t)(i % 1024) * 0x01010101u;
	uint64_t x = i * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint32_t)(x ^ (x >> 32));
}
static volatile uint64_t tcount[16];

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void *worker(void *arg)
{
	volatile uint64_t *c = arg;
	struct timespec ts = {0, 1000 * 1000};
	for (;;) {
		(*c)++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	size_t mib = strtoul(argv[1], NULL, 10);
	int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	long ms = strtol(argv[3], NULL, 10);
	int threads = argc > 4 ? atoi(argv[4]) : 0;
	fill_rand = argc > 5 && strcmp(argv[5], "rand") == 0;
	if (fd < 0 || threads > 16)
		return 3;
	size_t len = mib << 20;
	uint32_t *heap = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				    -1, 0)
			     : NULL;
	if (heap == MAP_FAILED)
		return 4;
	for (size_t i = 0; i < len / 4; i++)
		heap[i] = word(i);
	signal(SIGUSR1, on_usr1);
	pthread_t th;
	for (int i = 0; i < threads; i++)
		pthread_create(&th, NULL, worker, (void *)&tcount[i]);
	volatile double fp = 0.0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	for (uint64_t n = 0;; n++) {
		int heap_ok = 1;
		for (size_t i = 0; i < len / 4; i += 4099)
			heap_ok &= heap[i] == word(i);
		int fp_ok = fp == (double)n * 0.5;
		uint64_t sum = 0;
		for (int i = 0; i < threads; i++)
			sum += tcount[i];
		char line[160];
		int k = snprintf(line, sizeof(line), "n=%llu heap=%s fp=%s usr1=%d pid=%d threads=%llu\n",
				 (unsigned long long)n, heap_ok ? "ok" : "BAD", fp_ok ? "ok" : "BAD",
				 (int)usr1, (int)getpid(), (unsigned long long)sum);
		if (write(fd, line, (size_t)k) != k || write(1, line, (size_t)k) != k)
			return 5;
		fp += 0.5;
		nanosleep(&ts, NULL);
	}
}
