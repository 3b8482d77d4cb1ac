/* Shared CLI helpers (cmd/cli.h). No sandbox I/O here: this file is unit
 * tested on its own (test/unit/test_cli.c). */
#include "cmd/cli.h"

#include "core/utf8.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <getopt.h>
#include <unistd.h>

struct cli_globals cli_g = {
	.root = CLI_DEFAULT_ROOT,
	.log = NULL,
	.log_format = "text",
	.network = "sandbox",
	.debug = false,
};

/* ---- errors and usage ---------------------------------------------------- */

static void append_json_log(const char *msg)
{
	if (!cli_g.log || strcmp(cli_g.log_format, "json") != 0)
		return;
	char now[64];
	cli_now_rfc3339nano(now, sizeof(now));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "level", json_object_new_string("error"));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	json_object_object_add(o, "time", json_object_new_string(now));
	/* The message may quote container data: cli_json_print escapes it. */
	char *line = NULL;
	size_t n = 0;
	FILE *mf = open_memstream(&line, &n);
	if (mf) {
		cli_json_print(mf, o, false);
		fputc('\n', mf);
		if (fclose(mf) != 0) {
			free(line);
			line = NULL;
		}
	}
	int fd = line ? open(cli_g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (fd >= 0) {
		/* One write so concurrent writers do not interleave within a line. */
		if (write(fd, line, n) < 0) {
			/* Nothing better to do: stderr already has the message. */
		}
		close(fd);
	}
	free(line);
	json_object_put(o);
}

int cli_fail(const struct cv_error *err)
{
	const char *msg = err->msg[0] ? err->msg : "unknown error";
	/* Messages quote IDs, paths, bundle fields and the sandbox's errors
	 * (which quote the container's): escaped, one line, whatever they
	 * hold. */
	char *safe = cli_escape_dup(msg);
	fprintf(stderr, "cvisor: %s\n", safe ? safe : "(error message lost: out of memory)");
	free(safe);
	append_json_log(msg);
	return 1;
}

int cli_failf(const char *fmt, ...)
{
	struct cv_error err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	err.code = 0;
	return cli_fail(&err);
}

int cli_usage(const struct cli_command *cmd)
{
	printf("usage: cvisor [global flags] %s\n", cmd->usage ? cmd->usage : cmd->name);
	return 0;
}

int cli_bad_flag(const struct cli_command *cmd, int argc, char **argv)
{
	/* getopt leaves optind just past the offending element. */
	const char *arg = optind >= 1 && optind - 1 < argc ? argv[optind - 1] : "?";
	return cli_failf("%s: bad flag \"%s\" (see cvisor %s --help)", cmd->name, arg, cmd->name);
}

int cli_no_flags(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP, { 0, 0, 0, 0 } };
	optind = 1;
	opterr = 0;
	int c = getopt_long(argc, argv, "+:h", opts, NULL);
	if (c == -1)
		return -1;
	return c == 'h' ? cli_usage(cmd) : cli_bad_flag(cmd, argc, argv);
}

/* ---- ids, signals, statuses ---------------------------------------------- */

int cli_validate_id(const char *id, struct cv_error *err)
{
	size_t n = id ? strlen(id) : 0;
	bool ok = n >= 1 && n <= CLI_ID_MAX && isalnum((unsigned char)id[0]);
	for (size_t i = 1; ok && i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		ok = isalnum(c) || c == '_' || c == '.' || c == '-';
	}
	if (!ok)
		return cv_errf(err, 0, "invalid container id \"%s\"", id ? id : "");
	return 0;
}

static const struct {
	const char *name; /* without "SIG" */
	int signo;
} signals[] = {
	{ "HUP", SIGHUP },       { "INT", SIGINT },       { "QUIT", SIGQUIT },
	{ "ILL", SIGILL },       { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },
	{ "IOT", SIGIOT },       { "BUS", SIGBUS },       { "FPE", SIGFPE },
	{ "KILL", SIGKILL },     { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },     { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },
	{ "TERM", SIGTERM },     { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },
	{ "CLD", SIGCHLD },      { "CONT", SIGCONT },     { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },     { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },
	{ "URG", SIGURG },       { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },     { "WINCH", SIGWINCH },
	{ "IO", SIGIO },         { "POLL", SIGPOLL },     { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

/* Parses a non-negative decimal number without sign or spaces. */
static bool parse_small_uint(const char *s, int *out)
{
	if (!*s)
		return false;
	long v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s) || v > 1000)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = (int)v;
	return true;
}

int cli_parse_signal(const char *s, int *signo, struct cv_error *err)
{
	int n;
	if (parse_small_uint(s, &n)) {
		/* Numbers must name a signal the kernel knows: 1..31 and the
		 * real-time range (32 and 33 are glibc's, but still valid). */
		if (n >= 1 && n <= SIGRTMAX) {
			*signo = n;
			return 0;
		}
		return cv_errf(err, 0, "unknown signal \"%s\"", s);
	}
	const char *name = s;
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++) {
		if (strcasecmp(name, signals[i].name) == 0) {
			*signo = signals[i].signo;
			return 0;
		}
	}
	/* RTMIN, RTMIN+n, RTMAX, RTMAX-n. */
	int off = 0;
	if (strncasecmp(name, "RTMIN", 5) == 0 &&
	    (!name[5] || (name[5] == '+' && parse_small_uint(name + 6, &off))) &&
	    SIGRTMIN + off <= SIGRTMAX) {
		*signo = SIGRTMIN + off;
		return 0;
	}
	if (strncasecmp(name, "RTMAX", 5) == 0 &&
	    (!name[5] || (name[5] == '-' && parse_small_uint(name + 6, &off))) &&
	    SIGRTMAX - off >= SIGRTMIN) {
		*signo = SIGRTMAX - off;
		return 0;
	}
	return cv_errf(err, 0, "unknown signal \"%s\"", s);
}

const char *cli_signal_name(int signo)
{
	static const char *const full[] = {
		[SIGHUP] = "SIGHUP",     [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT",
		[SIGILL] = "SIGILL",     [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
		[SIGBUS] = "SIGBUS",     [SIGFPE] = "SIGFPE",       [SIGKILL] = "SIGKILL",
		[SIGUSR1] = "SIGUSR1",   [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
		[SIGPIPE] = "SIGPIPE",   [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM",
		[SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD",   [SIGCONT] = "SIGCONT",
		[SIGSTOP] = "SIGSTOP",   [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN",
		[SIGTTOU] = "SIGTTOU",   [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU",
		[SIGXFSZ] = "SIGXFSZ",   [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
		[SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",         [SIGPWR] = "SIGPWR",
		[SIGSYS] = "SIGSYS",
	};
	if (signo <= 0 || (size_t)signo >= ARRAY_SIZE(full))
		return NULL;
	return full[signo];
}

int cli_exit_code(int wait_status)
{
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	/* Stopped/continued statuses are not final; treat as failure. */
	return 128;
}

const char *cli_status_name(int64_t runtime_state, bool paused)
{
	switch (runtime_state) {
	case RUNTIME_STATE_CREATING:
		return "created";
	case RUNTIME_STATE_RUNNING:
		return paused ? "paused" : "running";
	case RUNTIME_STATE_STOPPED:
		return "stopped";
	default:
		return "unknown";
	}
}

/* ---- paths and files ------------------------------------------------------ */

int cli_sandbox_dir(const char *id, char *out, size_t n, struct cv_error *err)
{
	/* An id is a path component below the root: never "..", never "a/b". */
	if (cli_validate_id(id, err) < 0)
		return -1;
	int k = snprintf(out, n, "%s/%s", cli_g.root, id);
	if (k < 0 || (size_t)k >= n)
		return cv_errf(err, ENAMETOOLONG, "sandbox directory %s/%s", cli_g.root, id);
	return 0;
}

int cli_sandbox_file(const char *id, const char *name, char *out, size_t n,
		     struct cv_error *err)
{
	if (cli_validate_id(id, err) < 0)
		return -1;
	int k = snprintf(out, n, "%s/%s/%s", cli_g.root, id, name);
	if (k < 0 || (size_t)k >= n)
		return cv_errf(err, ENAMETOOLONG, "path %s/%s/%s", cli_g.root, id, name);
	return 0;
}

void cli_now_rfc3339nano(char *out, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char date[40], frac[16] = "";
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts.tv_nsec) {
		snprintf(frac, sizeof(frac), ".%09ld", ts.tv_nsec);
		size_t l = strlen(frac);
		while (l > 1 && frac[l - 1] == '0')
			frac[--l] = '\0';
	}
	snprintf(out, n, "%s%sZ", date, frac);
}

#define CLI_READ_MAX (64u << 20)

int cli_read_file(const char *path, char **data, size_t *len, struct cv_error *err)
{
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "reading %s", path);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	int r = 0;
	for (;;) {
		if (!buf) {
			r = cv_errf(err, ENOMEM, "reading %s", path);
			break;
		}
		if (n + 1 >= cap) {
			if (cap >= CLI_READ_MAX) {
				r = cv_errf(err, EFBIG, "reading %s", path);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				r = cv_errf(err, ENOMEM, "reading %s", path);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = cv_errf(err, errno, "reading %s", path);
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (!is_stdin)
		close(fd);
	if (r < 0) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*data = buf; /* the caller owns it */
	if (len)
		*len = n;
	return 0;
}

int cli_parse_pid_flag(const char *arg, long *out)
{
	char *end;
	errno = 0;
	long pid = strtol(arg, &end, 10);
	if (errno || *end || end == arg || pid <= 0 || pid > INT32_MAX)
		return cli_failf("--pid must be a positive process ID, got \"%s\"", arg);
	*out = pid;
	return 0;
}

int cli_check_format(const char *format)
{
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
		return cli_failf("invalid format option \"%s\": expected table or json", format);
	return 0;
}

int cli_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int cli_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  struct cv_error *err)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= sizeof(tmp))
		return cv_errf(err, ENAMETOOLONG, "writing %s", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return cv_errf(err, errno, "writing %s", tmp);
	/* No fsync: these files describe running processes and live in /run
	 * (tmpfs) by default; the rename keeps readers from seeing a partial
	 * file, which is what matters (runc and crun do the same). An fsync
	 * here cost 2-5 ms per `cvisor run` on a disk-backed --root. */
	if (cli_write_all(fd, data, len) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return cv_errf(err, e, "writing %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return cv_errf(err, e, "renaming %s to %s", tmp, path);
	}
	return 0;
}

int cli_write_pid_file(const char *path, pid_t pid, struct cv_error *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	if (cli_write_file_atomic(path, buf, (size_t)n, 0644, err) < 0)
		return cv_error_wrap(err, "writing pid file");
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

int cli_json_parse(const char *text, size_t len, const char *what, json_object **out,
		   struct cv_error *err)
{
	if (len > INT_MAX)
		return cv_errf(err, EFBIG, "parsing %s", what);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return cv_errf(err, ENOMEM, "parsing %s", what);
	/* Strict: no trailing commas, single quotes or other extensions that
	 * Go's encoding/json (runc, podman) would refuse. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *j = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		/* The input ended inside a value. */
		json_tokener_free(tok);
		return cv_errf(err, 0, "parsing %s: unexpected end of JSON input", what);
	}
	if (!j && e == json_tokener_success) {
		/* The literal null: accept it as a value. */
		json_tokener_free(tok);
		*out = NULL;
		return 0;
	}
	if (e != json_tokener_success) {
		size_t off = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		return cv_errf(err, 0, "parsing %s: %s at offset %zu", what,
			       json_tokener_error_desc(e), off);
	}
	/* Only whitespace may follow the value. */
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (size_t i = end; i < len; i++) {
		if (!isspace((unsigned char)text[i])) {
			json_object_put(j);
			return cv_errf(err, 0, "parsing %s: unexpected data after the JSON value at offset %zu",
				       what, i);
		}
	}
	*out = j; /* the caller puts it */
	return 0;
}

int cli_json_read(const char *path, json_object **out, struct cv_error *err)
{
	char *text = NULL;
	size_t len = 0;
	if (cli_read_file(path, &text, &len, err) < 0)
		return -1;
	int r = cli_json_parse(text, len, strcmp(path, "-") == 0 ? "stdin" : path, out, err);
	free(text);
	return r;
}

/* Newline and indentation before an element (pretty only). */
static void indent(FILE *f, bool pretty, int level)
{
	if (!pretty)
		return;
	fputc('\n', f);
	for (int i = 0; i < level; i++)
		fputs("  ", f);
}

static void print_json(FILE *f, json_object *j, bool pretty, int level)
{
	json_type t = j ? json_object_get_type(j) : json_type_null;
	if (t == json_type_object && json_object_object_length(j) > 0) {
		fputc('{', f);
		int i = 0;
		json_object_object_foreach(j, key, val)
		{
			if (i++)
				fputc(',', f);
			indent(f, pretty, level + 1);
			cli_json_write_str(f, key, strlen(key));
			fputs(pretty ? ": " : ":", f);
			print_json(f, val, pretty, level + 1);
		}
		indent(f, pretty, level);
		fputc('}', f);
	} else if (t == json_type_array && json_object_array_length(j) > 0) {
		fputc('[', f);
		size_t n = json_object_array_length(j);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			indent(f, pretty, level + 1);
			print_json(f, json_object_array_get_idx(j, i), pretty, level + 1);
		}
		indent(f, pretty, level);
		fputc(']', f);
	} else if (t == json_type_string) {
		cli_json_write_str(f, json_object_get_string(j), (size_t)json_object_get_string_len(j));
	} else if (!j) {
		fputs("null", f);
	} else {
		/* Numbers, booleans, empty objects and arrays: nothing to escape. */
		fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE),
		      f);
	}
}

void cli_json_print(FILE *f, json_object *j, bool pretty)
{
	print_json(f, j, pretty, 0);
}

void cli_json_print_pretty(FILE *f, json_object *j)
{
	print_json(f, j, true, 0);
	fputc('\n', f);
}

json_object *cli_json_get(json_object *o, const char *key, json_type type)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !v || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *cli_json_str(json_object *o, const char *key)
{
	json_object *v = cli_json_get(o, key, json_type_string);
	return v ? json_object_get_string(v) : NULL;
}

int64_t cli_json_int(json_object *o, const char *key, int64_t def)
{
	json_object *v = cli_json_get(o, key, json_type_int);
	return v ? json_object_get_int64(v) : def;
}

bool cli_json_bool(json_object *o, const char *key, bool def)
{
	json_object *v = cli_json_get(o, key, json_type_boolean);
	return v ? json_object_get_boolean(v) : def;
}

/* ---- text a container or a bundle controls -------------------------------- */

/* One character of s as it must appear on a terminal: into piece (room for
 * 8), its length returned; *used = bytes of s consumed. */
static size_t escape_one(const unsigned char *s, size_t n, char *piece, size_t *used)
{
	uint32_t cp;
	size_t k = utf8_decode(s, n, &cp);
	if (k == 0) {
		*used = 1;
		return (size_t)snprintf(piece, 8, "\\x%02x", s[0]);
	}
	*used = k;
	switch (cp) {
	case '\t':
		return (size_t)snprintf(piece, 8, "\\t");
	case '\n':
		return (size_t)snprintf(piece, 8, "\\n");
	case '\r':
		return (size_t)snprintf(piece, 8, "\\r");
	case '\\':
		return (size_t)snprintf(piece, 8, "\\\\");
	default:
		break;
	}
	if (cp < 0x20 || cp == 0x7f)
		return (size_t)snprintf(piece, 8, "\\x%02x", (unsigned)cp);
	if (cp >= 0x80 && cp <= 0x9f)
		return (size_t)snprintf(piece, 8, "\\u%04x", (unsigned)cp);
	memcpy(piece, s, k);
	return k;
}

size_t cli_escape(const char *s, size_t n, char *out, size_t cap)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t need = 0, w = 0;
	bool full = false;
	for (size_t i = 0; i < n;) {
		char piece[8];
		size_t used;
		size_t len = escape_one(u + i, n - i, piece, &used);
		/* The output is a prefix of the whole: after the first piece
		 * that does not fit, none does. */
		if (!full && w + len < cap) {
			memcpy(out + w, piece, len);
			w += len;
		} else {
			full = true;
		}
		need += len;
		i += used;
	}
	if (cap > 0)
		out[w] = '\0';
	return need;
}

char *cli_escape_dup(const char *s)
{
	size_t n = strlen(s);
	size_t need = cli_escape(s, n, NULL, 0);
	char *out = malloc(need + 1);
	if (out)
		cli_escape(s, n, out, need + 1);
	return out; /* the caller frees it */
}

size_t cli_text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

void cli_json_write_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = utf8_decode(u + i, n - i, &cp);
		if (k == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		switch (cp) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
				fprintf(f, "\\u%04x", (unsigned)cp);
			else
				fwrite(s + i, 1, k, f);
		}
		i += k;
	}
	fputc('"', f);
}

/* ---- state.json ----------------------------------------------------------- */

int cli_state_load(const char *id, struct cli_state *st, struct cv_error *err)
{
	memset(st, 0, sizeof(*st));
	char path[PATH_MAX];
	if (cli_sandbox_file(id, "state.json", path, sizeof(path), err) < 0)
		return -1;
	json_object *j = NULL;
	if (cli_json_read(path, &j, err) < 0) {
		if (err && err->code == ENOENT) {
			cv_errf(err, 0, "container \"%s\" does not exist", id);
			err->code = ENOENT;
		}
		return -1;
	}
	if (!j || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return cv_errf(err, 0, "%s: expected a JSON object", path);
	}
	st->j = j; /* st owns it; the fields below point into it */
	st->id = cli_json_str(j, "id");
	st->bundle = cli_json_str(j, "bundle");
	st->rootfs = cli_json_str(j, "rootfs");
	st->created = cli_json_str(j, "created");
	st->cgroup_path = cli_json_str(j, "cgroupPath");
	st->systemd_unit = cli_json_str(j, "systemdUnit");
	st->pid = (pid_t)cli_json_int(j, "pid", 0);
	/* State files from before the pid contract have only "pid" (boot). */
	st->boot_pid = (pid_t)cli_json_int(j, "bootPid", st->pid);
	st->paused = cli_json_bool(j, "paused", false);
	st->annotations = cli_json_get(j, "annotations", json_type_object);
	if (!st->id)
		st->id = id;
	if (!st->bundle)
		st->bundle = "";
	if (!st->rootfs)
		st->rootfs = "";
	if (!st->created)
		st->created = "";
	return 0;
}

int cli_state_save(const char *id, json_object *j, struct cv_error *err)
{
	char path[PATH_MAX];
	if (cli_sandbox_file(id, "state.json", path, sizeof(path), err) < 0)
		return -1;
	const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	return cli_write_file_atomic(path, text, strlen(text), 0600, err);
}

void cli_state_free(struct cli_state *st)
{
	json_object_put(st->j);
	memset(st, 0, sizeof(*st));
}

/* ---- removal and liveness --------------------------------------------------- */

static int remove_errno;

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	int r = type == FTW_DP ? rmdir(path) : unlink(path);
	if (r < 0 && errno != ENOENT && !remove_errno)
		remove_errno = errno;
	return 0;
}

int cli_remove_tree(const char *path, struct cv_error *err)
{
	remove_errno = 0;
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return cv_errf(err, errno, "removing %s", path);
	if (remove_errno)
		return cv_errf(err, remove_errno, "removing %s", path);
	return 0;
}

/* A pod container's control.sock is "../<sid>/control.sock" (cmd/sub.c). */
bool sub_sandbox_of(const char *id, char *sid, size_t n)
{
	char path[PATH_MAX], link[PATH_MAX];
	if (cli_sandbox_file(id, "control.sock", path, sizeof(path), NULL) < 0)
		return false;
	ssize_t k = readlink(path, link, sizeof(link) - 1);
	if (k <= 0)
		return false;
	link[k] = '\0';
	/* "../<sid>/control.sock" */
	const char *pre = "../", *suf = "/control.sock";
	size_t l = (size_t)k, ls = strlen(suf);
	if (l <= 3 + ls || strncmp(link, pre, 3) != 0 || strcmp(link + l - ls, suf) != 0)
		return false;
	size_t m = l - 3 - ls;
	if (m >= n)
		return false;
	memcpy(sid, link + 3, m);
	sid[m] = '\0';
	return cli_validate_id(sid, NULL) == 0;
}

bool cli_boot_alive(pid_t pid, const char *id)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	char *text = NULL;
	size_t len = 0;
	if (cli_read_file(path, &text, &len, NULL) < 0)
		return false;
	/* argv is NUL-separated: look for a "boot" element and the id last. */
	bool has_boot = false;
	const char *last = NULL;
	for (size_t off = 0; off < len; off += strlen(text + off) + 1) {
		if (strcmp(text + off, "boot") == 0)
			has_boot = true;
		last = text + off;
	}
	bool ok = has_boot && last && strcmp(last, id) == 0;
	/* A subcontainer's boot is its sandbox's (cmd/sub.c). */
	char sid[CLI_ID_MAX + 1];
	if (!ok && has_boot && last && sub_sandbox_of(id, sid, sizeof(sid)))
		ok = strcmp(last, sid) == 0;
	free(text);
	return ok;
}
