#include "vmm/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct thread_start_args {
	enum thread_role role;
	char name[16];
	void *(*fn)(void *);
	void *arg;
};

/*
 * Runs first on every new thread: name, then the role's signal mask. All
 * asynchronous signals stay blocked (the creator blocked them, and the
 * main thread reads the terminating ones from its signalfd); a vCPU also
 * takes the kick signal that interrupts KVM_RUN.
 */
static void *thread_trampoline(void *p)
{
	struct thread_start_args a = *(struct thread_start_args *)p;
	sigset_t set;

	free(p);
	pthread_setname_np(pthread_self(), a.name);
	sigfillset(&set);
	/* Synchronous faults must still kill the process, not hang it. */
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	if (a.role == THREAD_VCPU)
		sigdelset(&set, THREAD_KICK_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	return a.fn(a.arg);
}

int thread_start(pthread_t *t, enum thread_role role, const char *name,
		 void *(*fn)(void *), void *arg)
{
	struct thread_start_args *a = malloc(sizeof(*a));
	int err;

	if (!a) {
		log_error("cannot start thread %s: out of memory", name);
		return -1;
	}
	a->role = role;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->fn = fn;
	a->arg = arg;
	err = pthread_create(t, NULL, thread_trampoline, a);
	if (err) {
		free(a);
		log_error("cannot start thread %s: %s", name, strerror(err));
		return -1;
	}
	return 0;
}
