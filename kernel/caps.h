#pragma once
/* Capability names ("CAP_NET_ADMIN") ↔ numbers, and applying the five sets. */
#include <stdint.h>

#include "core/err.h"
#include "core/spec.h"

struct cap_sets {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

int caps_from_name(const char *name, int *cap); /* -1 if unknown */
const char *caps_name(int cap);                 /* NULL if unknown */
int caps_last_cap(void);                        /* /proc/sys/kernel/cap_last_cap */
/* "spec.process.capabilities.bounding: unknown capability \"CAP_FOO\"" */
int caps_from_spec(const struct oci_capabilities *c, struct cap_sets *out, struct cv_error *err);
/* All caps up to cap_last_cap. */
uint64_t caps_all(void);
/* In the child, after the uid switch (with PR_SET_KEEPCAPS set before it):
 * drop the bounding set, capset effective/permitted/inheritable, raise ambient. */
int caps_apply(const struct cap_sets *s, struct cv_error *err);
