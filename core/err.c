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
	char old[CV_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -1;
}

void cv_error_reset(struct cv_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
