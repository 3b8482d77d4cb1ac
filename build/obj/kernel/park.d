build/obj/kernel/park.o: kernel/park.c kernel/park.h kernel/model.h \
 core/cont.h core/list.h core/err.h core/spec.h kernel/cgroup.h \
 rpc/server.h core/mpk.h
kernel/park.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/err.h:
core/spec.h:
kernel/cgroup.h:
rpc/server.h:
core/mpk.h:
