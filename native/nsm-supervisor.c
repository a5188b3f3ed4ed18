/*
 * nsm-emulator seccomp supervisor: runs any program (statically linked, musl, Go, raw system
 * calls) with an emulated /dev/nsm, by answering its system calls from outside the process.
 *
 *   nsm-supervisor [--name NAME] [--] PROGRAM [ARGS...]   (server address in NSM_EMULATOR_SOCKET)
 *   nsm-supervisor --probe                                 checks this kernel supports the route
 *
 * The supervisor forks; the child installs a seccomp filter with SECCOMP_RET_USER_NOTIF and
 * SECCOMP_FILTER_FLAG_NEW_LISTENER, hands the listener descriptor back, and executes PROGRAM.
 * The filter (inherited by every thread, fork and exec of PROGRAM) reports only open, openat,
 * openat2 and ioctl with a command of the NSM family (type 0x0A); everything else runs at full
 * speed in the kernel. The supervisor then:
 *
 *   - open/openat/openat2: reads the path from the program (process_vm_readv). When its last
 *     component is "nsm" and its directory resolves, as the kernel would resolve it for the
 *     program (cwd or dirfd, root, openat2 RESOLVE_* flags), to the program's /dev, it connects
 *     to the server and injects a descriptor with SECCOMP_IOCTL_NOTIF_ADDFD (atomically answering
 *     the call with SECCOMP_ADDFD_FLAG_SEND). Every other open continues in the kernel untouched.
 *   - ioctl on an injected descriptor: performs the driver's NSM_IOCTL_RAW steps (nsm-common.h)
 *     on the program's memory and answers with the driver's errno; other ioctls continue.
 *
 * The injected descriptor is an empty epoll instance, so read() and write() on it fail with
 * EINVAL as they do on the real device, with no system call reported to us. It carries a marker
 * (an eventfd registered with a per-open cookie) that /proc/PID/fdinfo/FD shows, so a dup(), a
 * descriptor inherited by a fork child or across exec, or one used by another thread is the same
 * device. The supervisor keeps no reference to it: it is also registered in a private epoll, and
 * when the program has closed every copy the kernel drops it from there, which is how the
 * supervisor learns it may close that server connection.
 *
 * Every notification is checked with SECCOMP_IOCTL_NOTIF_ID_VALID after the program's memory or
 * /proc entries are read and before the program's memory is written, so a process that died (and
 * whose pid was reused) is never acted on. Requests go to the server asynchronously; while one
 * waits for its answer, other threads' opens are served.
 *
 * The supervisor is PROGRAM's parent and a child subreaper (so orphaned descendants stay its
 * children and ptrace-relational rules allow reading their memory). It passes on signals sent to
 * it by another process, and exits as PROGRAM did (same code, or killed by the same signal). If
 * descendants still run under the filter when PROGRAM exits, a copy of the supervisor keeps
 * serving them in the background.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsm-common.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#else
#error "nsm-supervisor supports x86_64 and aarch64"
#endif

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#ifndef __NR_openat2
#define __NR_openat2 437
#endif

/* openat2's struct open_how and RESOLVE_* flags (linux/openat2.h, not in every libc's headers). */
struct nsm_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};
#define NSM_RESOLVE_BENEATH 0x08
#define NSM_RESOLVE_IN_ROOT 0x10

#define NSM_IOCTL_TYPE_MASK 0xff00u
#define NSM_IOCTL_TYPE 0x0a00u

static const char *name = "nsm-supervisor";
static const char *server;       /* NULL in probe mode */
static int64_t timeout_value;

static int listener = -1;        /* seccomp notification descriptor */
static int loop_ep = -1;         /* our event loop */
static int gc_ep = -1;           /* holds every injected descriptor, to see when it is released */
static int marker = -1;          /* eventfd each injected descriptor holds, tagged with its cookie */
static int sig_fd = -1;
static uint64_t nonce;           /* high 32 bits of every cookie of this run */
static uint32_t next_seq = 1;
static struct seccomp_notif_sizes sizes;
static int warned_memory;

/* Event loop tags (epoll data). Connections use their own address. */
#define TAG_LISTENER ((uint64_t)1)
#define TAG_SIGNAL ((uint64_t)2)

/* ---- connections ------------------------------------------------------------------------------ */

/* An ioctl sent to the server, waiting for its answer; the program's thread is blocked in it. */
struct pending {
	uint64_t id;
	pid_t pid;
	uint64_t argp;
	struct nsm_raw raw;
	int64_t deadline;
	struct pending *next;
};

/* One open of the device: a server connection and the cookie its descriptor carries. */
struct conn {
	int mark;     /* garbage collection: not seen referenced yet */
	uint64_t cookie;
	int sock;     /* -1 once broken */
	int broken;
	struct pending *head, *tail;
	/* receive state for the answer at the head of the queue */
	uint8_t hdr[4];
	uint32_t hdr_got;
	uint32_t body_len, body_got;
	uint8_t body[NSM_RESPONSE_MAX_SIZE];
	/* probe mode: the far end of a socketpair, answered by echo */
	int echo;
	struct conn *next;
};

static struct conn *conns;

/* ---- messages ----------------------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(buf, sizeof(buf), "%s: ", name);
	if (n < 0)
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = strlen(buf);
	if (len + 1 < sizeof(buf))
		buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
}

/* ---- responding to notifications ------------------------------------------------------------------- */

static int id_valid(uint64_t id)
{
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void respond(uint64_t id, int64_t val, int error, uint32_t flags)
{
	struct seccomp_notif_resp r;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.val = val;
	r.error = error;
	r.flags = flags;
	/* ENOENT: the program was killed or the call interrupted meanwhile; nothing to answer. */
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

static void let_kernel_run(uint64_t id)
{
	respond(id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

static void fail_call(uint64_t id, int err)
{
	respond(id, -1, -err, 0);
}

/* ---- the program's memory --------------------------------------------------------------------- */

static int mem_read(pid_t pid, void *dst, uint64_t src, size_t n)
{
	if (n == 0)
		return 0;
	if (src == 0)
		return -EFAULT;
	struct iovec local = { dst, n }, remote = { (void *)(uintptr_t)src, n };
	ssize_t k = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (k == (ssize_t)n)
		return 0;
	if (k >= 0 || errno == EFAULT)
		return -EFAULT;
	return -errno;
}

/* Access refused (not EFAULT): a process we may not trace, e.g. one that made itself non-dumpable. */
static int memory_refused(int r, pid_t pid)
{
	if (r != -EPERM && r != -EACCES && r != -ESRCH)
		return 0;
	if (!warned_memory) {
		warned_memory = 1;
		say("cannot read the memory of process %d (%s); its /dev/nsm calls are not emulated "
		    "(see docs/server.md: ptrace restrictions, non-dumpable processes)", (int)pid, strerror(-r));
	}
	return 1;
}

struct mem_ctx {
	pid_t pid;
	int held; /* copy_out_cb: the response, waiting for the argument struct */
	uint64_t dst;
	const void *src;
	size_t n;
};

static int copy_in_cb(void *ctx, void *dst, uint64_t src, size_t n)
{
	return mem_read(((struct mem_ctx *)ctx)->pid, dst, src, n);
}

/* nsm_raw_finish's copy_out: the first call (the response) is held back and written together with
   the second (the argument struct), in one system call. */
static int copy_out_cb(void *ctx, uint64_t dst, const void *src, size_t n)
{
	struct mem_ctx *m = ctx;
	if (!m->held) {
		m->held = 1;
		m->dst = dst;
		m->src = src;
		m->n = n;
		return 0;
	}
	return nsm_write_response_and_arg(m->pid, m->dst, m->src, m->n, dst, src, n);
}

/* Reads a NUL-terminated string a page at a time (so a string ending just before an unmapped
   page is still read): its length, or -EFAULT / -ENAMETOOLONG / another negative errno. */
static ssize_t read_string(pid_t pid, uint64_t addr, char *buf, size_t cap)
{
	size_t got = 0;
	if (addr == 0)
		return -EFAULT;
	while (got < cap) {
		uint64_t at = addr + got;
		size_t chunk = 4096 - (size_t)(at & 4095);
		if (chunk > cap - got)
			chunk = cap - got;
		int r = mem_read(pid, buf + got, at, chunk);
		if (r < 0)
			return r;
		void *nul = memchr(buf + got, '\0', chunk);
		if (nul != NULL)
			return (ssize_t)((char *)nul - buf);
		got += chunk;
	}
	return -ENAMETOOLONG;
}

/* ---- which descriptor is the device ---------------------------------------------------------------- */

/* Reads a small /proc file into buf (NUL-terminated); its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < cap) {
		ssize_t k = read(fd, buf + got, cap - 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
		if ((size_t)k < cap - 1 - got + (size_t)k)
			break; /* a short read of a /proc file is its end */
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Calls fn for every "data: COOKIE" of this run in an epoll fdinfo text. */
static void each_cookie(const char *text, void (*fn)(uint64_t cookie, void *arg), void *arg)
{
	for (const char *p = strstr(text, "tfd:"); p != NULL; p = strstr(p + 4, "tfd:")) {
		const char *d = strstr(p, "data:");
		const char *eol = strchr(p, '\n');
		if (d == NULL || (eol != NULL && d > eol))
			continue;
		uint64_t v = strtoull(d + 5, NULL, 16);
		if ((v & 0xffffffff00000000ull) == nonce)
			fn(v, arg);
	}
}

static void take_cookie(uint64_t cookie, void *arg)
{
	*(uint64_t *)arg = cookie;
}

static struct conn *conn_by_cookie(uint64_t cookie)
{
	for (struct conn *c = conns; c != NULL; c = c->next)
		if (c->cookie == cookie)
			return c;
	return NULL;
}

/* The device connection behind descriptor fd of process pid, or NULL when it is something else. */
static struct conn *device_of(pid_t pid, int fd, int *ours)
{
	char path[64], text[2048];
	*ours = 0;
	if (fd < 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	if (read_small(path, text, sizeof(text)) <= 0)
		return NULL;
	uint64_t cookie = 0;
	each_cookie(text, take_cookie, &cookie);
	if (cookie == 0)
		return NULL;
	*ours = 1;
	return conn_by_cookie(cookie);
}

/* ---- connections ------------------------------------------------------------------------------ */

static void conn_close_socket(struct conn *c)
{
	if (c->sock >= 0) {
		epoll_ctl(loop_ep, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
		c->sock = -1;
	}
	if (c->echo >= 0) {
		epoll_ctl(loop_ep, EPOLL_CTL_DEL, c->echo, NULL);
		close(c->echo);
		c->echo = -1;
	}
}

/* The stream can no longer be trusted: the first waiting call gets `first`, the others EIO, and
   every later call on this device EIO (as the shim does). */
static void conn_break(struct conn *c, int first)
{
	c->broken = 1;
	conn_close_socket(c);
	int err = first;
	while (c->head != NULL) {
		struct pending *p = c->head;
		c->head = p->next;
		fail_call(p->id, err);
		free(p);
		err = EIO;
	}
	c->tail = NULL;
}

static void conn_free(struct conn *c)
{
	conn_break(c, EIO);
	free(c);
}

static void keep_cookie(uint64_t cookie, void *arg)
{
	(void)arg;
	struct conn *c = conn_by_cookie(cookie);
	if (c != NULL)
		c->mark = 0; /* still referenced */
}

/* Drops the connections of devices the program no longer holds any descriptor of. */
static void collect_garbage(void)
{
	if (conns == NULL)
		return;
	char path[64];
	size_t cap = 4096;
	for (struct conn *c = conns; c != NULL; c = c->next)
		cap += 128;
	char *text = malloc(cap);
	if (text == NULL)
		return;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", gc_ep);
	if (read_small(path, text, cap) < 0) {
		free(text);
		return;
	}
	for (struct conn *c = conns; c != NULL; c = c->next)
		c->mark = 1;
	each_cookie(text, keep_cookie, NULL);
	free(text);
	for (struct conn **pc = &conns; *pc != NULL;) {
		struct conn *c = *pc;
		if (c->mark && c->head == NULL) {
			*pc = c->next;
			conn_free(c);
		} else {
			c->mark = 0;
			pc = &c->next;
		}
	}
}

/* A new server connection (or, probing, a socketpair we answer ourselves). */
static struct conn *conn_open(int *err)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*err = ENOMEM;
		return NULL;
	}
	c->echo = -1;
	if (server == NULL) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			*err = errno;
			free(c);
			return NULL;
		}
		c->sock = sp[0];
		c->echo = sp[1];
	} else {
		c->sock = connect_address(server, timeout_value);
		if (c->sock < 0) {
			*err = -c->sock;
			free(c);
			return NULL;
		}
	}
	c->cookie = nonce | next_seq++;
	fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	epoll_ctl(loop_ep, EPOLL_CTL_ADD, c->sock, &ev);
	if (c->echo >= 0) {
		struct epoll_event ee = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)&c->echo };
		epoll_ctl(loop_ep, EPOLL_CTL_ADD, c->echo, &ee);
	}
	return c;
}

