#include "vmm/ioloop.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/thread.h"

#define IO_LOOP_MAX_EVENTS 32
/*
 * Adaptive polling, as QEMU's iothread: the window starts at 0, grows from
 * POLL_GROW_START_NS by doubling while events come sooner than the maximum
 * after the loop went idle, and halves when they come later.
 */
#define IO_LOOP_POLL_MAX_NS_DEFAULT	32000ull
#define IO_LOOP_POLL_MAX_NS_LIMIT	1000000ull	/* 1 ms: never spin longer */
#define POLL_GROW_START_NS		4000ull
/* Rounds that found work before the poll yields to epoll_wait(0) for other fds. */
#define POLL_ROUNDS_PER_EPOLL		32

struct io_handler {
	int fd;
	io_handler_fn fn;
	void *opaque;
	bool dead;		/* deleted during the current batch: skip, free after */
	struct io_handler *next;
};

/* A poll handler; the list is touched on the loop's thread only. */
struct io_poller {
	io_poll_fn poll;
	io_poll_mode_fn mode;
	void *opaque;
	struct io_poller *next;
};

/* A function posted to the loop's thread; the poster waits on done. */
struct io_call {
	void (*fn)(void *);
	void *opaque;
	bool done;
	struct io_call *next;
};

struct io_loop {
	char name[16];
	int epfd;
	int wake_fd;		/* eventfd: calls posted, or stop */
	pthread_t thread;
	bool running;		/* thread started and not joined */
	bool stop;
	bool exited;		/* the thread takes no more calls */

	pthread_mutex_t lock;	/* calls, stop, handlers list */
	pthread_cond_t cond;	/* a call finished */
	struct io_call *calls, **calls_tail;
	struct io_handler *handlers;
	struct io_handler *graveyard;	/* deleted in a batch, freed after it */
	bool in_batch;

	/* Polling: the loop's thread only, except woken and poll_max_ns. */
	struct io_poller *pollers;
	bool polling;			/* pollers are in poll mode */
	uint64_t poll_ns;		/* current window, 0 .. poll_max_ns */
	uint64_t poll_max_ns;		/* 0: never poll */
	uint64_t idle_since;		/* when the loop last found work */
	bool woken;			/* io_loop_wake() since the poll began */
};

struct io_loop *io_loop_create(const char *name)
{
	struct io_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l) {
		log_error("%s: out of memory", name);
		return NULL;
	}
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->calls_tail = &l->calls;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_error("%s: epoll_create1: %s", name, strerror(errno));
		goto err_free;
	}
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		log_error("%s: eventfd: %s", name, strerror(errno));
		goto err_epoll;
	}
	ev.data.ptr = NULL;	/* NULL: the wake-up fd */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
		log_error("%s: epoll_ctl: %s", name, strerror(errno));
		goto err_wake;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->poll_max_ns = IO_LOOP_POLL_MAX_NS_DEFAULT;
	if (getenv("BOOTVM_IO_POLL_MAX_NS")) {	/* tuning and benchmarks */
		unsigned long long ns = strtoull(getenv("BOOTVM_IO_POLL_MAX_NS"), NULL, 10);

		l->poll_max_ns = ns < IO_LOOP_POLL_MAX_NS_LIMIT ? ns : IO_LOOP_POLL_MAX_NS_LIMIT;
	}
	return l;

err_wake:
	close(l->wake_fd);
err_epoll:
	close(l->epfd);
err_free:
	free(l);
	return NULL;
}

