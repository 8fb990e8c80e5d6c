#include "vmm/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmdline = "";
	cfg->mem_size = VM_DEFAULT_MEM_SIZE;
	cfg->nr_cpus = 1;
	cfg->console = CONSOLE_STDIO;
	cfg->host_decompress = true;
	cfg->owned = true;
}

static void config_free_str(const char **s, const char *keep)
{
	if (*s && *s != keep)
		free((char *)*s);
	*s = NULL;
}

void vm_config_free(struct vm_config *cfg)
{
	if (!cfg->owned)
		return;
	config_free_str(&cfg->kernel_path, NULL);
	config_free_str(&cfg->initrd_path, NULL);
	config_free_str(&cfg->boot_entry, NULL);
	config_free_str(&cfg->cmdline, "");
	config_free_str(&cfg->console_path, NULL);
	for (unsigned int i = 0; i < cfg->nr_disks; i++)
		config_free_str(&cfg->disks[i].path, NULL);
	cfg->nr_disks = 0;
	for (unsigned int i = 0; i < cfg->nr_nets; i++)
		config_free_str(&cfg->nets[i].tap_name, NULL);
	cfg->nr_nets = 0;
}

int vm_config_set(struct vm_config *cfg, const char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy) {
		log_error("out of memory");
		return -1;
	}
	config_free_str(field, cfg->owned ? "" : *field);
	*field = copy;
	return 0;
}

int vm_config_bool(const char *opt, const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else {
		log_error("%s: %s='%s': expected on or off", opt, key, v);
		return -1;
	}
	return 0;
}

char *vm_config_next_field(const char **p)
{
	const char *s = *p;
	size_t n = 0;
	char *out = malloc(strlen(s) + 1);

	if (!out)
		return NULL;
	while (*s) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++;
		}
		out[n++] = *s++;
	}
	out[n] = 0;
	*p = *s ? s + 1 : s;
	return out;
}

static int config_disk_option(struct vm_disk_config *d, const char *spec, char *kv)
{
	char *eq = strchr(kv, '=');
	const char *v;

	if (!eq) {
		log_error("--disk '%s': '%s' is not KEY=VALUE (ro, id, cache, discard, queues)",
			  spec, kv);
		return -1;
	}
	*eq = 0;
	v = eq + 1;
	if (!strcmp(kv, "ro") || !strcmp(kv, "readonly"))
		return vm_config_bool("--disk", kv, v, &d->readonly);
	if (!strcmp(kv, "discard"))
		return vm_config_bool("--disk", kv, v, &d->discard);
	if (!strcmp(kv, "id") || !strcmp(kv, "serial")) {
		if (strlen(v) > VM_DISK_SERIAL_MAX) {
			log_error("--disk '%s': id '%s' is longer than %d characters", spec, v,
				  VM_DISK_SERIAL_MAX);
			return -1;
		}
		for (const char *c = v; *c; c++) {
			if (*c < 0x20 || *c > 0x7e) {
				log_error("--disk '%s': id must be printable ASCII", spec);
				return -1;
			}
		}
		strcpy(d->serial, v);
		return 0;
	}
	if (!strcmp(kv, "cache")) {
		if (!strcmp(v, "writeback"))
			d->cache = VM_DISK_CACHE_WRITEBACK;
		else if (!strcmp(v, "none"))
			d->cache = VM_DISK_CACHE_NONE;
		else {
			log_error("--disk '%s': cache='%s': expected writeback or none", spec, v);
			return -1;
		}
		return 0;
	}
	if (!strcmp(kv, "queues")) {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-' || n < 1 || n > VM_DISK_MAX_QUEUES) {
			log_error("--disk '%s': queues='%s': not a number from 1 to %d", spec, v,
				  VM_DISK_MAX_QUEUES);
			return -1;
		}
		d->nr_queues = (unsigned int)n;
		return 0;
	}
	log_error("--disk '%s': unknown option '%s' (ro, id, cache, discard, queues)", spec, kv);
	return -1;
}

int vm_config_add_disk(struct vm_config *cfg, const char *spec)
{
	struct vm_disk_config d = { 0 };
	const char *p = spec;
	char *path, *kv;

	if (cfg->nr_disks == VM_MAX_DISKS) {
		log_error("--disk '%s': at most %d disks", spec, VM_MAX_DISKS);
		return -1;
	}
	path = vm_config_next_field(&p);
	if (!path) {
		log_error("out of memory");
		return -1;
	}
	if (!*path) {
		log_error("--disk '%s': no image path", spec);
		goto err_path;
	}
	while (*p) {
		kv = vm_config_next_field(&p);
		if (!kv) {
			log_error("out of memory");
			goto err_path;
		}
		int ret = config_disk_option(&d, spec, kv);
		free(kv);
		if (ret < 0)
			goto err_path;
	}
	d.path = path;
	cfg->disks[cfg->nr_disks++] = d;
	return 0;

err_path:
	free(path);
	return -1;
}

