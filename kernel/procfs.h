#pragma once
/* Reading /proc/<pid>/stat (host view) for the sandbox's own processes. */
#include <sys/types.h>

struct proc_stat {
	char comm[64];
	char state;
	pid_t ppid, pgrp, session, tpgid; /* host PIDs */
	int tty_nr;
	unsigned long long utime, stime, starttime; /* clock ticks */
};

/* -1 if the process is gone or the file cannot be parsed. */
int procfs_read_stat(pid_t pid, struct proc_stat *out);
