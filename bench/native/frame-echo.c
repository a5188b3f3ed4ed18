/*
 * The floor for the socket server benchmark (bench/shim.bench.js): a bare C client and a C
 * poll() server speaking the server's framing (4-byte big-endian length, then the body) over a
 * Unix socket, with no shim, no device and no JavaScript. Built with the system C compiler by
 * the bench, as the shim is.
 *
 *   frame-echo server PATH RESPHEX   listen on PATH; answer every request frame with RESPHEX,
 *                                    one poll() loop for all connections; runs until killed
 *   frame-echo client PATH REQHEX    connect to PATH; per stdin line "K": K round trips (send
 *                                    the request frame, read one whole response frame), then
 *                                    print "done"
 *
 * The client reads the way a careful client does: the 4-byte header, then exactly the body.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BODY_MAX 0x3000

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s) / 2;
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void put_len(uint8_t *b, uint32_t n)
{
	b[0] = (uint8_t)(n >> 24);
	b[1] = (uint8_t)(n >> 16);
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
}

static int send_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int unix_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

/* Per connection: bytes of the current request frame seen so far (header, then body). */
struct conn {
	int fd;
	uint8_t hdr[4];
	size_t hdr_fill;
	uint32_t body_left;
};

static int server(const char *path, const char *resp_hex)
{
	static uint8_t frame[4 + BODY_MAX];
	size_t n = unhex(resp_hex, frame + 4, BODY_MAX);
	put_len(frame, (uint32_t)n);
	struct sockaddr_un sun;
	if (unix_address(path, &sun) < 0)
		return 2;
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(ls, 64) < 0) {
		perror("frame-echo server");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	struct pollfd pfd[1 + MAX_CONNS];
	struct conn conns[MAX_CONNS];
	int count = 0;
	uint8_t buf[65536];
	for (;;) {
		pfd[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
		for (int i = 0; i < count; i++)
			pfd[1 + i] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(pfd, (nfds_t)(1 + count), -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = count - 1; i >= 0; i--) {
			if (!(pfd[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct conn *c = &conns[i];
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			int dead = r <= 0 && !(r < 0 && errno == EINTR);
			for (ssize_t o = 0; !dead && o < r;) {
				if (c->body_left > 0) {
					size_t k = (size_t)(r - o) < c->body_left ? (size_t)(r - o) : c->body_left;
					c->body_left -= (uint32_t)k;
					o += (ssize_t)k;
				} else {
					c->hdr[c->hdr_fill++] = buf[o++];
					if (c->hdr_fill < 4)
						continue;
					c->hdr_fill = 0;
					c->body_left = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 | c->hdr[3];
				}
				if (c->body_left == 0 && c->hdr_fill == 0 && send_all(c->fd, frame, 4 + n) < 0)
					dead = 1;
			}
			if (dead) {
				close(c->fd);
				conns[i] = conns[--count];
			}
		}
		if ((pfd[0].revents & POLLIN) && count < MAX_CONNS) {
			int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (s >= 0)
				conns[count++] = (struct conn){ .fd = s };
		}
	}
}

static int client(const char *path, const char *req_hex)
{
	static uint8_t frame[4 + BODY_MAX], resp[BODY_MAX];
	size_t n = unhex(req_hex, frame + 4, BODY_MAX);
	put_len(frame, (uint32_t)n);
	struct sockaddr_un sun;
	if (unix_address(path, &sun) < 0)
		return 2;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		perror("frame-echo client");
		return 1;
	}
	char line[32];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		long k = atol(line);
		for (long i = 0; i < k; i++) {
			uint8_t hdr[4];
			if (send_all(s, frame, 4 + n) < 0 || recv_all(s, hdr, 4) < 0) {
				printf("error\n");
				return 4;
			}
			uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
			if (len > BODY_MAX || recv_all(s, resp, len) < 0) {
				printf("error\n");
				return 4;
			}
		}
		printf("done\n");
		fflush(stdout);
	}
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "server") == 0)
		return server(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return client(argv[2], argv[3]);
	fprintf(stderr, "usage: frame-echo server PATH RESPHEX | frame-echo client PATH REQHEX\n");
	return 2;
}
