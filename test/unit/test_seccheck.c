/* The trace wire's header, the message types of the armed syscalls, the
 * armed-set parser and strace's line format (kernel/seccheck_*.c,
 * kernel/trace_arm.c, kernel/strace.c). */
#include <fcntl.h>
#include <sys/syscall.h>

#include "kernel/seccheck_internal.h"
#include "kernel/strace.h"
#include "kernel/trace_arm.h"
#include "test/unit/unit.h"

TEST(test_header_is_little_endian_and_round_trips)
{
	uint8_t h[SC_HEADER_SIZE];
	sc_header_encode(h, SC_MSG_OPEN, 0x01020304u);
	const uint8_t want[8] = { 8, 0, 7, 0, 4, 3, 2, 1 };
	CHECK(memcmp(h, want, 8) == 0);
	uint16_t type;
	uint32_t dropped;
	size_t hs;
	CHECK(sc_header_decode(h, 8, &type, &dropped, &hs) == 0);
	CHECK(type == SC_MSG_OPEN && dropped == 0x01020304u && hs == 8);
	/* A larger header (a newer writer) is honoured; a short one refused. */
	uint8_t big[12] = { 12, 0, 3, 0, 9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
	CHECK(sc_header_decode(big, 12, &type, &dropped, &hs) == 0);
	CHECK(type == SC_MSG_EXECVE_INFO && dropped == 9 && hs == 12);
	CHECK(sc_header_decode(big, 11, &type, &dropped, &hs) < 0);
	CHECK(sc_header_decode(h, 7, &type, &dropped, &hs) < 0);
	uint8_t tiny[8] = { 4, 0, 1, 0, 0, 0, 0, 0 };
	CHECK(sc_header_decode(tiny, 8, &type, &dropped, &hs) < 0);
}

TEST(test_message_types_follow_the_reference)
{
	CHECK(sc_syscall_msg_type(SYS_openat) == 7);
	CHECK(sc_syscall_msg_type(SYS_execve) == 11 && sc_syscall_msg_type(SYS_execveat) == 11);
	CHECK(sc_syscall_msg_type(SYS_connect) == 10 && sc_syscall_msg_type(SYS_socket) == 12);
	CHECK(sc_syscall_msg_type(SYS_chdir) == 13 && sc_syscall_msg_type(SYS_setuid) == 14);
	CHECK(sc_syscall_msg_type(SYS_clone) == 23 && sc_syscall_msg_type(SYS_bind) == 24);
	CHECK(sc_syscall_msg_type(SYS_accept4) == 25 && sc_syscall_msg_type(SYS_listen) == 37);
	CHECK(sc_syscall_msg_type(SYS_ptrace) == 38);
	CHECK(sc_syscall_msg_type(SYS_getpid) == 0); /* only the raw form */
}

TEST(test_arm_configure)
{
	struct cv_error err = { 0 };
	CHECK(trace_arm_configure("none", &err) == 0 && trace_arm_count() == 0);
	CHECK(trace_arm_configure(NULL, &err) == 0 && trace_arm_count() == 0);
	CHECK(trace_arm_configure("default", &err) == 0 && trace_arm_count() == 12);
	CHECK(trace_arm_has(SYS_openat) && trace_arm_has(SYS_ptrace) && !trace_arm_has(SYS_read));
	CHECK_STR(trace_arm_name(SYS_openat), "openat");
	CHECK(trace_arm_name(SYS_read) == NULL);
	/* The execs come along with anything. */
	CHECK(trace_arm_configure("getpid,getpid", &err) == 0 && trace_arm_count() == 3);
	CHECK(trace_arm_has(SYS_execve) && trace_arm_has(SYS_execveat) && trace_arm_has(SYS_getpid));
	CHECK(trace_arm_configure("openat,nosuch", &err) < 0 && trace_arm_count() == 0);
	CHECK_STR(err.msg, "--trace-syscalls: unknown syscall \"nosuch\"");
	CHECK(trace_arm_configure("clone3", &err) < 0);
	CHECK(strstr(err.msg, "clone3 cannot be armed") != NULL);
}

TEST(test_strace_format)
{
	struct cv_error err = { 0 };
	CHECK(trace_arm_configure("default", &err) == 0);
	char line[256];
	struct sc_syscall s = { .sysno = SYS_openat,
				.args = { (uint64_t)(int64_t)AT_FDCWD, 0, O_WRONLY | O_CREAT | O_CLOEXEC,
					  0644 },
				.path = "/etc/pass\"wd\n" };
	strace_format(&s, 7, line, sizeof(line));
	CHECK_STR(line, "[7] openat(AT_FDCWD, \"/etc/pass\\\"wd\\x0a\", O_WRONLY|O_CREAT|O_CLOEXEC, "
			"0644) = ?");
	char *argv[] = { "cat", "/x", NULL };
	struct sc_syscall e = { .sysno = SYS_execve, .path = "/bin/cat", .argv = argv };
	strace_format(&e, 2, line, sizeof(line));
	CHECK_STR(line, "[2] execve(\"/bin/cat\", [\"cat\", \"/x\"]) = ?");
	/* Cut short, never overrun. */
	char small[16];
	strace_format(&e, 2, small, sizeof(small));
	CHECK(strlen(small) == sizeof(small) - 1);
	/* Allowlists only take armed syscalls. */
	char *bad[] = { "read" };
	CHECK(strace_configure(true, bad, 1, &err) < 0);
	CHECK_STR(err.msg, "error configuring strace: syscall \"read\" is not armed "
			   "(cvisor --trace-syscalls)");
	char *ok[] = { "openat" };
	CHECK(strace_configure(true, ok, 1, &err) == 0);
	CHECK(strace_wants(SYS_openat) && !strace_wants(SYS_chdir));
	CHECK(strace_configure(true, NULL, 0, &err) == 0 && strace_wants(SYS_chdir));
	CHECK(strace_configure(false, NULL, 0, &err) == 0 && !strace_wants(SYS_openat));
	CHECK(trace_arm_configure("none", &err) == 0);
	CHECK(strace_configure(true, NULL, 0, &err) < 0);
}

UNIT_MAIN(test_header_is_little_endian_and_round_trips, test_message_types_follow_the_reference,
	  test_arm_configure, test_strace_format)
