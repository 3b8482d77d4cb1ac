#pragma once
/* `checkpoint` and `restore` on a terminal: a line on stderr, refreshed
 * every 250 ms by a forked child, with the bytes of the state file done and
 * the rate. For checkpoint it is the file's size (the sandbox writes it);
 * for restore the shared file offset of the fd we handed over (the sandbox
 * reads through the same open file description). */
#include <stdbool.h>
#include <sys/types.h>

/* -1 when stderr is not a terminal (or fork failed): nothing to stop. */
pid_t progress_start(int fd, const char *what, bool by_offset);
/* Ends the line (kills and reaps the child, clears the line). */
void progress_stop(pid_t pid);
