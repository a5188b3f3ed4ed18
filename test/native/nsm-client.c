/*
 * Test client for the /dev/nsm preload shim and the seccomp supervisor. It talks to the NSM exactly as nsm-lib does: open
 * /dev/nsm read-write and close-on-exec, then one NSM_IOCTL_RAW per request with a struct of
 * two {u64 addr, u64 len} descriptors and a 0x3000-byte response buffer. Written for the tests
 * in test/shim*.test.ts and bench/shim.bench.js; every mode prints plain text lines.
 *
 *   nsm-client [-r RESPLEN] [-e ENTRY] send HEX...      one ioctl per HEX: "ok LEN HEX" / "err NAME"
 *   nsm-client threads T N HEXA HEXB     T threads share one fd, N ioctls each (even threads HEXA,
 *                                        odd HEXB); each answer compared with a reference answer
 *   nsm-client procs                     (run several at once from the test)
 *   nsm-client errors                    errno of each faulty call, one "name ERRNO" line each
 *   nsm-client faults                    argument and buffers placed around unmapped and read-only
 *                                        pages (heap argument, buffers running into a PROT_NONE
 *                                        page, a read-only argument, an argument on a signal stack):
 *                                        "name ok LEN" / "name ERRNO" lines
 *   nsm-client unrelated PATH            open/ioctl/close of an ordinary file
 *   nsm-client wait HEX                  ioctl, "ready", wait for a stdin line, ioctl again
 *   nsm-client fork HEX                  parent and child both issue ioctls on one inherited fd
 *   nsm-client dup HEX                   ioctl through a dup() of the fd, after closing the original
 *   nsm-client bench HEX                 per stdin line "K": K ioctls, then "done"
 *   nsm-client inherit HEX               open without O_CLOEXEC, then exec "usefd FD HEX" on itself
 *   nsm-client readwrite HEX             read/write family on descriptors opened O_RDWR, O_RDONLY
 *                                        and O_WRONLY: "name ERRNO" lines, then an ioctl
 *   nsm-client [-C DIR] paths PATH...    open each PATH: "PATH ok" / "PATH ERR" (after chdir DIR)
 *   nsm-client at DIR NAME [RESOLVE]     openat (or, with RESOLVE, openat2) of NAME relative to DIR
 *   nsm-client flags                     opens with O_CREAT|O_EXCL and O_DIRECTORY
 *   nsm-client reopen N HEX              N times: open, one ioctl, close
 *   nsm-client spin ioctl|open           per stdin line "K": K FIONREAD ioctls on a pipe, or K
 *                                        open+close of /dev/null (no NSM at all), then "done"
 *
 * Built with glibc (dynamic or -static) or musl (-static) for the tests.
 * ENTRY picks the libc entry point used to open: open, open64, openat, openat64, __open_2.
 * -n 1 makes the descriptor non-blocking (FIONBIO) right after open.
 * alarm() bounds every run, so a hang fails the test instead of stalling it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSM_IOCTL_RAW 0xC0200A00UL
#define RESPONSE_MAX 0x3000

struct nsm_iovec {
	uint64_t addr, len;
};
struct nsm_raw {
	struct nsm_iovec request, response;
};

#ifdef __GLIBC__
extern int __open_2(const char *, int);
#endif

static const char *entry = "open";
static size_t resp_cap = RESPONSE_MAX;
static int nonblocking; /* -n 1: FIONBIO on the descriptor right after open */

static const char *errname(int e)
{
	switch (e) {
	case EMSGSIZE: return "EMSGSIZE";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENOTTY: return "ENOTTY";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ENOTDIR: return "ENOTDIR";
	case EXDEV: return "EXDEV";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
	}
}

static size_t unhex(const char *s, uint8_t **out)
{
	size_t n = strlen(s) / 2;
	uint8_t *b = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		b[i] = (uint8_t)v;
	}
	*out = b;
	return n;
}

