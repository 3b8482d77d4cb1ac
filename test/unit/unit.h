#pragma once
/* A tiny unit-test runner (crun's RUN_TEST style). Each test file defines
 * tests with TEST(name) and lists them in UNIT_MAIN(...). The binary prints
 * one line per failure ("FAIL file: test") and per skip ("SKIP file: test:
 * reason") and ends with "N passed, N failed, N skipped". A test that cannot
 * run here calls SKIP("reason"): it is counted and shown, never passed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int unit_failed_checks;
/* Set by SKIP() in the running test; the reason is printed by unit_run. */
static char unit_skip_reason[256];
static int unit_skipped;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_failed_checks++;                                           \
		}                                                                       \
	} while (0)

#define CHECK_STR(a, b)                                                                  \
	do {                                                                             \
		const char *a_ = (a), *b_ = (b);                                         \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
			unit_failed_checks++;                                            \
		}                                                                        \
	} while (0)

/* Ends the current test as skipped (it must be called from the TEST body,
 * not from a helper: it returns). Checks that failed before still fail it. */
#define SKIP(...)                                                                        \
	do {                                                                             \
		snprintf(unit_skip_reason, sizeof(unit_skip_reason), __VA_ARGS__);      \
		unit_skipped = 1;                                                        \
		return;                                                                  \
	} while (0)

#define TEST(name) static void name(void)

/* Open fds of this process: tests compare it before and after to show
 * nothing leaked. */
static inline int unit_count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

typedef void (*unit_fn)(void);

static inline int unit_run(const char *file, const char *const *names, const unit_fn *fns, size_t n)
{
	int passed = 0, failed = 0, skipped = 0;
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	for (size_t i = 0; i < n; i++) {
		int before = unit_failed_checks;
		unit_skipped = 0;
		unit_skip_reason[0] = '\0';
		fns[i]();
		if (unit_failed_checks != before) {
			failed++;
			fprintf(stderr, "FAIL %s: %s\n", base, names[i]);
		} else if (unit_skipped) {
			skipped++;
			/* stdout, with the summary: run.sh shows every SKIP line. */
			printf("SKIP %s: %s: %s\n", base, names[i], unit_skip_reason);
		} else {
			passed++;
		}
	}
	fflush(stderr);
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

#define UNIT_MAIN(...)                                                                   \
	int main(void)                                                                   \
	{                                                                                \
		static const unit_fn fns_[] = { __VA_ARGS__ };                           \
		static const char names_[] = #__VA_ARGS__;                               \
		const char *names[ARRAY_SIZE(fns_)];                        \
		static char buf_[sizeof(names_)];                                        \
		memcpy(buf_, names_, sizeof(names_));                                    \
		size_t k = 0;                                                            \
		for (char *tok = strtok(buf_, ", "); tok && k < ARRAY_SIZE(fns_); \
		     tok = strtok(NULL, ", "))                                           \
			names[k++] = tok;                                                \
		return unit_run(__FILE__, names, fns_, k);                               \
	}
