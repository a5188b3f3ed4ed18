/*
 * nsm-sockets: the NSM socket server's native socket path, a Node-API addon.
 *
 * Node's net.Socket costs several microseconds of JavaScript stream machinery per read and per
 * write; for a server that answers one small frame per read that is most of its time. This addon
 * takes over a connection that net.Server accepted with pauseOnConnect (so Node never read from
 * it): it duplicates the descriptor and watches the duplicate with a libuv poll handle on Node's
 * own event loop. Each read lands in one buffer shared with JavaScript and costs one call into
 * JavaScript; each write goes straight to send(2) and is queued here only when the kernel will not
 * take it all. src/node/native-socket.ts wraps a connection in the ServerSocket interface the
 * server drives (the net.Socket subset in src/node/server-socket.ts).
 *
 * JavaScript calls: init(buffer), adopt(fd, onEvent) -> handle, write(handle, bytes) -> bool,
 * setReading(handle, bool), end(handle), destroy(handle), queued(handle) -> bytes.
 * Events reach onEvent(kind, arg):
 * DATA (arg: bytes read into the shared buffer), DRAIN, END (the peer shut down its side),
 * ERROR (arg: "SYSCALL CODE", e.g. "write EPIPE"), CLOSE (once, after the descriptor is closed,
 * never from inside a call). When Node tears down the environment (a worker thread ends, the
 * process exits) every open connection is closed without calling JavaScript.
 *
 * Built on first use by src/node/native-build.ts with the system C compiler and the headers Node
 * ships (node_api.h, uv.h); nothing here runs unless the server is asked for the native path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

enum { EV_DATA = 0, EV_DRAIN = 1, EV_END = 2, EV_ERROR = 3, EV_CLOSE = 4 };

/* A queue at or above this many bytes makes write() return false, as net.Socket's default. */
#define HIGH_WATER 16384

struct instance {
	napi_ref buffer; /* the shared read buffer (a Buffer), kept alive here */
	uint8_t *data;
	size_t size;
};

struct nsock {
	uv_poll_t poll; /* first member: a poll handle pointer is the connection pointer */
	int fd;
	int polled; /* the uv_poll events now requested, or -1 when stopped */
	unsigned reading : 1, eof : 1, shut : 1, shut_done : 1, closing : 1, want_drain : 1;
	int error; /* errno of a failed call, reported from the loop (poll callback or close) */
	const char *error_call; /* the call that failed: "write", "shutdown", "poll" */
	int teardown; /* the environment is going away: no more calls into JavaScript */
	int refs; /* the poll handle (until its close callback) and the JS handle (until finalized) */
	napi_env env;
	napi_ref on_event;
	napi_async_context ctx;
	napi_async_cleanup_hook_handle hook;
	struct instance *inst;
	uint8_t *q; /* bytes not yet sent: q[qoff, qlen) */
	size_t qoff, qlen, qcap;
};

static void release(struct nsock *s)
{
	if (--s->refs > 0)
		return;
	free(s->q);
	free(s);
}

/* Calls onEvent(kind, arg) as a Node callback (microtasks and ticks run after it); a throw is
 * reported as Node reports one from any event listener: an uncaught exception. */
static void emit(struct nsock *s, int kind, napi_value arg)
{
	napi_env env = s->env;
	napi_handle_scope scope;
	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	napi_value fn, recv, argv[2], result;
	if (s->on_event != NULL && napi_get_reference_value(env, s->on_event, &fn) == napi_ok && fn != NULL) {
		napi_get_global(env, &recv);
		napi_create_int32(env, kind, &argv[0]);
		if (arg != NULL)
			argv[1] = arg;
		else
			napi_get_undefined(env, &argv[1]);
		if (napi_make_callback(env, s->ctx, recv, fn, 2, argv, &result) == napi_pending_exception) {
			napi_value err;
			if (napi_get_and_clear_last_exception(env, &err) == napi_ok)
				napi_fatal_exception(env, err);
		}
	}
	napi_close_handle_scope(env, scope);
}

static void emit_int(struct nsock *s, int kind, int64_t n)
{
	napi_handle_scope scope;
	if (napi_open_handle_scope(s->env, &scope) != napi_ok)
		return;
	napi_value v;
	napi_create_int64(s->env, n, &v);
	emit(s, kind, v);
	napi_close_handle_scope(s->env, scope);
}

/* ERROR's argument is what net.Socket's errors say: the call and the errno name ("read ECONNRESET"). */
static void emit_error(struct nsock *s, const char *what, int err)
{
	char msg[80];
	snprintf(msg, sizeof(msg), "%s %s", what, uv_err_name(-err));
	napi_handle_scope scope;
	if (napi_open_handle_scope(s->env, &scope) != napi_ok)
		return;
	napi_value v;
	napi_create_string_utf8(s->env, msg, NAPI_AUTO_LENGTH, &v);
	emit(s, EV_ERROR, v);
	napi_close_handle_scope(s->env, scope);
}

static void on_closed(uv_handle_t *h)
{
	struct nsock *s = (struct nsock *)h;
	close(s->fd);
	s->fd = -1;
	napi_async_cleanup_hook_handle hook = s->hook;
	s->hook = NULL;
	if (s->teardown) {
		/* Node is tearing the environment down: no JavaScript, and the hook is done last. */
		release(s);
		if (hook != NULL)
			napi_remove_async_cleanup_hook(hook);
		return;
	}
	if (hook != NULL)
		napi_remove_async_cleanup_hook(hook);
	if (s->error > 0) /* a failure found where no event could be emitted */
		emit_error(s, s->error_call, s->error);
	emit(s, EV_CLOSE, NULL);
	napi_delete_reference(s->env, s->on_event);
	s->on_event = NULL;
	napi_async_destroy(s->env, s->ctx);
	release(s);
}

static void start_close(struct nsock *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->qoff = s->qlen = 0;
	uv_close((uv_handle_t *)&s->poll, on_closed);
}

/* The environment is being torn down with this connection open: close it, quietly. */
static void on_teardown(napi_async_cleanup_hook_handle hook, void *arg)
{
	(void)hook;
	struct nsock *s = arg;
	s->teardown = 1;
	start_close(s);
}

static void on_io(uv_poll_t *h, int status, int events);

/* Asks libuv for the events this connection waits for now. */
static void update_poll(struct nsock *s)
{
	if (s->closing)
		return;
	int want = 0;
	if (s->reading && !s->eof)
		want |= UV_READABLE;
	if (s->qlen > s->qoff || s->error != 0)
		want |= UV_WRITABLE;
	if (want == s->polled)
		return;
	int rc = want == 0 ? uv_poll_stop(&s->poll) : uv_poll_start(&s->poll, want, on_io);
	if (rc < 0) {
		/* Nothing will be polled: close, and report it from the close callback. */
		s->error = -rc;
		s->error_call = "poll";
		s->polled = -1;
		start_close(s);
		return;
	}
	s->polled = want;
}

/* Sends queued bytes; returns 0, or an errno when the socket failed. */
static int flush(struct nsock *s)
{
	while (s->qoff < s->qlen) {
		ssize_t w = send(s->fd, s->q + s->qoff, s->qlen - s->qoff, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return errno;
		}
		s->qoff += (size_t)w;
	}
	s->qoff = s->qlen = 0;
	if (s->qcap > 65536) { /* give back what a burst grew */
		free(s->q);
		s->q = NULL;
		s->qcap = 0;
	}
	return 0;
}

/* After the queue emptied: the half-close end() asked for, and the close when both sides are done. */
static void after_flush(struct nsock *s)
{
	if (s->shut && !s->shut_done && s->qlen == 0) {
		s->shut_done = 1;
		if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
			s->error = errno;
			s->error_call = "shutdown";
		}
	}
	if (s->shut_done && s->eof && s->error == 0)
		start_close(s);
}

static void fail(struct nsock *s, const char *what, int err)
{
	s->error = 0; /* reported here, not again at close */
	emit_error(s, what, err);
	start_close(s);
}

static void on_io(uv_poll_t *h, int status, int events)
{
	struct nsock *s = (struct nsock *)h;
	if (s->closing)
		return;
	if (status == UV_EBADF && s->polled > 0) {
		/* POLLERR: libuv has stopped the handle. Read what the peer sent before it failed (its
		 * requests are still answered, as on Node's streams); recv/send then name the error. */
		events = s->polled;
		s->polled = -1;
	} else if (status < 0) {
		return fail(s, "poll", -status);
	}
	if (s->error != 0)
		return fail(s, s->error_call, s->error);
	if (events & UV_WRITABLE) {
		int err = flush(s);
		if (err != 0)
			return fail(s, "write", err);
		if (s->qlen == 0) {
			after_flush(s);
			if (s->closing)
				return;
			if (s->want_drain) {
				s->want_drain = 0;
				emit(s, EV_DRAIN, NULL);
				if (s->closing)
					return;
			}
		}
	}
	if ((events & UV_READABLE) && s->reading && !s->eof) {
		ssize_t r;
		do
			r = recv(s->fd, s->inst->data, s->inst->size, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r > 0) {
			emit_int(s, EV_DATA, r);
			if (s->closing)
				return;
		} else if (r == 0) {
			s->eof = 1;
			emit(s, EV_END, NULL);
			if (s->closing)
				return;
			after_flush(s);
			if (s->closing)
				return;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			return fail(s, "read", errno);
		}
	}
	update_poll(s);
}

/* ---- JavaScript entry points ---- */

static napi_value undefined(napi_env env)
{
	napi_value v;
	napi_get_undefined(env, &v);
	return v;
}

static napi_value throw_type(napi_env env, const char *msg)
{
	napi_throw_type_error(env, NULL, msg);
	return NULL;
}

static void finalize_instance(napi_env env, void *data, void *hint)
{
	(void)hint;
	struct instance *inst = data;
	if (inst->buffer != NULL)
		napi_delete_reference(env, inst->buffer);
	free(inst);
}

/* init(buffer): the shared read buffer every connection reads into. */
static napi_value js_init(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	bool is = false;
	if (argc < 1 || napi_is_buffer(env, argv[0], &is) != napi_ok || !is)
		return throw_type(env, "init(buffer): a Buffer is required");
	struct instance *inst = NULL;
	napi_get_instance_data(env, (void **)&inst);
	if (inst == NULL) {
		inst = calloc(1, sizeof(*inst));
		if (inst == NULL || napi_set_instance_data(env, inst, finalize_instance, NULL) != napi_ok) {
			free(inst);
			napi_throw_error(env, NULL, "init: out of memory");
			return NULL;
		}
	}
	if (inst->buffer != NULL)
		napi_delete_reference(env, inst->buffer);
	napi_get_buffer_info(env, argv[0], (void **)&inst->data, &inst->size);
	napi_create_reference(env, argv[0], 1, &inst->buffer);
	return undefined(env);
}

static void finalize_handle(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	release(data);
}

/* adopt(fd, onEvent): duplicates fd and starts reading it; returns the connection's handle. */
static napi_value js_adopt(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	int32_t fd = -1;
	napi_valuetype t = napi_undefined;
	if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
		return throw_type(env, "adopt(fd, onEvent): a descriptor and a function are required");
	struct instance *inst = NULL;
	napi_get_instance_data(env, (void **)&inst);
	if (inst == NULL || inst->size == 0)
		return throw_type(env, "adopt: init(buffer) was not called");
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return throw_type(env, "adopt: the descriptor is not a stream socket");
	struct nsock *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		napi_throw_error(env, NULL, "adopt: out of memory");
		return NULL;
	}
	s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (s->fd < 0) {
		char msg[120];
		snprintf(msg, sizeof(msg), "adopt: cannot duplicate descriptor %d: %s", fd, strerror(errno));
		free(s);
		napi_throw_error(env, NULL, msg);
		return NULL;
	}
	uv_loop_t *loop = NULL;
	napi_value name, handle;
	int rc = -1;
	if (napi_get_uv_event_loop(env, &loop) == napi_ok)
		rc = uv_poll_init(loop, &s->poll, s->fd);
	if (rc < 0) {
		char msg[120];
		snprintf(msg, sizeof(msg), "adopt: libuv refused the descriptor: %s", rc == -1 ? "no event loop" : uv_strerror(rc));
		close(s->fd);
		free(s);
		napi_throw_error(env, NULL, msg);
		return NULL;
	}
	s->env = env;
	s->inst = inst;
	s->polled = 0; /* initialised, not started: update_poll() below starts reading */
	s->reading = 1;
	s->refs = 2;
	napi_create_reference(env, argv[1], 1, &s->on_event);
	napi_create_string_utf8(env, "nsm-emulator:NativeSocket", NAPI_AUTO_LENGTH, &name);
	napi_async_init(env, NULL, name, &s->ctx);
	if (napi_create_external(env, s, finalize_handle, NULL, &handle) != napi_ok) {
		s->refs = 1; /* no JS handle: only the poll handle's reference */
		start_close(s);
		napi_throw_error(env, NULL, "adopt: out of memory");
		return NULL;
	}
	if (napi_add_async_cleanup_hook(env, on_teardown, s, &s->hook) != napi_ok)
		s->hook = NULL; /* then the environment's end finds it open, as it would a leaked socket */
	update_poll(s);
	return handle;
}

/* The connection behind a handle argument, or NULL (with a TypeError thrown). */
static struct nsock *handle_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	void *p = NULL;
	napi_valuetype t = napi_undefined;
	if (argc < want || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &p) != napi_ok) {
		throw_type(env, "a native socket handle is required");
		return NULL;
	}
	return p;
}

/* write(handle, bytes): sends now what the kernel takes and queues the rest; false when the
 * queue is at or over the high-water mark ('drain' follows) or the socket is closed. */
static napi_value js_write(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct nsock *s = handle_arg(env, info, 2, argv);
	if (s == NULL)
		return NULL;
	bool is = false;
	napi_typedarray_type type;
	size_t n = 0, off;
	void *p = NULL;
	napi_value ab;
	if (napi_is_typedarray(env, argv[1], &is) != napi_ok || !is || napi_get_typedarray_info(env, argv[1], &type, &n, &p, &ab, &off) != napi_ok || type != napi_uint8_array)
		return throw_type(env, "write(handle, bytes): a Uint8Array is required");
	napi_value result;
	if (s->closing || s->shut || s->error != 0) {
		napi_get_boolean(env, false, &result);
		return result;
	}
	const uint8_t *b = p;
	if (s->qlen == s->qoff) {
		while (n > 0) {
			ssize_t w = send(s->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					s->error = errno; /* reported from the poll callback, as net.Socket reports it later */
					s->error_call = "write";
				}
				break;
			}
			b += w;
			n -= (size_t)w;
		}
	}
	if (n > 0 && s->error == 0) {
		if (s->qoff > 0 && s->qoff == s->qlen)
			s->qoff = s->qlen = 0;
		if (s->qlen + n > s->qcap) {
			size_t cap = s->qcap ? s->qcap : 4096;
			while (cap < s->qlen - s->qoff + n)
				cap *= 2;
			uint8_t *q = malloc(cap);
			if (q == NULL) {
				s->error = ENOMEM;
				s->error_call = "write";
			} else {
				if (s->q != NULL)
					memcpy(q, s->q + s->qoff, s->qlen - s->qoff);
				free(s->q);
				s->qlen -= s->qoff;
				s->qoff = 0;
				s->q = q;
				s->qcap = cap;
			}
		}
		if (s->error == 0) {
			memcpy(s->q + s->qlen, b, n);
			s->qlen += n;
		}
	}
	update_poll(s);
	bool ok = s->error == 0 && s->qlen - s->qoff < HIGH_WATER;
	if (!ok)
		s->want_drain = 1;
	napi_get_boolean(env, ok, &result);
	return result;
}

/* setReading(handle, on): pause() and resume(). */
static napi_value js_set_reading(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct nsock *s = handle_arg(env, info, 2, argv);
	if (s == NULL)
		return NULL;
	bool on = false;
	napi_get_value_bool(env, argv[1], &on);
	s->reading = on;
	update_poll(s);
	return undefined(env);
}

/* end(handle): shut down the sending side once the queue is sent; close when the peer has too. */
static napi_value js_end(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct nsock *s = handle_arg(env, info, 1, argv);
	if (s == NULL)
		return NULL;
	if (!s->closing && !s->shut) {
		s->shut = 1;
		if (s->qlen == s->qoff && s->error == 0) {
			s->qoff = s->qlen = 0;
			s->shut_done = 1;
			if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
				s->error = errno;
				s->error_call = "shutdown";
			}
			/* Both sides done: close (CLOSE is emitted from the loop, never from this call). */
			if (s->eof && s->error == 0)
				start_close(s);
		}
		update_poll(s);
	}
	return undefined(env);
}

/* queued(handle): bytes waiting in the queue for the kernel to take. */
static napi_value js_queued(napi_env env, napi_callback_info info)
{
	napi_value argv[1], result;
	struct nsock *s = handle_arg(env, info, 1, argv);
	if (s == NULL)
		return NULL;
	napi_create_double(env, (double)(s->qlen - s->qoff), &result);
	return result;
}

/* destroy(handle): close now; queued bytes are dropped; CLOSE follows from the loop. */
static napi_value js_destroy(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct nsock *s = handle_arg(env, info, 1, argv);
	if (s == NULL)
		return NULL;
	/* As with net.Socket, nothing is reported after destroy(): a send that failed before it is
	 * forgotten (a failure that itself closed the socket is still reported). */
	if (!s->closing)
		s->error = 0;
	start_close(s);
	return undefined(env);
}

NAPI_MODULE_INIT()
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "init", js_init },	   { "adopt", js_adopt }, { "write", js_write },
		{ "setReading", js_set_reading }, { "end", js_end },	  { "destroy", js_destroy },
		{ "queued", js_queued },
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;
		if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
			return NULL;
	}
	napi_value kinds;
	napi_create_object(env, &kinds);
	static const char *names[] = { "DATA", "DRAIN", "END", "ERROR", "CLOSE" };
	for (int i = 0; i < 5; i++) {
		napi_value v;
		napi_create_int32(env, i, &v);
		napi_set_named_property(env, kinds, names[i], v);
	}
	napi_set_named_property(env, exports, "events", kinds);
	return exports;
}
