#pragma once
/* /etc/passwd lines parsed by hand (name:password:uid:gid:gecos:home:shell):
 * the binary is static and glibc's NSS cannot be linked statically, and the
 * container's file is read without trusting it. Pure functions on caller
 * buffers: no allocation, no I/O, safe in a cloned child before execve. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum passwd_field {
	PASSWD_NAME,
	PASSWD_PASSWORD,
	PASSWD_UID,
	PASSWD_GID,
	PASSWD_GECOS,
	PASSWD_HOME,
	PASSWD_SHELL,
	PASSWD_NFIELDS,
};

/* Splits one line (NUL-terminated, no newline) in place at ':' into
 * PASSWD_NFIELDS fields; empty fields stay empty strings, missing ones
 * point at the line's terminating NUL, colons beyond the sixth belong to
 * the shell. Returns the number of fields the line really has (<= 7). */
size_t passwd_split(char *line, char *field[PASSWD_NFIELDS]);

/* Splits line into field and tells whether it is the entry of uid: it has
 * at least the fields up to home, and its uid field is exactly uid in
 * decimal. Lines that are not an entry may be left split. */
bool passwd_line_is_uid(char *line, uint32_t uid, char *field[PASSWD_NFIELDS]);

/* The first entry of uid among the lines of text (NUL-terminated; the last
 * line need not end in a newline). Splits text in place: true and field
 * set, or false. */
bool passwd_find_uid(char *text, uint32_t uid, char *field[PASSWD_NFIELDS]);