/* Probe mode: the far end of the pair sends every frame straight back. */
static void echo_frames(int fd)
{
	uint8_t buf[4 + NSM_REQUEST_MAX_SIZE];
	ssize_t k = recv(fd, buf, sizeof(buf), 0);
	if (k > 0)
		send(fd, buf, (size_t)k, MSG_NOSIGNAL);
}

/* ---- the ioctl --------------------------------------------------------------------------------- */

static void send_frame(struct conn *c, const uint8_t *frame, size_t len, int64_t deadline, int *err)
{
	*err = 0;
	while (len > 0) {
		ssize_t w = send(c->sock, frame, len, MSG_NOSIGNAL);
		if (w > 0) {
			frame += w;
			len -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(c->sock, POLLOUT, deadline);
			if (r < 0) {
				*err = r == -ETIMEDOUT ? ETIMEDOUT : EIO;
				return;
			}
		} else {
			*err = EIO;
			return;
		}
	}
}

static void on_ioctl(const struct seccomp_notif *n)
{
	int ours;
	struct conn *c = device_of(n->pid, (int)n->data.args[0], &ours);
	/* Answers below go to this notification id only (a stale id is refused by the kernel);
	   what was read from the process is checked with ID_VALID before it is acted on. */
	if (!ours) {
		let_kernel_run(n->id); /* not the device: the kernel answers (ENOTTY, ...) */
		return;
	}
	if (c == NULL || c->broken) {
		fail_call(n->id, EIO);
		return;
	}
	if ((uint32_t)n->data.args[1] != (uint32_t)NSM_IOCTL_RAW) {
		fail_call(n->id, EINVAL);
		return;
	}
	struct pending *p = calloc(1, sizeof(*p));
	uint8_t frame[4 + NSM_REQUEST_MAX_SIZE];
	size_t frame_len = 0;
	struct mem_ctx ctx = { .pid = n->pid };
	if (p == NULL) {
		fail_call(n->id, ENOMEM);
		return;
	}
	int r = nsm_raw_begin(copy_in_cb, &ctx, n->data.args[2], &p->raw, frame, &frame_len);
	if (!id_valid(n->id)) { /* what we read (fdinfo, memory) may belong to a process that has gone */
		free(p);
		return;
	}
	if (r < 0) {
		free(p);
		fail_call(n->id, memory_refused(r, n->pid) ? EIO : -r);
		return;
	}
	p->id = n->id;
	p->pid = n->pid;
	p->argp = n->data.args[2];
	p->deadline = now_ms() + timeout_value;
	int err;
	send_frame(c, frame, frame_len, p->deadline, &err);
	if (err != 0) {
		free(p);
		conn_break(c, err);
		fail_call(n->id, err);
		return;
	}
	if (c->tail != NULL)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
}