static void print_hex(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static int open_nsm(void)
{
	const int flags = O_RDWR | O_CLOEXEC;
	int fd;
	if (strcmp(entry, "open64") == 0)
		fd = open64("/dev/nsm", flags);
	else if (strcmp(entry, "openat") == 0)
		fd = openat(AT_FDCWD, "/dev/nsm", flags);
	else if (strcmp(entry, "openat64") == 0)
		fd = openat64(AT_FDCWD, "/dev/nsm", flags);
#ifdef __GLIBC__
	else if (strcmp(entry, "__open_2") == 0)
		fd = __open_2("/dev/nsm", flags);
#endif
	else
		fd = open("/dev/nsm", flags);
	if (fd < 0) {
		printf("open-failed %s\n", errname(errno));
		exit(3);
	}
	if (nonblocking && ioctl(fd, FIONBIO, &nonblocking) != 0) {
		printf("fionbio-failed %s\n", errname(errno));
		exit(3);
	}
	return fd;
}

/* One ioctl the way nsm-lib does it; returns 0 or errno, and the response length. */
static int nsm_call(int fd, const uint8_t *req, size_t req_len, uint8_t *resp, size_t *resp_len)
{
	struct nsm_raw raw = {
		.request = { (uint64_t)(uintptr_t)req, req_len },
		.response = { (uint64_t)(uintptr_t)resp, *resp_len },
	};
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) != 0)
		return errno;
	if (raw.request.addr != (uint64_t)(uintptr_t)req || raw.request.len != req_len)
		return -1; /* the request descriptor must come back unchanged */
	*resp_len = raw.response.len;
	return 0;
}

static int cmd_send(int argc, char **argv)
{
	int fd = open_nsm();
	uint8_t *resp = malloc(resp_cap ? resp_cap : 1);
	for (int i = 0; i < argc; i++) {
		uint8_t *req;
		size_t n = unhex(argv[i], &req), len = resp_cap;
		int e = nsm_call(fd, req, n, resp, &len);
		if (e == 0) {
			printf("ok %zu ", len);
			print_hex(resp, len);
			printf("\n");
		} else {
			printf("err %s\n", errname(e));
		}
		free(req);
	}
	printf("close %d\n", close(fd));
	return 0;
}

struct thread_job {
	int fd, n;
	const uint8_t *req;
	size_t req_len;
	const uint8_t *expect;
	size_t expect_len;
	int mismatches, errors;
};

static void *thread_main(void *p)
{
	struct thread_job *j = p;
	uint8_t resp[RESPONSE_MAX];
	for (int i = 0; i < j->n; i++) {
		size_t len = sizeof(resp);
		int e = nsm_call(j->fd, j->req, j->req_len, resp, &len);
		if (e != 0)
			j->errors++;
		else if (len != j->expect_len || memcmp(resp, j->expect, len) != 0)
			j->mismatches++;
	}
	return NULL;
}

static int cmd_threads(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int t = atoi(argv[0]), n = atoi(argv[1]);
	uint8_t *req[2], expect[2][RESPONSE_MAX];
	size_t req_len[2], expect_len[2];
	int fd = open_nsm();
	for (int k = 0; k < 2; k++) {
		req_len[k] = unhex(argv[2 + k], &req[k]);
		expect_len[k] = RESPONSE_MAX;
		if (nsm_call(fd, req[k], req_len[k], expect[k], &expect_len[k]) != 0)
			return 4;
	}
	pthread_t *ids = calloc((size_t)t, sizeof(*ids));
	struct thread_job *jobs = calloc((size_t)t, sizeof(*jobs));
	for (int i = 0; i < t; i++) {
		int k = i % 2;
		jobs[i] = (struct thread_job){ fd, n, req[k], req_len[k], expect[k], expect_len[k], 0, 0 };
		pthread_create(&ids[i], NULL, thread_main, &jobs[i]);
	}
	int mism = 0, errs = 0;
	for (int i = 0; i < t; i++) {
		pthread_join(ids[i], NULL);
		mism += jobs[i].mismatches;
		errs += jobs[i].errors;
	}
	printf("calls %d mismatches %d errors %d\n", t * n, mism, errs);
	close(fd);
	return 0;
}

/* The faults mode: where the argument and the buffers sit in memory (see the header). Every
   successful call is DescribeNSM, compared with a first answer read the ordinary way. */
