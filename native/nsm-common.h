/*
 * nsm-emulator native common code, shared by the preload shim (nsm-shim.c) and the seccomp
 * supervisor (nsm-supervisor.c): the NSM ioctl ABI, the server's frame format, connecting to the
 * server with a deadline, and the Linux driver's NSM_IOCTL_RAW steps (drivers/misc/nsm.c) written
 * once against "copy from / to the caller's memory" callbacks, so both routes give the same errno
 * for the same input.
 *
 * Every function is static: each program includes this header once. The includer may define
 * NSM_CLOSE(fd) (the shim does, because it replaces close()) before including it.
 */
#ifndef NSM_COMMON_H
#define NSM_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef NSM_CLOSE
#define NSM_CLOSE(fd) close(fd)
#endif

#define NSM_IOCTL_RAW 0xC0200A00UL
#define NSM_REQUEST_MAX_SIZE 0x1000
#define NSM_RESPONSE_MAX_SIZE 0x3000
#define DEFAULT_TIMEOUT_MS 120000

struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};

struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};

/* ---- time and configuration ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* NSM_EMULATOR_TIMEOUT_MS when it is a positive integer, else the driver's 2 minutes. */
static int64_t timeout_from_env(void)
{
	const char *t = getenv("NSM_EMULATOR_TIMEOUT_MS");
	if (t != NULL && *t != '\0') {
		char *end;
		long long v = strtoll(t, &end, 10);
		if (*end == '\0' && v > 0)
			return v;
	}
	return DEFAULT_TIMEOUT_MS;
}

/* ---- frames: 4-byte big-endian length, then the body ---------------------------------------- */

static void put_be32(uint8_t *p, uint32_t n)
{
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- connecting to the server ------------------------------------------------------------------ */

/* Waits for `events` on fd; 0, or a negative errno (ETIMEDOUT past the deadline). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -EIO;
	}
}

static int connect_with_deadline(int s, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	for (;;) {
		if (connect(s, sa, len) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS) {
			int r = wait_fd(s, POLLOUT, deadline);
			if (r < 0)
				return r;
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				return -errno;
			return err == 0 ? 0 : -err;
		}
		if (errno == EAGAIN) { /* Unix socket backlog full: try again shortly */
			if (now_ms() >= deadline)
				return -ETIMEDOUT;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		return -errno;
	}
}

/*
 * A new socket connected to `addr` (a Unix socket path, "unix:PATH" or "tcp:HOST:PORT"),
 * close-on-exec and in blocking mode, or a negative errno.
 */
static int connect_address(const char *addr, int64_t timeout)
{
	if (addr == NULL || *addr == '\0')
		return -ENXIO;
	int64_t deadline = now_ms() + timeout;
	int s = -1, r;

	if (strncmp(addr, "tcp:", 4) == 0) {
		char host[256];
		const char *hp = addr + 4, *port;
		size_t hl;
		if (hp[0] == '[') {
			const char *close_br = strchr(hp, ']');
			if (close_br == NULL || close_br[1] != ':')
				return -EINVAL;
			hl = (size_t)(close_br - hp - 1);
			hp++;
			port = close_br + 2;
		} else {
			const char *colon = strrchr(hp, ':');
			if (colon == NULL)
				return -EINVAL;
			hl = (size_t)(colon - hp);
			port = colon + 1;
		}
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, hp, hl);
		host[hl] = '\0';
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			return -EHOSTUNREACH;
		r = -ECONNREFUSED;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (s < 0) {
				r = -errno;
				continue;
			}
			r = connect_with_deadline(s, ai->ai_addr, ai->ai_addrlen, deadline);
			if (r == 0)
				break;
			NSM_CLOSE(s);
			s = -1;
		}
		freeaddrinfo(res);
		if (s < 0)
			return r;
		int one = 1;
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(path) >= sizeof(sun.sun_path))
			return -ENAMETOOLONG;
		strcpy(sun.sun_path, path);
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s < 0)
			return -errno;
		r = connect_with_deadline(s, (struct sockaddr *)&sun, sizeof(sun), deadline);
		if (r < 0) {
			NSM_CLOSE(s);
			return r;
		}
	}
	int fl = fcntl(s, F_GETFL);
	if (fl >= 0)
		fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
	return s;
}

/* ---- NSM_IOCTL_RAW, step by step as the driver does it --------------------------------------- */

/* Copies n bytes between the caller's memory at `remote` and ours: 0, or a negative errno
   (EFAULT for memory the caller cannot access). */
typedef int (*nsm_copy_in_fn)(void *ctx, void *local, uint64_t remote, size_t n);
typedef int (*nsm_copy_out_fn)(void *ctx, uint64_t remote, const void *local, size_t n);

/*
 * The driver's steps before the device is asked: read the nsm_raw argument (EFAULT), refuse a
 * request over 0x1000 bytes (EMSGSIZE), read the request (EFAULT). On success `frame` holds the
 * request as one server frame of *frame_len bytes (frame must hold 4 + NSM_REQUEST_MAX_SIZE).
 */
static int nsm_raw_begin(nsm_copy_in_fn copy_in, void *ctx, uint64_t argp, struct nsm_raw *raw, uint8_t *frame, size_t *frame_len)
{
	int r = copy_in(ctx, raw, argp, sizeof(*raw));
	if (r < 0)
		return r;
	if (raw->request.len > NSM_REQUEST_MAX_SIZE)
		return -EMSGSIZE;
	uint32_t n = (uint32_t)raw->request.len;
	r = copy_in(ctx, frame + 4, raw->request.addr, n);
	if (r < 0)
		return r;
	put_be32(frame, n);
	*frame_len = 4 + (size_t)n;
	return 0;
}

/*
 * The driver's steps after the device answered with resp_len bytes (at most
 * NSM_RESPONSE_MAX_SIZE): cut the answer to the caller's response.len, copy it out, and write
 * the argument back with the new length (EFAULT when either cannot be written).
 */
/*
 * Writes the response bytes, then the argument struct, into process `pid` in one
 * process_vm_writev. It stops at the first byte it cannot write, so an unwritable response
 * buffer leaves the argument unwritten, as in the kernel. 0; -EFAULT when either part cannot be
 * written; another negative errno when the call itself is refused (e.g. by seccomp or ptrace rules).
 */
static int nsm_write_response_and_arg(pid_t pid, uint64_t resp_dst, const void *resp, size_t resp_n, uint64_t arg_dst, const void *arg, size_t arg_n)
{
	if ((resp_n != 0 && resp_dst == 0) || arg_dst == 0)
		return -EFAULT;
	struct iovec local[2] = { { (void *)resp, resp_n }, { (void *)arg, arg_n } };
	struct iovec remote[2] = { { (void *)(uintptr_t)resp_dst, resp_n }, { (void *)(uintptr_t)arg_dst, arg_n } };
	int skip = resp_n == 0;
	ssize_t k = process_vm_writev(pid, local + skip, 2 - (unsigned long)skip, remote + skip, 2 - (unsigned long)skip, 0);
	if (k == (ssize_t)(resp_n + arg_n))
		return 0;
	if (k >= 0 || errno == EFAULT)
		return -EFAULT;
	return -errno;
}

static int nsm_raw_finish(nsm_copy_out_fn copy_out, void *ctx, uint64_t argp, struct nsm_raw *raw, const uint8_t *resp, uint32_t resp_len)
{
	if (raw->response.len > resp_len)
		raw->response.len = resp_len;
	int r = copy_out(ctx, raw->response.addr, resp, (size_t)raw->response.len);
	if (r < 0)
		return r;
	return copy_out(ctx, argp, raw, sizeof(*raw));
}

#endif
