/*
 * nsm-emulator preload shim: lets an unmodified, dynamically linked program use an emulated
 * Nitro Secure Module. Loaded with LD_PRELOAD, it answers opens of /dev/nsm with a connection
 * to an `nsm-emulator serve` server and carries each NSM_IOCTL_RAW over that connection,
 * reproducing the Linux driver's ioctl semantics (drivers/misc/nsm.c):
 *
 *   - cmd other than NSM_IOCTL_RAW on the device: EINVAL (the generic FIOCLEX, FIONCLEX,
 *     FIONBIO and FIOASYNC are handled as the VFS handles them for a character device);
 *   - unreadable argument: EFAULT; request longer than 0x1000 bytes: EMSGSIZE, and nothing is
 *     sent; unreadable request bytes: EFAULT, nothing sent;
 *   - the response is cut to the caller's response.len, and response.len is written back; an
 *     unwritable response buffer or argument: EFAULT (after the request has taken effect, as
 *     in the kernel);
 *   - server gone or connection broken: EIO, at once and on every later ioctl on that
 *     descriptor; no answer within NSM_EMULATOR_TIMEOUT_MS (default 120000, the driver's own
 *     timeout): ETIMEDOUT;
 *   - read(), write() and their variants (readv, writev, pread, pwrite, pread64, pwrite64,
 *     __read_chk): the driver has no read or write, so the VFS answers EBADF when the
 *     descriptor was not opened for that direction, else EINVAL, and nothing reaches the
 *     server. (Only descriptors this process opened, or has already used for an ioctl, are
 *     known; a dup or an inherited descriptor becomes known at its first ioctl.)
 *
 * Environment:
 *   NSM_EMULATOR_SOCKET      server address: a Unix socket path (optionally "unix:PATH") or
 *                            "tcp:HOST:PORT". Unset or empty: the shim does nothing at all.
 *   NSM_EMULATOR_DEVICE      path to intercept (default /dev/nsm), compared as a string.
 *   NSM_EMULATOR_TIMEOUT_MS  per-ioctl timeout in milliseconds.
 *
 * Each open gets its own connection. Transactions on one connection are serialized by a mutex
 * (so many threads may share one descriptor); the server serializes across connections, as the
 * driver's mutex does. After fork the child opens its own connection on first use, so parent
 * and child never interleave frames on one socket. Descriptors made by dup() are recognized by
 * the identity of the socket they refer to; a descriptor inherited across exec is recognized by
 * the address of its peer.
 *
 * Wire framing (both ways): 4-byte big-endian length, then that many bytes of raw CBOR.
 * The ioctl ABI, the framing, connecting and the driver's ioctl steps are shared with the seccomp
 * supervisor (nsm-supervisor.c) through nsm-common.h.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* One connection to the server, shared by every descriptor that refers to it. */
struct conn {
	pthread_mutex_t io; /* held for a whole request/response exchange */
	int sock;           /* private close-on-exec descriptor the exchanges use */
	int direct;         /* sock is a Unix socket: the kernel copies to and from the caller's buffers */
	size_t send_whole;  /* largest frame a Unix socket queues as one buffer (copied whole or not at all) */
	pid_t pid;          /* process that opened sock */
	int broken;         /* an exchange failed: answer EIO from now on */
	int accmode;        /* O_RDONLY, O_WRONLY or O_RDWR, as opened (O_RDWR when adopted) */
	int refs;           /* descriptors + exchanges in flight; guarded by table_lock */
	dev_t dev;          /* identity of the socket the application's descriptors refer to */
	ino_t ino;
	int64_t sock_timeout_ms; /* SO_RCVTIMEO/SO_SNDTIMEO set on sock (0: not yet) */
};