/* A port 1-65535. */
static int config_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long v = 0;

	if (!n || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* [ADDR]:PORT from s[0..n): an empty ADDR keeps *addr. */
static int config_addr_port(const char *s, size_t n, uint32_t *addr, uint16_t *port)
{
	const char *colon = memchr(s, ':', n);
	char a[INET_ADDRSTRLEN];
	struct in_addr in;

	if (!colon)
		return -1;
	size_t alen = (size_t)(colon - s);
	if (alen) {
		if (alen >= sizeof(a))
			return -1;
		memcpy(a, s, alen);
		a[alen] = 0;
		if (inet_pton(AF_INET, a, &in) != 1)
			return -1;
		*addr = in.s_addr;
	}
	return config_port(colon + 1, n - alen - 1, port);
}

/* tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
static int config_hostfwd(struct vm_net_config *n, const char *spec, const char *rule)
{
	struct vm_hostfwd f = { 0 };
	const char *rest, *dash;

	if (n->nr_fwd == VM_NET_MAX_HOSTFWD) {
		log_error("--net '%s': at most %d hostfwd rules", spec, VM_NET_MAX_HOSTFWD);
		return -1;
	}
	if (!strncmp(rule, "tcp:", 4)) {
		rest = rule + 4;
	} else if (!strncmp(rule, "udp:", 4)) {
		f.udp = true;
		rest = rule + 4;
	} else {
		log_error("--net '%s': hostfwd '%s' must start with tcp: or udp:", spec, rule);
		return -1;
	}
	f.host_addr = htonl(INADDR_LOOPBACK);
	f.guest_addr = htonl(0x0a00020f);	/* 10.0.2.15 */
	dash = strchr(rest, '-');
	if (!dash || config_addr_port(rest, (size_t)(dash - rest), &f.host_addr, &f.host_port) < 0 ||
	    config_addr_port(dash + 1, strlen(dash + 1), &f.guest_addr, &f.guest_port) < 0) {
		log_error("--net '%s': hostfwd '%s' is not tcp|udp:[HOSTADDR]:HOSTPORT-"
			  "[GUESTADDR]:GUESTPORT (ports 1-65535)", spec, rule);
		return -1;
	}
	if (n->kind == VM_NET_PASST && f.guest_addr != htonl(0x0a00020f)) {
		log_error("--net '%s': hostfwd '%s': passt forwards to the guest's own address "
			  "(10.0.2.15) only", spec, rule);
		return -1;
	}
	n->fwd[n->nr_fwd++] = f;
	return 0;
}

static int config_mac(struct vm_net_config *n, const char *spec, const char *v)
{
	if (str_parse_mac(v, n->mac) < 0) {
		log_error("--net '%s': mac '%s' is not six hex bytes like 52:54:00:12:34:56", spec, v);
		return -1;
	}
	if (n->mac[0] & 1) {
		log_error("--net '%s': mac '%s' is a multicast address", spec, v);
		return -1;
	}
	return 0;
}

/* A locally administered unicast MAC (QEMU's 52:54:00 prefix) derived from id: stable per id. */
static void config_mac_from_id(struct vm_net_config *n)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (const char *c = n->id; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	n->mac[0] = 0x52;
	n->mac[1] = 0x54;
	n->mac[2] = 0x00;
	n->mac[3] = (uint8_t)(h >> 16);
	n->mac[4] = (uint8_t)(h >> 8);
	n->mac[5] = (uint8_t)h;
}

static int config_net_option(struct vm_config *cfg, struct vm_net_config *n, const char *spec,
			     char *kv, bool *mac_given)
{
	char *eq = strchr(kv, '=');
	const char *v;

	if (!eq) {
		log_error("--net '%s': '%s' is not KEY=VALUE", spec, kv);
		return -1;
	}
	*eq = 0;
	v = eq + 1;
	if (!strcmp(kv, "hostfwd") && n->kind != VM_NET_TAP)
		return config_hostfwd(n, spec, v);
	if (!strcmp(kv, "restrict") && n->kind == VM_NET_USER)
		return vm_config_bool("--net", kv, v, &n->restrict_net);
	if (!strcmp(kv, "mac")) {
		*mac_given = true;
		return config_mac(n, spec, v);
	}
	if (!strcmp(kv, "id")) {
		if (!*v || strlen(v) > VM_NET_ID_MAX) {
			log_error("--net '%s': id must be 1 to %d characters", spec, VM_NET_ID_MAX);
			return -1;
		}
		strcpy(n->id, v);
		return 0;
	}
	log_error("--net '%s': unknown option '%s' (%s)", spec, kv,
		  n->kind == VM_NET_USER ? "hostfwd, restrict, mac, id" :
		  n->kind == VM_NET_PASST ? "hostfwd, mac, id" : "mac, id");
	return -1;
}

