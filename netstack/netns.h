#pragma once
/* Network namespaces by fd (docs/DESIGN.md, "Network"). A socket belongs
 * for its whole life to the namespace it was created in, so entering
 * another namespace is only ever needed to create one: netns_socket goes
 * there and comes back at once. The sandbox is single-threaded, so no
 * other work sees the switch. */
#include "core/err.h"

/* A socket(domain, type, proto) created in the network namespace of
 * ns_fd: a namespace fd, or a pidfd (the process's namespace). The caller
 * owns it. If coming back fails, the process aborts: it must never go on
 * serving from a container's namespace. */
int netns_socket(int ns_fd, int domain, int type, int proto, struct cv_error *err);

/* An fd of the calling thread's network namespace; the caller closes it. */
int netns_current(struct cv_error *err);

/* An fd of the network namespace of the process behind pidfd (entered
 * and left as above); the caller closes it. */
int netns_of_pidfd(int pidfd, struct cv_error *err);

/* A new network namespace (unshare, then back); the caller closes the fd. */
int netns_new(struct cv_error *err);

/* For a clone that must be born in ns_fd's namespace: enters it; *home
 * receives the way back for netns_leave (which aborts if it fails, as
 * above). Nothing else may run in between. */
int netns_enter(int ns_fd, int *home, struct cv_error *err);
void netns_leave(int home);
