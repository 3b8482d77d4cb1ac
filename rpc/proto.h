#pragma once
/* The wire protocol both ends of rpc/ agree on: the server (server.c,
 * conn.c, call.c through rpc_internal.h) and the client (client.c).
 * MessagePack-RPC: a request is [0, msgid, method, [arg]], a response
 * [1, msgid, error, result], a notification [2, method, params]. */

enum rpc_msg_type {
	RPC_MSG_REQUEST = 0,
	RPC_MSG_RESPONSE = 1,
	RPC_MSG_NOTIFY = 2,
};

/* Most fds one request may declare (the seed's urpc maxFiles). */
#define RPC_MAX_FILES 128
/* Control space of one recvmsg: the kernel's SCM_MAX_FD. */
#define RPC_RECV_MAX_FDS 253
/* Bytes reserved in the unpacker for one read while a message is being
 * received (large messages arrive in few reads). */
#define RPC_READ_CHUNK (64 * 1024)