static const uint8_t faults_request[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
static int faults_fd;
static uint8_t faults_ref[RESPONSE_MAX];
static size_t faults_ref_len;

static void faults_report(const char *name, int r, const struct nsm_raw *raw)
{
	if (r != 0) {
		printf("%s %s\n", name, errname(errno));
		return;
	}
	if (raw == NULL) {
		printf("%s ok\n", name);
		return;
	}
	const uint8_t *got = (const uint8_t *)(uintptr_t)raw->response.addr;
	size_t n = (size_t)raw->response.len;
	if (n > faults_ref_len || memcmp(got, faults_ref, n) != 0)
		printf("%s ok differs\n", name);
	else if (n == faults_ref_len)
		printf("%s ok whole\n", name);
	else
		printf("%s ok cut %zu\n", name, n);
}

static void faults_on_signal(int sig)
{
	(void)sig;
	/* The argument lives on the alternate signal stack: a stack the call does not run on top of. */
	static uint8_t resp[RESPONSE_MAX];
	struct nsm_raw raw = { { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	int r = ioctl(faults_fd, NSM_IOCTL_RAW, &raw);
	faults_report("sigaltstack-arg", r, &raw);
}

static int cmd_faults(void)
{
	/* Before this process touches the device, a vfork child opens and closes it, then exits;
	   the parent's calls are unchanged (an unreadable argument is still EFAULT: a child sharing
	   our memory must not leave its pid behind for the parent's checked copies). */
	pid_t child = vfork();
	if (child == 0) {
		int cfd = open("/dev/nsm", O_RDWR | O_CLOEXEC);
		if (cfd >= 0)
			close(cfd);
		_exit(cfd >= 0 ? 0 : 1);
	}
	int status = 0;
	waitpid(child, &status, 0);
	printf("vfork-child %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
	int fd = open_nsm();
	faults_fd = fd;
	struct nsm_raw raw = { { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)faults_ref, sizeof(faults_ref) } };
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) != 0)
		return 3;
	faults_ref_len = (size_t)raw.response.len;
	long page = sysconf(_SC_PAGESIZE);
	/* Two pages: the first read-write, the second PROT_NONE. */
	uint8_t *area = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || mprotect(area + page, (size_t)page, PROT_NONE) != 0)
		return 3;
	uint8_t *edge = area + page; /* first byte that cannot be touched */
	static uint8_t resp[RESPONSE_MAX];
	int r;

	r = ioctl(fd, NSM_IOCTL_RAW, (void *)edge);
	faults_report("after-vfork-bad-arg", r, NULL);
	raw = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("after-vfork", r, &raw);

	/* The argument on the heap. */
	struct nsm_raw *heap = malloc(sizeof(*heap));
	*heap = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	r = ioctl(fd, NSM_IOCTL_RAW, heap);
	faults_report("heap-arg", r, heap);
	free(heap);

	/* The argument's last byte on the PROT_NONE page: unreadable, nothing is sent. */
	struct nsm_raw *cut = (struct nsm_raw *)(edge - sizeof(struct nsm_raw) + 1);
	r = ioctl(fd, NSM_IOCTL_RAW, cut);
	faults_report("arg-into-guard", r, NULL);

	/* The request's last byte on the PROT_NONE page: unreadable, nothing is sent. */
	uint8_t *req = edge - sizeof(faults_request) + 1;
	memcpy(req, faults_request, sizeof(faults_request) - 1);
	raw = (struct nsm_raw){ { (uintptr_t)req, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("request-into-guard", r, &raw);

	/* The request ends exactly at the guard page: fine. */
	req = edge - sizeof(faults_request);
	memcpy(req, faults_request, sizeof(faults_request));
	raw = (struct nsm_raw){ { (uintptr_t)req, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("request-at-guard", r, &raw);

	/* The response buffer runs into the guard page after 16 bytes: the request ran, EFAULT,
	   and the argument is not written back (its length stays as given). */
	raw = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)(edge - 16), sizeof(resp) } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("response-into-guard", r, &raw);
	printf("response-into-guard len %llu\n", (unsigned long long)raw.response.len);

	/* A 16-byte response buffer ending at the guard page: the answer is cut to 16 bytes. */
	raw = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)(edge - 16), 16 } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("response-cut-at-guard", r, &raw);

	/* The whole answer into a buffer that ends exactly at the guard page. */
	raw = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)(edge - faults_ref_len), faults_ref_len } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	faults_report("response-fills-to-guard", r, &raw);

	/* A read-only argument: it is read, the request runs, and writing the length back fails. */
	struct nsm_raw *ro = (struct nsm_raw *)area;
	*ro = (struct nsm_raw){ { (uintptr_t)faults_request, sizeof(faults_request) }, { (uintptr_t)resp, sizeof(resp) } };
	if (mprotect(area, (size_t)page, PROT_READ) != 0)
		return 3;
	r = ioctl(fd, NSM_IOCTL_RAW, ro);
	faults_report("readonly-arg", r, NULL);

	/* An argument on an alternate signal stack. */
	stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16 };
	struct sigaction sa = { .sa_handler = faults_on_signal, .sa_flags = SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	if (ss.ss_sp == NULL || sigaltstack(&ss, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
		return 3;
	raise(SIGUSR1);
	close(fd);
	return 0;
}

static int cmd_errors(void)
{
	int fd = open_nsm();
	static uint8_t big[0x1001], resp[RESPONSE_MAX];
	static const uint8_t describe_nsm[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	struct nsm_raw raw;

	raw = (struct nsm_raw){ { (uintptr_t)big, sizeof(big) }, { (uintptr_t)resp, sizeof(resp) } };
	printf("emsgsize %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	raw = (struct nsm_raw){ { (uintptr_t)big, 0x1000 }, { (uintptr_t)resp, sizeof(resp) } };
	printf("max-size %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	printf("null-arg %s\n", ioctl(fd, NSM_IOCTL_RAW, NULL) == 0 ? "ok" : errname(errno));
	raw = (struct nsm_raw){ { 8, sizeof(describe_nsm) }, { (uintptr_t)resp, sizeof(resp) } };
	printf("bad-request-addr %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	raw = (struct nsm_raw){ { (uintptr_t)describe_nsm, sizeof(describe_nsm) }, { 8, sizeof(resp) } };
	printf("bad-response-addr %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	raw = (struct nsm_raw){ { (uintptr_t)describe_nsm, sizeof(describe_nsm) }, { (uintptr_t)resp, sizeof(resp) } };
	printf("other-cmd %s\n", ioctl(fd, 0xC0200A01UL, &raw) == 0 ? "ok" : errname(errno));
	printf("fionread %s\n", ioctl(fd, FIONREAD, &(int){ 0 }) == 0 ? "ok" : errname(errno));
	printf("fioclex %s\n", ioctl(fd, FIOCLEX) == 0 ? "ok" : errname(errno));
	printf("cloexec %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	printf("fionclex %s\n", ioctl(fd, FIONCLEX) == 0 ? "ok" : errname(errno));
	printf("cloexec %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	/* errno is left alone by a successful call */
	errno = 1234;
	raw = (struct nsm_raw){ { (uintptr_t)describe_nsm, sizeof(describe_nsm) }, { (uintptr_t)resp, sizeof(resp) } };
	int r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	printf("success-errno %d %d\n", r, errno);
	/* a zero-length response buffer: success, length 0 */
	raw = (struct nsm_raw){ { (uintptr_t)describe_nsm, sizeof(describe_nsm) }, { 0, 0 } };
	r = ioctl(fd, NSM_IOCTL_RAW, &raw);
	printf("zero-response %s %llu\n", r == 0 ? "ok" : errname(errno), (unsigned long long)raw.response.len);
	printf("close %d\n", close(fd));
	printf("closed-ioctl %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	return 0;
}

static int cmd_unrelated(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		printf("open-failed %s\n", errname(errno));
		return 3;
	}
	int avail = -1;
	int r = ioctl(fd, FIONREAD, &avail);
	printf("fionread %s %d\n", r == 0 ? "ok" : errname(errno), avail);
	char buf[64] = { 0 };
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	printf("read %zd %s\n", n, buf);
	struct nsm_raw raw = { { (uintptr_t)buf, 1 }, { (uintptr_t)buf, sizeof(buf) } };
	printf("nsm-ioctl %s\n", ioctl(fd, NSM_IOCTL_RAW, &raw) == 0 ? "ok" : errname(errno));
	printf("close %d\n", close(fd));
	/* The NSM device opens from an ordinary file's path still pass through. */
	int dn = open("/dev/null", O_WRONLY);
	printf("devnull %s\n", dn >= 0 && write(dn, "x", 1) == 1 ? "ok" : errname(errno));
	close(dn);
	return 0;
}

static int one_call(int fd, const uint8_t *req, size_t n)
{
	uint8_t resp[RESPONSE_MAX];
	size_t len = sizeof(resp);
	return nsm_call(fd, req, n, resp, &len);
}

static int cmd_wait(const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int fd = open_nsm();
	int e = one_call(fd, req, n);
	printf("first %s\nready\n", e ? errname(e) : "ok");
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 5;
	e = one_call(fd, req, n);
	printf("second %s\n", e ? errname(e) : "ok");
	e = one_call(fd, req, n);
	printf("third %s\n", e ? errname(e) : "ok");
	printf("close %d\n", close(fd));
	return 0;
}

static int cmd_fork(const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int fd = open_nsm();
	if (one_call(fd, req, n) != 0)
		return 4;
	fflush(stdout);
	pid_t pid = fork();
	int bad = 0;
	for (int i = 0; i < 300; i++)
		bad += one_call(fd, req, n) != 0;
	if (pid == 0)
		_exit(bad == 0 ? 0 : 1);
	int status = 0;
	waitpid(pid, &status, 0);
	printf("parent %s\nchild %s\n", bad == 0 ? "ok" : "failed",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
	close(fd);
	return 0;
}

static int cmd_dup(const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int fd = open_nsm();
	int d = dup(fd);
	int e1 = one_call(d, req, n);
	close(fd);
	int e2 = one_call(d, req, n);
	printf("dup %s %s\n", e1 ? errname(e1) : "ok", e2 ? errname(e2) : "ok");
	printf("close %d\n", close(d));
	return 0;
}

static int cmd_bench(const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int fd = open_nsm();
	char line[32];
	alarm(0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		long k = atol(line);
		for (long i = 0; i < k; i++) {
			if (one_call(fd, req, n) != 0) {
				printf("error\n");
				fflush(stdout);
				return 4;
			}
		}
		printf("done\n");
		fflush(stdout);
	}
	close(fd);
	return 0;
}

static int cmd_spin(const char *what)
{
	int p[2], avail;
	char line[32];
	if (pipe(p) != 0)
		return 3;
	int opens = strcmp(what, "open") == 0;
	alarm(0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		long k = atol(line);
		for (long i = 0; i < k; i++) {
			if (opens) {
				int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				if (fd < 0 || close(fd) != 0)
					return 4;
			} else if (ioctl(p[0], FIONREAD, &avail) != 0) {
				return 4;
			}
		}
		printf("done\n");
		fflush(stdout);
	}
	return 0;
}

static int cmd_inherit(const char *self, const char *hex)
{
	int fd = open("/dev/nsm", O_RDWR);
	if (fd < 0)
		return 3;
	char num[16];
	snprintf(num, sizeof(num), "%d", fd);
	fflush(stdout);
	execl(self, self, "usefd", num, hex, (char *)NULL);
	return 6;
}

static int cmd_usefd(const char *num, const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int e = one_call(atoi(num), req, n);
	printf("inherited %s\n", e ? errname(e) : "ok");
	return 0;
}

static const char *rw_result(ssize_t r)
{
	static char buf[32];
	if (r >= 0) {
		snprintf(buf, sizeof(buf), "returned-%zd", r);
		return buf;
	}
	return errname(errno);
}

static int cmd_readwrite(const char *hex)
{
	static const char *names[] = { "rdwr", "rdonly", "wronly" };
	static const int modes[] = { O_RDWR, O_RDONLY, O_WRONLY };
	char buf[64] = "x";
	struct iovec iov = { buf, sizeof(buf) };
	for (int m = 0; m < 3; m++) {
		int fd = open("/dev/nsm", modes[m] | O_CLOEXEC);
		if (fd < 0) {
			printf("%s open-failed %s\n", names[m], errname(errno));
			return 3;
		}
		printf("%s read %s\n", names[m], rw_result(read(fd, buf, sizeof(buf))));
		printf("%s read0 %s\n", names[m], rw_result(read(fd, buf, 0)));
		printf("%s write %s\n", names[m], rw_result(write(fd, "\0\0\0\1\xf6", 5)));
		printf("%s readv %s\n", names[m], rw_result(readv(fd, &iov, 1)));
		printf("%s writev %s\n", names[m], rw_result(writev(fd, &iov, 1)));
		printf("%s pread %s\n", names[m], rw_result(pread(fd, buf, sizeof(buf), 0)));
		printf("%s pwrite %s\n", names[m], rw_result(pwrite(fd, buf, 1, 0)));
		uint8_t *req;
		size_t n = unhex(hex, &req);
		int e = one_call(fd, req, n);
		printf("%s ioctl-after %s\n", names[m], e ? errname(e) : "ok");
		free(req);
		close(fd);
	}
	return 0;
}

static void report_open(const char *what, int fd)
{
	if (fd >= 0) {
		printf("%s ok\n", what);
		close(fd);
	} else {
		printf("%s %s\n", what, errname(errno));
	}
}

static int cmd_paths(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		report_open(argv[i], open(argv[i], O_RDWR | O_CLOEXEC));
	return 0;
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int cmd_at(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int dir = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return 3;
	int fd;
	if (argc > 2) {
		struct { uint64_t flags, mode, resolve; } how = { O_RDWR | O_CLOEXEC, 0, strtoull(argv[2], NULL, 0) };
		fd = (int)syscall(SYS_openat2, dir, argv[1], &how, sizeof(how));
	} else {
		fd = openat(dir, argv[1], O_RDWR | O_CLOEXEC);
	}
	report_open(argv[1], fd);
	return 0;
}

static int cmd_flags(void)
{
	report_open("creat-excl", open("/dev/nsm", O_RDWR | O_CREAT | O_EXCL, 0600));
	report_open("directory", open("/dev/nsm", O_RDONLY | O_DIRECTORY));
	report_open("rdonly", open("/dev/nsm", O_RDONLY));
	return 0;
}

static int cmd_reopen(const char *count, const char *hex)
{
	uint8_t *req;
	size_t n = unhex(hex, &req);
	int k = atoi(count), bad = 0;
	for (int i = 0; i < k; i++) {
		int fd = open_nsm();
		if (one_call(fd, req, n) != 0)
			bad++;
		close(fd);
	}
	printf("reopened %d failed %d\n", k, bad);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	alarm(30);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "-r") == 0)
			resp_cap = (size_t)atol(argv[i + 1]);
		else if (strcmp(argv[i], "-e") == 0)
			entry = argv[i + 1];
		else if (strcmp(argv[i], "-n") == 0)
			nonblocking = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "-C") == 0 && chdir(argv[i + 1]) != 0)
			return 3;
	}
	if (i >= argc)
		return 2;
	const char *cmd = argv[i++];
	if (strcmp(cmd, "send") == 0)
		return cmd_send(argc - i, argv + i);
	if (strcmp(cmd, "paths") == 0)
		return cmd_paths(argc - i, argv + i);
	if (strcmp(cmd, "at") == 0)
		return cmd_at(argc - i, argv + i);
	if (strcmp(cmd, "flags") == 0)
		return cmd_flags();
	if (strcmp(cmd, "reopen") == 0 && i + 1 < argc)
		return cmd_reopen(argv[i], argv[i + 1]);
	if (strcmp(cmd, "threads") == 0)
		return cmd_threads(argc - i, argv + i);
	if (strcmp(cmd, "errors") == 0)
		return cmd_errors();
	if (strcmp(cmd, "faults") == 0)
		return cmd_faults();
	if (strcmp(cmd, "unrelated") == 0 && i < argc)
		return cmd_unrelated(argv[i]);
	if (strcmp(cmd, "wait") == 0 && i < argc)
		return cmd_wait(argv[i]);
	if (strcmp(cmd, "fork") == 0 && i < argc)
		return cmd_fork(argv[i]);
	if (strcmp(cmd, "dup") == 0 && i < argc)
		return cmd_dup(argv[i]);
	if (strcmp(cmd, "inherit") == 0 && i < argc)
		return cmd_inherit(argv[0], argv[i]);
	if (strcmp(cmd, "usefd") == 0 && i + 1 < argc)
		return cmd_usefd(argv[i], argv[i + 1]);
	if (strcmp(cmd, "readwrite") == 0 && i < argc)
		return cmd_readwrite(argv[i]);
	if (strcmp(cmd, "spin") == 0 && i < argc)
		return cmd_spin(argv[i]);
	if (strcmp(cmd, "bench") == 0 && i < argc)
		return cmd_bench(argv[i]);
	return 2;
}
