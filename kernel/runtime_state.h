#pragma once
/* containerManager.ContainerRuntimeState's answer, on the wire as an
 * integer: the kernel computes it (container_runtime_state), the CLI turns
 * it into an OCI status (cli_status_name). Values are the seed's
 * (docs/API.md, containerManager.ContainerRuntimeState). */
enum runtime_state {
	RUNTIME_STATE_INVALID = 0,
	RUNTIME_STATE_CREATING = 1,
	RUNTIME_STATE_RUNNING = 2,
	RUNTIME_STATE_STOPPED = 3,
};
