build/obj/kernel/task.o: kernel/task.c core/log.h core/err.h core/loop.h \
 kernel/model.h core/cont.h core/list.h core/spec.h kernel/cgroup.h \
 kernel/spawn.h kernel/caps.h
core/log.h:
core/err.h:
core/loop.h:
kernel/model.h:
core/cont.h:
core/list.h:
core/spec.h:
kernel/cgroup.h:
kernel/spawn.h:
kernel/caps.h:
