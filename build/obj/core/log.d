build/obj/core/log.o: core/log.c core/log.h core/err.h
core/log.h:
core/err.h:
