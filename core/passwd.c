/* /etc/passwd line parsing (core/passwd.h). */
#include "core/passwd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t passwd_split(char *line, char *field[PASSWD_NFIELDS])
{
	size_t nf = 0;
	field[nf++] = line;
	char *s = line;
	for (; *s && nf < PASSWD_NFIELDS; s++) {
		if (*s == ':') {
			*s = '\0';
			field[nf++] = s + 1;
		}
	}
	size_t have = nf;
	if (nf < PASSWD_NFIELDS) {
		char *end = s + strlen(s);
		while (nf < PASSWD_NFIELDS)
			field[nf++] = end;
	}
	return have;
}

bool passwd_line_is_uid(char *line, uint32_t uid, char *field[PASSWD_NFIELDS])
{
	if (passwd_split(line, field) < PASSWD_HOME + 1)
		return false;
	const char *id = field[PASSWD_UID];
	char *end;
	errno = 0;
	unsigned long u = strtoul(id, &end, 10);
	return errno == 0 && end != id && *end == '\0' && u == uid;
}

bool passwd_find_uid(char *text, uint32_t uid, char *field[PASSWD_NFIELDS])
{
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (passwd_line_is_uid(line, uid, field))
			return true;
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}
