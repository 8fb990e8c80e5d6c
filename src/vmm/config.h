/*
 * What a VM is asked to be: the one description the CLI (and later the API)
 * fill and the VMM builds from. A vm_config started with vm_config_init()
 * owns its strings and device lists (vm_config_free() releases them);
 * vm_config_validate() is the one place that checks the whole of it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum console_kind {
	CONSOLE_STDIO,	/* guest serial <-> our stdin/stdout */
	CONSOLE_FILE,	/* guest output appended to a file, no input */
	CONSOLE_NONE,	/* guest output discarded, no input */
};

enum vm_disk_cache {
	VM_DISK_CACHE_WRITEBACK,	/* host page cache; FLUSH is fdatasync */
	VM_DISK_CACHE_NONE,		/* O_DIRECT */
};

#define VM_DISK_SERIAL_MAX 20		/* VIRTIO_BLK_ID_BYTES */
#define VM_MAX_DISKS 16
#define VM_DISK_MAX_QUEUES 16

struct vm_disk_config {
	const char *path;
	bool readonly;
	char serial[VM_DISK_SERIAL_MAX + 1];	/* "" when not given */
	enum vm_disk_cache cache;
	bool discard;
	unsigned int nr_queues;		/* 0: one per vCPU (at most VM_DISK_MAX_QUEUES) */
};

enum vm_net_kind {
	VM_NET_USER,		/* user-mode networking (libslirp), with host port forwarding */
	VM_NET_TAP,		/* an existing TAP device */
	VM_NET_PASST,		/* passt (a process of its own), with host port forwarding */
};

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (network byte order addresses). */
struct vm_hostfwd {
	bool udp;
	uint32_t host_addr;		/* default 127.0.0.1 */
	uint16_t host_port;
	uint32_t guest_addr;		/* default 10.0.2.15, the DHCP lease */
	uint16_t guest_port;
};

#define VM_MAX_NETS 4
#define VM_NET_MAX_HOSTFWD 32
#define VM_NET_ID_MAX 31

struct vm_net_config {
	enum vm_net_kind kind;
	const char *tap_name;		/* VM_NET_TAP */
	bool restrict_net;		/* user: restrict=on, no traffic beyond the host's forwards */
	/* user, passt: hostfwd rules; passt forwards to the guest's address only */
	uint8_t mac[6];			/* given, or derived from id (stable per id) */
	char id[VM_NET_ID_MAX + 1];	/* "net0" unless given */
	struct vm_hostfwd fwd[VM_NET_MAX_HOSTFWD];
	unsigned int nr_fwd;
};

struct vm_config {
	const char *kernel_path;	/* NULL: the kernel inside the first disk (needs a disk) */
	const char *initrd_path;	/* NULL: none */
	const char *boot_entry;		/* without kernel_path: which of the disk's entries (NULL: its default) */
	const char *cmdline;		/* never NULL ("" when not given) */
	uint64_t mem_size;		/* bytes */
	unsigned int nr_cpus;
	enum console_kind console;
	const char *console_path;	/* CONSOLE_FILE only */
	bool host_decompress;		/* decompress bzImage payloads on the host */
	bool stats;			/* print timing and memory figures at exit */
	/*
	 * SIGTERM/SIGINT press the ACPI power button and wait this long for the
	 * guest to power off before stopping it; 0: they stop it at once.
	 */
	unsigned int shutdown_grace_ms;

	struct vm_disk_config disks[VM_MAX_DISKS];	/* /dev/vda, vdb, ... in order */
	unsigned int nr_disks;
	bool rng;			/* a virtio-rng device */

	struct vm_net_config nets[VM_MAX_NETS];	/* eth0, eth1, ... in order */
	unsigned int nr_nets;

	bool owned;			/* strings are ours (vm_config_init) */
};

#define VM_DEFAULT_MEM_SIZE (512ULL << 20)
#define VM_MIN_MEM_SIZE (8ULL << 20)
#define VM_MAX_SHUTDOWN_GRACE_MS (24U * 3600 * 1000)	/* a day */
#define VM_MAX_CPUS 255		/* xAPIC IDs in MADT type-0 entries; x2APIC beyond is future work */

/* Defaults: 512 MiB, 1 vCPU, console on stdio, host-side decompression. */
void vm_config_init(struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);

/* Replace a string field with a copy of value. -1 (logged) when out of memory. */
int vm_config_set(struct vm_config *cfg, const char **field, const char *value);

/*
 * Add a disk from "PATH[,ro=on|off][,id=SERIAL][,cache=writeback|none]
 * [,discard=on|off][,queues=N]" (what --disk takes). A comma in PATH is
 * written ",,". -1 with one line naming the option and the problem.
 */
int vm_config_add_disk(struct vm_config *cfg, const char *spec);

/*
 * Add a network interface from "user[,hostfwd=RULE]...[,restrict=on]
 * [,mac=52:54:00:xx:xx:xx][,id=ID]" or "tap=NAME[,mac=...][,id=ID]" (what
 * --net takes; RULE is QEMU's tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT).
 * -1 with one line naming the option and the problem.
 */
int vm_config_add_net(struct vm_config *cfg, const char *spec);

/*
 * The next comma-separated field of *p into a new string (free it), ",,"
 * standing for a comma; *p moves past it. NULL (not logged) when out of
 * memory. How --disk, --net and QEMU's option strings are split.
 */
char *vm_config_next_field(const char **p);

/*
 * on/off (also yes/no, true/false, 1/0, as QEMU takes them) into *out; -1
 * with "OPT: KEY='V': expected on or off".
 */
int vm_config_bool(const char *opt, const char *key, const char *v, bool *out);

/* Check everything together; -1 with one line naming what is wrong. */
int vm_config_validate(const struct vm_config *cfg);
