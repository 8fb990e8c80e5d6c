/*
 * VM lifecycle pieces that need no KVM: vm_teardown_detached()'s child,
 * which must hold nothing but the VM's descriptors and go away once the
 * process that forked it has exited -- also where close_range() fails; and
 * pausing, with threads that loop as vCPU threads do around KVM_RUN.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* close_range() as vm.c calls it: the real one, or ENOSYS as before Linux 5.9. */
static bool close_range_fails;

int close_range(unsigned int first, unsigned int last, int flags)
{
	if (close_range_fails) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(SYS_close_range, first, last, flags);
}

/* Whether fd reads EOF within ms (every writer gone); false if it stays open. */
static bool eof_within(int fd, int ms)
{
	double deadline = helper_now_ms() + ms;
	char buf[64];

	for (;;) {
		int left = (int)(deadline - helper_now_ms());
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

static void check_teardown_child(bool fail_close_range)
{
	int vm_fds[2], out[2], status;

	/*
	 * vm_fds[1] stands in for the VM's descriptors, which the child keeps:
	 * EOF on vm_fds[0] says the child has exited. out[1] stands in for
	 * bootvm's stdout pipe, which the child must not hold.
	 */
	assert_int_equal(pipe2(vm_fds, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vm vm;

		/*
		 * A group of its own, so that a child left behind can be killed
		 * below; and not the test runner's output, which such a child
		 * would hold open.
		 */
		setpgid(0, 0);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
		close(vm_fds[0]);
		close(out[0]);
		memset(&vm, 0, sizeof(vm));
		vm.kvm_fd = vm_fds[1];
		vm.vm_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		close_range_fails = fail_close_range;
		_exit(vm.vm_fd >= 0 && vm_teardown_detached(&vm) == 0 ? 0 : 1);
	}
	close(vm_fds[1]);
	close(out[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	bool out_closed = eof_within(out[0], 5000);
	bool child_gone = eof_within(vm_fds[0], out_closed ? 5000 : 0);

	kill(-pid, SIGKILL);	/* a child left behind (none, when all is well) */
	close(out[0]);
	close(vm_fds[0]);
	if (!out_closed)
		fail_msg("close_range %s: the teardown child still holds the output pipe 5 s after "
			 "its parent exited", fail_close_range ? "failing" : "working");
	if (!child_gone)
		fail_msg("close_range %s: the teardown child is still alive 5 s after its parent "
			 "exited", fail_close_range ? "failing" : "working");
}

static void test_teardown_child(void **state)
{
	(void)state;
	check_teardown_child(false);
}

static void test_teardown_child_without_close_range(void **state)
{
	(void)state;
	check_teardown_child(true);
}

/* Pausing: threads that run a loop as vcpu.c's does, one "KVM_RUN" per turn. */
#define PAUSE_THREADS 3

struct fake_vcpu {
	struct vm *vm;
	unsigned long turns;		/* atomic */
	double start_after_ms;		/* a vCPU thread started late */
};

static void *fake_vcpu_thread(void *arg)
{
	struct fake_vcpu *v = arg;

	if (v->start_after_ms)
		usleep((useconds_t)(v->start_after_ms * 1000));
	while (!vm_is_stopping(v->vm)) {
		vm_vcpu_park(v->vm);
		if (vm_is_stopping(v->vm))
			break;
		__atomic_add_fetch(&v->turns, 1, __ATOMIC_RELAXED);
		usleep(100);
	}
	return NULL;
}

static unsigned long turns(struct fake_vcpu *v)
{
	return __atomic_load_n(&v->turns, __ATOMIC_RELAXED);
}

static unsigned int parked(struct vm *vm)
{
	unsigned int n;

	pthread_mutex_lock(&vm->pause_lock);
	n = vm->nr_parked;
	pthread_mutex_unlock(&vm->pause_lock);
	return n;
}

static void pause_fixture(struct vm *vm, struct fake_vcpu *v, pthread_t *t, double late_ms)
{
	memset(vm, 0, sizeof(*vm));
	assert_int_equal(vm_stop_init(vm), 0);
	/* Not started: kicks do nothing. One spare for test_pause_ends_on_stop. */
	vm->vcpus = calloc(PAUSE_THREADS + 1, sizeof(*vm->vcpus));
	assert_non_null(vm->vcpus);
	vm->nr_vcpus = PAUSE_THREADS;
	for (int i = 0; i < PAUSE_THREADS; i++) {
		v[i] = (struct fake_vcpu){ .vm = vm, .start_after_ms = i == 0 ? late_ms : 0 };
		assert_int_equal(pthread_create(&t[i], NULL, fake_vcpu_thread, &v[i]), 0);
	}
}

static void pause_fixture_end(struct vm *vm, pthread_t *t)
{
	for (int i = 0; i < PAUSE_THREADS; i++)
		pthread_join(t[i], NULL);
	free(vm->vcpus);
	vm_stop_fini(vm);
}

static void test_pause_resume(void **state)
{
	struct fake_vcpu v[PAUSE_THREADS];
	pthread_t t[PAUSE_THREADS];
	unsigned long before[PAUSE_THREADS];
	struct vm vm;

	(void)state;
	pause_fixture(&vm, v, t, 0);
	assert_false(vm_is_paused(&vm));
	vm_pause_vcpus(&vm);
	/* Returned: every thread is parked, none runs another turn. */
	assert_true(vm_is_paused(&vm));
	assert_int_equal(parked(&vm), PAUSE_THREADS);
	for (int i = 0; i < PAUSE_THREADS; i++)
		before[i] = turns(&v[i]);
	usleep(30 * 1000);
	for (int i = 0; i < PAUSE_THREADS; i++)
		assert_int_equal(turns(&v[i]), before[i]);
	vm_pause_vcpus(&vm);				/* again: nothing changes */
	assert_int_equal(parked(&vm), PAUSE_THREADS);

	vm_resume_vcpus(&vm);
	assert_false(vm_is_paused(&vm));
	for (int i = 0; i < PAUSE_THREADS; i++) {
		double t0 = helper_now_ms();

		while (turns(&v[i]) == before[i])
			assert_true(helper_now_ms() - t0 < 5000);
	}
	vm_resume_vcpus(&vm);				/* resuming a running VM: nothing */

	/* A stop request while paused ends the parked threads. */
	vm_pause_vcpus(&vm);
	vm_request_stop(&vm, VM_STOP_SIGNAL + SIGTERM, "test");
	pause_fixture_end(&vm, t);
}

/* A vCPU thread that starts after the pause parks before its first turn; pause waits for it. */
static void test_pause_waits_for_late_vcpu(void **state)
{
	struct fake_vcpu v[PAUSE_THREADS];
	pthread_t t[PAUSE_THREADS];
	struct vm vm;
	double t0;

	(void)state;
	pause_fixture(&vm, v, t, 50);
	t0 = helper_now_ms();
	vm_pause_vcpus(&vm);
	assert_true(helper_now_ms() - t0 >= 40);
	assert_int_equal(parked(&vm), PAUSE_THREADS);
	assert_int_equal(turns(&v[0]), 0);
	vm_resume_vcpus(&vm);
	vm_request_stop(&vm, VM_STOP_POWEROFF, "test");
	pause_fixture_end(&vm, t);
}

/* A VM that stops while pausing (a vCPU thread gone) does not leave the pauser waiting. */
static void *stop_soon(void *arg)
{
	usleep(30 * 1000);
	vm_request_stop(arg, VM_STOP_POWEROFF, "test");
	return NULL;
}

static void test_pause_ends_on_stop(void **state)
{
	struct fake_vcpu v[PAUSE_THREADS];
	pthread_t t[PAUSE_THREADS], stopper;
	struct vm vm;

	(void)state;
	pause_fixture(&vm, v, t, 0);
	vm.nr_vcpus = PAUSE_THREADS + 1;		/* one that will never park */
	assert_int_equal(pthread_create(&stopper, NULL, stop_soon, &vm), 0);
	vm_pause_vcpus(&vm);
	assert_true(vm_is_stopping(&vm));
	pthread_join(stopper, NULL);
	vm.nr_vcpus = PAUSE_THREADS;
	pause_fixture_end(&vm, t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_teardown_child),
		cmocka_unit_test(test_teardown_child_without_close_range),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_pause_waits_for_late_vcpu),
		cmocka_unit_test(test_pause_ends_on_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
