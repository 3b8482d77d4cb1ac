#pragma once
/* The control methods the sandbox serves (docs/DESIGN.md, "The control protocol"). */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rpc/server.h"

const struct rpc_method *methods_table(void);
size_t methods_count(void);

/* Handlers, one file per job. */
void cm_start_root(struct rpc_call *call, const msgpack_object *arg);
void cm_runtime_state(struct rpc_call *call, const msgpack_object *arg);
void cm_execute_async(struct rpc_call *call, const msgpack_object *arg);
void cm_wait(struct rpc_call *call, const msgpack_object *arg);
void cm_wait_pid(struct rpc_call *call, const msgpack_object *arg);
void cm_signal(struct rpc_call *call, const msgpack_object *arg);
void cm_processes(struct rpc_call *call, const msgpack_object *arg);
void lifecycle_pause(struct rpc_call *call, const msgpack_object *arg);
void lifecycle_resume(struct rpc_call *call, const msgpack_object *arg);
void metrics_get_registered(struct rpc_call *call, const msgpack_object *arg);
void metrics_export(struct rpc_call *call, const msgpack_object *arg);
void logging_change(struct rpc_call *call, const msgpack_object *arg);
void debug_stacks(struct rpc_call *call, const msgpack_object *arg);
void cm_procfs_dump(struct rpc_call *call, const msgpack_object *arg);
void profile_cpu(struct rpc_call *call, const msgpack_object *arg);
void profile_trace(struct rpc_call *call, const msgpack_object *arg);
void profile_heap(struct rpc_call *call, const msgpack_object *arg);
void profile_block(struct rpc_call *call, const msgpack_object *arg);
void profile_mutex(struct rpc_call *call, const msgpack_object *arg);
void cgroups_read_control_files(struct rpc_call *call, const msgpack_object *arg);
void cgroups_write_control_files(struct rpc_call *call, const msgpack_object *arg);
void usage_collect(struct rpc_call *call, const msgpack_object *arg);
void usage_fd(struct rpc_call *call, const msgpack_object *arg);
void cm_event(struct rpc_call *call, const msgpack_object *arg);
void cm_create_subcontainer(struct rpc_call *call, const msgpack_object *arg);
void cm_start_subcontainer(struct rpc_call *call, const msgpack_object *arg);
void cm_release_subcontainer(struct rpc_call *call, const msgpack_object *arg);
void cm_destroy_subcontainer(struct rpc_call *call, const msgpack_object *arg);
void network_create_links(struct rpc_call *call, const msgpack_object *arg);
void cm_port_forward(struct rpc_call *call, const msgpack_object *arg);
/* Port forwards (kernel/port_forward.c): at most PF_MAX_STREAMS at once,
 * connecting or relaying; a connect may take PF_CONNECT_TIMEOUT_S. */
#define PF_MAX_STREAMS 128
#define PF_CONNECT_TIMEOUT_S 10.
#define PF_CONNECT_TIMEOUT_TEXT "10 s"
unsigned port_forward_streams(void);
/* Ends every forward (sandbox teardown). */
void port_forward_shutdown(void);
/* debug.Stacks' lines for the forwards (nothing when there is none). */
void port_forward_describe(FILE *out);
/* Stops the usage memfd's timer, unmaps and closes it (sandbox teardown). */
void usage_shutdown(void);
/* debug.Stacks' line for the usage memfd's timer (nothing before the first UsageFD). */
void usage_describe(FILE *out);
/* containerManager.Checkpoint (kernel/checkpoint.c). */
void cm_checkpoint(struct rpc_call *call, const msgpack_object *arg);
/* True once a checkpoint without Resume ended the sandbox: the root
 * init's exit then reads as status 0, as runsc reports it. */
bool checkpoint_ended_sandbox(void);
/* containerManager.Restore (kernel/restore.c). */
void cm_restore(struct rpc_call *call, const msgpack_object *arg);
