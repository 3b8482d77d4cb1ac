#pragma once
/* The thread of a restore that checks its whole state file (the LZ4 block
 * and content checksums, the record framing, kinds, fields and counts:
 * everything state/reader.c checks) while the restore helper's main thread
 * already rebuilds the processes from a reading that skips the checksums.
 * The rebuilt processes are let run only once it says the file is whole
 * (kernel/restore_helper.c). */
#include <stdbool.h>

#include "core/err.h"

struct restore_check;

/* Starts reading fd (the caller's; it must outlive the check) in a new
 * thread with a reader of its own (positioned reads: the fd's offset is
 * not shared). NULL with err set if it could not start. */
struct restore_check *restore_check_start(int fd, struct cv_error *err);
/* Whether the check has already ended with a refusal (never blocks): a
 * refusal known before the init's release is made before it. */
bool restore_check_refused(const struct restore_check *c);
/* Waits for the check to end and frees it: 0 if the whole file is whole,
 * else -1 with the reader's error. */
int restore_check_finish(struct restore_check *c, struct cv_error *err);
