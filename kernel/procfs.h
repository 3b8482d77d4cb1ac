#pragma once
/* Reading /proc/<pid>/stat (host view) for the sandbox's own processes. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* Reads a small /proc file whole (at most n - 1 bytes) into buf, NUL
 * terminated; *len (if not NULL) gets its length. -1 with err naming the
 * path if it cannot be opened. */
int procfs_read_text(const char *path, char *buf, size_t n, size_t *len, struct cv_error *err);

/* The number after key ("CapEff:", "SigCgt:", ...) in the text of a
 * /proc status file, in base (16 for the masks). -1 if key is missing. */
int procfs_status_field(const char *status, const char *key, int base, uint64_t *out);

struct proc_stat {
	char comm[64];
	char state;
	pid_t ppid, pgrp, session, tpgid; /* host PIDs */
	int tty_nr;
	unsigned long long utime, stime, starttime; /* clock ticks */
	int exit_code; /* field 52: the wait status a zombie leaves; -1 if not shown */
};

/* -1 if the process is gone or the file cannot be parsed. */
int procfs_read_stat(pid_t pid, struct proc_stat *out);

#define PROCFS_NSPID_MAX 32

struct proc_status {
	uint32_t euid;
	pid_t nspid[PROCFS_NSPID_MAX]; /* NSpid: the PID in each namespace, outermost first */
	int n_nspid;                   /* -1 when the line is missing */
};

/* Uid and NSpid of /proc/<pid>/status (pid 0: /proc/self), in one read:
 * a listing of thousands of processes reads each file once. -1 if the
 * process is gone. */
int procfs_read_status(pid_t pid, struct proc_status *out);

/* One interface of /proc/<pid>/net/dev: the counters runc's stats report. */
struct proc_netdev {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};
#define PROCFS_NETDEV_MAX 64

/* The interfaces of pid's network namespace but the loopback, at most
 * PROCFS_NETDEV_MAX (more are left out). The file is the kernel's, not the
 * container's. -1 if the process is gone or the file cannot be parsed. */
int procfs_read_netdev(pid_t pid, struct proc_netdev *out, size_t *n);
