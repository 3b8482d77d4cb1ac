/* `cvisor statefile`: reads a state file (docs/STATEFILE.md) without a
 * sandbox. --list prints its metadata as JSON, --get KEY one value of it,
 * --verify reads the whole stream (every checksum, record and count) and
 * prints what it holds. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/verbs.h"
#include "state/state.h"

struct verify {
	uint64_t kinds[SF_KIND_COUNT];
	uint64_t records, data_bytes;
};

static int verify_event(void *opaque, const struct sf_event *ev, struct cv_error *err)
{
	struct verify *v = opaque;
	(void)err;
	if (ev->type == SF_EV_RECORD)
		v->kinds[ev->kind]++;
	if (ev->type == SF_EV_END) {
		v->records = ev->records;
		v->data_bytes = ev->data_bytes;
	}
	return 0;
}

static int verify(int fd, struct cv_error *err)
{
	struct verify v = { 0 };
	if (sf_read_fd(fd, verify_event, &v, err) < 0)
		return -1;
	off_t size = lseek(fd, 0, SEEK_CUR);
	printf("{\"ok\":true,\"records\":%" PRIu64 ",\"data_bytes\":%" PRIu64 ",\"file_bytes\":%lld,\"kinds\":{",
	       v.records, v.data_bytes, (long long)size);
	bool first = true;
	for (int k = 0; k < SF_KIND_END; k++) {
		if (!v.kinds[k])
			continue;
		printf("%s\"%s\":%" PRIu64, first ? "" : ",", sf_kind_name(k), v.kinds[k]);
		first = false;
	}
	printf("}}\n");
	return 0;
}

static int list(int fd, const char *key, struct cv_error *err)
{
	msgpack_zone *zone;
	const msgpack_object *meta;
	if (sf_read_meta_fd(fd, &zone, &meta, err) < 0)
		return -1;
	int rc = 0;
	if (!key) {
		cli_mp_json(stdout, meta);
		fputc('\n', stdout);
	} else {
		const msgpack_object *v = NULL;
		size_t kl = strlen(key);
		for (uint32_t i = 0; i < meta->via.map.size; i++) {
			const msgpack_object *k = &meta->via.map.ptr[i].key;
			if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
			    memcmp(k->via.str.ptr, key, kl) == 0)
				v = &meta->via.map.ptr[i].val;
		}
		if (!v)
			rc = cv_errf(err, 0, "metadata key \"%s\" not found", key);
		else if (v->type == MSGPACK_OBJECT_STR) /* raw, as runsc statefile --get prints it */
			printf("%.*s\n", (int)v->via.str.size, v->via.str.ptr);
		else {
			cli_mp_json(stdout, v);
			fputc('\n', stdout);
		}
	}
	msgpack_zone_free(zone);
	return rc;
}

/* `cvisor statefile --list|--get KEY|--verify FILE`. */
int cmd_statefile(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_OPT_HELP,
					      { "list", no_argument, 0, 'l' },
					      { "get", required_argument, 0, 'g' },
					      { "verify", no_argument, 0, 'v' },
					      { 0, 0, 0, 0 } };
	int mode = 0, c;
	const char *key = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_usage(cmd);
		if (c == 'l' || c == 'v' || c == 'g') {
			if (mode && mode != c)
				return cli_failf("%s: --list, --get and --verify exclude each other",
						 cmd->name);
			mode = c;
			if (c == 'g')
				key = optarg;
		} else {
			return cli_bad_flag(cmd, argc, argv);
		}
	}
	if (!mode)
		return cli_failf("%s: one of --list, --get KEY or --verify is required", cmd->name);
	if (optind + 1 != argc)
		return cli_failf("%s needs exactly one FILE", cmd->name);
	const char *path = argv[optind];
	struct cv_error err = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cv_errf(&err, errno, "open %s", path);
		return cli_fail(&err);
	}
	int r = mode == 'v' ? verify(fd, &err) : list(fd, key, &err);
	close(fd);
	if (r == 0 && fflush(stdout) != 0)
		r = cv_errf(&err, errno, "writing the output");
	if (r < 0) {
		cv_error_wrap(&err, "%s", path);
		return cli_fail(&err);
	}
	return 0;
}
