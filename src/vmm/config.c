#include "vmm/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

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
	config_free_str(&cfg->cmdline, "");
	config_free_str(&cfg->console_path, NULL);
	for (unsigned int i = 0; i < cfg->nr_disks; i++)
		config_free_str(&cfg->disks[i].path, NULL);
	cfg->nr_disks = 0;
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

/* on/off (also yes/no, true/false, 1/0, as QEMU takes them). */
static int config_bool(const char *opt, const char *key, const char *v, bool *out)
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

/*
 * The next comma-separated field of *p into a new string, ",," standing for
 * a comma. NULL when out of memory.
 */
static char *config_next_field(const char **p)
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
		return config_bool("--disk", kv, v, &d->readonly);
	if (!strcmp(kv, "discard"))
		return config_bool("--disk", kv, v, &d->discard);
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
	path = config_next_field(&p);
	if (!path) {
		log_error("out of memory");
		return -1;
	}
	if (!*path) {
		log_error("--disk '%s': no image path", spec);
		goto err_path;
	}
	while (*p) {
		kv = config_next_field(&p);
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

int vm_config_validate(const struct vm_config *cfg)
{
	if (!cfg->kernel_path) {
		log_error("run: --kernel is required (see bootvm run --help)");
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
	if (cfg->console == CONSOLE_FILE && (!cfg->console_path || !*cfg->console_path)) {
		log_error("--console file: needs a path");
		return -1;
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
