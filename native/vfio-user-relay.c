/*
 * vfio-user-relay: owns the Unix socket a vfio-user client (QEMU's vfio-user-pci) connects to,
 * because the client passes file descriptors (interrupt eventfds, memory) with SCM_RIGHTS and
 * Node's sockets cannot receive them. Everything else is decided by the Node server that runs
 * this program: the relay forwards each whole vfio-user message to it over stdout, with the
 * numbers of the descriptors that came with the message, and on request (over stdin) sends
 * messages to the client, signals one of those eventfds, closes descriptors, or drops the client.
 *
 *   vfio-user-relay SOCKET-PATH
 *
 * The socket is created with mode 0600 (bind fails if the path exists: the caller removes a
 * stale socket first). One client at a time; when it disconnects, every descriptor it passed is
 * closed and the relay waits for the next one. Exits when stdin closes.
 *
 * Frames in both directions: u32 length of what follows (little-endian), u8 kind, body.
 *   to Node:   1 LISTENING | 2 CONNECTED u32 client | 3 MESSAGE u32 client u8 nfds u32 fd[nfds] bytes
 *              4 DISCONNECTED u32 client text | 5 NOTE text
 *   from Node: 1 SEND u32 client bytes | 2 SIGNAL u32 client u32 fd | 3 CLOSE u32 client u32 fd...
 *              4 DROP u32 client
 * A request naming another client than the current one is ignored (it was meant for a client
 * that has gone), as is a descriptor the current client did not pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER_SIZE 16
#define MESSAGE_MAX (1024 * 1024 + 4096) /* 1 MiB of data plus header and structure */
#define FDS_PER_MESSAGE 16
#define FDS_HELD_MAX 256
#define FRAME_MAX (MESSAGE_MAX + 64)
#define SEND_TIMEOUT_MS 10000

enum { TO_LISTENING = 1, TO_CONNECTED = 2, TO_MESSAGE = 3, TO_DISCONNECTED = 4, TO_NOTE = 5 };
enum { FROM_SEND = 1, FROM_SIGNAL = 2, FROM_CLOSE = 3, FROM_DROP = 4 };

static int client = -1;
static uint32_t client_no;
static int held[FDS_HELD_MAX];
static int nheld;

/* The message being received from the client, and the descriptors that came with it. */
static uint8_t *msg;
static size_t msg_have;
static int msg_fds[FDS_PER_MESSAGE * 4];
static int msg_nfds;

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(3); /* Node went away */
		p += w;
		n -= (size_t)w;
	}
}

/* One frame to Node: kind, then the concatenation of the given pieces. */
static void to_node(uint8_t kind, const void *a, size_t na, const void *b, size_t nb)
{
	uint8_t head[5];
	put32(head, (uint32_t)(1 + na + nb));
	head[4] = kind;
	write_all(1, head, sizeof(head));
	if (na)
		write_all(1, a, na);
	if (nb)
		write_all(1, b, nb);
}

static void note(const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	to_node(TO_NOTE, text, strlen(text), NULL, 0);
}

static int is_held(int fd)
{
	for (int i = 0; i < nheld; i++)
		if (held[i] == fd)
			return i;
	return -1;
}

static void close_held(int fd)
{
	int i = is_held(fd);
	if (i < 0)
		return;
	close(fd);
	held[i] = held[--nheld];
}

static void drop_client(const char *why)
{
	if (client < 0)
		return;
	close(client);
	client = -1;
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	nheld = 0;
	for (int i = 0; i < msg_nfds; i++)
		close(msg_fds[i]);
	msg_nfds = 0;
	msg_have = 0;
	uint8_t no[4];
	put32(no, client_no);
	to_node(TO_DISCONNECTED, no, 4, why, strlen(why));
}

