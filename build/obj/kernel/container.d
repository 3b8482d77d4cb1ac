build/obj/kernel/container.o: kernel/container.c kernel/model.h \
 core/cont.h core/list.h core/err.h core/spec.h kernel/cgroup.h
kernel/model.h:
core/cont.h:
core/list.h:
core/err.h:
core/spec.h:
kernel/cgroup.h:
