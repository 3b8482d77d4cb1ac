/* `cvisor state ID` and `cvisor list`: the OCI state of sandboxes. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/conn.h"
#include "cmd/verbs.h"
#include "core/passwd.h"

/* Most bytes of /etc/passwd read for owner names. */
#define STATE_PASSWD_MAX (4u << 20)

/* The user name of uid from /etc/passwd, else "#uid" (core/passwd.h says
 * why by hand). */
static void owner_name(uid_t uid, char *out, size_t n)
{
	snprintf(out, n, "#%u", (unsigned)uid);
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return;
	char *text = malloc(STATE_PASSWD_MAX + 1);
	if (text) {
		size_t len = fread(text, 1, STATE_PASSWD_MAX, f);
		text[len] = '\0';
		char *field[PASSWD_NFIELDS];
		if (passwd_find_uid(text, (uint32_t)uid, field))
			snprintf(out, n, "%s", field[PASSWD_NAME]);
		free(text);
	}
	fclose(f);
}

/* The OCI state object, runc's key order. The caller puts it. */
static json_object *state_object(const struct cli_state *st, int64_t state, const char *status,
				 const char *owner)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "ociVersion", json_object_new_string(CLI_OCI_VERSION));
	json_object_object_add(j, "id", json_object_new_string(st->id));
	json_object_object_add(j, "pid", json_object_new_int64(state == RUNTIME_STATE_STOPPED ? 0 : st->pid));
	json_object_object_add(j, "status", json_object_new_string(status));
	json_object_object_add(j, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(j, "rootfs", json_object_new_string(st->rootfs));
	json_object_object_add(j, "created", json_object_new_string(st->created));
	json_object_object_add(j, "owner", json_object_new_string(owner));
	if (st->annotations && json_object_object_length(st->annotations) > 0)
		json_object_object_add(j, "annotations", json_object_get(st->annotations));
	return j;
}

int cmd_state(const struct cli_command *cmd, int argc, char **argv)
{
	int done = cli_no_flags(cmd, argc, argv);
	if (done >= 0)
		return done;
	if (optind + 1 != argc)
		return cli_failf("state needs exactly one container ID");
	const char *id = argv[optind];
	struct cv_error err = { 0 };
	if (cli_validate_id(id, &err) < 0)
		return cli_fail(&err);
	struct cli_state st;
	int64_t state;
	const char *status;
	if (cli_status(id, &st, &state, &status, &err) < 0)
		return cli_fail(&err);
	json_object *j = state_object(&st, state, status, "");
	cli_json_print_pretty(stdout, j);
	json_object_put(j);
	cli_state_free(&st);
	return 0;
}

struct row {
	char *id, *pid, *status, *bundle, *created, *owner;
};

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->id, ((const struct row *)b)->id);
}

static int json_cmp(const void *a, const void *b)
{
	const char *x = cli_json_str(*(json_object *const *)a, "id");
	const char *y = cli_json_str(*(json_object *const *)b, "id");
	return strcmp(x ? x : "", y ? y : "");
}

/* Prints cells like Go's tabwriter(minwidth 12, padding 3): every column
 * but the last is padded to max(12, widest + 3) columns. The cells are
 * escaped (cli_escape) when the rows are made. */
static void print_table(struct row *rows, size_t n)
{
	static const char *const head[] = { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" };
	size_t w[5];
	for (int k = 0; k < 5; k++) {
		size_t m = strlen(head[k]);
		for (size_t i = 0; i < n; i++) {
			const char *cells[] = { rows[i].id, rows[i].pid, rows[i].status, rows[i].bundle,
						rows[i].created };
			if (cli_text_width(cells[k]) > m)
				m = cli_text_width(cells[k]);
		}
		w[k] = m + 3 > 12 ? m + 3 : 12;
	}
	for (size_t i = 0; i <= n; i++) {
		const char *cells[6];
		if (i == 0)
			memcpy(cells, head, sizeof(cells));
		else {
			const struct row *r = &rows[i - 1];
			const char *tmp[6] = { r->id, r->pid, r->status, r->bundle, r->created, r->owner };
			memcpy(cells, tmp, sizeof(cells));
		}
		for (int k = 0; k < 5; k++)
			printf("%s%*s", cells[k], (int)(w[k] - cli_text_width(cells[k])), "");
		printf("%s\n", cells[5]);
	}
}

int cmd_list(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, 0, 'f' },
		{ "quiet", no_argument, 0, 'q' },
		CLI_OPT_HELP,
		{ 0, 0, 0, 0 },
	};
	const char *format = "table";
	bool quiet = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			format = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			return cli_usage(cmd);
		default:
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	int fr = cli_check_format(format);
	if (fr != 0)
		return fr;
	if (optind != argc)
		return cli_failf("list takes no arguments");

	json_object *arr = json_object_new_array();
	struct row *rows = NULL;
	size_t n = 0;
	DIR *d = opendir(cli_g.root);
	if (!d && errno != ENOENT) {
		json_object_put(arr);
		return cli_failf("listing %s: %s", cli_g.root, strerror(errno));
	}
	for (struct dirent *e; d && (e = readdir(d));) {
		struct cv_error err = { 0 };
		if (e->d_name[0] == '.' || cli_validate_id(e->d_name, &err) < 0)
			continue;
		char dir[PATH_MAX];
		struct stat sb;
		if (cli_sandbox_dir(e->d_name, dir, sizeof(dir), &err) < 0 || stat(dir, &sb) < 0 ||
		    !S_ISDIR(sb.st_mode))
			continue;
		struct cli_state st;
		int64_t state = 0;
		const char *status = "unknown";
		if (cli_status_within(e->d_name, CLI_LIST_TIMEOUT_MS, &st, &state, &status, &err) <
		    0) {
			/* Alive but unreachable or stuck (did not answer within
			 * CLI_LIST_TIMEOUT_MS): list it as "unknown" with what
			 * state.json says, and go on with the others. The user
			 * can still `delete --force` it. */
			if (cli_state_load(e->d_name, &st, &err) < 0)
				continue;
			status = "unknown";
		}
		char owner[64];
		owner_name(sb.st_uid, owner, sizeof(owner));
		json_object_array_add(arr, state_object(&st, state, status, owner));
		struct row *nr = realloc(rows, (n + 1) * sizeof(*rows));
		if (nr) {
			rows = nr;
			struct row *r = &rows[n++];
			/* state.json's strings come from the bundle: escaped. */
			r->id = cli_escape_dup(st.id);
			if (asprintf(&r->pid, "%d", state == RUNTIME_STATE_STOPPED ? 0 : (int)st.pid) < 0)
				r->pid = NULL;
			r->status = strdup(status);
			r->bundle = cli_escape_dup(st.bundle);
			r->created = cli_escape_dup(st.created);
			r->owner = cli_escape_dup(owner);
			if (!r->id || !r->pid || !r->status || !r->bundle || !r->created || !r->owner) {
				free(r->id), free(r->pid), free(r->status), free(r->bundle),
					free(r->created), free(r->owner);
				n--;
			}
		}
		cli_state_free(&st);
	}
	if (d)
		closedir(d);
	if (rows)
		qsort(rows, n, sizeof(*rows), row_cmp);
	json_object_array_sort(arr, json_cmp);
	if (quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", rows[i].id);
	} else if (strcmp(format, "json") == 0) {
		/* runc prints null for an empty list; an array is friendlier. */
		cli_json_print(stdout, arr, false);
		putchar('\n');
	} else {
		print_table(rows, n);
	}
	for (size_t i = 0; i < n; i++) {
		free(rows[i].id), free(rows[i].pid), free(rows[i].status), free(rows[i].bundle),
			free(rows[i].created), free(rows[i].owner);
	}
	free(rows);
	json_object_put(arr);
	return 0;
}