/* Reads what the client has sent; forwards each complete message. */
static void client_readable(void)
{
	for (;;) {
		size_t want = HEADER_SIZE;
		if (msg_have >= HEADER_SIZE)
			want = get32(msg + 4);
		if (want < HEADER_SIZE || want > MESSAGE_MAX) {
			char why[96];
			snprintf(why, sizeof(why), "message size %zu is outside [16, %d]", want, MESSAGE_MAX);
			drop_client(why);
			return;
		}
		if (msg_have == want) {
			/* Complete: hand it over with its descriptors, which the relay now holds. */
			if (nheld + msg_nfds > FDS_HELD_MAX) {
				drop_client("the client passed more file descriptors than the relay holds");
				return;
			}
			uint8_t meta[5 + 4 * (FDS_PER_MESSAGE * 4)];
			put32(meta, client_no);
			meta[4] = (uint8_t)msg_nfds;
			for (int i = 0; i < msg_nfds; i++) {
				put32(meta + 5 + 4 * i, (uint32_t)msg_fds[i]);
				held[nheld++] = msg_fds[i];
			}
			to_node(TO_MESSAGE, meta, 5 + 4 * (size_t)msg_nfds, msg, want);
			msg_nfds = 0;
			msg_have = 0;
			continue;
		}
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MESSAGE)];
		} control;
		struct iovec iov = { msg + msg_have, want - msg_have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(client, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop_client(n == 0 ? (msg_have ? "the client closed the connection mid-message" : "the client closed the connection")
					   : strerror(errno));
			return;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (msg_nfds < (int)(sizeof(msg_fds) / sizeof(msg_fds[0])))
					msg_fds[msg_nfds++] = fd;
				else
					close(fd);
			}
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			drop_client("the client sent more file descriptors in one message than the relay accepts");
			return;
		}
		msg_have += (size_t)n;
	}
}

static void send_to_client(const uint8_t *p, size_t n)
{
	int waited = 0;
	while (n > 0 && client >= 0) {
		ssize_t w = send(client, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = { client, POLLOUT, 0 };
			if (waited >= SEND_TIMEOUT_MS) {
				drop_client("the client stopped reading");
				return;
			}
			poll(&pf, 1, 100);
			waited += 100;
			continue;
		}
		if (w < 0) {
			drop_client(strerror(errno));
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static int is_eventfd(int fd)
{
	char path[64], target[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return 1; /* no /proc: trust the server, which only signals interrupt descriptors */
	target[n] = 0;
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static void from_node(const uint8_t *f, size_t n)
{
	if (n < 5)
		return;
	uint8_t kind = f[0];
	uint32_t who = get32(f + 1);
	const uint8_t *body = f + 5;
	size_t len = n - 5;
	if (client < 0 || who != client_no)
		return;
	switch (kind) {
	case FROM_SEND:
		send_to_client(body, len);
		break;
	case FROM_SIGNAL: {
		if (len < 4)
			break;
		int fd = (int)get32(body);
		if (is_held(fd) < 0)
			break;
		if (!is_eventfd(fd)) {
			note("descriptor %d is not an eventfd: not signalled", fd);
			break;
		}
		uint64_t one = 1;
		if (write(fd, &one, sizeof(one)) != sizeof(one))
			note("signalling eventfd %d failed: %s", fd, strerror(errno));
		break;
	}
	case FROM_CLOSE:
		for (size_t i = 0; i + 4 <= len; i += 4)
			close_held((int)get32(body + i));
		break;
	case FROM_DROP:
		drop_client("closed by the server");
		break;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vfio-user-relay SOCKET-PATH\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vfio-user-relay: socket path is longer than %zu bytes\n", sizeof(sa.sun_path) - 1);
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* the socket file is created 0600 */
	int rc = lfd < 0 ? -1 : bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(lfd, 1) < 0) {
		fprintf(stderr, "vfio-user-relay: cannot listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	msg = malloc(MESSAGE_MAX);
	uint8_t *in = malloc(FRAME_MAX + 4);
	if (!msg || !in)
		return 1;
	size_t in_have = 0;
	to_node(TO_LISTENING, NULL, 0, NULL, 0);

	for (;;) {
		struct pollfd pf[2] = { { 0, POLLIN, 0 }, { client >= 0 ? client : lfd, POLLIN, 0 } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pf[0].revents) {
			ssize_t r = read(0, in + in_have, FRAME_MAX + 4 - in_have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break; /* Node closed stdin: stop */
			in_have += (size_t)r;
			size_t at = 0;
			while (in_have - at >= 4) {
				uint32_t flen = get32(in + at);
				if (flen > FRAME_MAX) {
					fprintf(stderr, "vfio-user-relay: frame of %u bytes from the server\n", flen);
					return 1;
				}
				if (in_have - at - 4 < flen)
					break;
				from_node(in + at + 4, flen);
				at += 4 + flen;
			}
			memmove(in, in + at, in_have - at);
			in_have -= at;
		}
		if (pf[1].revents) {
			if (client >= 0) {
				client_readable();
			} else {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0) {
					client = c;
					client_no++;
					uint8_t no[4];
					put32(no, client_no);
					to_node(TO_CONNECTED, no, 4, NULL, 0);
				}
			}
		}
	}
	drop_client("the server stopped");
	return 0;
}
