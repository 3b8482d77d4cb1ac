build/obj/kernel/signal.o: kernel/signal.c core/log.h core/err.h \
 core/mpk.h kernel/methods.h rpc/server.h kernel/park.h kernel/model.h \
 core/cont.h core/list.h core/spec.h kernel/cgroup.h
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
