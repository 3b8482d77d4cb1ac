build/obj/kernel/sandbox.o: kernel/sandbox.c kernel/sandbox.h core/err.h \
 core/log.h core/loop.h kernel/methods.h rpc/server.h kernel/model.h \
 core/cont.h core/list.h core/spec.h kernel/cgroup.h kernel/spawn.h \
 kernel/caps.h
kernel/sandbox.h:
core/err.h:
core/log.h:
core/loop.h:
kernel/methods.h:
rpc/server.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/spec.h:
kernel/cgroup.h:
kernel/spawn.h:
kernel/caps.h:
