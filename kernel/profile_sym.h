#pragma once
/* Symbolizing boot's own code addresses for Profile.CPU: the function
 * symbols of /proc/self/exe's ELF symbol table (the binary is static and
 * not stripped; backtrace_symbols() finds no names in a static binary),
 * sorted for binary search. Loaded once per profile, after sampling. */
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct prof_syms;

/* NULL with err when the table cannot be read (names then fall back to
 * hex addresses). */
struct prof_syms *prof_syms_load(struct cv_error *err);
/* The function containing pc, or NULL. */
const char *prof_syms_find(const struct prof_syms *s, uintptr_t pc);
void prof_syms_free(struct prof_syms *s);
