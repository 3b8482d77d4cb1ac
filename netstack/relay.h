#pragma once
/* A byte relay between two connected stream sockets on the reactor
 * (docs/DESIGN.md, "Network"): each direction splices from its source
 * into a pipe and from the pipe into its destination, without copying
 * through user space. Backpressure: a direction stops reading while its
 * pipe holds bytes its destination cannot take. Half-close: a source at
 * EOF, once its pipe is drained, becomes shutdown(SHUT_WR) on the
 * destination. The relay ends when both directions ended, or at the first
 * error of either; `done` then runs from the loop (never inside a watcher
 * of the relay) and the owner frees the relay there. Knows no container. */
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

struct relay;
typedef void (*relay_done_fn)(struct relay *r, void *data);

/* Bytes a direction's pipe holds (F_SETPIPE_SZ; the kernel's default of
 * 64 KiB costs a wake-up per 64 KiB). */
#define RELAY_PIPE_SIZE (1 << 20)

/* Takes ownership of a and b (connected stream sockets; made non-blocking
 * here) even on failure. */
struct relay *relay_new(int a, int b, relay_done_fn done, void *data, struct cv_error *err);
/* Stops the relay if it still runs and closes both sockets and pipes. */
void relay_free(struct relay *r);
/* Bytes moved a → b and b → a so far. */
void relay_bytes(const struct relay *r, uint64_t *a_to_b, uint64_t *b_to_a);
/* One line per direction for debug.Stacks: bytes moved, bytes in its pipe,
 * what it waits for and its watchers; a and b name the two sockets. */
void relay_describe(const struct relay *r, FILE *out, const char *indent, const char *a,
		    const char *b);
