/* The error convention (core/err.h). */
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cv_errf(struct cv_error *err, int errnum, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (errnum > 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(errnum));
	err->code = errnum > 0 ? errnum : 0;
	return -1;
}

int cv_error_wrap(struct cv_error *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char prefix[CV_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	size_t plen = strlen(prefix);
	size_t old = strnlen(err->msg, sizeof(err->msg) - 1);
	/* "<prefix>: <old>", truncated to the buffer. */
	if (plen + 2 >= sizeof(err->msg))
		plen = sizeof(err->msg) - 3;
	size_t keep = sizeof(err->msg) - 1 - plen - 2;
	if (old > keep)
		old = keep;
	memmove(err->msg + plen + 2, err->msg, old);
	memcpy(err->msg, prefix, plen);
	err->msg[plen] = ':';
	err->msg[plen + 1] = ' ';
	err->msg[plen + 2 + old] = '\0';
	return -1;
}

void cv_error_reset(struct cv_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
