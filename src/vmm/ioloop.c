#include "vmm/ioloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/thread.h"

#define IO_LOOP_MAX_EVENTS 32

struct io_handler {
	int fd;
	io_handler_fn fn;
	void *opaque;
	bool dead;		/* deleted during the current batch: skip, free after */
	struct io_handler *next;
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

static void *io_loop_thread(void *arg)
{
	struct io_loop *l = arg;
	struct epoll_event evs[IO_LOOP_MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(l->epfd, evs, IO_LOOP_MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait: %s", l->name, strerror(errno));
			break;
		}
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
			if (!__atomic_load_n(&h->dead, __ATOMIC_ACQUIRE))
				h->fn(h->opaque, evs[i].events);
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
	}
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