/* The answer to the head of c's queue is complete in c->body. */
static void finish_head(struct conn *c)
{
	struct pending *p = c->head;
	c->head = p->next;
	if (c->head == NULL)
		c->tail = NULL;
	uint32_t kept = c->body_len < NSM_RESPONSE_MAX_SIZE ? c->body_len : NSM_RESPONSE_MAX_SIZE;
	if (id_valid(p->id)) { /* never write into a process that is no longer the one that asked */
		struct mem_ctx ctx = { .pid = p->pid };
		int r = nsm_raw_finish(copy_out_cb, &ctx, p->argp, &p->raw, c->body, kept);
		if (r < 0)
			fail_call(p->id, memory_refused(r, p->pid) ? EIO : -r);
		else
			respond(p->id, 0, 0, 0);
	}
	free(p);
}

/* Takes n bytes of the server's stream: frame headers, answers (beyond what a caller can receive,
   discarded), each complete answer finishing the call at the head of the queue. 0, or -1 once the
   connection is broken. */
static int feed(struct conn *c, const uint8_t *in, size_t n)
{
	while (n > 0) {
		if (c->hdr_got < 4) {
			size_t take = 4 - c->hdr_got < n ? 4 - c->hdr_got : n;
			memcpy(c->hdr + c->hdr_got, in, take);
			c->hdr_got += (uint32_t)take;
			in += take;
			n -= take;
			if (c->hdr_got < 4)
				return 0;
			c->body_len = get_be32(c->hdr);
			c->body_got = 0;
		}
		size_t take = c->body_len - c->body_got < n ? c->body_len - c->body_got : n;
		if (c->body_got < NSM_RESPONSE_MAX_SIZE) {
			size_t keep = NSM_RESPONSE_MAX_SIZE - c->body_got < take ? NSM_RESPONSE_MAX_SIZE - c->body_got : take;
			memcpy(c->body + c->body_got, in, keep);
		}
		c->body_got += (uint32_t)take;
		in += take;
		n -= take;
		if (c->body_got == c->body_len) {
			c->hdr_got = 0;
			if (c->head == NULL) { /* an answer nobody asked for: out of step */
				conn_break(c, EIO);
				return -1;
			}
			finish_head(c);
		}
	}
	return 0;
}

static void on_readable(struct conn *c)
{
	uint8_t in[8192];
	for (;;) {
		ssize_t k = recv(c->sock, in, sizeof(in), 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (k <= 0) {
			conn_break(c, EIO); /* the server has gone */
			return;
		}
		if (feed(c, in, (size_t)k) < 0 || (size_t)k < sizeof(in))
			return; /* drained for now: the loop is level-triggered and calls again */
	}
}

/* Waiting calls past their deadline get ETIMEDOUT; their connection is dead (as in the shim). */
static int64_t expire(void)
{
	int64_t now = now_ms(), next = -1;
	for (struct conn *c = conns; c != NULL; c = c->next) {
		if (c->head == NULL)
			continue;
		if (c->head->deadline <= now)
			conn_break(c, ETIMEDOUT);
		else if (next < 0 || c->head->deadline < next)
			next = c->head->deadline;
	}
	return next < 0 ? -1 : next - now;
}

/* ---- open ------------------------------------------------------------------------------------- */

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Whether `path`, opened by process pid relative to dirfd with openat2 `resolve` flags, names
 * the device: its last component is "nsm" and its directory is the program's /dev, resolved by
 * the kernel itself from the program's cwd, dirfd or root with the same resolve flags.
 */
static int is_device(pid_t pid, int dirfd, const char *path, uint64_t resolve)
{
	size_t len = strlen(path);
	if (len < 3 || path[len - 1] == '/')
		return 0;
	const char *slash = strrchr(path, '/');
	const char *last = slash != NULL ? slash + 1 : path;
	if (strcmp(last, "nsm") != 0)
		return 0;
	if (resolve == 0 && strcmp(path, "/dev/nsm") == 0)
		return 1;

	char dir[PATH_MAX], base[64];
	size_t dlen = slash != NULL ? (size_t)(slash - path) : 0;
	if (slash == path)
		dlen = 1; /* "/nsm": the directory is "/" */
	if (dlen >= sizeof(dir))
		return 0;
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if (dlen == 0)
		strcpy(dir, ".");

	uint64_t how_resolve = resolve;
	const char *rel = dir;
	if (dir[0] == '/') {
		if (resolve & NSM_RESOLVE_BENEATH)
			return 0; /* the kernel refuses absolute paths here (EXDEV) */
		if (resolve & NSM_RESOLVE_IN_ROOT) {
			snprintf(base, sizeof(base), "/proc/%d/fd/%d", (int)pid, dirfd);
		} else {
			snprintf(base, sizeof(base), "/proc/%d/root", (int)pid);
			how_resolve |= NSM_RESOLVE_IN_ROOT;
		}
		while (*rel == '/')
			rel++;
		if (*rel == '\0')
			rel = ".";
	} else if (dirfd == AT_FDCWD) {
		snprintf(base, sizeof(base), "/proc/%d/cwd", (int)pid);
	} else {
		snprintf(base, sizeof(base), "/proc/%d/fd/%d", (int)pid, dirfd);
	}
	int bfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return 0;
	struct nsm_open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .mode = 0, .resolve = how_resolve };
	int dfd = (int)syscall(__NR_openat2, bfd, rel, &how, sizeof(how));
	close(bfd);
	if (dfd < 0)
		return 0;
	struct stat got, dev;
	char devpath[64];
	snprintf(devpath, sizeof(devpath), "/proc/%d/root/dev", (int)pid);
	int yes = fstat(dfd, &got) == 0 && stat(devpath, &dev) == 0 && same_file(&got, &dev);
	close(dfd);
	return yes;
}

