/* The method table: seed names → handlers (docs/DESIGN.md, "The control protocol"). */
#include "kernel/methods.h"

#include "core/util.h"
#include "kernel/seccheck.h"

static const struct rpc_method methods[] = {
	{ "Cgroups.ReadControlFiles", cgroups_read_control_files },
	{ "Cgroups.WriteControlFiles", cgroups_write_control_files },
	{ "containerManager.ContainerRuntimeState", cm_runtime_state },
	{ "containerManager.Event", cm_event },
	{ "containerManager.ExecuteAsync", cm_execute_async },
	{ "containerManager.ProcfsDump", cm_procfs_dump },
	{ "containerManager.Processes", cm_processes },
	{ "containerManager.Signal", cm_signal },
	{ "containerManager.StartRoot", cm_start_root },
	{ "containerManager.Wait", cm_wait },
	{ "containerManager.WaitPID", cm_wait_pid },
	{ "debug.Stacks", debug_stacks },
	{ "Lifecycle.Pause", lifecycle_pause },
	{ "Lifecycle.Resume", lifecycle_resume },
	{ "Logging.Change", logging_change },
	{ "Metrics.Export", metrics_export },
	{ "Metrics.GetRegisteredMetrics", metrics_get_registered },
	{ "Profile.Block", profile_block },
	{ "Profile.CPU", profile_cpu },
	{ "Profile.Heap", profile_heap },
	{ "Profile.Mutex", profile_mutex },
	{ "Profile.Trace", profile_trace },
	{ "Usage.Collect", usage_collect },
	{ "Usage.UsageFD", usage_fd },
	{ "containerManager.CreateTraceSession", cm_create_trace_session },
	{ "containerManager.DeleteTraceSession", cm_delete_trace_session },
	{ "containerManager.ListTraceSessions", cm_list_trace_sessions },
	{ "containerManager.CreateSubcontainer", cm_create_subcontainer },
	{ "containerManager.StartSubcontainer", cm_start_subcontainer },
	{ "containerManager.DestroySubcontainer", cm_destroy_subcontainer },
	{ "containerManager.ReleaseSubcontainer", cm_release_subcontainer },
	{ "Network.CreateLinksAndRoutes", network_create_links },
	{ "containerManager.PortForward", cm_port_forward },
	{ "containerManager.Checkpoint", cm_checkpoint },
	{ "containerManager.Restore", cm_restore },
};

const struct rpc_method *methods_table(void)
{
	return methods;
}

size_t methods_count(void)
{
	return ARRAY_SIZE(methods);
}
