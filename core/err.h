#pragma once
/* One error convention for the whole tree (crun's): a function that can fail
 * returns int (negative on failure) and takes `struct cv_error *err` last.
 * The message is written for the user and travels unchanged to the RPC reply
 * or the CLI's stderr. The buffer is fixed so that a cloned child can fill it
 * without allocating. */
#include <stddef.h>

#define CV_ERROR_MAX 1024

struct cv_error {
	int code;               /* errno behind the failure, 0 if none */
	char msg[CV_ERROR_MAX]; /* empty when no error */
};

/* Formats the message; appends ": <strerror(errnum)>" when errnum > 0.
 * err may be NULL. Always returns -1 so callers can `return cv_errf(...)`. */
int cv_errf(struct cv_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message: "<prefix>: <old message>". Returns -1. */
int cv_error_wrap(struct cv_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void cv_error_reset(struct cv_error *err);

static inline int cv_error_is_set(const struct cv_error *err)
{
	return err->msg[0] != '\0';
}
