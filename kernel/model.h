#pragma once
/* The sandbox's model of its containers and tasks (docs/DESIGN.md, "The
 * reactor" and "The sandbox model").
 *
 * Ownership: the sandbox owns its containers (list), a container owns its
 * tasks (list) and its spec zone; a task owns its pidfd and report fd. A
 * task is freed by task_release_if_done() once it has exited, nobody waits
 * on it and the exec registry no longer holds it. */
#include <ev.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/cont.h"
#include "core/err.h"
#include "core/list.h"
#include "core/spec.h"
#include "kernel/cgroup.h"
#include "kernel/runtime_state.h"
#include "kernel/spawn.h"
#include "kernel/spawner.h"

struct rpc_server;
struct sandbox;
struct container;

enum task_state {
	TASK_CREATED,  /* init set up, waiting for the release byte */
	TASK_STARTING, /* released / spawned, waiting for the exec handshake */
	TASK_RUNNING,  /* execve succeeded */
	TASK_EXITED,   /* reaped; status valid */
};

struct task {
	struct list_node link; /* container->tasks */
	struct container *c;
	pid_t host_pid;
	pid_t ns_pid;          /* PID in the sandbox root PID namespace */
	int pidfd;             /* -1 once reaped */
	ev_io pid_w;
	int ctl_fd;            /* spawn report channel, -1 once done */
	ev_io ctl_w;
	enum task_state state;
	int status;            /* wait status once TASK_EXITED */
	int refs;              /* parked calls that will read this task */
	bool is_init;
	bool foreign_parent;   /* not boot's child (CLONE_PARENT): exit_source gives the status */
	bool spawning;         /* exec: waiting for or running its intermediate; host_pid and
				* pidfd not known yet */
	struct spawner_req spawn_req; /* queued while no intermediate is spare */
	struct spawn_pending spawn;   /* once handed to an intermediate */
	ev_io spawn_w;         /* the intermediate's pidfd (active once handed over) */
	bool status_unknown;   /* exited, but the status could not be learned (exit_err says why) */
	ev_timer exit_retry_w; /* the status is not readable yet: ask again */
	int exit_retries;
	bool in_registry;      /* exec registry: WaitPID consumes it */
	uint64_t exit_seq;     /* order of exit, to forget the oldest un-waited entries */
	bool start_failed;
	bool has_tty;
	bool ready;            /* init: SPAWN_READY seen (waits for the release byte) */
	int seccomp_base;      /* init: its seccomp filters when it execs (ckpt_seccomp_base,
				* read at its release; -1 unknown): checkpoint refuses more */
	char *start_err;       /* set with start_failed (malloc'd; NULL when out of memory) */
	char *exit_err;        /* set with status_unknown */
	struct waitq started;  /* StartRoot / ExecuteAsync: exec handshake done */
	struct waitq exited;   /* Wait / WaitPID */
};

struct container {
	struct list_node link; /* sandbox->containers */
	struct sandbox *sb;
	char *id;
	msgpack_zone *zone;    /* holds the spec */
	struct oci_spec spec;
	struct cgroup cg;      /* linux.cgroupsPath itself (kernel/cgroup.h) */
	bool cg_made;
	/* --systemd-cgroup: systemd accepted the scope's start job (the unit
	 * is this container's); stopped when the sandbox ends (h-sysd). */
	bool scope_started;
	int ns_flags;          /* CLONE_NEW* created for it */
	int join_flags;        /* every namespace of its own, created or joined by path */
	struct task *init;
	struct list_head tasks; /* every task but init */
	struct spawner spawner; /* forks its exec intermediates (started at the first exec) */
	/* Subcontainers (kernel/subcontainer.c): registered by
	 * CreateSubcontainer, init spawned by StartSubcontainer. */
	bool is_sub;
	int tty_fd;            /* -1, or the pty replica given at create (owned) */
	bool destroying;       /* DestroySubcontainer in progress */
	bool sub_failed;       /* StartSubcontainer failed before an init existed */
	int gofer_fd;          /* -1, or the gofer connection watched for hang-up (owned) */
	ev_io gofer_w;
};

