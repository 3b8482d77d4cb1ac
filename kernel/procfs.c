/* /proc/<pid>/stat parsing (kernel/procfs.h). */
#include "kernel/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procfs_read_text(const char *path, char *buf, size_t n, size_t *len, struct cv_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errno, "open %s", path);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	if (len)
		*len = got;
	return 0;
}

int procfs_status_field(const char *status, const char *key, int base, uint64_t *out)
{
	const char *s = strstr(status, key);
	if (!s)
		return -1;
	*out = strtoull(s + strlen(key), NULL, base);
	return 0;
}

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
	/* exit_code is field 52; r + 2 is field 3. */
	out->exit_code = -1;
	const char *p = r + 2;
	for (int field = 3; p && field < 52; field++)
		if ((p = strchr(p, ' ')))
			p++;
	if (p && *p >= '0' && *p <= '9')
		out->exit_code = (int)strtol(p, NULL, 10);
	return 0;
}

int procfs_read_status(pid_t pid, struct proc_status *out)
{
	char path[64], line[512];
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	out->euid = 0;
	out->n_nspid = -1;
	bool uid = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned r, e;
		if (!uid && sscanf(line, "Uid: %u %u", &r, &e) == 2) {
			out->euid = e;
			uid = true;
		} else if (strncmp(line, "NSpid:", 6) == 0) {
			int n = 0;
			char *p = line + 6, *end;
			while (n < PROCFS_NSPID_MAX) {
				long v = strtol(p, &end, 10);
				if (end == p)
					break;
				out->nspid[n++] = (pid_t)v;
				p = end;
			}
			out->n_nspid = n;
			break; /* NSpid comes after Uid */
		}
	}
	fclose(f);
	return 0;
}

int procfs_read_netdev(pid_t pid, struct proc_netdev *out, size_t *n)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[512];
	size_t k = 0;
	int rc = 0;
	/* Two header lines, then "  name: rx(8 fields) tx(8 fields)". */
	for (int i = 0; i < 2 && fgets(line, sizeof(line), f); i++)
		;
	while (k < PROCFS_NETDEV_MAX && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon) {
			rc = -1;
			break;
		}
		*colon = '\0';
		const char *name = line;
		while (*name == ' ')
			name++;
		if (strcmp(name, "lo") == 0)
			continue;
		unsigned long long v[16];
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
			   &v[11], &v[12], &v[13], &v[14], &v[15]) != 16) {
			rc = -1;
			break;
		}
		struct proc_netdev *d = &out[k++];
		snprintf(d->name, sizeof(d->name), "%s", name);
		d->rx_bytes = v[0];
		d->rx_packets = v[1];
		d->rx_errors = v[2];
		d->rx_dropped = v[3];
		d->tx_bytes = v[8];
		d->tx_packets = v[9];
		d->tx_errors = v[10];
		d->tx_dropped = v[11];
	}
	fclose(f);
	*n = k;
	return rc;
}
