#pragma once
/* Trace sessions and strace from the CLI (cmd/trace.c). */
#include "core/err.h"

struct rpc_client;

/* `trace create|delete|list ...`: argv[0] is the subcommand. */
int cli_trace_session_verb(int argc, char **argv);
/* `debug --strace all|off|a,b,c`. */
int cli_debug_strace(struct rpc_client *cl, const char *spec, struct cv_error *err);