/* Application descriptor -> connection. */
struct entry {
	int fd;
	struct conn *c;
	struct entry *next;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static int entry_count; /* read without the lock on the fast path */
static int vm_copy_unusable;

/* ---- the process id and this thread's stack, known without a system call -------------------- */

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/*
 * The pid, cached in a page that fork (and any clone without CLONE_VM) hands to the child
 * zeroed, so a child made any way at all reads 0 there and asks the kernel. The value is written
 * only where it is certainly this process's: at load time and in the fork handler below (which
 * also covers a system that accepts MADV_WIPEONFORK but ignores it, as older QEMU user mode
 * did). It is never written on a cache miss, because a vfork child shares this memory with its
 * parent. NULL when the kernel has no MADV_WIPEONFORK (before 4.14): getpid() every time.
 */
static pid_t *pid_page;

static void pid_cache_init(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (madvise(p, 4096, MADV_WIPEONFORK) != 0) {
		munmap(p, 4096);
		return;
	}
	*(pid_t *)p = getpid();
	pid_page = p;
}

static void pid_cache_reset(void)
{
	if (pid_page != NULL)
		__atomic_store_n(pid_page, getpid(), __ATOMIC_RELAXED);
}

static pid_t self_pid(void)
{
	pid_t p = pid_page != NULL ? __atomic_load_n(pid_page, __ATOMIC_RELAXED) : 0;
	return p != 0 ? p : getpid();
}

/*
 * This thread's stack as [lo, hi) (hi == 1: unknown). The main thread's is its stack mapping as
 * /proc/self/maps shows it at load time (the mapping only grows downwards, so that range stays
 * mapped; calls from deeper frames take the checked copies). Other threads take theirs from
 * pthread_getattr_np at their first NSM ioctl: exact for stacks glibc allocates (the guard page
 * is below lo) and for stacks a program supplies. (That first call allocates memory, as other
 * steps of the shim do: none of this is async-signal-safe, and neither is calling the shim from a
 * signal handler that interrupted malloc.)
 */
static __thread __attribute__((tls_model("initial-exec"))) uintptr_t stack_lo, stack_hi;

/* Called at load time, on the main thread: its stack mapping, from /proc/self/maps. */
static void main_stack_init(void)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	stack_hi = 1;
	FILE *f = fopen("/proc/self/maps", "re");
	if (f == NULL)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && here >= lo && here < hi) {
			if (strstr(line, "[stack]") != NULL) {
				stack_lo = lo;
				stack_hi = hi;
			}
			break;
		}
	}
	fclose(f);
}

/*
 * True when [p, p + n) lies in the live part of the current thread's stack: between our own
 * frame and the stack's top, where the caller's frames are. That memory is mapped and writable
 * for as long as this call runs, so it is read and written with plain loads and stores, the
 * way copy_from_user would succeed on it. Anything else (heap, another stack, a signal stack,
 * a coroutine's stack) goes through the checked copies below.
 */
static int on_live_stack(uint64_t p, size_t n)
{
	if (__atomic_load_n(&stack_hi, __ATOMIC_RELAXED) == 0) {
		pthread_attr_t a;
		void *addr;
		size_t size;
		stack_hi = 1;
		if (pthread_getattr_np(pthread_self(), &a) == 0) {
			if (pthread_attr_getstack(&a, &addr, &size) == 0) {
				stack_lo = (uintptr_t)addr;
				stack_hi = stack_lo + size;
			}
			pthread_attr_destroy(&a);
		}
	}
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return sp >= stack_lo && sp < stack_hi && p >= sp && p + n >= p && p + n <= stack_hi;
}

/* ---- the real libc functions --------------------------------------------------------------- */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*close_fn)(int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
#ifdef __GLIBC__ /* musl defines pread64/pwrite64 as macros and has no __read_chk */
typedef ssize_t (*pread64_fn)(int, void *, size_t, off64_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*read_chk_fn)(int, void *, size_t, size_t);
#endif

static void *next_symbol(const char *name, void **slot)
{
	void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (f == NULL) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELEASE);
	}
	return f;
}

#define REAL(type, name)                                      \
	static type real_##name(void)                             \
	{                                                         \
		static void *slot;                                    \
		return (type)next_symbol(#name, &slot);               \
	}

REAL(open_fn, open)
REAL(open_fn, open64)
REAL(openat_fn, openat)
REAL(openat_fn, openat64)
REAL(open2_fn, __open_2)
REAL(open2_fn, __open64_2)
REAL(openat2_fn, __openat_2)
REAL(openat2_fn, __openat64_2)
REAL(ioctl_fn, ioctl)
REAL(close_fn, close)
REAL(read_fn, read)
REAL(write_fn, write)
REAL(readv_fn, readv)
REAL(readv_fn, writev)
REAL(pread_fn, pread)
REAL(pwrite_fn, pwrite)
#ifdef __GLIBC__
REAL(pread64_fn, pread64)
REAL(pwrite64_fn, pwrite64)
REAL(read_chk_fn, __read_chk)
#endif

static int sys_close(int fd)
{
	close_fn f = real_close();
	return f ? f(fd) : -1;
}

/* The code shared with the seccomp supervisor: the ioctl ABI, frames, connecting, the driver's steps. */
#define NSM_CLOSE(fd) sys_close(fd)
#include "nsm-common.h"

/* ---- configuration --------------------------------------------------------------------------- */

static const char *server_address(void)
{
	const char *a = getenv("NSM_EMULATOR_SOCKET");
	return a != NULL && *a != '\0' ? a : NULL;
}

static int is_device_path(const char *path)
{
	const char *dev = getenv("NSM_EMULATOR_DEVICE");
	if (dev == NULL || *dev == '\0')
		dev = "/dev/nsm";
	return path != NULL && strcmp(path, dev) == 0 && server_address() != NULL;
}

static int64_t timeout_ms(void)
{
	return timeout_from_env();
}

/* ---- socket I/O with a deadline ------------------------------------------------------------ */

/*
 * The socket is in blocking mode with SO_RCVTIMEO/SO_SNDTIMEO set to the ioctl timeout, so a
 * whole exchange is normally one send() and one recv(), with no poll(). EAGAIN means the socket
 * timeout expired or the descriptor was made non-blocking (FIONBIO on the application's
 * descriptor reaches the shared file description); both fall back to poll() with the deadline.
 */
static void set_socket_timeout(int fd, int64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_all(int fd, const uint8_t *buf, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w > 0) {
			buf += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
		} else {
			return -EIO;
		}
	}
	return 0;
}

/*
 * Reads until at least `min` bytes are in buf (at most `cap`); returns the count, or a negative
 * errno (EOF is EIO). The first recv() blocks under SO_RCVTIMEO; later ones (a frame split
 * across segments) wait with poll() for what is left of the deadline.
 */
static ssize_t recv_at_least(int fd, uint8_t *buf, size_t min, size_t cap, int64_t deadline)
{
	size_t got = 0;
	int first = 1;
	while (got < min) {
		if (!first) {
			int r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				return r;
		}
		ssize_t k = recv(fd, buf + got, cap - got, first ? 0 : MSG_DONTWAIT);
		first = 0;
		if (k > 0)
			got += (size_t)k;
		else if (k == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return -EIO;
	}
	return (ssize_t)got;
}

/* Reads exactly n bytes (or discards them when buf is NULL). EOF is EIO. */
static int recv_all(int fd, uint8_t *buf, size_t n, int64_t deadline)
{
	uint8_t sink[4096];
	while (n > 0) {
		int r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			return r;
		for (;;) {
			uint8_t *dst = buf != NULL ? buf : sink;
			size_t want = buf != NULL ? n : (n < sizeof(sink) ? n : sizeof(sink));
			ssize_t got = recv(fd, dst, want, MSG_DONTWAIT);
			if (got > 0) {
				if (buf != NULL)
					buf += got;
				n -= (size_t)got;
				if (n == 0)
					return 0;
				continue;
			}
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			return -EIO;
		}
	}
	return 0;
}

/* ---- connecting ---------------------------------------------------------------------------- */

/* A new connected socket (close-on-exec, blocking mode), or a negative errno. */
static int connect_server(void)
{
	return connect_address(server_address(), timeout_ms());
}

/* True when fd is a Unix socket connected to the configured server (an inherited NSM fd). */
static int peer_is_server(int fd)
{
	const char *addr = server_address();
	if (addr == NULL || strncmp(addr, "tcp:", 4) == 0)
		return 0;
	const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	memset(&sun, 0, sizeof(sun));
	if (getpeername(fd, (struct sockaddr *)&sun, &len) < 0 || sun.sun_family != AF_UNIX)
		return 0;
	return strncmp(sun.sun_path, path, sizeof(sun.sun_path)) == 0;
}

/* ---- the descriptor table ------------------------------------------------------------------- */

/*
 * Takes sock as c's socket and looks at what it is: over a Unix stream socket the exchange goes
 * straight from and into the caller's buffers. A frame up to half the send buffer less 64
 * bytes is queued as one buffer, copied from the caller whole or not at all (af_unix.c), which
 * is what lets an unreadable request fail with nothing sent; larger frames (only with a send
 * buffer below about 8 KiB) are copied into the shim first.
 */
static void conn_set_socket(struct conn *c, int sock)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int sndbuf = 0;
	socklen_t olen = sizeof(sndbuf);
	c->sock = sock;
	c->direct = sock >= 0 && getsockname(sock, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX;
	c->send_whole = 0;
	if (c->direct && getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, &olen) == 0 && sndbuf / 2 > 64)
		c->send_whole = (size_t)(sndbuf / 2 - 64);
}

static struct conn *conn_new(int sock, const struct stat *app)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->io, NULL);
	conn_set_socket(c, sock);
	c->pid = self_pid();
	c->accmode = O_RDWR;
	c->dev = app->st_dev;
	c->ino = app->st_ino;
	return c;
}

/* Both called with table_lock held. */
static int entry_add(int fd, struct conn *c)
{
	struct entry *e = malloc(sizeof(*e));
	if (e == NULL)
		return -1;
	e->fd = fd;
	e->c = c;
	e->next = entries;
	entries = e;
	c->refs++;
	__atomic_add_fetch(&entry_count, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Removes fd's entry; returns its connection when that dropped the last reference. */
static struct conn *entry_remove(int fd)
{
	for (struct entry **p = &entries; *p != NULL; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			struct entry *e = *p;
			struct conn *c = e->c;
			*p = e->next;
			free(e);
			__atomic_sub_fetch(&entry_count, 1, __ATOMIC_RELEASE);
			return --c->refs == 0 ? c : NULL;
		}
	}
	return NULL;
}

static void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->sock >= 0)
		sys_close(c->sock);
	pthread_mutex_destroy(&c->io);
	free(c);
}