static void io_loop_wake(struct io_loop *l)
{
	uint64_t one = 1;

	__atomic_store_n(&l->woken, true, __ATOMIC_RELEASE);	/* ends a poll early */
	if (write(l->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already signalled */
	}
}

static void io_free_list(struct io_handler *h)
{
	while (h) {
		struct io_handler *next = h->next;
		free(h);
		h = next;
	}
}

void io_loop_destroy(struct io_loop *l)
{
	if (!l)
		return;
	io_loop_stop(l);
	io_free_list(l->handlers);
	io_free_list(l->graveyard);
	while (l->pollers) {
		struct io_poller *p = l->pollers;

		l->pollers = p->next;
		free(p);
	}
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	close(l->wake_fd);
	close(l->epfd);
	free(l);
}

/* Run what was posted; the caller holds the lock, which is dropped around each call. */
static void io_loop_run_calls_locked(struct io_loop *l)
{
	while (l->calls) {
		struct io_call *c = l->calls;

		l->calls = c->next;
		if (!l->calls)
			l->calls_tail = &l->calls;
		pthread_mutex_unlock(&l->lock);
		c->fn(c->opaque);
		pthread_mutex_lock(&l->lock);
		c->done = true;
		pthread_cond_broadcast(&l->cond);
	}
}

static uint64_t io_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Serve what epoll_wait returned; true when a handler (not a wake-up) ran. */
static bool io_loop_dispatch(struct io_loop *l, struct epoll_event *evs, int n)
{
	bool work = false;

	pthread_mutex_lock(&l->lock);
	l->in_batch = true;
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; i < n; i++) {
		struct io_handler *h = evs[i].data.ptr;

		if (!h) {
			uint64_t v;

			if (read(l->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: someone else's wake-up was already read */
			}
			continue;
		}
		if (!__atomic_load_n(&h->dead, __ATOMIC_ACQUIRE)) {
			h->fn(h->opaque, evs[i].events);
			work = true;
		}
	}
	return work;
}

/* QEMU's rule: grow the window while the idle gaps fit under the maximum, shrink past it. */
static void io_loop_poll_adjust(struct io_loop *l, uint64_t idle_ns)
{
	uint64_t max = __atomic_load_n(&l->poll_max_ns, __ATOMIC_RELAXED);

	if (l->poll_ns > max)	/* lowered meanwhile */
		l->poll_ns = max;
	if (idle_ns <= l->poll_ns)
		return;
	if (idle_ns > max) {
		l->poll_ns /= 2;
	} else if (l->poll_ns < max) {
		l->poll_ns = l->poll_ns ? l->poll_ns * 2 : POLL_GROW_START_NS;
		if (l->poll_ns > max)
			l->poll_ns = max;
	}
}

static void io_loop_poll_begin(struct io_loop *l)
{
	l->polling = true;
	for (struct io_poller *p = l->pollers; p; p = p->next)
		p->mode(p->opaque, true);
}

/* Notifications back on; whatever slipped in meanwhile is served here. */
static void io_loop_poll_end(struct io_loop *l)
{
	l->polling = false;
	for (struct io_poller *p = l->pollers; p; p = p->next)
		if (p->mode(p->opaque, false))
			p->poll(p->opaque);
}

/*
 * Spin over the pollers until none has found work for poll_ns. Returns true
 * to stay in poll mode (work was found, or someone posted a call: the caller
 * runs epoll_wait(0) and comes back), false once poll mode has ended.
 */
static bool io_loop_spin(struct io_loop *l)
{
	uint64_t deadline = l->idle_since + l->poll_ns;
	unsigned int rounds = 0;

	for (;;) {
		bool work = false;
		uint64_t t;

		for (struct io_poller *p = l->pollers; p; p = p->next)
			work |= p->poll(p->opaque);
		t = io_now_ns();
		if (work) {
			l->idle_since = t;
			deadline = t + l->poll_ns;
			if (++rounds == POLL_ROUNDS_PER_EPOLL)
				return true;
		}
		if (__atomic_exchange_n(&l->woken, false, __ATOMIC_ACQ_REL))
			return true;
		if (t >= deadline)
			break;
		/*
		 * Not a bare pause loop: on a shared host the thread that will
		 * give us work (a vCPU) may be waiting for this very CPU.
		 */
		sched_yield();
	}
	io_loop_poll_end(l);
	return false;
}

static void *io_loop_thread(void *arg)
{
	struct io_loop *l = arg;
	struct epoll_event evs[IO_LOOP_MAX_EVENTS];

	for (;;) {
		bool can_poll = l->pollers && __atomic_load_n(&l->poll_max_ns, __ATOMIC_RELAXED);
		int n = epoll_wait(l->epfd, evs, IO_LOOP_MAX_EVENTS, l->polling ? 0 : -1);
		bool work;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait: %s", l->name, strerror(errno));
			break;
		}
		work = io_loop_dispatch(l, evs, n);
		if (can_poll && work && !l->polling) {
			/* Woke from a sleep: how long was the loop idle? */
			uint64_t t = io_now_ns();

			io_loop_poll_adjust(l, t - l->idle_since);
			l->idle_since = t;
		}
		pthread_mutex_lock(&l->lock);
		l->in_batch = false;
		io_free_list(l->graveyard);
		l->graveyard = NULL;
		io_loop_run_calls_locked(l);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->lock);
		if (stop)
			break;
		can_poll = l->pollers && __atomic_load_n(&l->poll_max_ns, __ATOMIC_RELAXED);
		if (!can_poll) {
			if (l->polling)
				io_loop_poll_end(l);
			continue;
		}
		if (!l->polling) {
			/* Poll only right after real work, so an idle device costs nothing. */
			if (!work || !l->poll_ns)
				continue;
			io_loop_poll_begin(l);
		}
		io_loop_spin(l);
	}
	if (l->polling)
		io_loop_poll_end(l);
	/* Nobody waits forever on a call posted as we left. */
	pthread_mutex_lock(&l->lock);
	io_loop_run_calls_locked(l);
	l->exited = true;
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int io_loop_start(struct io_loop *l)
{
	if (l->running)
		return 0;
	l->stop = false;
	l->exited = false;
	if (thread_start(&l->thread, THREAD_IO, l->name, io_loop_thread, l) < 0)
		return -1;
	__atomic_store_n(&l->running, true, __ATOMIC_RELEASE);
	return 0;
}

