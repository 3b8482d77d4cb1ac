/* The two functions of libsystemd's sd-daemon that Debian's libdbus-1.a
 * refers to (it was built with systemd support, for a bus daemon started by
 * socket activation), so that the static link needs no libsystemd.a, which
 * Debian does not ship. cvisor is a bus client and is never socket-activated:
 * it passes no listening fds. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>

int sd_listen_fds(int unset_environment);
int sd_is_socket(int fd, int family, int type, int listening);

int sd_listen_fds(int unset_environment)
{
	(void)unset_environment;
	return 0;
}

/* As sd-daemon's: 1 if fd is a socket of that family (0: any), type (0:
 * any) and listening state (-1: either), 0 if not, -errno on error. */
int sd_is_socket(int fd, int family, int type, int listening)
{
	struct stat st;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return 0;
	int v;
	socklen_t l = sizeof(v);
	if (type != 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0)
			return -errno;
		if (v != type)
			return 0;
	}
	if (family != 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			return -errno;
		if (ss.ss_family != family)
			return 0;
	}
	if (listening >= 0) {
		l = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0)
			return -errno;
		if ((v != 0) != (listening != 0))
			return 0;
	}
	return 1;
}
