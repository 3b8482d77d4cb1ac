/* Checkpoint victim for the process state (test_checkpoint_pstate.py):
 *   pstate state FILE    lowers rlimits, sets a personality, three itimers,
 *                        a umask, blocked pending signals (process-wide:
 *                        SIGUSR2 and SIGRTMIN+1 twice with values 42, 43;
 *                        per thread: SIGRTMIN+3 in the main thread,
 *                        SIGRTMIN+2 in the second), then changes each
 *                        thread's credentials by raw syscalls (glibc's
 *                        wrappers would apply them to every thread): the
 *                        main thread to uids 1000-1003, gids 1000-1003,
 *                        groups 100 200, a smaller bounding set, keep-caps
 *                        and noroot securebits, three effective caps and an
 *                        ambient one, then dumpable 1 and pdeathsig SIGHUP;
 *                        the second thread to ids 3000-3002, group 300 and
 *                        no capabilities.
 *   pstate tree FILE     the same in a child of the init, which waits.
 *   pstate timer FILE    holds a POSIX timer.
 *   pstate seccomp FILE  installs a seccomp filter of its own.
 * Every 50 ms it appends a line to FILE (opened O_APPEND before the ids
 * change) saying what it sees of itself; after SIGUSR1 the line also
 * carries the SIGRTMIN+1 siginfos it then takes from its queue. Built
 * static by the GNUmakefile. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1;
static volatile int thread_ready;
static volatile pid_t thread_tid;

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "pstate: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void *second(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	gid_t g = 300;
	if (syscall(SYS_setgroups, 1, &g) < 0 || syscall(SYS_setresgid, 3000, 3001, 3002) < 0 ||
	    syscall(SYS_setresuid, 3000, 3001, 3002) < 0)
		die("second thread's ids");
	thread_ready = 1;
	for (;;)
		pause();
	return NULL;
}

static void capset3(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
					      {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32),
					       (uint32_t)(inh >> 32)}};
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset");
}

#define C(x) (1ULL << (x))

static void set_state(void)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	for (int k = 1; k <= 3; k++)
		sigaddset(&block, SIGRTMIN + k);
	if (sigprocmask(SIG_BLOCK, &block, NULL) < 0)
		die("sigprocmask");
	pthread_t th;
	if (pthread_create(&th, NULL, second, NULL) != 0)
		die("pthread_create");
	while (!thread_ready)
		usleep(1000);

	struct rlimit nofile = {512, 1000}, msgq = {4096, 8192}, nproc = {500, 600};
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_MSGQUEUE, &msgq) < 0 ||
	    setrlimit(RLIMIT_NPROC, &nproc) < 0)
		die("setrlimit");
	if (personality(ADDR_NO_RANDOMIZE | UNAME26) < 0)
		die("personality");
	struct itimerval real = {{500, 0}, {1000, 0}}, virt = {{7, 250000}, {2000, 0}},
			 prof = {{0, 0}, {3000, 0}};
	if (setitimer(ITIMER_REAL, &real, NULL) < 0 || setitimer(ITIMER_VIRTUAL, &virt, NULL) < 0 ||
	    setitimer(ITIMER_PROF, &prof, NULL) < 0)
		die("setitimer");
	umask(027);

	union sigval v42 = {.sival_int = 42}, v43 = {.sival_int = 43};
	if (kill(getpid(), SIGUSR2) < 0 || sigqueue(getpid(), SIGRTMIN + 1, v42) < 0 ||
	    sigqueue(getpid(), SIGRTMIN + 1, v43) < 0 ||
	    syscall(SYS_tgkill, getpid(), thread_tid, SIGRTMIN + 2) < 0 ||
	    syscall(SYS_tgkill, getpid(), getpid(), SIGRTMIN + 3) < 0)
		die("queueing the pending signals");

	gid_t groups[2] = {100, 200};
	if (syscall(SYS_setgroups, 2, groups) < 0 || syscall(SYS_setresgid, 1000, 1001, 1002) < 0)
		die("gids");
	syscall(SYS_setfsgid, 1003);
	int drop[3] = {CAP_MKNOD, CAP_NET_RAW, CAP_AUDIT_WRITE};
	for (int k = 0; k < 3; k++)
		if (prctl(PR_CAPBSET_DROP, drop[k], 0, 0, 0) < 0)
			die("PR_CAPBSET_DROP");
	if (prctl(PR_SET_SECUREBITS, (1 << 4) | (1 << 0), 0, 0, 0) < 0) /* KEEP_CAPS | NOROOT */
		die("PR_SET_SECUREBITS");
	uint64_t inh = C(CAP_NET_BIND_SERVICE) | C(CAP_KILL);
	uint64_t wide = C(CAP_CHOWN) | C(CAP_KILL) | C(CAP_NET_BIND_SERVICE) | C(CAP_SYS_CHROOT) |
			C(CAP_SETPCAP) | C(CAP_SETUID) | C(CAP_SETGID);
	capset3(C(CAP_SETPCAP) | C(CAP_SETUID) | C(CAP_SETGID), wide, inh);
	if (syscall(SYS_setresuid, 1000, 1001, 1002) < 0)
		die("uids");
	/* Keep-caps kept them permitted; the uid change cleared effective. */
	capset3(C(CAP_SETUID), wide, inh);
	syscall(SYS_setfsuid, 1003);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
		die("PR_CAP_AMBIENT_RAISE");
	uint64_t prm = C(CAP_CHOWN) | C(CAP_KILL) | C(CAP_NET_BIND_SERVICE) | C(CAP_SYS_CHROOT);
	capset3(C(CAP_CHOWN) | C(CAP_KILL) | C(CAP_NET_BIND_SERVICE), prm, inh);
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0) < 0)
		die("dumpable, pdeathsig");
}

static void own_seccomp(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {1, &allow};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		die("seccomp");
}

/* Takes what waits of SIGRTMIN+1 (blocked, so sigtimedwait may). */
static void take_rt1(char *out, size_t n)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	struct timespec zero = {0, 0};
	size_t at = (size_t)snprintf(out, n, " rt1=");
	siginfo_t si;
	while (at < n && sigtimedwait(&s, &si, &zero) > 0)
		at += (size_t)snprintf(out + at, n - at, "%d/%d/%d,", si.si_value.sival_int,
				       si.si_code, (int)si.si_pid);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die(argv[2]);
	signal(SIGUSR1, on_usr1);
	if (!strcmp(argv[1], "state")) {
		set_state();
	} else if (!strcmp(argv[1], "tree")) {
		pid_t c = fork();
		if (c < 0)
			die("fork");
		if (c > 0)
			for (;;)
				pause();
		set_state();
	} else if (!strcmp(argv[1], "timer")) {
		timer_t t;
		if (timer_create(CLOCK_MONOTONIC, NULL, &t) < 0)
			die("timer_create");
	} else if (!strcmp(argv[1], "seccomp")) {
		own_seccomp();
	} else {
		return 2;
	}
	struct timespec ts = {0, 50 * 1000 * 1000};
	for (unsigned n = 0;; n++) {
		struct itimerval it[3];
		for (int k = 0; k < 3; k++)
			getitimer(k, &it[k]);
		mode_t um = umask(0);
		umask(um);
		int pd = 0;
		prctl(PR_GET_PDEATHSIG, &pd, 0, 0, 0);
		char rt[256] = "";
		if (usr1) {
			take_rt1(rt, sizeof(rt));
			usr1 = 0;
		}
		char line[512];
		int k = snprintf(line, sizeof(line),
				 "n=%u dumpable=%d pdeath=%d sb=%x umask=%o pers=%x "
				 "itreal=%ld/%ld.%06ld itvirt=%ld.%06ld/%ld itprof=%ld/%ld.%06ld%s\n",
				 n, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), pd,
				 prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), (unsigned)um,
				 personality(0xffffffff), (long)it[0].it_value.tv_sec,
				 (long)it[0].it_interval.tv_sec, (long)it[0].it_interval.tv_usec,
				 (long)it[1].it_interval.tv_sec, (long)it[1].it_interval.tv_usec,
				 (long)it[1].it_value.tv_sec, (long)it[2].it_value.tv_sec,
				 (long)it[2].it_interval.tv_sec, (long)it[2].it_interval.tv_usec, rt);
		if (write(fd, line, (size_t)k) != k)
			return 5;
		nanosleep(&ts, NULL);
	}
}
