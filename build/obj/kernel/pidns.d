build/obj/kernel/pidns.o: kernel/pidns.c kernel/model.h core/cont.h \
 core/list.h core/err.h core/spec.h kernel/cgroup.h
kernel/model.h:
core/cont.h:
core/list.h:
core/err.h:
core/spec.h:
kernel/cgroup.h:
