#pragma once
/* Exit statuses of processes boot is not the parent of (the pid contract:
 * docs/DESIGN.md, "Processes and pids"): a container init is spawned with CLONE_PARENT, so it is the
 * child of boot's parent (the `create`/`run` CLI, then the engine's
 * subreaper), which reaps it. Boot still needs its wait status for Wait,
 * for the sandbox's own exit status and for `cvisor wait`.
 *
 * Two sources, chosen once per boot by exit_source_init():
 *  - pidfd (Linux 6.15+): the pidfd turns readable when the process exits;
 *    ioctl(PIDFD_GET_INFO, PIDFD_INFO_EXIT) gives the status once the
 *    parent reaped it. Until then the process is a zombie that still holds
 *    its pid, and the status is the exit_code field of /proc/<pid>/stat;
 *    asking PIDFD_GET_INFO again afterwards proves the zombie was still
 *    ours when it was read.
 *  - the kernel's process-event connector (older kernels, or forced with
 *    CVISOR_EXIT_SOURCE=proc-connector in boot's environment): exit events
 *    carry the status; boot keeps the ones of the pids it watches. A
 *    receive-queue overflow loses events, and a status that was lost is
 *    reported as such, never guessed.
 * Nothing here blocks: the netlink socket is non-blocking and drained
 * from the reactor. */
#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

enum exit_source_kind { EXIT_SOURCE_PIDFD, EXIT_SOURCE_PROC_CONNECTOR };

/* Picks the source (probing PIDFD_GET_INFO) and, for the connector, opens
 * and subscribes its socket and starts watching it on the core loop. */
int exit_source_init(struct cv_error *err);
void exit_source_close(void);
enum exit_source_kind exit_source_kind(void);
const char *exit_source_name(void);

/* Starts / stops recording pid's exit (connector only; no-ops otherwise). */
int exit_source_watch(pid_t pid, struct cv_error *err);
void exit_source_unwatch(pid_t pid);

/* Called when pidfd (of host pid `pid`) became readable. Returns 1 with
 * *wstatus (as waitpid reports it), 0 if the status is not known yet (try
 * again shortly), or -1 with err when it cannot be known. */
int exit_source_status(int pidfd, pid_t pid, int *wstatus, struct cv_error *err);
