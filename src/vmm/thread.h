/*
 * Every thread bootvm starts goes through thread_start(): it gets a name
 * that says its role ("vcpu0", "io-blk0", "console-in"), a signal mask that
 * fits the role (terminating signals stay blocked everywhere: the main
 * thread reads them from a signalfd; vCPUs take the kick signal), and,
 * later, the seccomp filter of its role.
 */
#pragma once

#include <pthread.h>

enum thread_role {
	THREAD_VMM,
	THREAD_VCPU,
	THREAD_IO,
	THREAD_CONSOLE,
	THREAD_API,
};

/* The signal that kicks a vCPU out of KVM_RUN; unblocked in vCPU threads only. */
#define THREAD_KICK_SIGNAL SIGUSR1

/*
 * Start fn(arg) on a new thread named name (truncated to 15 characters).
 * Returns 0, or -1 with one line logged.
 */
int thread_start(pthread_t *t, enum thread_role role, const char *name,
		 void *(*fn)(void *), void *arg);
