build/obj/core/loop.o: core/loop.c core/loop.h core/err.h
core/loop.h:
core/err.h:
