#pragma once
/* spec.mounts[].options: the one table of the options cvisor understands
 * (runc's set), parsed into what the mount code applies, and listed by
 * `cvisor features`. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define MOUNT_OPTS_MAX_PROPAGATION 8

struct mount_opts {
	unsigned long flags;        /* MS_* for mount(2); MS_BIND with bind/rbind */
	bool recursive_bind;        /* rbind */
	unsigned long propagation[MOUNT_OPTS_MAX_PROPAGATION]; /* MS_SHARED... (| MS_REC), in order */
	size_t n_propagation;
	uint64_t rec_set, rec_clr;  /* MOUNT_ATTR_* for mount_setattr(AT_RECURSIVE): rro... */
	bool tmpcopyup;             /* copy the image's directory into the new tmpfs */
	char data[1024];            /* the rest, for the filesystem: "mode=755,size=1m" */
};

/* Parses one mount's options. Unknown options go to data, as runc does
 * (the filesystem refuses what it does not know); idmap and ridmap are
 * refused. field names the mount in errors ("spec.mounts[2] (/x)"). */
int mount_opts_parse(char *const *opts, size_t n, const char *field, struct mount_opts *out,
		     struct cv_error *err);

/* The MS_* flag of a propagation name ("rprivate"), 0 if it is none. */
unsigned long mount_opts_propagation(const char *name);

/* The i-th option name of the table (every option mount_opts_parse
 * handles itself), NULL past the end. */
const char *mount_opts_name(size_t i);
