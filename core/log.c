/* Logging (core/log.h): text lines or runc-style JSON lines. */
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_current_level = LL_WARN;

static int log_fd = STDERR_FILENO;
static bool log_json;

static const char *const level_names[] = {
	[LL_ERROR] = "error",
	[LL_WARN] = "warning",
	[LL_INFO] = "info",
	[LL_DEBUG] = "debug",
};

int log_open(const char *path, bool json, enum log_level level, struct cv_error *err)
{
	if (path && *path) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return cv_errf(err, errno, "opening log file %s", path);
		if (log_fd != STDERR_FILENO)
			close(log_fd);
		log_fd = fd;
	}
	log_json = json;
	log_current_level = level;
	return 0;
}

void log_set_level(enum log_level level)
{
	log_current_level = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warn") == 0) {
		*out = LL_WARN;
		return 0;
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return level <= LL_DEBUG ? level_names[level] : "unknown";
}

/* Appends s to out as a JSON string body (no quotes). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

void log_emit(enum log_level level, const char *fmt, ...)
{
	int saved = errno;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char ts[64];
	size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + tl, sizeof(ts) - tl, ".%06ldZ", (long)tv.tv_usec);

	char line[4096 + 64];
	int n;
	if (log_json) {
		char esc[4096];
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n",
			     log_level_name(level), esc, ts);
	} else {
		n = snprintf(line, sizeof(line), "%s %-7s [%d] %s\n", ts, log_level_name(level),
			     (int)getpid(), msg);
	}
	if (n > 0) {
		size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		/* One write per line: lines from several processes stay whole. */
		ssize_t w = write(log_fd, line, len);
		(void)w;
	}
	errno = saved;
}

void log_close(void)
{
	if (log_fd != STDERR_FILENO) {
		close(log_fd);
		log_fd = STDERR_FILENO;
	}
}
