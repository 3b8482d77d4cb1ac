#pragma once
/* Small helpers every module may use. */

/* Elements of an array (not a pointer: sizeof would silently lie). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