/*
 * The connection behind fd, with a reference taken, or NULL when fd is not an NSM descriptor.
 * Stale entries (fd closed or replaced behind our back, e.g. by dup2 or close_range) are
 * dropped. With `adopt`, an unknown descriptor that refers to a known connection's socket
 * (a dup) or to a socket connected to the server (inherited across exec) becomes one.
 */
static struct conn *acquire(int fd, int adopt)
{
	struct conn *c = NULL, *dead = NULL;
	struct stat st;
	int have_st = 0;
	pthread_mutex_lock(&table_lock);
	for (struct entry *e = entries; e != NULL; e = e->next) {
		if (e->fd == fd) {
			c = e->c;
			break;
		}
	}
	if (c != NULL || adopt)
		have_st = fstat(fd, &st) == 0;
	if (c != NULL && (!have_st || st.st_dev != c->dev || st.st_ino != c->ino)) {
		dead = entry_remove(fd);
		c = NULL;
	}
	if (c == NULL && adopt && have_st && S_ISSOCK(st.st_mode)) {
		for (struct entry *e = entries; e != NULL; e = e->next) {
			if (e->c->dev == st.st_dev && e->c->ino == st.st_ino) {
				c = e->c;
				break;
			}
		}
		if (c != NULL) {
			if (entry_add(fd, c) < 0)
				c = NULL;
		} else if (peer_is_server(fd)) {
			int s = connect_server();
			if (s >= 0) {
				c = conn_new(s, &st);
				if (c == NULL || entry_add(fd, c) < 0) {
					if (c == NULL)
						sys_close(s);
					conn_free(c);
					c = NULL;
				}
			}
		}
	}
	if (c != NULL)
		c->refs++;
	pthread_mutex_unlock(&table_lock);
	conn_free(dead);
	return c;
}