int vm_config_add_net(struct vm_config *cfg, const char *spec)
{
	struct vm_net_config n = { 0 };
	const char *p = spec;
	bool mac_given = false;
	char *first, *kv;

	if (cfg->nr_nets == VM_MAX_NETS) {
		log_error("--net '%s': at most %d interfaces", spec, VM_MAX_NETS);
		return -1;
	}
	first = vm_config_next_field(&p);
	if (!first) {
		log_error("out of memory");
		return -1;
	}
	if (!strcmp(first, "user") || !strcmp(first, "passt")) {
		n.kind = first[0] == 'u' ? VM_NET_USER : VM_NET_PASST;
		free(first);
	} else if (!strncmp(first, "tap=", 4) && first[4]) {
		n.kind = VM_NET_TAP;
		if (strlen(first + 4) >= 16) {
			log_error("--net '%s': TAP name '%s' is longer than 15 characters", spec,
				  first + 4);
			free(first);
			return -1;
		}
		memmove(first, first + 4, strlen(first + 4) + 1);
		n.tap_name = first;
	} else {
		log_error("--net '%s': expected user[,...], passt[,...] or tap=NAME[,...]", spec);
		free(first);
		return -1;
	}
	snprintf(n.id, sizeof(n.id), "net%u", cfg->nr_nets);
	while (*p) {
		kv = vm_config_next_field(&p);
		if (!kv) {
			log_error("out of memory");
			goto err;
		}
		int ret = config_net_option(cfg, &n, spec, kv, &mac_given);
		free(kv);
		if (ret < 0)
			goto err;
	}
	if (!mac_given)
		config_mac_from_id(&n);
	cfg->nets[cfg->nr_nets++] = n;
	return 0;

err:
	free((char *)n.tap_name);
	return -1;
}

int vm_config_validate(const struct vm_config *cfg)
{
	if (!cfg->kernel_path && !cfg->nr_disks) {
		log_error("run: --kernel is required, or a --disk with a kernel inside "
			  "(see bootvm run --help)");
		return -1;
	}
	if (cfg->kernel_path && cfg->boot_entry) {
		log_error("--boot-entry picks a kernel inside the disk: not with --kernel");
		return -1;
	}
	if (!cfg->kernel_path && cfg->initrd_path) {
		log_error("--initrd needs --kernel (a kernel from the disk comes with its own initrd)");
		return -1;
	}
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > VM_MAX_CPUS) {
		log_error("--cpus %u: not from 1 to %d", cfg->nr_cpus, VM_MAX_CPUS);
		return -1;
	}
	if (cfg->mem_size < VM_MIN_MEM_SIZE || (cfg->mem_size & 0xfff)) {
		log_error("--memory: at least 8 MiB and a multiple of 4 KiB are needed");
		return -1;
	}
	if (cfg->shutdown_grace_ms > VM_MAX_SHUTDOWN_GRACE_MS) {
		log_error("--shutdown-grace: at most %u s", VM_MAX_SHUTDOWN_GRACE_MS / 1000);
		return -1;
	}
	if (cfg->console == CONSOLE_FILE && (!cfg->console_path || !*cfg->console_path)) {
		log_error("--console file: needs a path");
		return -1;
	}
	for (unsigned int i = 0; i < cfg->nr_nets; i++) {
		for (unsigned int j = 0; j < i; j++) {
			if (!memcmp(cfg->nets[i].mac, cfg->nets[j].mac, 6)) {
				log_error("--net %s and %s: the same MAC address", cfg->nets[j].id,
					  cfg->nets[i].id);
				return -1;
			}
			if (!strcmp(cfg->nets[i].id, cfg->nets[j].id)) {
				log_error("--net: id '%s' given twice", cfg->nets[i].id);
				return -1;
			}
		}
		for (unsigned int a = 0; a < cfg->nets[i].nr_fwd; a++) {
			for (unsigned int b = 0; b < a; b++) {
				const struct vm_hostfwd *x = &cfg->nets[i].fwd[a], *y = &cfg->nets[i].fwd[b];

				if (x->udp == y->udp && x->host_port == y->host_port &&
				    x->host_addr == y->host_addr) {
					log_error("--net %s: host port %s:%u is forwarded twice",
						  cfg->nets[i].id, x->udp ? "udp" : "tcp", x->host_port);
					return -1;
				}
			}
		}
	}
	for (unsigned int i = 0; i < cfg->nr_disks; i++) {
		for (unsigned int j = 0; j < i; j++) {
			if (!strcmp(cfg->disks[i].path, cfg->disks[j].path) &&
			    !(cfg->disks[i].readonly && cfg->disks[j].readonly)) {
				log_error("--disk %s: given twice, and not read-only both times",
					  cfg->disks[i].path);
				return -1;
			}
		}
	}
	return 0;
}
