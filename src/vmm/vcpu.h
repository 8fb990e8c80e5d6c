/* One vCPU: its KVM fd, its shared kvm_run page, and the thread that runs it. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned int id;	/* also its APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int id);
void vcpu_destroy(struct vcpu *vcpu);

int vcpu_start(struct vcpu *vcpu);
/* Make a running KVM_RUN return soon; safe from any thread. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Print the registers to stderr, for internal errors. */
void vcpu_dump_state(struct vcpu *vcpu);

/* Install the (empty) kick signal handler; once per process. */
int vcpu_signals_init(void);