struct sandbox {
	char *id;
	char *bundle;
	struct container *root;
	struct list_head containers;
	struct rpc_server *rpc;
	int sigfd;
	ev_io sig_w;
	ev_timer drain_w;      /* after the root init ended: flush replies, then stop */
	struct cont drain_k;   /* first drain check, after the woken waiters ran */
	int drain_ticks;
	bool ended;
	bool started;          /* StartRoot accepted */
	int pause_count;
	int root_ns_index;     /* index into NSpid of the sandbox root PID namespace */
	int net_mode;          /* enum net_mode (kernel/network_mode.h) */
	int net_kind;          /* enum net_kind, known once the root init is set up */
	int netns_fd;          /* the sandbox's network namespace; -1 when it is the host's */
};

/* container.c */
struct container *sandbox_find_container(struct sandbox *sb, const char *id);
struct container *container_new(struct sandbox *sb, const char *id, msgpack_zone *zone,
				struct cv_error *err);
void container_free(struct container *c);
/* What ContainerRuntimeState answers; an unknown container (NULL) is
 * stopped (docs/API.md). */
enum runtime_state container_runtime_state(const struct container *c);

/* task.c */
struct task *task_new(struct container *c, pid_t host_pid, int pidfd, int ctl_fd, bool is_init);
/* Starts watching the pidfd (exit) and the report fd (exec handshake). */
void task_watch(struct task *t);
/* Starts an exec in c: a new task, handed to the container's spawner
 * (kernel/spawner.h). When its intermediate has exited the task learns
 * the process's pid and watches it like task_watch; a spawn that fails
 * ends the task as start_failed, waking `started`. NULL with err when the
 * exec cannot even be queued (nothing is left behind). */
struct task *task_new_exec(struct container *c, const struct spawn_exec_args *a,
			   struct cv_error *err);
struct task *container_find_task(struct container *c, pid_t ns_pid, bool registry_only);
void task_release_if_done(struct task *t);
/* A parked call holds a reference so the task outlives the wake-up. */
static inline void task_ref(struct task *t) { t->refs++; }
void task_unref(struct task *t);
void task_free(struct task *t);
/* Why t failed to start, for a reply (never NULL once start_failed). */
const char *task_start_err(const struct task *t);
/* Exited execs nobody waited for that the registry keeps per container;
 * older ones are forgotten (runsc's process table is bounded the same way). */
#define TASK_REGISTRY_KEEP_EXITED 1024
/* Puts a new exec in the registry; an older entry with the same pid (the
 * pid was reused) is dropped so WaitPID never reports a stale status. */
void task_registry_add(struct task *t);
/* Whether ns_pid of c was an exec forgotten by the bound above (and not
 * reused since): WaitPID says so instead of "no such process". Remembers
 * the last TASK_FORGOTTEN_MAX such pids of all containers. */
#define TASK_FORGOTTEN_MAX 4096
bool task_was_forgotten(const struct container *c, pid_t ns_pid);
/* Called by task.c when the root init ended (sandbox.c). */
void sandbox_root_exited(struct sandbox *sb, int status);

/* pidns.c: PIDs in the sandbox root PID namespace. */
int pidns_init(struct sandbox *sb, struct cv_error *err);
/* The root pid namespace is the one host_pid (the root init) lives in. */
int pidns_init_from(struct sandbox *sb, pid_t host_pid, struct cv_error *err);
/* -1 if the process is gone or not in the sandbox's namespace. */
pid_t pidns_to_root(const struct sandbox *sb, pid_t host_pid);
/* Finding a process by root-namespace PID walks every process: it runs
 * in slices with the call parked (pidns_find_start, kernel/pidns.h). */

/* Wait status → uint32 as the seed returns it. */
int wait_status_from_siginfo(const siginfo_t *si);
