/*
 * What a guest can do to bootvm through its exits, without KVM: port I/O and
 * MMIO driven through the buses as a vCPU would (the work and the output it
 * causes stay bounded), and stop requests from several vCPU threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include "helpers.h"

/* Every line the code logs, debug included (a sink sees all levels). */
struct log_count {
	pthread_mutex_t lock;
	int lines;
	char last[1024];
};

static void count_sink(enum log_level level, const char *msg, void *opaque)
{
	struct log_count *c = opaque;

	(void)level;
	pthread_mutex_lock(&c->lock);
	c->lines++;
	snprintf(c->last, sizeof(c->last), "%s", msg);
	pthread_mutex_unlock(&c->lock);
}

static uint64_t dev_read(void *dev, uint64_t offset, unsigned int size)
{
	(void)dev;
	(void)offset;
	(void)size;
	return 0;
}

static const struct bus_ops dev_ops = { .read = dev_read };

#define POLLS 100000

/* A guest polling an absent port (rep insb, a driver probing) logs a few lines, not one each. */
static void test_unhandled_polling_is_not_logged_each_time(void **state)
{
	struct log_count log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct bus pio, mmio;
	uint8_t data[8];

	(void)state;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	assert_int_equal(bus_register(&pio, 0x3f8, 8, "serial", &dev_ops, NULL), 0);
	log_set_level(LOG_DEBUG);
	log_set_sink(count_sink, &log);

	for (int i = 0; i < POLLS; i++) {
		memset(data, 0, sizeof(data));
		assert_false(bus_access(&pio, 0x80, data, 1, false));
		assert_int_equal(data[0], 0xff);
		assert_false(bus_access(&pio, 0x80, data, 4, true));
		/* Straddling the end of a device is unhandled too. */
		assert_false(bus_access(&pio, 0x3fe, data, 4, false));
	}
	int pio_lines = log.lines;
	assert_true(pio_lines >= 1);		/* the first ones are still said */
	assert_true(pio_lines <= 100);
	assert_non_null(strstr(log.last, "only counted"));
	assert_int_equal(pio.unhandled, 3 * POLLS);	/* every one is counted for --stats */

	/* Each bus has its own allowance. */
	for (int i = 0; i < POLLS; i++)
		assert_false(bus_access(&mmio, 0xd0000000, data, 8, false));
	assert_true(log.lines > pio_lines);
	assert_true(log.lines <= 2 * pio_lines);
	assert_int_equal(mmio.unhandled, POLLS);

	log_set_sink(NULL, NULL);
	log_set_level(LOG_WARN);
}

struct hammer {
	struct bus *bus;
	int n;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	uint8_t data[4];

	for (int i = 0; i < h->n; i++)
		bus_access(h->bus, 0x80, data, 1, i & 1);
	return NULL;
}

/* Several vCPUs at once: still a bounded number of lines, and no access lost from the count. */
static void test_unhandled_from_several_vcpus(void **state)
{
	struct log_count log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct bus pio;
	struct hammer h = { &pio, POLLS / 4 };
	pthread_t t[4];
	uint8_t data[1];

	(void)state;
	bus_init(&pio, "pio");
	/* The allowance of one bus, measured alone. */
	log_set_sink(count_sink, &log);
	for (int i = 0; i < POLLS; i++)
		bus_access(&pio, 0x80, data, 1, false);
	int allowance = log.lines;
	assert_true(allowance >= 1 && allowance <= 100);

	bus_init(&pio, "pio");
	log.lines = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	log_set_sink(NULL, NULL);

	assert_int_equal(log.lines, allowance);
	assert_int_equal(pio.unhandled, 4 * (POLLS / 4));
}

#define FAKE_VCPUS 8

/*
 * vCPUs without KVM (fd -1): each thread's KVM_RUN fails at once, so each
 * asks for a stop and kicks all the others while the main thread is still
 * starting them, or already kicking and joining them, as when a guest powers
 * off from one vCPU while the others run. Every thread must be joined, none
 * signalled once joined (ThreadSanitizer checks the thread handles), and the
 * first reason must win.
 */
static void test_stop_from_every_vcpu_at_once(void **state)
{
	struct log_count log = { .lock = PTHREAD_MUTEX_INITIALIZER };

	(void)state;
	log_set_sink(count_sink, &log);
	for (int round = 0; round < 200; round++) {
		struct vm vm;

		memset(&vm, 0, sizeof(vm));
		assert_int_equal(vm_stop_init(&vm), 0);
		vm.run_size = sizeof(struct kvm_run);
		vm.vcpus = calloc(FAKE_VCPUS, sizeof(*vm.vcpus));
		assert_non_null(vm.vcpus);
		for (unsigned int i = 0; i < FAKE_VCPUS; i++) {
			vm.vcpus[i] = (struct vcpu){ .vm = &vm, .id = i, .fd = -1 };
			vm.vcpus[i].run = calloc(1, sizeof(struct kvm_run));
			assert_non_null(vm.vcpus[i].run);
		}
		vm.nr_vcpus = FAKE_VCPUS;

		assert_int_equal(vm_start_vcpus(&vm), 0);
		vm_stop_vcpus(&vm);

		assert_true(vm_is_stopping(&vm));
		assert_int_equal(vm_stop_reason(&vm), VM_STOP_INTERNAL);
		for (unsigned int i = 0; i < FAKE_VCPUS; i++) {
			assert_false(vm.vcpus[i].started);
			free(vm.vcpus[i].run);
		}
		free(vm.vcpus);
		vm_stop_fini(&vm);
	}
	log_set_sink(NULL, NULL);
	assert_true(log.lines > 0);	/* each vCPU said why it stopped */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unhandled_polling_is_not_logged_each_time),
		cmocka_unit_test(test_unhandled_from_several_vcpus),
		cmocka_unit_test(test_stop_from_every_vcpu_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