static void release(struct conn *c)
{
	pthread_mutex_lock(&table_lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&table_lock);
	if (last)
		conn_free(c);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static void before_fork(void)
{
	pthread_mutex_lock(&table_lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&table_lock);
}

/* The child has one thread: locks held by vanished threads are remade; sockets are replaced
   lazily (pid differs) so the child never writes into the parent's exchanges. */
static void after_fork_child(void)
{
	pid_cache_reset();
	pthread_mutex_init(&table_lock, NULL);
	for (struct entry *e = entries; e != NULL; e = e->next)
		pthread_mutex_init(&e->c->io, NULL);
}

__attribute__((constructor)) static void shim_init(void)
{
	pid_cache_init();
	if (getpid() == (pid_t)syscall(SYS_gettid))
		main_stack_init();
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* ---- user memory, checked as copy_from_user / copy_to_user would ---------------------------- */

static int copy_in(void *dst, uint64_t src, size_t n)
{
	if (n == 0)
		return 0;
	if (src == 0)
		return -EFAULT;
	if (!__atomic_load_n(&vm_copy_unusable, __ATOMIC_RELAXED)) {
		struct iovec local = { dst, n }, remote = { (void *)(uintptr_t)src, n };
		ssize_t k = process_vm_readv(self_pid(), &local, 1, &remote, 1, 0);
		if (k == (ssize_t)n)
			return 0;
		if (k >= 0 || errno == EFAULT)
			return -EFAULT;
		__atomic_store_n(&vm_copy_unusable, 1, __ATOMIC_RELAXED); /* e.g. blocked by seccomp */
	}
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return 0;
}

static int copy_out(uint64_t dst, const void *src, size_t n)
{
	if (n == 0)
		return 0;
	if (dst == 0)
		return -EFAULT;
	if (!__atomic_load_n(&vm_copy_unusable, __ATOMIC_RELAXED)) {
		struct iovec local = { (void *)src, n }, remote = { (void *)(uintptr_t)dst, n };
		ssize_t k = process_vm_writev(self_pid(), &local, 1, &remote, 1, 0);
		if (k == (ssize_t)n)
			return 0;
		if (k >= 0 || errno == EFAULT)
			return -EFAULT;
		__atomic_store_n(&vm_copy_unusable, 1, __ATOMIC_RELAXED);
	}
	memcpy((void *)(uintptr_t)dst, src, n);
	return 0;
}

/*
 * The response bytes, then the argument struct, in one process_vm_writev
 * (nsm_write_response_and_arg, shared with the supervisor); plain stores where that call is refused.
 */
static int copy_out_response(uint64_t resp_dst, const void *resp, size_t resp_n, uint64_t arg_dst, const void *arg, size_t arg_n)
{
	if (!__atomic_load_n(&vm_copy_unusable, __ATOMIC_RELAXED)) {
		int r = nsm_write_response_and_arg(self_pid(), resp_dst, resp, resp_n, arg_dst, arg, arg_n);
		if (r == 0 || r == -EFAULT)
			return r;
		__atomic_store_n(&vm_copy_unusable, 1, __ATOMIC_RELAXED);
	}
	int r = copy_out(resp_dst, resp, resp_n);
	return r < 0 ? r : copy_out(arg_dst, arg, arg_n);
}

static int copy_in_cb(void *ctx, void *dst, uint64_t src, size_t n)
{
	(void)ctx;
	return copy_in(dst, src, n);
}

/* nsm_raw_finish's copy_out: the first call (the response) is held back and written together
   with the second (the argument struct) by copy_out_response, in one system call. */
struct deferred_out {
	int held;
	uint64_t dst;
	const void *src;
	size_t n;
};

static int copy_out_cb(void *ctx, uint64_t dst, const void *src, size_t n)
{
	struct deferred_out *d = ctx;
	if (!d->held) {
		*d = (struct deferred_out){ .held = 1, .dst = dst, .src = src, .n = n };
		return 0;
	}
	return copy_out_response(d->dst, d->src, d->n, dst, src, n);
}

/* ---- one exchange --------------------------------------------------------------------------- */

/* Makes c ready for an exchange (its own socket after a fork, the socket timeout set) and sets
   the exchange's deadline; EIO when the connection is broken. Called with c->io held. */
static int exchange_start(struct conn *c, int64_t *deadline)
{
	if (c->pid != self_pid()) {
		/* Forked: leave the parent's socket to the parent, talk over our own. */
		if (c->sock >= 0)
			sys_close(c->sock);
		conn_set_socket(c, connect_server());
		c->pid = self_pid();
		c->broken = c->sock < 0;
		c->sock_timeout_ms = 0;
	}
	if (c->broken)
		return -EIO;
	int64_t timeout = timeout_ms();
	*deadline = now_ms() + timeout;
	if (c->sock_timeout_ms != timeout) {
		set_socket_timeout(c->sock, timeout);
		c->sock_timeout_ms = timeout;
	}
	return 0;
}

/* The stream can no longer be trusted: the connection is dead from now on. */
static int exchange_failed(struct conn *c, int r)
{
	c->broken = 1;
	sys_close(c->sock);
	c->sock = -1;
	return r == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
}

/* Sends one request frame and reads the answer frame into `in` (4-byte header, then at most
   NSM_RESPONSE_MAX_SIZE bytes of body; a longer body is read and dropped). Called with c->io held. */
static int exchange(struct conn *c, const uint8_t *frame, size_t frame_len, uint8_t *in, uint32_t *resp_len)
{
	int64_t deadline;
	int r = exchange_start(c, &deadline);
	if (r < 0)
		return r;
	r = send_all(c->sock, frame, frame_len, deadline);
	if (r == 0) {
		/* Usually the whole answer arrives in the first recv(). The server sends nothing but
		   answers, so nothing past this frame can be in the socket. */
		ssize_t got = recv_at_least(c->sock, in, 4, 4 + NSM_RESPONSE_MAX_SIZE, deadline);
		if (got < 0) {
			r = (int)got;
		} else {
			size_t n = get_be32(in);
			size_t keep = n < NSM_RESPONSE_MAX_SIZE ? n : NSM_RESPONSE_MAX_SIZE;
			if ((size_t)got > 4 + n) {
				r = -EIO; /* bytes beyond the answer: the stream is out of step */
			} else if ((size_t)got < 4 + keep) {
				ssize_t more = recv_at_least(c->sock, in + got, 4 + keep - (size_t)got, 4 + keep - (size_t)got, deadline);
				if (more < 0)
					r = (int)more;
				else
					got += more;
			}
			if (r == 0 && (size_t)got < 4 + n)
				r = recv_all(c->sock, NULL, 4 + n - (size_t)got, deadline);
			*resp_len = (uint32_t)keep;
		}
	}
	return r < 0 ? exchange_failed(c, r) : 0;
}

/* ---- one exchange over a Unix socket, straight from and into the caller's buffers ----------- */

/* Drops the first k bytes of an iovec array in place; returns the new count. */
static int iov_advance(struct iovec *iov, int cnt, size_t k)
{
	int i = 0;
	while (i < cnt && k >= iov[i].iov_len)
		k -= iov[i++].iov_len;
	if (i < cnt) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
		iov[i].iov_len -= k;
	}
	for (int j = 0; i + j < cnt; j++)
		iov[j] = iov[i + j];
	return cnt - i;
}

/*
 * Sends the frame header and the caller's request bytes in one sendmsg: the kernel reads the
 * request from the caller's memory, and an unreadable buffer fails the call with EFAULT before
 * anything is queued (a Unix stream socket queues a message this small as one buffer, copied
 * whole or not at all), so the stream stays intact: -EFAULT means nothing was sent.
 */
static int send_request(int fd, const uint8_t hdr[4], uint64_t addr, uint32_t n, int64_t deadline)
{
	struct iovec iov[2] = { { (void *)hdr, 4 }, { (void *)(uintptr_t)addr, n } };
	int cnt = n > 0 ? 2 : 1;
	size_t sent = 0;
	for (;;) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w >= 0) {
			sent += (size_t)w;
			if (sent == 4 + (size_t)n)
				return 0;
			cnt = iov_advance(iov, cnt, (size_t)w);
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EFAULT) {
			return sent == 0 ? -EFAULT : -EIO;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
		} else {
			return -EIO;
		}
	}
}

/*
 * Reads one answer frame: its header into hdr, and as much of its body as the caller keeps
 * (`keep` bytes at most) straight into the caller's buffer, with the kernel checking that
 * buffer as copy_to_user does; the rest of the body is read and dropped. Returns 0, -EFAULT
 * (the buffer is not writable: the whole frame has still been read, so the stream stays in
 * step) or another negative errno. *body_n is the frame's body length.
 */
static int recv_answer(int fd, uint8_t hdr[4], uint64_t addr, size_t keep, uint32_t *body_n, int64_t deadline)
{
	uint8_t *user = (uint8_t *)(uintptr_t)addr;
	size_t got = 0;  /* frame bytes read so far */
	size_t want = keep; /* body bytes to put in the caller's buffer (capped by the frame once known) */
	uint32_t n = 0;
	int first = 1, fault = 0;
	while (got < 4 || got - 4 < want) {
		struct iovec iov[2];
		int cnt = 0;
		if (got < 4)
			iov[cnt++] = (struct iovec){ hdr + got, 4 - got };
		size_t body = got > 4 ? got - 4 : 0;
		if (want > body)
			iov[cnt++] = (struct iovec){ user + body, want - body };
		if (!first) {
			int r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				return r;
		}
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t k = recvmsg(fd, &m, first ? 0 : MSG_DONTWAIT);
		first = 0;
		if (k > 0) {
			int had_header = got >= 4;
			got += (size_t)k;
			if (!had_header && got >= 4) {
				n = get_be32(hdr);
				if (want > n)
					want = n;
			}
			if (got >= 4 && got - 4 > n)
				return -EIO; /* bytes beyond the answer: the stream is out of step */
		} else if (k == 0) {
			return -EIO;
		} else if (errno == EFAULT) {
			/* Nothing of this read was taken from the socket: read the rest locally, then fail. */
			fault = 1;
			break;
		} else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			return -EIO;
		}
	}
	if (got < 4) {
		ssize_t k = recv_at_least(fd, hdr + got, 4 - got, 4 - got, deadline);
		if (k < 0)
			return (int)k;
		got = 4;
		n = get_be32(hdr);
	}
	if (got - 4 < n) {
		int r = recv_all(fd, NULL, n - (got - 4), deadline);
		if (r < 0)
			return r;
	}
	*body_n = n;
	return fault ? -EFAULT : 0;
}

/*
 * NSM_IOCTL_RAW over a Unix socket in as few system calls as the bare exchange needs: the
 * argument struct is read and written back with plain loads and stores when it lies in the
 * live part of this thread's stack (else with the checked copies), the request goes from the
 * caller's buffer into the socket and the answer from the socket into the caller's buffer,
 * with the kernel checking both. The driver's order and errors are kept: EMSGSIZE or an
 * unreadable request before anything is sent; an unwritable response buffer is EFAULT after
 * the request took effect, with the argument left unwritten.
 */
#define NOT_DIRECT 1 /* nsm_ioctl_direct: the connection is not a Unix socket after all */

static int nsm_ioctl_direct(struct conn *c, void *argp)
{
	struct nsm_raw raw;
	uint64_t arg = (uint64_t)(uintptr_t)argp;
	int stack = on_live_stack(arg, sizeof(raw));
	if (stack) {
		memcpy(&raw, argp, sizeof(raw));
	} else {
		int r = copy_in(&raw, arg, sizeof(raw));
		if (r < 0)
			return r;
	}
	if (raw.request.len > NSM_REQUEST_MAX_SIZE)
		return -EMSGSIZE;
	uint32_t n = (uint32_t)raw.request.len;
	uint64_t keep = raw.response.len < NSM_RESPONSE_MAX_SIZE ? raw.response.len : NSM_RESPONSE_MAX_SIZE;
	uint8_t hdr[4];
	uint32_t body_n = 0;
	int64_t deadline;
	put_be32(hdr, n);
	pthread_mutex_lock(&c->io);
	int r = exchange_start(c, &deadline);
	if (r == 0 && !c->direct) {
		/* A fork child reconnected over TCP (the address changed): the copying path. */
		pthread_mutex_unlock(&c->io);
		return NOT_DIRECT;
	}
	if (r == 0) {
		if (4 + (size_t)n <= c->send_whole) {
			r = send_request(c->sock, hdr, raw.request.addr, n, deadline);
		} else {
			uint8_t frame[4 + NSM_REQUEST_MAX_SIZE];
			memcpy(frame, hdr, 4);
			r = copy_in(frame + 4, raw.request.addr, n);
			if (r == 0)
				r = send_all(c->sock, frame, 4 + (size_t)n, deadline);
		}
		if (r == 0)
			r = recv_answer(c->sock, hdr, raw.response.addr, (size_t)keep, &body_n, deadline);
		if (r < 0 && r != -EFAULT)
			r = exchange_failed(c, r);
	}
	pthread_mutex_unlock(&c->io);
	if (r < 0)
		return r;
	uint32_t kept = body_n < NSM_RESPONSE_MAX_SIZE ? body_n : NSM_RESPONSE_MAX_SIZE;
	if (raw.response.len > kept)
		raw.response.len = kept;
	if (stack) {
		memcpy(argp, &raw, sizeof(raw));
		return 0;
	}
	return copy_out(arg, &raw, sizeof(raw));
}

