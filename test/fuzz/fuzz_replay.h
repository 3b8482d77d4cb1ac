#pragma once
/* The corpus replayer shared by the decoder targets: with
 * -DFUZZ_REPLAY_MAIN a target gets a main() that runs every file (or every
 * file in every directory) named on the command line through
 * LLVMFuzzerTestOneInput, so `make test` replays the corpora without
 * libFuzzer (as lz4's standaloneengine.c). Include it once, after the
 * target's LLVMFuzzerTestOneInput. A target that holds process-wide state
 * defines FUZZ_REPLAY_CLEANUP() before including it, so ASan's leak check
 * at exit sees only real leaks. */
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_REPLAY_MAIN
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_REPLAY_CLEANUP
#define FUZZ_REPLAY_CLEANUP() ((void)0)
#endif

/* Returns 0 when the input ran, 1 on an error, -1 when a file listed in a
 * directory is gone (a fuzzer running on build-fuzz/corpus replaces
 * inputs by smaller ones as it goes). */
static int replay_file(const char *file, int listed)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		if (listed && errno == ENOENT)
			return -1;
		fprintf(stderr, "replay: %s: %s\n", file, strerror(errno));
		return 1;
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "replay: %s: out of memory\n", file);
		return 1;
	}
	/* An exact-size copy, so ASan catches a read one past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, ran = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			if (!d) {
				fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
				bad = 1;
				continue;
			}
			struct dirent *e;
			while ((e = readdir(d))) {
				if (e->d_name[0] == '.')
					continue;
				char p[4096];
				snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
				int r = replay_file(p, 1);
				if (r >= 0) {
					bad |= r;
					ran++;
				}
			}
			closedir(d);
		} else {
			bad |= replay_file(argv[i], 0);
			ran++;
		}
	}
	FUZZ_REPLAY_CLEANUP();
	printf("%s: %d inputs ran\n", argv[0], ran);
	/* A corpus that ran nothing is a broken path, not a pass. */
	return bad || ran == 0;
}
#endif