static void on_open(const struct seccomp_notif *n)
{
	int dirfd = AT_FDCWD;
	uint64_t path_addr, flags, resolve = 0;
	switch (n->data.nr) {
#ifdef __NR_open
	case __NR_open:
		path_addr = n->data.args[0];
		flags = n->data.args[1];
		break;
#endif
	case __NR_openat:
		dirfd = (int)n->data.args[0];
		path_addr = n->data.args[1];
		flags = n->data.args[2];
		break;
	default: { /* openat2(dirfd, path, how, size) */
		struct nsm_open_how how;
		if (n->data.args[3] < sizeof(how) || mem_read(n->pid, &how, n->data.args[2], sizeof(how)) < 0) {
			let_kernel_run(n->id); /* the kernel gives its own error */
			return;
		}
		dirfd = (int)n->data.args[0];
		path_addr = n->data.args[1];
		flags = how.flags;
		resolve = how.resolve;
		break;
	}
	}
	char path[PATH_MAX];
	ssize_t r = read_string(n->pid, path_addr, path, sizeof(path));
	int device = r >= 0 && is_device(n->pid, dirfd, path, resolve);
	if (!id_valid(n->id))
		return;
	if (!device) {
		if (r < 0 && r != -EFAULT && r != -ENAMETOOLONG)
			memory_refused((int)r, n->pid);
		let_kernel_run(n->id);
		return;
	}
	/* Flags the device node itself refuses, as the real open would. */
	if ((flags & O_CREAT) && (flags & O_EXCL)) {
		fail_call(n->id, EEXIST);
		return;
	}
	if (flags & O_DIRECTORY) {
		fail_call(n->id, ENOTDIR);
		return;
	}
	collect_garbage();
	int err = 0;
	struct conn *c = conn_open(&err);
	if (c == NULL) {
		say("cannot reach the NSM server at %s: %s", server ? server : "(probe)", strerror(err));
		fail_call(n->id, ENXIO);
		return;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event mark = { .events = 0, .data.u64 = c->cookie };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, marker, &mark) < 0 || epoll_ctl(gc_ep, EPOLL_CTL_ADD, ep, &mark) < 0) {
		err = errno;
		if (ep >= 0)
			close(ep);
		conn_free(c);
		fail_call(n->id, err);
		return;
	}
	c->next = conns;
	conns = c;
	struct seccomp_notif_addfd add;
	memset(&add, 0, sizeof(add));
	add.id = n->id;
	add.flags = SECCOMP_ADDFD_FLAG_SEND;
	add.srcfd = (uint32_t)ep;
	add.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
	int got = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
	err = errno;
	close(ep); /* from now on only the program holds it */
	if (got < 0 && err != ENOENT)
		fail_call(n->id, err); /* e.g. EMFILE: the descriptor table is full */
	/* On failure the descriptor is released with our copy; the next collection frees c. */
}

/* ---- notifications ------------------------------------------------------------------------------ */

static void on_notification(void)
{
	struct seccomp_notif *n = calloc(1, sizeof(struct seccomp_notif) > sizes.seccomp_notif ? sizeof(struct seccomp_notif) : sizes.seccomp_notif);
	if (n == NULL)
		return;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n) < 0) {
		free(n); /* ENOENT: the caller was interrupted before we got it */
		return;
	}
	if (n->data.nr == __NR_ioctl)
		on_ioctl(n);
	else if (n->data.nr == __NR_openat || n->data.nr == __NR_openat2
#ifdef __NR_open
		 || n->data.nr == __NR_open
#endif
	)
		on_open(n);
	else
		let_kernel_run(n->id);
	free(n);
}

/* ---- the filter (runs in the child, before exec) ---------------------------------------------- */

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

#ifdef __NR_open
#define NR_OPEN_OR_NONE __NR_open
#else
#define NR_OPEN_OR_NONE 0xffffffffu /* no such call on this architecture */
#endif

struct install_result {
	int ok;
	int err;
	char what[96];
};

