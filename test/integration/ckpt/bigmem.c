/* Checkpoint victim for large restores: a heap of MIB mebibytes, its
 * first half a repeating pattern (LZ4 compresses it to almost nothing),
 * its second half a hash of the index (incompressible). Every INTERVAL
 * ms it checks EVERY word of the heap against what it wrote and appends
 * "n=<counter> heap=ok|BAD" to FILE (O_APPEND): after a restore, the
 * next line says whether all its memory came back. Built static by the
 * GNUmakefile.
 *   bigmem MIB FILE INTERVAL_MS */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint32_t word(size_t i, size_t half)
{
	if (i < half)
		return (uint32_t)(i % 1024) * 0x01010101u;
	uint64_t x = i * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint32_t)(x ^ (x >> 32));
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	size_t words = (strtoul(argv[1], NULL, 10) << 20) / 4, half = words / 2;
	int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	long ms = strtol(argv[3], NULL, 10);
	uint32_t *heap = mmap(NULL, words * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
	if (fd < 0 || !words || heap == MAP_FAILED)
		return 3;
	for (size_t i = 0; i < words; i++)
		heap[i] = word(i, half);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	for (uint64_t n = 0;; n++) {
		size_t bad = 0;
		for (size_t i = 0; i < words; i++)
			bad += heap[i] != word(i, half);
		char line[96];
		int k = snprintf(line, sizeof(line), "n=%llu heap=%s bad=%zu\n", (unsigned long long)n,
				 bad ? "BAD" : "ok", bad);
		if (write(fd, line, (size_t)k) != k)
			return 5;
		nanosleep(&ts, NULL);
	}
}
