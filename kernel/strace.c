/* strace of the armed syscalls (Logging.Change's SetStrace, EnableStrace,
 * StraceAllowlist; docs/API.md): one log line per notification, the
 * arguments decoded where that costs nothing more than the read the
 * notification needed anyway. The result is not known: the syscall runs
 * in the kernel after the CONTINUE answer, so the line ends in "= ?". */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "kernel/seccheck_internal.h"
#include "kernel/strace.h"

static struct {
	bool on;
	bool all;
	bool allow[TRACE_SYSNO_MAX];
} st;

int strace_configure(bool enable, char *const *allowlist, size_t n, struct cv_error *err)
{
	if (!enable) {
		memset(&st, 0, sizeof(st));
		return 0;
	}
	if (trace_arm_count() == 0)
		return cv_errf(err, 0, "error configuring strace: no syscall is armed (start the "
				       "sandbox with cvisor --trace-syscalls)");
	bool allow[TRACE_SYSNO_MAX] = { false };
	for (size_t i = 0; i < n; i++) {
		int nr = -1;
		for (size_t k = 0; k < trace_arm_count(); k++)
			if (strcmp(trace_arm_name(trace_arm_list()[k]), allowlist[i]) == 0)
				nr = trace_arm_list()[k];
		if (nr < 0)
			return cv_errf(err, 0, "error configuring strace: syscall \"%s\" is not armed "
					       "(cvisor --trace-syscalls)", allowlist[i]);
		allow[nr] = true;
	}
	st.on = true;
	st.all = n == 0;
	memcpy(st.allow, allow, sizeof(allow));
	return 0;
}

bool strace_enabled(void)
{
	return st.on;
}

bool strace_wants(int sysno)
{
	return st.on && sysno >= 0 && sysno < TRACE_SYSNO_MAX && (st.all || st.allow[sysno]);
}

/* Appends to out[*len..cap), always NUL-terminated; cut short when full. */
__attribute__((format(printf, 4, 5)))
static void put(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	if (*len >= cap - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

/* A quoted string, non-printable bytes escaped, at most 200 shown. */
static void put_str(char *out, size_t cap, size_t *len, const char *s)
{
	if (!s) {
		put(out, cap, len, "NULL");
		return;
	}
	put(out, cap, len, "\"");
	size_t i = 0;
	for (; s[i] && i < 200; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(out, cap, len, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(out, cap, len, "\\x%02x", c);
		else
			put(out, cap, len, "%c", c);
	}
	put(out, cap, len, s[i] ? "\"..." : "\"");
}

static void put_dirfd(char *out, size_t cap, size_t *len, uint64_t fd)
{
	if ((int)fd == AT_FDCWD)
		put(out, cap, len, "AT_FDCWD");
	else
		put(out, cap, len, "%d", (int)fd);
}

static void put_open_flags(char *out, size_t cap, size_t *len, uint64_t f)
{
	static const struct { int bit; const char *name; } bits[] = {
		{ O_CREAT, "O_CREAT" }, { O_EXCL, "O_EXCL" }, { O_NOCTTY, "O_NOCTTY" },
		{ O_TRUNC, "O_TRUNC" }, { O_APPEND, "O_APPEND" }, { O_NONBLOCK, "O_NONBLOCK" },
		{ O_DIRECTORY, "O_DIRECTORY" }, { O_NOFOLLOW, "O_NOFOLLOW" },
		{ O_CLOEXEC, "O_CLOEXEC" }, { O_PATH, "O_PATH" },
	};
	int acc = (int)f & O_ACCMODE;
	put(out, cap, len, "%s",
	    acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR");
	uint64_t rest = f & ~(uint64_t)O_ACCMODE;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if ((rest & (uint64_t)bits[i].bit) == (uint64_t)bits[i].bit) {
			put(out, cap, len, "|%s", bits[i].name);
			rest &= ~(uint64_t)bits[i].bit;
		}
	if (rest)
		put(out, cap, len, "|%#llx", (unsigned long long)rest);
}

static void put_argv(char *out, size_t cap, size_t *len, char *const *argv)
{
	put(out, cap, len, "[");
	for (size_t i = 0; argv && argv[i]; i++) {
		if (i)
			put(out, cap, len, ", ");
		put_str(out, cap, len, argv[i]);
	}
	put(out, cap, len, "]");
}

void strace_format(const struct sc_syscall *s, pid_t ns_tid, char *out, size_t cap)
{
	size_t len = 0;
	const uint64_t *a = s->args;
	out[0] = '\0';
	const char *name = trace_arm_name(s->sysno);
	put(out, cap, &len, "[%d] %s(", (int)ns_tid, name ? name : "?");
	switch (s->sysno) {
	case SYS_openat:
		put_dirfd(out, cap, &len, a[0]);
		put(out, cap, &len, ", ");
		put_str(out, cap, &len, s->path);
		put(out, cap, &len, ", ");
		put_open_flags(out, cap, &len, a[2]);
		if (a[2] & O_CREAT)
			put(out, cap, &len, ", 0%llo", (unsigned long long)a[3]);
		break;
	case SYS_execve:
		put_str(out, cap, &len, s->path);
		put(out, cap, &len, ", ");
		put_argv(out, cap, &len, s->argv);
		break;
	case SYS_execveat:
		put_dirfd(out, cap, &len, a[0]);
		put(out, cap, &len, ", ");
		put_str(out, cap, &len, s->path);
		put(out, cap, &len, ", ");
		put_argv(out, cap, &len, s->argv);
		put(out, cap, &len, ", %#llx", (unsigned long long)a[4]);
		break;
	case SYS_chdir:
		put_str(out, cap, &len, s->path);
		break;
	case SYS_socket:
		put(out, cap, &len, "%d, %d, %d", (int)a[0], (int)a[1], (int)a[2]);
		break;
	case SYS_listen:
		put(out, cap, &len, "%d, %d", (int)a[0], (int)a[1]);
		break;
	case SYS_setuid:
		put(out, cap, &len, "%u", (unsigned)a[0]);
		break;
	default:
		for (int i = 0; i < 6; i++)
			put(out, cap, &len, "%s%#llx", i ? ", " : "", (unsigned long long)a[i]);
		break;
	}
	put(out, cap, &len, ") = ?");
}

void strace_log(const struct sc_syscall *s, pid_t ns_tid)
{
	char line[1024];
	strace_format(s, ns_tid, line, sizeof(line));
	/* Asked for explicitly: written whatever the log level, as info. */
	log_emit(LL_INFO, "strace: %s", line);
}
