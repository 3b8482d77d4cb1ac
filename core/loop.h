#pragma once
/* The process's one libev loop. Made with ev_loop_new(), never
 * ev_default_loop(): the default loop reaps every child with waitpid(-1)
 * and steals exit statuses from pidfd waiters (waitid(P_PIDFD) then fails
 * with ECHILD). */
#include <ev.h>

#include "core/err.h"

int core_loop_init(struct cv_error *err);
struct ev_loop *core_loop(void);
void core_loop_destroy(void);
