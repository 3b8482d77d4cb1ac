build/obj/kernel/processes.o: kernel/processes.c core/mpk.h core/err.h \
 kernel/methods.h rpc/server.h kernel/park.h kernel/model.h core/cont.h \
 core/list.h core/spec.h kernel/cgroup.h
core/mpk.h:
core/err.h:
kernel/methods.h:
rpc/server.h:
kernel/park.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/spec.h:
kernel/cgroup.h:
