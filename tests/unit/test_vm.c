/*
 * VM lifecycle pieces that need no KVM: vm_teardown_detached()'s child,
 * which must hold nothing but the VM's descriptors and go away once the
 * process that forked it has exited -- also where close_range() fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_teardown_child),
		cmocka_unit_test(test_teardown_child_without_close_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