static int install_filter(struct install_result *res)
{
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 0, 8),
		/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_OPEN_OR_NONE, 7, 0),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 6, 0),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 5, 0),
		/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		/* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		/* 8 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, NSM_IOCTL_TYPE_MASK),
		/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NSM_IOCTL_TYPE, 1, 0),
		/* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	/* jump targets: 1 -> 10 (allow), 3/4/5 -> 11 (notify), 6 -> 10 when not ioctl */
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	int fd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (fd < 0 && errno == EINVAL) {
		/* Before Linux 5.19: no killable wait (see docs/server.md for what that changes). */
		flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
		fd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	}
	if (fd < 0 && errno == EACCES) {
		/* Not privileged: a filter needs no_new_privs (setuid programs then run without their privileges). */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
			fd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	}
	if (fd < 0) {
		res->err = errno;
		snprintf(res->what, sizeof(res->what), "seccomp(SET_MODE_FILTER, NEW_LISTENER) with a USER_NOTIF filter");
		return -1;
	}
	res->ok = 1;
	return fd;
}

/* ---- probe: the child's side ---------------------------------------------------------------------- */

/* Exercises every path the real route uses; exit status 0, or the number of the failed step. */
static int probe_child(void)
{
	int fd = open("/dev/nsm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 10;
	char b;
	if (read(fd, &b, 1) != -1 || errno != EINVAL)
		return 11;
	static const uint8_t req[] = { 0x65, 'p', 'r', 'o', 'b', 'e' };
	uint8_t resp[16];
	struct nsm_raw raw = { { (uintptr_t)req, sizeof(req) }, { (uintptr_t)resp, sizeof(resp) } };
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) != 0)
		return 12;
	if (raw.response.len != sizeof(req) || memcmp(resp, req, sizeof(req)) != 0)
		return 13;
	if (ioctl(fd, NSM_IOCTL_RAW, NULL) != -1 || errno != EFAULT)
		return 14;
	int d = dup(fd);
	close(fd);
	raw.response.len = sizeof(resp);
	if (d < 0 || ioctl(d, NSM_IOCTL_RAW, &raw) != 0)
		return 15;
	int p[2];
	if (pipe(p) != 0 || ioctl(p[0], NSM_IOCTL_RAW, &raw) != -1 || errno != ENOTTY)
		return 16;
	int null = open("/dev/null", O_RDONLY);
	if (null < 0)
		return 17;
	return 0;
}

/* ---- process management ------------------------------------------------------------------------ */

static const int forwarded[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT };

/* Leaves the way PROGRAM did: its exit code, or killed by its signal. */
static void exit_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none); /* PROGRAM dumped its own core if it was going to */
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static int listener_hung_up(void)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLIN);
}

static int send_result(int sock, const struct install_result *res, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)res, sizeof(*res) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int recv_result(int sock, struct install_result *res)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { res, sizeof(*res) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	memset(res, 0, sizeof(*res));
	ssize_t k;
	do
		k = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (k < 0 && errno == EINTR);
	if (k != (ssize_t)sizeof(*res))
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t k = read(fd, &v, sizeof(v));
		(void)k;
		close(fd);
	}
	v ^= (uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ms();
	return v | 1; /* never zero */
}

