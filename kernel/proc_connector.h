#pragma once
/* The kernel's process-event connector (NETLINK_CONNECTOR, CN_IDX_PROC):
 * fork, exec and exit of every process on the host. Shared by the exit
 * statuses of kernel/exit_source.c and the trace points of
 * kernel/seccheck_proc.c, each with its own socket. */
#include <linux/cn_proc.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* A non-blocking, close-on-exec socket subscribed to process events,
 * with a receive buffer of rcvbuf bytes (forced when boot may). */
int proc_connector_open(int rcvbuf, struct cv_error *err);

typedef void (*proc_event_fn)(const struct proc_event *ev, void *ctx);
/* Reads at most max datagrams (0: until EAGAIN) and calls fn for each
 * event. *lost turns true when the queue overflowed (events are gone).
 * Returns true when it stopped at max with more possibly waiting. */
bool proc_connector_drain(int fd, size_t max, proc_event_fn fn, void *ctx, bool *lost);
