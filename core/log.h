#pragma once
/* Logging: text or JSON lines (runc's --log-format), to a file or stderr.
 * LOG() does not evaluate its arguments when the level is off. */
#include <stdbool.h>

#include "core/err.h"

enum log_level { LL_ERROR, LL_WARN, LL_INFO, LL_DEBUG };

extern enum log_level log_current_level;

/* path NULL → stderr. json selects one JSON object per line
 * ({"level":"info","msg":"...","time":"RFC3339"}), as runc writes. */
int log_open(const char *path, bool json, enum log_level level, struct cv_error *err);
void log_set_level(enum log_level level);
int log_level_parse(const char *name, enum log_level *out); /* "debug","info","warning","error" */
const char *log_level_name(enum log_level level);
void log_emit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_close(void);

#define LOG(level, ...)                            \
	do {                                       \
		if ((level) <= log_current_level)  \
			log_emit((level), __VA_ARGS__); \
	} while (0)
