build/obj/kernel/lifecycle.o: kernel/lifecycle.c core/log.h core/err.h \
 core/loop.h kernel/methods.h rpc/server.h kernel/model.h core/cont.h \
 core/list.h core/spec.h kernel/cgroup.h
core/log.h:
core/err.h:
core/loop.h:
kernel/methods.h:
rpc/server.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/spec.h:
kernel/cgroup.h:
