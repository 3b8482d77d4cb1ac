#pragma once
/* A tiny unit-test runner (crun's RUN_TEST style). Each test file defines
 * tests with TEST(name) and lists them in UNIT_MAIN(...). The binary prints
 * one line per failure and ends with "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed_checks;

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

#define TEST(name) static void name(void)

typedef void (*unit_fn)(void);

static inline int unit_run(const char *file, const char *const *names, const unit_fn *fns, size_t n)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		int before = unit_failed_checks;
		fns[i]();
		if (unit_failed_checks == before) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "FAIL %s: %s\n", file, names[i]);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define UNIT_MAIN(...)                                                                   \
	int main(void)                                                                   \
	{                                                                                \
		static const unit_fn fns_[] = { __VA_ARGS__ };                           \
		static const char names_[] = #__VA_ARGS__;                               \
		const char *names[sizeof(fns_) / sizeof(fns_[0])];                        \
		static char buf_[sizeof(names_)];                                        \
		memcpy(buf_, names_, sizeof(names_));                                    \
		size_t k = 0;                                                            \
		for (char *tok = strtok(buf_, ", "); tok && k < sizeof(fns_) / sizeof(fns_[0]); \
		     tok = strtok(NULL, ", "))                                           \
			names[k++] = tok;                                                \
		return unit_run(__FILE__, names, fns_, k);                               \
	}
