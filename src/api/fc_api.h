/*
 * Firecracker's API, the request layer: a method, a path and a JSON body in,
 * a status and a JSON body out, with Firecracker's paths, bodies, status
 * codes (204 on success, 400 with {"fault_message": ...}) and pre-/post-boot
 * rules. It keeps the Firecracker-side description of the VM (boot source,
 * machine config, drives, interfaces, entropy) and turns it into a
 * struct vm_config at InstanceStart; whatever touches a running VM goes
 * through struct fc_ops, which `bootvm firecracker` (cli/firecracker.c)
 * implements. No I/O but the files a request names (the logger, metrics):
 * the socket is api/server.c's, so the unit tests and the fuzzer call
 * fc_api_handle() directly.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/config.h"

struct json_object;

#define FC_ID_MAX 64			/* drive_id, iface_id, instance id */
#define FC_FAULT_MAX 512
#define FC_VERSION "1.12.0"		/* the Firecracker API these paths and bodies follow */
#define FC_DEFAULT_MEM_MIB 128		/* Firecracker's defaults */
#define FC_MAX_VCPUS 32
/* Firecracker's command line when boot-source has no boot_args. */
#define FC_DEFAULT_CMDLINE "reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux " \
	"i8042.nomux i8042.dumbkbd swiotlb=noforce"

struct fc_drive {
	char id[FC_ID_MAX + 1];
	char *path;
	char *partuuid;			/* NULL: root=/dev/vda */
	bool root, ro;
	bool cache_unsafe;		/* cache_type "Unsafe" (Firecracker's default) */
	bool io_async;			/* io_engine "Async" */
};

struct fc_net {
	char id[FC_ID_MAX + 1];
	char *tap;			/* host_dev_name; NULL with bootvm_net */
	char *bootvm_net;		/* extension: a --net user[,...] spec */
	bool has_mac;
	uint8_t mac[6];
};

struct fc_resources {
	char *kernel;			/* NULL: no boot source yet */
	char *initrd;
	char *boot_args;		/* NULL: FC_DEFAULT_CMDLINE */
	unsigned int vcpu_count;
	uint64_t mem_size_mib;
	bool smt, track_dirty_pages;
	struct fc_drive drives[VM_MAX_DISKS];	/* the root drive first, as Firecracker orders them */
	unsigned int nr_drives;
	struct fc_net nets[VM_MAX_NETS];
	unsigned int nr_nets;
	bool entropy;
};

enum fc_state { FC_NOT_STARTED, FC_RUNNING, FC_PAUSED };

/* What a running VM is asked through. Each returns 0, or -1 with the reason in fault. */
struct fc_ops {
	/* Build and start the VM from *cfg, which the callee owns from then on (and frees). */
	int (*start)(void *opaque, struct vm_config *cfg, char *fault, size_t size);
	int (*pause)(void *opaque, char *fault, size_t size);
	int (*resume)(void *opaque, char *fault, size_t size);
	/* NULL: not available in this build (400 saying so). */
	int (*ctrl_alt_del)(void *opaque, char *fault, size_t size);
	/*
	 * Optional: add the running VM's figures (its devices' counters) to a
	 * metrics line, a json-c object; the boot timeline is added by
	 * fc_api_flush_metrics() itself.
	 */
	void (*metrics)(void *opaque, struct json_object *line);
};

/* Firecracker counts requests per endpoint in its metrics; so do we (since the last flush). */
enum fc_counter {
	FC_GET_INSTANCE_INFO, FC_GET_MACHINE_CFG, FC_GET_VERSION, FC_GET_VM_CONFIG,
	FC_PUT_ACTIONS, FC_PUT_ACTIONS_FAILS, FC_PUT_BOOT_SOURCE, FC_PUT_BOOT_SOURCE_FAILS,
	FC_PUT_DRIVE, FC_PUT_DRIVE_FAILS, FC_PUT_LOGGER, FC_PUT_LOGGER_FAILS,
	FC_PUT_MACHINE_CFG, FC_PUT_MACHINE_CFG_FAILS, FC_PUT_METRICS, FC_PUT_METRICS_FAILS,
	FC_PUT_NETWORK, FC_PUT_NETWORK_FAILS, FC_PUT_ENTROPY, FC_PUT_ENTROPY_FAILS,
	FC_PATCH_DRIVE, FC_PATCH_DRIVE_FAILS, FC_PATCH_NETWORK, FC_PATCH_NETWORK_FAILS,
	FC_PATCH_MACHINE_CFG, FC_PATCH_MACHINE_CFG_FAILS, FC_PATCH_VM, FC_PATCH_VM_FAILS,
	FC_API_FAULTS, FC_COUNTERS
};

struct fc_api {
	pthread_mutex_t lock;		/* one request at a time; the state below */
	char id[FC_ID_MAX + 1];
	enum fc_state state;
	struct fc_resources res;
	const struct fc_ops *ops;
	void *opaque;
	int metrics_fd;			/* -1 until PUT /metrics or --metrics-path */
	bool metrics_emit_id;
	uint64_t counters[FC_COUNTERS];
	uint64_t start_us;		/* process start (wall clock), for the metrics */
	uint64_t last_flush_ms;		/* monotonic */
};

/* A response: status, and a malloc'ed JSON body or NULL (204). */
struct fc_response {
	int status;
	char *body;
};

/* id as Firecracker's --id: 1 to 64 of [A-Za-z0-9-]. -1 (logged) otherwise. */
int fc_api_init(struct fc_api *api, const char *id, const struct fc_ops *ops, void *opaque);
void fc_api_fini(struct fc_api *api);

/* One request; body NULL or empty means none. Never fails: errors are responses. */
void fc_api_handle(struct fc_api *api, const char *method, const char *path,
		   const char *body, size_t len, struct fc_response *resp);
void fc_response_free(struct fc_response *resp);

/*
 * --config-file: Firecracker's JSON ("boot-source", "machine-config",
 * "drives", "network-interfaces", "logger", "metrics", "entropy"), each
 * section the body its endpoint takes. 0, or -1 with the reason in fault.
 */
int fc_api_load_config(struct fc_api *api, const char *json, size_t len, char *fault, size_t size);
/* InstanceStart from the process itself (after --config-file). 0 or -1 (fault). */
int fc_api_start(struct fc_api *api, char *fault, size_t size);
/*
 * The VM has ended (the process is about to exit): write the last metrics
 * line (with ops' figures: call it before the VM is torn down), then no more
 * runtime calls into ops.
 */
void fc_api_vm_ended(struct fc_api *api);

/* --metrics-path / PUT /metrics: open the file or FIFO (it must exist, as in Firecracker). */
int fc_api_set_metrics(struct fc_api *api, const char *path, bool emit_id, char *fault, size_t size);
/* Write one metrics line now (FlushMetrics, the periodic flush, exit). 0 or -1 (fault). */
int fc_api_flush_metrics(struct fc_api *api, char *fault, size_t size);

/* Every second or so (the API thread): Firecracker writes metrics every 60 s. */
void fc_api_tick(struct fc_api *api);

/* The Firecracker description as bootvm's vm_config. 0, or -1 with fault (cfg freed). */
int fc_resources_to_vm_config(const struct fc_resources *res, struct vm_config *cfg,
			      char *fault, size_t size);
