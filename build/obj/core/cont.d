build/obj/core/cont.o: core/cont.c core/cont.h core/list.h core/loop.h \
 core/err.h
core/cont.h:
core/list.h:
core/loop.h:
core/err.h:
