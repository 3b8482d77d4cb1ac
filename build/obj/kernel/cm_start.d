build/obj/kernel/cm_start.o: kernel/cm_start.c core/log.h core/err.h \
 core/mpk.h kernel/methods.h rpc/server.h kernel/park.h kernel/model.h \
 core/cont.h core/list.h core/spec.h kernel/cgroup.h kernel/spawn.h \
 kernel/caps.h
core/log.h:
core/err.h:
core/mpk.h:
kernel/methods.h:
rpc/server.h:
kernel/park.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/spec.h:
kernel/cgroup.h:
kernel/spawn.h:
kernel/caps.h:
