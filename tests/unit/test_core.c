/*
 * The core every device stands on: I/O loops (handlers, calls that wait,
 * deletion from any thread), the device list (order, pause refusal), thread
 * roles (signal masks), and the interrupt layer against a real KVM VM
 * (GSI reuse, batched routing, irqfd assign/deassign, ioeventfd).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "helpers.h"
#include "util/log.h"
#include "vmm/device.h"
#include "vmm/ioloop.h"
#include "vmm/irq.h"
#include "vmm/thread.h"

static void quiet(enum log_level level, const char *msg, void *opaque)
{
}

struct counter {
	int fd;
	int hits;
	pthread_t thread;
	struct io_loop *loop;
	bool del_self;
};

static void counter_event(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	uint64_t v;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(c->fd, &v, sizeof(v)), sizeof(v));
	__atomic_add_fetch(&c->hits, (int)v, __ATOMIC_RELAXED);
	c->thread = pthread_self();
	if (c->del_self)
		assert_int_equal(io_loop_del(c->loop, c->fd), 0);
}

static void signal_fd(int fd, uint64_t v)
{
	assert_int_equal(write(fd, &v, sizeof(v)), sizeof(v));
}

static void wait_hits(struct counter *c, int want)
{
	double deadline = helper_now_ms() + 5000;

	while (__atomic_load_n(&c->hits, __ATOMIC_RELAXED) < want && helper_now_ms() < deadline)
		usleep(1000);
	assert_int_equal(__atomic_load_n(&c->hits, __ATOMIC_RELAXED), want);
}

struct call_arg {
	struct io_loop *loop;
	bool on_loop;
	int value;
};

static void call_fn(void *p)
{
	struct call_arg *a = p;

	a->on_loop = io_loop_is_current(a->loop);
	usleep(20000);		/* the caller must wait for this */
	a->value = 42;
}

static void test_ioloop(void **state)
{
	struct io_loop *l = io_loop_create("io-test");
	struct counter c = { .fd = eventfd(0, EFD_NONBLOCK), .loop = l };
	struct call_arg a = { .loop = l };

	assert_non_null(l);
	/* Before start, calls run in place. */
	call_fn(&a);
	assert_int_equal(io_loop_call(l, call_fn, &a), 0);
	assert_false(a.on_loop);

	assert_int_equal(io_loop_add(l, c.fd, EPOLLIN, counter_event, &c), 0);
	assert_int_equal(io_loop_start(l), 0);
	signal_fd(c.fd, 3);
	wait_hits(&c, 3);
	assert_false(pthread_equal(c.thread, pthread_self()));

	a.value = 0;
	assert_int_equal(io_loop_call(l, call_fn, &a), 0);
	assert_int_equal(a.value, 42);
	assert_true(a.on_loop);

	/* Deleted from another thread: never called again. */
	assert_int_equal(io_loop_del(l, c.fd), 0);
	assert_int_equal(io_loop_del(l, c.fd), -1);
	signal_fd(c.fd, 1);
	usleep(20000);
	assert_int_equal(c.hits, 3);

	/* A handler may delete itself. */
	uint64_t v;
	assert_int_equal(read(c.fd, &v, sizeof(v)), sizeof(v));
	c.del_self = true;
	assert_int_equal(io_loop_add(l, c.fd, EPOLLIN, counter_event, &c), 0);
	signal_fd(c.fd, 2);
	wait_hits(&c, 5);
	signal_fd(c.fd, 1);
	usleep(20000);
	assert_int_equal(c.hits, 5);

	/* Bad fd: one error, no crash. */
	log_set_sink(quiet, NULL);
	assert_int_equal(io_loop_add(l, -1, EPOLLIN, counter_event, &c), -1);
	log_set_sink(NULL, NULL);

	io_loop_stop(l);
	io_loop_stop(l);
	/* Stopped: calls run in place again. */
	a.value = 0;
	assert_int_equal(io_loop_call(l, call_fn, &a), 0);
	assert_int_equal(a.value, 42);
	assert_false(a.on_loop);
	io_loop_destroy(l);
	close(c.fd);
}

/* A fake queue for polling: the test posts work, the loop serves it by kick or by poll. */
struct pollq {
	int fd;				/* the kick */
	unsigned int posted, served;	/* atomics */
	bool notify_off;		/* poll mode: no kicks */
	int kicks, polls, begins, ends;
};

static bool pollq_take(struct pollq *q)
{
	unsigned int p = __atomic_load_n(&q->posted, __ATOMIC_SEQ_CST);

	if (p == q->served)
		return false;
	__atomic_store_n(&q->served, p, __ATOMIC_SEQ_CST);
	return true;
}

static void pollq_kick(void *opaque, uint32_t events)
{
	struct pollq *q = opaque;
	uint64_t v;

	assert_int_equal(read(q->fd, &v, sizeof(v)), sizeof(v));
	pollq_take(q);
}

static bool pollq_poll(void *opaque)
{
	struct pollq *q = opaque;

	__atomic_add_fetch(&q->polls, 1, __ATOMIC_RELAXED);
	return pollq_take(q);
}

static bool pollq_mode(void *opaque, bool polling)
{
	struct pollq *q = opaque;

	__atomic_add_fetch(polling ? &q->begins : &q->ends, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&q->notify_off, polling, __ATOMIC_SEQ_CST);
	return !polling && __atomic_load_n(&q->posted, __ATOMIC_SEQ_CST) != q->served;
}

static void pollq_post(struct pollq *q)
{
	__atomic_add_fetch(&q->posted, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&q->notify_off, __ATOMIC_SEQ_CST)) {
		q->kicks++;
		signal_fd(q->fd, 1);
	}
}

/* Post n, one at a time: wait until each is served, then gap_us before the next. */
static void pollq_run(struct pollq *q, int n, unsigned int gap_us)
{
	for (int i = 0; i < n; i++) {
		double deadline = helper_now_ms() + 5000;

		pollq_post(q);
		while (__atomic_load_n(&q->served, __ATOMIC_SEQ_CST) != q->posted &&
		       helper_now_ms() < deadline)
			;
		assert_int_equal(__atomic_load_n(&q->served, __ATOMIC_SEQ_CST), q->posted);
		usleep(gap_us);	/* sleeps, as a halted vCPU: a spinning loop must not starve it */
	}
}

static void test_ioloop_poll(void **state)
{
	struct io_loop *l = io_loop_create("io-poll");
	struct pollq q = { .fd = eventfd(0, EFD_NONBLOCK) };
	int polls, kicks;

	assert_non_null(l);
	io_loop_set_poll_max_ns(l, 1000000);	/* wide: the machine may be loaded */
	assert_int_equal(io_loop_add(l, q.fd, EPOLLIN, pollq_kick, &q), 0);
	assert_int_equal(io_loop_add_poll(l, pollq_poll, pollq_mode, &q), 0);
	assert_int_equal(io_loop_start(l), 0);

	/* Work every 5 us: the window grows, the loop polls and kicks stop. */
	pollq_run(&q, 1000, 5);
	assert_true(q.begins > 0);
	assert_true(q.kicks < 1000);

	/* Idle: polling ends within the window and then costs nothing. */
	usleep(50000);
	assert_false(__atomic_load_n(&q.notify_off, __ATOMIC_SEQ_CST));
	assert_int_equal(__atomic_load_n(&q.begins, __ATOMIC_RELAXED),
			 __atomic_load_n(&q.ends, __ATOMIC_RELAXED));
	polls = __atomic_load_n(&q.polls, __ATOMIC_RELAXED);
	usleep(50000);
	assert_int_equal(__atomic_load_n(&q.polls, __ATOMIC_RELAXED), polls);

	/* Polling off: every post is a kick and nothing polls. */
	io_loop_set_poll_max_ns(l, 0);
	kicks = q.kicks;
	polls = __atomic_load_n(&q.polls, __ATOMIC_RELAXED);
	pollq_run(&q, 100, 5);
	assert_int_equal(q.kicks - kicks, 100);
	assert_int_equal(__atomic_load_n(&q.polls, __ATOMIC_RELAXED), polls);

	assert_int_equal(io_loop_del_poll(l, &q), 0);
	assert_int_equal(io_loop_del_poll(l, &q), -1);
	io_loop_destroy(l);
	close(q.fd);
}

static char trace[64];

static void trace_add(char c)
{
	size_t n = strlen(trace);
	trace[n] = c;
	trace[n + 1] = 0;
}

static void dev_reset(void *d) { trace_add((char)('a' + *(int *)d)); }
static void dev_stop(void *d) { trace_add((char)('A' + *(int *)d)); }
static void dev_destroy(void *d) { trace_add((char)('0' + *(int *)d)); }
static int dev_pause(void *d) { trace_add('p'); return *(int *)d == 2 ? -1 : 0; }
static int dev_resume(void *d) { trace_add('r'); return 0; }

static const struct device_ops full_ops = {
	.kind = "test", .reset = dev_reset, .stop = dev_stop, .destroy = dev_destroy,
	.pause = dev_pause, .resume = dev_resume,
};
static const struct device_ops no_pause_ops = {
	.kind = "test", .reset = dev_reset, .stop = dev_stop, .destroy = dev_destroy,
};

static void test_device_list(void **state)
{
	struct device_list l;
	int ids[3] = { 0, 1, 2 };

	device_list_init(&l);
	for (int i = 0; i < 3; i++)
		assert_int_equal(device_list_add(&l, &full_ops, &ids[i], "dev"), 0);
	trace[0] = 0;
	device_list_reset(&l);
	assert_string_equal(trace, "abc");

	/* The third refuses: the two paused before it are resumed. */
	trace[0] = 0;
	assert_int_equal(device_list_pause(&l), -1);
	assert_string_equal(trace, "ppprr");

	/* Stop newest first, once; destroy after. */
	trace[0] = 0;
	device_list_stop(&l);
	device_list_destroy(&l);
	assert_string_equal(trace, "CBA210");
	assert_int_equal(l.nr, 0);

	/* A device without pause support makes pausing fail, with a line. */
	device_list_init(&l);
	assert_int_equal(device_list_add(&l, &no_pause_ops, &ids[0], "nopause0"), 0);
	log_set_sink(quiet, NULL);
	assert_int_equal(device_list_pause(&l), -1);
	log_set_sink(NULL, NULL);
	device_list_destroy(&l);
}

static void *mask_probe(void *arg)
{
	sigset_t *out = arg;

	pthread_sigmask(SIG_BLOCK, NULL, out);
	return NULL;
}

static void test_thread_roles(void **state)
{
	sigset_t io_mask, vcpu_mask;
	pthread_t t;

	assert_int_equal(thread_start(&t, THREAD_IO, "io-probe-with-a-long-name", mask_probe,
				      &io_mask), 0);
	pthread_join(t, NULL);
	assert_int_equal(thread_start(&t, THREAD_VCPU, "vcpu-probe", mask_probe, &vcpu_mask), 0);
	pthread_join(t, NULL);

	assert_true(sigismember(&io_mask, SIGTERM));
	assert_true(sigismember(&io_mask, SIGINT));
	assert_true(sigismember(&io_mask, THREAD_KICK_SIGNAL));
	assert_false(sigismember(&io_mask, SIGSEGV));
	assert_true(sigismember(&vcpu_mask, SIGTERM));
	assert_false(sigismember(&vcpu_mask, THREAD_KICK_SIGNAL));
}

/* A VM with an in-kernel irqchip, or -1 where /dev/kvm is missing. */
static int make_vm(int *kvm_fd)
{
	*kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm_fd < 0)
		return -1;
	int vm = ioctl(*kvm_fd, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	assert_int_equal(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
	return vm;
}

static void test_irq_router(void **state)
{
	struct irq_router r;
	struct irq_msi v[3];
	int kvm_fd, vm = make_vm(&kvm_fd);

	if (vm < 0)
		skip();
	assert_int_equal(irq_router_init(&r, vm, 24), 0);
	for (unsigned int pin = 0; pin < 24; pin++)
		assert_int_equal(irq_add_pin(&r, pin, KVM_IRQCHIP_IOAPIC, pin), 0);
	assert_true(r.dirty);
	assert_int_equal(irq_commit(&r), 0);
	assert_false(r.dirty);
	assert_int_equal(irq_line_set(&r, 5, 1), 0);
	assert_int_equal(irq_line_set(&r, 5, 0), 0);

	/* GSIs above the pins, and a freed one is taken again. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(irq_msi_init(&r, &v[i]), 0);
	assert_int_equal(v[0].gsi, 24);
	assert_int_equal(v[1].gsi, 25);
	assert_int_equal(v[2].gsi, 26);
	irq_msi_fini(&v[1]);
	assert_int_equal(v[1].gsi, -1);
	irq_msi_fini(&v[1]);		/* twice is harmless */
	assert_int_equal(irq_msi_init(&r, &v[1]), 0);
	assert_int_equal(v[1].gsi, 25);

	/* Route changes only mark the table; an unchanged message does not. */
	assert_int_equal(irq_commit(&r), 0);
	assert_int_equal(irq_msi_set(&v[0], 0xfee00000, 0x30), 0);
	assert_int_equal(irq_msi_set(&v[1], 0xfee00000, 0x31), 0);
	assert_true(r.dirty);
	assert_int_equal(irq_commit(&r), 0);
	assert_int_equal(irq_msi_set(&v[0], 0xfee00000, 0x30), 0);
	assert_false(r.dirty);

	/* Assign commits and binds; deassign unbinds; both idempotent. */
	assert_int_equal(irq_msi_set(&v[2], 0xfee00000, 0x32), 0);
	assert_int_equal(irq_msi_assign(&v[2], true), 0);
	assert_false(r.dirty);
	assert_true(v[2].assigned);
	assert_int_equal(irq_msi_assign(&v[2], true), 0);
	irq_msi_fire(&v[2]);
	assert_int_equal(irq_msi_assign(&v[2], false), 0);
	assert_false(v[2].assigned);
	assert_int_equal(irq_msi_assign(&v[2], false), 0);

	/* ioeventfd: assign, a duplicate is refused by KVM (logged), deassign. */
	int efd = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(irq_ioeventfd(vm, 0xd0000000, 4, false, efd, true), 0);
	log_set_sink(quiet, NULL);
	assert_int_equal(irq_ioeventfd(vm, 0xd0000000, 4, false, efd, true), -1);
	log_set_sink(NULL, NULL);
	assert_int_equal(irq_ioeventfd(vm, 0xd0000000, 4, false, efd, false), 0);
	close(efd);

	for (int i = 0; i < 3; i++)
		irq_msi_fini(&v[i]);
	assert_int_equal(irq_commit(&r), 0);
	irq_router_destroy(&r);
	close(vm);
	close(kvm_fd);
}

static void test_irq_exhaustion(void **state)
{
	static struct irq_msi v[IRQ_MAX_GSI];
	struct irq_router r;
	int kvm_fd, vm = make_vm(&kvm_fd), n = 0;

	if (vm < 0)
		skip();
	assert_int_equal(irq_router_init(&r, vm, IRQ_MAX_GSI - 4), 0);
	log_set_sink(quiet, NULL);
	while (n < IRQ_MAX_GSI && irq_msi_init(&r, &v[n]) == 0)
		n++;
	log_set_sink(NULL, NULL);
	assert_int_equal(n, 4);
	assert_int_equal(v[n].efd, -1);
	for (int i = 0; i < n; i++)
		irq_msi_fini(&v[i]);
	irq_router_destroy(&r);
	close(vm);
	close(kvm_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ioloop),
		cmocka_unit_test(test_ioloop_poll),
		cmocka_unit_test(test_device_list),
		cmocka_unit_test(test_thread_roles),
		cmocka_unit_test(test_irq_router),
		cmocka_unit_test(test_irq_exhaustion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
