/* /proc/<pid>/stat parsing (kernel/procfs.h). */
#include "kernel/procfs.h"

#include <stdio.h>
#include <string.h>

int procfs_read_stat(pid_t pid, struct proc_stat *out)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: it ends at the last ')'. */
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return -1;
	size_t cl = (size_t)(r - l - 1);
	if (cl >= sizeof(out->comm))
		cl = sizeof(out->comm) - 1;
	memcpy(out->comm, l + 1, cl);
	out->comm[cl] = '\0';
	int ppid, pgrp, session, tty_nr, tpgid;
	/* Fields 3.. : state ppid pgrp session tty_nr tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice num_threads
	 * itrealvalue starttime */
	if (sscanf(r + 2, "%c %d %d %d %d %d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
		   &out->state, &ppid, &pgrp, &session, &tty_nr, &tpgid, &out->utime, &out->stime,
		   &out->starttime) != 9)
		return -1;
	out->ppid = ppid;
	out->pgrp = pgrp;
	out->session = session;
	out->tty_nr = tty_nr;
	out->tpgid = tpgid;
	return 0;
}