/* Runs argv (or, probing, probe_child) under the filter and serves it; returns only on setup failure. */
static int supervise(char **argv)
{
	int probing = argv == NULL;
	sigset_t blocked, old;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&blocked, forwarded[i]);
	sigprocmask(SIG_BLOCK, &blocked, &old);

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		say("socketpair: %s", strerror(errno));
		return 125;
	}
	pid_t child = fork();
	if (child < 0) {
		say("fork: %s", strerror(errno));
		return 125;
	}
	if (child == 0) {
		close(sp[0]);
		struct install_result res;
		memset(&res, 0, sizeof(res));
		int fd = install_filter(&res);
		send_result(sp[1], &res, fd);
		if (fd < 0)
			_exit(125);
		close(fd);
		close(sp[1]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (probing)
			_exit(probe_child());
		execvp(argv[0], argv);
		int e = errno;
		say("cannot run '%s': %s", argv[0], e == ENOENT ? "not found" : strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	close(sp[1]);
	struct install_result res;
	listener = recv_result(sp[0], &res);
	close(sp[0]);
	if (listener < 0) {
		int status;
		waitpid(child, &status, 0);
		if (res.what[0] != '\0')
			say("the kernel refuses seccomp user notification: %s: %s", res.what, strerror(res.err));
		else
			say("the filtered child did not report back");
		return probing ? 1 : 125;
	}

	/* Linux 6.6+: hand the CPU straight to the supervisor and back (the program waits anyway). */
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (uint64_t)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		memset(&sizes, 0, sizeof(sizes));
	nonce = (uint64_t)random_u32() << 32;
	marker = eventfd(0, EFD_CLOEXEC);
	gc_ep = epoll_create1(EPOLL_CLOEXEC);
	loop_ep = epoll_create1(EPOLL_CLOEXEC);
	sig_fd = signalfd(-1, &blocked, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!probing) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0); /* the program has its own; we must not hold its pipes open */
			dup2(null, 1);
			close(null);
		}
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTENER };
	epoll_ctl(loop_ep, EPOLL_CTL_ADD, listener, &ev);
	ev.data.u64 = TAG_SIGNAL;
	epoll_ctl(loop_ep, EPOLL_CTL_ADD, sig_fd, &ev);

	int main_status = -1, listening = 1, lingering = 0;
	for (;;) {
		int64_t wait = expire();
		struct epoll_event evs[16];
		int k = epoll_wait(loop_ep, evs, 16, wait > INT_MAX ? INT_MAX : (int)wait);
		if (k < 0 && errno != EINTR) {
			say("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < k; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_LISTENER) {
				if (evs[i].events & EPOLLIN)
					on_notification();
				else if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
					epoll_ctl(loop_ep, EPOLL_CTL_DEL, listener, NULL);
					listening = 0; /* nobody runs under the filter any more */
				}
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					if (si.ssi_signo == SIGCHLD)
						continue;
					/* Sent by a process (not by the terminal, which signals PROGRAM itself): pass it on. */
					if (!lingering && main_status < 0 && (int32_t)si.ssi_code <= 0)
						kill(child, (int)si.ssi_signo);
				}
				int status;
				pid_t w;
				while ((w = waitpid(-1, &status, WNOHANG)) > 0)
					if (w == child && !lingering)
						main_status = status;
			} else {
				struct conn *c = NULL;
				for (struct conn *x = conns; x != NULL; x = x->next) {
					if ((uint64_t)(uintptr_t)x == tag) {
						c = x;
						break;
					}
					if ((uint64_t)(uintptr_t)&x->echo == tag) {
						echo_frames(x->echo);
						break;
					}
				}
				if (c != NULL && c->sock >= 0)
					on_readable(c);
			}
		}
		if (main_status >= 0 && !lingering) {
			if (probing) {
				if (WIFEXITED(main_status) && WEXITSTATUS(main_status) == 0)
					return 0;
				say("the seccomp route does not work here: probe step %d failed",
				    WIFEXITED(main_status) ? WEXITSTATUS(main_status) : 128 + WTERMSIG(main_status));
				return 1;
			}
			if (!listening || listener_hung_up())
				exit_like(main_status);
			/* Descendants still run under the filter: keep serving them from a background copy. */
			pid_t bg = fork();
			if (bg != 0)
				exit_like(main_status);
			lingering = 1;
			setsid();
			int null = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (null >= 0) {
				dup2(null, 2);
				close(null);
			}
		}
		if (lingering && (!listening || listener_hung_up())) {
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			_exit(0);
		}
	}
	return 125;
}

int main(int argc, char **argv)
{
	int i = 1, probe = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--probe") == 0)
			probe = 1;
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (argv[i][0] == '-') {
			say("unknown option %s (usage: nsm-supervisor [--name NAME] [--] PROGRAM [ARGS...] | --probe)", argv[i]);
			return 125;
		} else
			break;
	}
	timeout_value = timeout_from_env();
	if (probe)
		return supervise(NULL);
	if (i >= argc) {
		say("no program given (usage: nsm-supervisor [--name NAME] [--] PROGRAM [ARGS...])");
		return 125;
	}
	server = getenv("NSM_EMULATOR_SOCKET");
	if (server == NULL || *server == '\0') {
		say("NSM_EMULATOR_SOCKET is not set: it must name the server (a Unix socket path, unix:PATH or tcp:HOST:PORT)");
		return 125;
	}
	return supervise(argv + i);
}
