/* Profile.CPU, Profile.Trace, Profile.Heap, Profile.Block, Profile.Mutex
 * (docs/API.md "Profile"). Each profile is written to the one fd the
 * request carries, then the call is answered: the call is parked (never
 * the loop) while sampling or recording for the duration, and the output
 * goes out through an ev_io in 64 KiB writes with the fd non-blocking, so
 * the sandbox keeps serving meanwhile.
 *
 * CPU: ITIMER_PROF fires SIGPROF every 1 ms of boot's CPU time; the
 * handler stores backtrace() into a ring allocated before the timer
 * starts (no allocation in the handler; backtrace() is called once first
 * so the unwinder is set up). When the duration is over the timer stops,
 * and the samples are symbolized from boot's own symbol table
 * (kernel/profile_sym.h) and folded: "root;...;leaf count" lines.
 * Trace: the loop's busy turns (core/loop.h), every continuation run
 * (core/cont.h, named by its `what`) and every RPC call answered (its
 * method, from dispatch to answer) as Chrome trace "X" events.
 * Heap: glibc's mallinfo2() and malloc_info() as text. */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/cont.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mpk.h"
#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/metrics.h"
#include "kernel/profile_sym.h"

#define PROF_MAX_DURATION_NS (600LL * 1000000000LL) /* 10 min */
#define PROF_WRITE_CHUNK (64u * 1024)
#define CPU_SAMPLE_US 1000
#define CPU_RING 8192
#define CPU_DEPTH 32
#define CPU_SKIP 2 /* the handler and the signal trampoline */
#define TRACE_MAX_EVENTS 200000

/* ---- the output: non-blocking writes driven by an ev_io ----------------- */

struct prof_job {
	struct rpc_call *call; /* NULL once answered or cancelled */
	const char *kind;      /* "Profile.CPU", for errors */
	int fd;                /* owned */
	ev_timer stop_w;       /* the duration */
	ev_io out_w;
	char *data;            /* the profile's text (malloc'd) */
	size_t len, off;
	void (*stop)(struct prof_job *j); /* ends sampling/recording (idempotent) */
};

static void job_free(struct prof_job *j)
{
	struct ev_loop *loop = core_loop();
	if (j->stop)
		j->stop(j);
	ev_timer_stop(loop, &j->stop_w);
	ev_io_stop(loop, &j->out_w);
	if (j->fd >= 0)
		close(j->fd);
	free(j->data);
	free(j);
}

static void job_cancel(struct rpc_call *call, void *data)
{
	(void)call;
	struct prof_job *j = data;
	j->call = NULL;
	job_free(j);
}

static void job_answer(struct prof_job *j, const char *err)
{
	struct rpc_call *call = j->call;
	j->call = NULL;
	rpc_call_set_cancel(call, NULL, NULL);
	if (err)
		rpc_fail(call, "%s: %s", j->kind, err);
	else
		rpc_reply_nil(call);
	job_free(j);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct prof_job *j = container_of(w, struct prof_job, out_w);
	size_t n = j->len - j->off < PROF_WRITE_CHUNK ? j->len - j->off : PROF_WRITE_CHUNK;
	ssize_t r = n ? write(j->fd, j->data + j->off, n) : 0;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "writing the profile: %s", strerror(errno));
		job_answer(j, msg);
		return;
	}
	j->off += (size_t)r;
	if (j->off == j->len)
		job_answer(j, NULL);
}

/* Takes data (malloc'd text) and starts writing it. */
static void job_write(struct prof_job *j, char *data, size_t len)
{
	j->data = data;
	j->len = len;
	j->off = 0;
	/* Non-blocking so a slow reader (a pipe) never stalls the loop; a
	 * regular file is always writable (libev polls it each turn). */
	int fl = fcntl(j->fd, F_GETFL);
	if (fl >= 0)
		fcntl(j->fd, F_SETFL, fl | O_NONBLOCK);
	ev_io_init(&j->out_w, on_writable, j->fd, EV_WRITE);
	ev_io_start(core_loop(), &j->out_w);
}

struct prof_opts {
	int64_t duration;
	bool has_duration;
};

static const struct mpk_field prof_fields[] = {
	{ "Duration", MPK_I64, offsetof(struct prof_opts, duration), MPK_NONE,
	  offsetof(struct prof_opts, has_duration), 0, NULL },
};
static const struct mpk_schema prof_schema = { "ProfileOpts", sizeof(struct prof_opts),
					       prof_fields, ARRAY_SIZE(prof_fields) };

/* Decodes the options and takes the output fd; NULL after answering. */
static struct prof_job *job_new(struct rpc_call *call, const msgpack_object *arg,
				const char *kind, bool timed)
{
	struct prof_opts o = { 0 };
	struct cv_error err = { 0 };
	if (mpk_decode(arg, &prof_schema, &o, rpc_call_zone(call), &err) < 0) {
		rpc_fail_err(call, &err);
		return NULL;
	}
	if (timed && !o.has_duration) {
		rpc_fail(call, "ProfileOpts.Duration: missing");
		return NULL;
	}
	if (timed && (o.duration <= 0 || o.duration > PROF_MAX_DURATION_NS)) {
		rpc_fail(call, "ProfileOpts.Duration: must be between 1ns and 10m, got %lld ns",
			 (long long)o.duration);
		return NULL;
	}
	if (rpc_call_nfiles(call) != 1) {
		rpc_fail(call, "ProfileOpts.Files: expected 1 output file, got %zu",
			 rpc_call_nfiles(call));
		return NULL;
	}
	struct prof_job *j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_fail(call, "%s: out of memory", kind);
		return NULL;
	}
	j->call = call;
	j->kind = kind;
	j->fd = rpc_call_take_file(call, 0);
	ev_timer_init(&j->stop_w, NULL, (double)o.duration / 1e9, 0);
	rpc_call_set_cancel(call, job_cancel, j);
	return j;
}

/* ---- Profile.CPU --------------------------------------------------------- */

struct cpu_sample {
	int depth;
	void *pc[CPU_DEPTH];
};

static struct cpu_sample *cpu_ring;       /* allocated before the timer starts */
static volatile sig_atomic_t cpu_n;       /* samples taken */
static volatile sig_atomic_t cpu_dropped; /* the ring was full */
static struct prof_job *cpu_job;          /* the one CPU profile running */
static struct sigaction cpu_old_sa;

static void on_sigprof(int sig)
{
	(void)sig;
	int saved = errno;
	int i = cpu_n;
	if (cpu_ring && i < CPU_RING) {
		cpu_ring[i].depth = backtrace(cpu_ring[i].pc, CPU_DEPTH);
		cpu_n = i + 1;
	} else {
		cpu_dropped++;
	}
	errno = saved;
}

static void cpu_stop(struct prof_job *j)
{
	/* Another profile may have started while j writes its output. */
	if (cpu_job != j)
		return;
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_PROF, &off, NULL);
	sigaction(SIGPROF, &cpu_old_sa, NULL);
	cpu_job = NULL;
	free(cpu_ring);
	cpu_ring = NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The samples as folded stacks: "root;...;leaf count\n", sorted. */
static char *cpu_fold(const struct cpu_sample *s, size_t n, size_t *len)
{
	struct cv_error err = { 0 };
	struct prof_syms *syms = prof_syms_load(&err);
	if (!syms)
		LOG(LL_WARN, "Profile.CPU: frames left as addresses: %s", err.msg);
	char **lines = calloc(n ? n : 1, sizeof(char *));
	size_t nl = 0;
	for (size_t i = 0; lines && i < n; i++) {
		char *line = NULL;
		size_t ll = 0;
		FILE *f = open_memstream(&line, &ll);
		if (!f)
			break;
		bool first = true;
		for (int k = s[i].depth - 1; k >= CPU_SKIP; k--) {
			uintptr_t pc = (uintptr_t)s[i].pc[k];
			/* Return addresses point after the call: look up the call. */
			const char *name = prof_syms_find(syms, k == CPU_SKIP ? pc : pc - 1);
			if (!first)
				fputc(';', f);
			first = false;
			if (name)
				fputs(name, f);
			else
				fprintf(f, "0x%lx", (unsigned long)pc);
		}
		if (first)
			fputs("[unknown]", f);
		fclose(f);
		lines[nl++] = line;
	}
	qsort(lines, nl, sizeof(char *), cmp_str);
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	for (size_t i = 0; f && i < nl;) {
		size_t k = i;
		while (k < nl && strcmp(lines[k], lines[i]) == 0)
			k++;
		fprintf(f, "%s %zu\n", lines[i], k - i);
		i = k;
	}
	if (f)
		fclose(f);
	for (size_t i = 0; i < nl; i++)
		free(lines[i]);
	free(lines);
	prof_syms_free(syms);
	return out;
}

static void cpu_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct prof_job *j = container_of(w, struct prof_job, stop_w);
	/* Stop the timer first: the fold below must not be sampled into a
	 * ring it reads. */
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_PROF, &off, NULL);
	size_t n = (size_t)cpu_n;
	if (cpu_dropped)
		LOG(LL_WARN, "Profile.CPU: %d samples dropped (ring of %d full)", (int)cpu_dropped,
		    CPU_RING);
	size_t len = 0;
	char *text = cpu_fold(cpu_ring, n, &len);
	cpu_stop(j);
	if (!text) {
		job_answer(j, "out of memory folding the samples");
		return;
	}
	LOG(LL_INFO, "Profile.CPU: %zu samples, %zu bytes of folded stacks", n, len);
	job_write(j, text, len);
}

void profile_cpu(struct rpc_call *call, const msgpack_object *arg)
{
	if (cpu_job) {
		rpc_fail(call, "Profile.CPU: a CPU profile is already running (one at a time)");
		return;
	}
	struct prof_job *j = job_new(call, arg, "Profile.CPU", true);
	if (!j)
		return;
	cpu_ring = calloc(CPU_RING, sizeof(*cpu_ring));
	if (!cpu_ring) {
		job_answer(j, "out of memory for the sample ring");
		return;
	}
	cpu_n = 0;
	cpu_dropped = 0;
	/* The first backtrace() sets up the unwinder (it may allocate): here,
	 * never in the handler. */
	void *warm[4];
	backtrace(warm, 4);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigprof;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPROF, &sa, &cpu_old_sa) < 0) {
		free(cpu_ring);
		cpu_ring = NULL;
		job_answer(j, "installing the SIGPROF handler failed");
		return;
	}
	cpu_job = j;
	j->stop = cpu_stop;
	struct itimerval it = { { 0, CPU_SAMPLE_US }, { 0, CPU_SAMPLE_US } };
	if (setitimer(ITIMER_PROF, &it, NULL) < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "setitimer: %s", strerror(errno));
		job_answer(j, msg);
		return;
	}
	ev_set_cb(&j->stop_w, cpu_done);
	ev_timer_start(core_loop(), &j->stop_w);
}

/* ---- Profile.Trace -------------------------------------------------------- */

enum { TID_TURNS = 1, TID_CONTS = 2, TID_RPC = 3 };

struct trace_ev {
	const char *name; /* static: a method name, a continuation's what */
	uint64_t ts, dur; /* ns, CLOCK_MONOTONIC */
	int tid;
};

static struct trace_ev *trace_evs;
static size_t trace_n, trace_dropped;
static struct prof_job *trace_job;
static uint64_t trace_t0;

static void trace_add(const char *name, uint64_t ts, uint64_t dur, int tid)
{
	if (trace_n == TRACE_MAX_EVENTS) {
		trace_dropped++;
		return;
	}
	trace_evs[trace_n++] = (struct trace_ev){ name, ts, dur, tid };
}

static void trace_turn(uint64_t start, uint64_t dur, void *data)
{
	(void)data;
	trace_add("loop turn", start, dur, TID_TURNS);
}

static void trace_cont(const char *what, uint64_t start, uint64_t dur)
{
	trace_add(what ? what : "continuation", start, dur, TID_CONTS);
}

static void trace_rpc(size_t method, bool failed, uint64_t ns)
{
	if (metrics_enabled())
		metrics_rpc_observe(method, failed, ns);
	const char *name = method < methods_count() ? methods_table()[method].name : "rpc";
	uint64_t now = core_now_ns();
	trace_add(name, now - ns, ns, TID_RPC);
}

/* Puts back what metrics had (kernel/metrics.c installs the same hooks). */
static void trace_stop(struct prof_job *j)
{
	if (trace_job != j)
		return;
	core_loop_set_turn_hook(NULL, NULL);
	cont_set_run_hook(NULL);
	rpc_set_observer(metrics_enabled() ? metrics_rpc_observe : NULL);
	core_loop_stats_enable(metrics_enabled());
	trace_job = NULL;
	free(trace_evs);
	trace_evs = NULL;
}

static void json_name(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void trace_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct prof_job *j = container_of(w, struct prof_job, stop_w);
	/* Stop recording before writing, then write from the copy. */
	core_loop_set_turn_hook(NULL, NULL);
	cont_set_run_hook(NULL);
	rpc_set_observer(metrics_enabled() ? metrics_rpc_observe : NULL);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f) {
		job_answer(j, "out of memory");
		return;
	}
	int pid = (int)getpid();
	static const char *const tnames[] = { NULL, "reactor turns", "continuations", "rpc calls" };
	fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"cvisor Profile.Trace\"},"
	      "\"traceEvents\":[\n",
	      f);
	for (int t = 1; t <= 3; t++)
		fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
			   "\"args\":{\"name\":\"%s\"}},\n",
			pid, t, tnames[t]);
	fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":1,"
		   "\"args\":{\"name\":\"cvisor-boot\"}}",
		pid);
	for (size_t i = 0; i < trace_n; i++) {
		const struct trace_ev *e = &trace_evs[i];
		/* A call dispatched before the trace began: only its part inside. */
		uint64_t start = e->ts < trace_t0 ? trace_t0 : e->ts;
		uint64_t dur = e->dur - (start - e->ts);
		int64_t ts = (int64_t)(start - trace_t0);
		fputs(",\n{\"name\":", f);
		json_name(f, e->name);
		fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d}",
			e->tid == TID_RPC ? "rpc" : "loop", (double)ts / 1e3, (double)dur / 1e3, pid,
			e->tid);
	}
	fputs("\n]}\n", f);
	fclose(f);
	if (trace_dropped)
		LOG(LL_WARN, "Profile.Trace: %zu events dropped (at most %d)", trace_dropped,
		    TRACE_MAX_EVENTS);
	trace_stop(j);
	job_write(j, out, len);
}

void profile_trace(struct rpc_call *call, const msgpack_object *arg)
{
	if (trace_job) {
		rpc_fail(call, "Profile.Trace: a trace is already running (one at a time)");
		return;
	}
	struct prof_job *j = job_new(call, arg, "Profile.Trace", true);
	if (!j)
		return;
	trace_evs = malloc(TRACE_MAX_EVENTS * sizeof(*trace_evs));
	if (!trace_evs) {
		job_answer(j, "out of memory for the event buffer");
		return;
	}
	trace_n = trace_dropped = 0;
	trace_t0 = core_now_ns();
	trace_job = j;
	j->stop = trace_stop;
	core_loop_stats_enable(true);
	core_loop_set_turn_hook(trace_turn, NULL);
	cont_set_run_hook(trace_cont);
	rpc_set_observer(trace_rpc);
	ev_set_cb(&j->stop_w, trace_done);
	ev_timer_start(core_loop(), &j->stop_w);
}

/* ---- Profile.Heap / Block / Mutex ----------------------------------------- */

void profile_heap(struct rpc_call *call, const msgpack_object *arg)
{
	struct prof_job *j = job_new(call, arg, "Profile.Heap", false);
	if (!j)
		return;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f) {
		job_answer(j, "out of memory");
		return;
	}
	struct mallinfo2 mi = mallinfo2();
	fprintf(f,
		"# cvisor boot heap (glibc mallinfo2)\n"
		"arena %zu\nordblks %zu\nsmblks %zu\nhblks %zu\nhblkhd %zu\nusmblks %zu\n"
		"fsmblks %zu\nuordblks %zu\nfordblks %zu\nkeepcost %zu\n"
		"# malloc_info\n",
		mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks,
		mi.uordblks, mi.fordblks, mi.keepcost);
	malloc_info(0, f);
	fclose(f);
	job_write(j, out, len);
}

void profile_block(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	rpc_fail(call, "Profile.Block: not available: boot is a single-threaded reactor that never "
		       "blocks, so there is no blocking profile");
}

void profile_mutex(struct rpc_call *call, const msgpack_object *arg)
{
	(void)arg;
	rpc_fail(call, "Profile.Mutex: not available: boot is a single-threaded reactor with no "
		       "mutexes, so there is no contention profile");
}
