build/obj/kernel/methods.o: kernel/methods.c kernel/methods.h \
 rpc/server.h core/err.h
kernel/methods.h:
rpc/server.h:
core/err.h:
