/* Unit tests for the kernel's small helpers: /proc parsing, wait statuses,
 * the method table. */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "kernel/methods.h"
#include "kernel/model.h"
#include "kernel/procfs.h"
#include "test/unit/unit.h"

TEST(test_procfs_reads_self_with_odd_comm)
{
	/* A comm with spaces and a ')' must not shift the fields. */
	prctl(PR_SET_NAME, "a) b (c", 0, 0, 0);
	struct proc_stat st;
	CHECK(procfs_read_stat(getpid(), &st) == 0);
	CHECK_STR(st.comm, "a) b (c");
	CHECK(st.ppid == getppid());
	CHECK(st.pgrp == getpgrp());
	CHECK(st.state == 'R');
	CHECK(st.starttime > 0);
	CHECK(procfs_read_stat(0x3fffffff, &st) == -1);
}

TEST(test_wait_status_encoding)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_code = CLD_EXITED;
	si.si_status = 5;
	CHECK(wait_status_from_siginfo(&si) == 5 << 8);
	si.si_code = CLD_KILLED;
	si.si_status = SIGKILL;
	CHECK(wait_status_from_siginfo(&si) == 9);
	si.si_code = CLD_DUMPED;
	si.si_status = SIGSEGV;
	CHECK(wait_status_from_siginfo(&si) == (SIGSEGV | 0x80));
	/* The encoding is the one WEXITSTATUS/WTERMSIG read. */
	si.si_code = CLD_EXITED;
	si.si_status = 3;
	int st = wait_status_from_siginfo(&si);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	si.si_code = CLD_KILLED;
	si.si_status = SIGTERM;
	st = wait_status_from_siginfo(&si);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

TEST(test_method_table_has_the_seed_names)
{
	static const char *const want[] = {
		"containerManager.ContainerRuntimeState", "containerManager.ExecuteAsync",
		"containerManager.Processes", "containerManager.Signal",
		"containerManager.StartRoot", "containerManager.Wait",
		"containerManager.WaitPID", "Lifecycle.Pause", "Lifecycle.Resume",
		"containerManager.ProcfsDump", "debug.Stacks", "Logging.Change",
		"Metrics.Export", "Metrics.GetRegisteredMetrics", "Profile.Block", "Profile.CPU",
		"Profile.Heap", "Profile.Mutex", "Profile.Trace", "Cgroups.ReadControlFiles",
		"Cgroups.WriteControlFiles", "Usage.Collect", "Usage.UsageFD",
		"containerManager.Event",
		"containerManager.CreateTraceSession", "containerManager.DeleteTraceSession",
		"containerManager.ListTraceSessions",
		"containerManager.CreateSubcontainer", "containerManager.StartSubcontainer",
		"containerManager.DestroySubcontainer", "containerManager.ReleaseSubcontainer",
		"Network.CreateLinksAndRoutes",
		"containerManager.PortForward",
		"containerManager.Checkpoint",
		"containerManager.Restore",
	};
	const struct rpc_method *m = methods_table();
	CHECK(methods_count() == ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		bool found = false;
		for (size_t j = 0; j < methods_count(); j++)
			found |= strcmp(m[j].name, want[i]) == 0 && m[j].fn != NULL;
		CHECK(found);
	}
}

UNIT_MAIN(test_procfs_reads_self_with_odd_comm, test_wait_status_encoding,
	  test_method_table_has_the_seed_names)