static int nsm_ioctl(int fd, struct conn *c, unsigned long cmd, void *argp)
{
	/* Generic ioctls the VFS answers before the driver sees them. */
	if (cmd == FIOCLEX || cmd == FIONCLEX || cmd == FIONBIO) {
		ioctl_fn f = real_ioctl();
		return f(fd, cmd, argp) == 0 ? 0 : -errno;
	}
	if (cmd == FIOASYNC) {
		int on;
		int r = copy_in(&on, (uint64_t)(uintptr_t)argp, sizeof(on));
		if (r < 0)
			return r;
		return on ? -ENOTTY : 0;
	}
	if (cmd != NSM_IOCTL_RAW)
		return -EINVAL;
	if (c->direct) {
		int r = nsm_ioctl_direct(c, argp);
		if (r != NOT_DIRECT)
			return r;
	}

	struct nsm_raw raw;
	uint8_t frame[4 + NSM_REQUEST_MAX_SIZE];
	uint8_t in[4 + NSM_RESPONSE_MAX_SIZE];
	uint32_t resp_len = 0;
	size_t frame_len = 0;
	int r = nsm_raw_begin(copy_in_cb, NULL, (uint64_t)(uintptr_t)argp, &raw, frame, &frame_len);
	if (r < 0)
		return r;

	pthread_mutex_lock(&c->io);
	r = exchange(c, frame, frame_len, in, &resp_len);
	pthread_mutex_unlock(&c->io);
	if (r < 0)
		return r;
	struct deferred_out out = { 0 };
	return nsm_raw_finish(copy_out_cb, &out, (uint64_t)(uintptr_t)argp, &raw, in + 4, resp_len);
}

/* ---- open ----------------------------------------------------------------------------------- */

static int nsm_open(int flags)
{
	if ((flags & O_CREAT) && (flags & O_EXCL)) {
		errno = EEXIST;
		return -1;
	}
	if (flags & O_DIRECTORY) {
		errno = ENOTDIR;
		return -1;
	}
	int fd = connect_server();
	if (fd < 0) {
		const char *addr = server_address();
		fprintf(stderr, "nsm-emulator shim: cannot reach the NSM server at NSM_EMULATOR_SOCKET=%s: %s\n",
			addr ? addr : "", strerror(-fd));
		errno = ENXIO;
		return -1;
	}
	if (!(flags & O_CLOEXEC))
		fcntl(fd, F_SETFD, 0);
	int sock = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	struct stat st;
	struct conn *c = NULL;
	if (sock >= 0 && fstat(fd, &st) == 0)
		c = conn_new(sock, &st);
	if (c != NULL)
		c->accmode = flags & O_ACCMODE;
	if (c == NULL) {
		if (sock >= 0)
			sys_close(sock);
		sys_close(fd);
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&table_lock);
	struct conn *stale = entry_remove(fd); /* an fd number closed behind our back */
	int ok = entry_add(fd, c) == 0;
	pthread_mutex_unlock(&table_lock);
	conn_free(stale);
	if (!ok) {
		conn_free(c);
		sys_close(fd);
		errno = ENOMEM;
		return -1;
	}
	return fd;
}

static int has_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/*
 * open() and openat() take a third argument only when the flags create a file; read it from the
 * caller's variadic arguments in that case (must expand inside the variadic function itself).
 */
#define READ_OPTIONAL_MODE(flags, mode)                  \
	do {                                             \
		if (has_mode(flags)) {                   \
			va_list ap_;                     \
			va_start(ap_, flags);            \
			(mode) = (mode_t)va_arg(ap_, int); \
			va_end(ap_);                     \
		}                                        \
	} while (0)

static int pass_open(open_fn f, const char *path, int flags, mode_t mode)
{
	if (f == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return f(path, flags, mode);
}

static int pass_openat(openat_fn f, int dirfd, const char *path, int flags, mode_t mode)
{
	if (f == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return f(dirfd, path, flags, mode);
}

static int at_device(int dirfd, const char *path)
{
	return path != NULL && (path[0] == '/' || dirfd == AT_FDCWD) && is_device_path(path);
}

EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	READ_OPTIONAL_MODE(flags, mode);
	if (is_device_path(path))
		return nsm_open(flags);
	return pass_open(real_open(), path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	READ_OPTIONAL_MODE(flags, mode);
	if (is_device_path(path))
		return nsm_open(flags);
	return pass_open(real_open64(), path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	READ_OPTIONAL_MODE(flags, mode);
	if (at_device(dirfd, path))
		return nsm_open(flags);
	return pass_openat(real_openat(), dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	READ_OPTIONAL_MODE(flags, mode);
	if (at_device(dirfd, path))
		return nsm_open(flags);
	return pass_openat(real_openat64(), dirfd, path, flags, mode);
}

/* The _FORTIFY_SOURCE entry points (no mode argument). */
EXPORT int __open_2(const char *path, int flags)
{
	if (is_device_path(path))
		return nsm_open(flags);
	open2_fn f = real___open_2();
	return f ? f(path, flags) : pass_open(real_open(), path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
	if (is_device_path(path))
		return nsm_open(flags);
	open2_fn f = real___open64_2();
	return f ? f(path, flags) : pass_open(real_open64(), path, flags, 0);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	if (at_device(dirfd, path))
		return nsm_open(flags);
	openat2_fn f = real___openat_2();
	return f ? f(dirfd, path, flags) : pass_openat(real_openat(), dirfd, path, flags, 0);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	if (at_device(dirfd, path))
		return nsm_open(flags);
	openat2_fn f = real___openat64_2();
	return f ? f(dirfd, path, flags) : pass_openat(real_openat64(), dirfd, path, flags, 0);
}

/* ---- ioctl and close ------------------------------------------------------------------------ */

EXPORT int ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *argp = va_arg(ap, void *);
	va_end(ap);
	ioctl_fn f = real_ioctl();
	if (cmd != NSM_IOCTL_RAW && __atomic_load_n(&entry_count, __ATOMIC_ACQUIRE) == 0)
		return f(fd, cmd, argp);
	struct conn *c = acquire(fd, cmd == NSM_IOCTL_RAW);
	if (c == NULL)
		return f(fd, cmd, argp);
	int saved = errno;
	int r = nsm_ioctl(fd, c, cmd, argp);
	release(c);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	errno = saved;
	return 0;
}

EXPORT int close(int fd)
{
	if (__atomic_load_n(&entry_count, __ATOMIC_ACQUIRE) != 0) {
		pthread_mutex_lock(&table_lock);
		struct conn *last = entry_remove(fd);
		pthread_mutex_unlock(&table_lock);
		conn_free(last);
	}
	return sys_close(fd);
}

/* ---- read and write: the driver has neither -------------------------------------------------- */

/*
 * The errno the kernel gives read() (writing == 0) or write() (writing == 1) on this descriptor
 * when it is an NSM descriptor: EBADF if it was not opened for that direction, else EINVAL
 * (the VFS refuses before any driver code runs, as nsm.c has no read/write). 0 for any other
 * descriptor. Only exact descriptors in the table are looked up: no system call for others.
 */
static int nsm_rw_errno(int fd, int writing)
{
	if (__atomic_load_n(&entry_count, __ATOMIC_ACQUIRE) == 0)
		return 0;
	struct conn *c = acquire(fd, 0);
	if (c == NULL)
		return 0;
	int acc = c->accmode;
	release(c);
	if (writing ? acc == O_RDONLY : acc == O_WRONLY)
		return EBADF;
	return EINVAL;
}

#define REFUSE_RW(fd, writing)                   \
	do {                                     \
		int e_ = nsm_rw_errno(fd, writing); \
		if (e_ != 0) {                   \
			errno = e_;              \
			return -1;               \
		}                                \
	} while (0)

#define PASS(f, ...)                \
	do {                        \
		if ((f) == NULL) {  \
			errno = ENOSYS; \
			return -1;      \
		}                   \
		return (f)(__VA_ARGS__); \
	} while (0)

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	REFUSE_RW(fd, 0);
	PASS(real_read(), fd, buf, n);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	REFUSE_RW(fd, 1);
	PASS(real_write(), fd, buf, n);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	REFUSE_RW(fd, 0);
	PASS(real_readv(), fd, iov, cnt);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REFUSE_RW(fd, 1);
	PASS(real_writev(), fd, iov, cnt);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	REFUSE_RW(fd, 0);
	PASS(real_pread(), fd, buf, n, off);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REFUSE_RW(fd, 1);
	PASS(real_pwrite(), fd, buf, n, off);
}

#ifdef __GLIBC__
EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	REFUSE_RW(fd, 0);
	PASS(real___read_chk(), fd, buf, n, buflen);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	REFUSE_RW(fd, 0);
	PASS(real_pread64(), fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REFUSE_RW(fd, 1);
	PASS(real_pwrite64(), fd, buf, n, off);
}
#endif