void io_loop_stop(struct io_loop *l)
{
	if (!__atomic_load_n(&l->running, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_mutex_unlock(&l->lock);
	io_loop_wake(l);
	pthread_join(l->thread, NULL);
	__atomic_store_n(&l->running, false, __ATOMIC_RELEASE);
}

bool io_loop_is_current(const struct io_loop *l)
{
	return __atomic_load_n(&l->running, __ATOMIC_ACQUIRE) &&
	       pthread_equal(pthread_self(), l->thread);
}

int io_loop_add(struct io_loop *l, int fd, uint32_t events, io_handler_fn fn, void *opaque)
{
	struct io_handler *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = events };

	if (!h) {
		log_error("%s: out of memory", l->name);
		return -1;
	}
	h->fd = fd;
	h->fn = fn;
	h->opaque = opaque;
	ev.data.ptr = h;
	pthread_mutex_lock(&l->lock);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pthread_mutex_unlock(&l->lock);
		log_error("%s: cannot watch fd %d: %s", l->name, fd, strerror(errno));
		free(h);
		return -1;
	}
	h->next = l->handlers;
	l->handlers = h;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

struct io_del_args {
	struct io_loop *l;
	int fd;
	int ret;
};

static void io_loop_del_here(void *p)
{
	struct io_del_args *a = p;
	struct io_loop *l = a->l;
	struct io_handler **pp;

	pthread_mutex_lock(&l->lock);
	for (pp = &l->handlers; *pp; pp = &(*pp)->next)
		if ((*pp)->fd == a->fd)
			break;
	if (*pp) {
		struct io_handler *h = *pp;

		*pp = h->next;
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, a->fd, NULL);
		__atomic_store_n(&h->dead, true, __ATOMIC_RELEASE);
		if (l->in_batch) {
			/* Events for it may still be in this batch: free it afterwards. */
			h->next = l->graveyard;
			l->graveyard = h;
		} else {
			free(h);
		}
		a->ret = 0;
	}
	pthread_mutex_unlock(&l->lock);
}

int io_loop_del(struct io_loop *l, int fd)
{
	struct io_del_args a = { l, fd, -1 };

	/* On the loop's thread no handler runs meanwhile, so none can still be running after. */
	if (io_loop_call(l, io_loop_del_here, &a) < 0)
		return -1;
	return a.ret;
}

int io_loop_call(struct io_loop *l, void (*fn)(void *opaque), void *opaque)
{
	struct io_call c = { .fn = fn, .opaque = opaque };

	if (!__atomic_load_n(&l->running, __ATOMIC_ACQUIRE) || io_loop_is_current(l)) {
		fn(opaque);
		return 0;
	}
	pthread_mutex_lock(&l->lock);
	if (l->exited) {
		pthread_mutex_unlock(&l->lock);
		fn(opaque);
		return 0;
	}
	*l->calls_tail = &c;
	l->calls_tail = &c.next;
	pthread_mutex_unlock(&l->lock);
	io_loop_wake(l);
	pthread_mutex_lock(&l->lock);
	while (!c.done)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

struct io_poll_args {
	struct io_loop *l;
	struct io_poller *p;	/* add: the new one; del: NULL, opaque names it */
	void *opaque;
	int ret;
};

static void io_loop_add_poll_here(void *arg)
{
	struct io_poll_args *a = arg;
	struct io_loop *l = a->l;

	a->p->next = l->pollers;
	l->pollers = a->p;
	if (l->polling)
		a->p->mode(a->p->opaque, true);
	a->ret = 0;
}

int io_loop_add_poll(struct io_loop *l, io_poll_fn poll, io_poll_mode_fn mode, void *opaque)
{
	struct io_poll_args a = { l, calloc(1, sizeof(struct io_poller)), opaque, -1 };

	if (!a.p) {
		log_error("%s: out of memory", l->name);
		return -1;
	}
	*a.p = (struct io_poller){ .poll = poll, .mode = mode, .opaque = opaque };
	if (io_loop_call(l, io_loop_add_poll_here, &a) < 0) {
		free(a.p);
		return -1;
	}
	return a.ret;
}

static void io_loop_del_poll_here(void *arg)
{
	struct io_poll_args *a = arg;

	for (struct io_poller **pp = &a->l->pollers; *pp; pp = &(*pp)->next) {
		if ((*pp)->opaque == a->opaque) {
			struct io_poller *p = *pp;

			*pp = p->next;
			free(p);
			a->ret = 0;
			return;
		}
	}
}

int io_loop_del_poll(struct io_loop *l, void *opaque)
{
	struct io_poll_args a = { l, NULL, opaque, -1 };

	if (io_loop_call(l, io_loop_del_poll_here, &a) < 0)
		return -1;
	return a.ret;
}

void io_loop_set_poll_max_ns(struct io_loop *l, uint64_t ns)
{
	__atomic_store_n(&l->poll_max_ns, ns < IO_LOOP_POLL_MAX_NS_LIMIT ? ns
									 : IO_LOOP_POLL_MAX_NS_LIMIT,
			 __ATOMIC_RELAXED);
}
