/*
 * `bootvm qemu ARGS...`, also bootvm started as qemu-system-x86_64: the QEMU
 * command line of direct-boot tutorials translated into a vm_config, then run
 * as `bootvm run` runs it. -drive and -netdev become the specs --disk and
 * --net take, parsed by vmm/config.c; anything else QEMU has is refused with
 * one line naming it, and what bootvm does not need is a note at -v.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/size.h"
#include "util/str.h"
#include "vmm/config.h"

#ifndef BOOTVM_VERSION
#define BOOTVM_VERSION "unknown"
#endif

static const char qemu_help[] =
"Usage: bootvm qemu [QEMU OPTIONS] (or bootvm started as qemu-system-x86_64)\n"
"\n"
"Take the QEMU command line of a direct kernel boot and run it as bootvm run\n"
"does: same console keys (Ctrl-A x quits), same exit statuses. Options may be\n"
"written -opt or --opt; a value is the next word. Options QEMU has and bootvm\n"
"does not are refused with a line naming them (exit status 2); -v notes what\n"
"bootvm accepted but does not need.\n"
"\n"
"Boot:\n"
"  -kernel FILE -initrd FILE -append TEXT   as run's --kernel, --initrd, --append\n"
"      without -kernel, the kernel inside the first disk boots (as bootvm run\n"
"      --disk IMAGE does; -append is added to its command line; -bios and\n"
"      -boot are not needed)\n"
"  -m SIZE | -m size=SIZE[,slots=N,maxmem=SIZE]   RAM: 256 (MiB), 256M, 2G\n"
"      (default 128M, as QEMU's)\n"
"  -smp N | -smp [cpus=N][,maxcpus=N][,sockets=S][,dies=D][,clusters=C]\n"
"       [,cores=C][,threads=T]   vCPUs (bootvm: one socket of single-thread cores)\n"
"Disks (virtio-blk: /dev/vda, vdb, ... in order):\n"
"  -drive file=IMAGE[,if=virtio|none|ide|scsi][,format=raw][,readonly=on]\n"
"       [,id=ID][,cache=writeback|none|writethrough|directsync|unsafe]\n"
"       [,discard=unmap|ignore][,serial=SERIAL][,media=disk][,index=N][,aio=...]\n"
"  -device virtio-blk-pci,drive=ID     attaches an if=none drive\n"
"  -hda/-hdb/-hdc/-hdd IMAGE, or a bare IMAGE   as -drive file=IMAGE\n"
"Network (virtio-net; bootvm has no other NIC model):\n"
"  -netdev user,id=ID[,hostfwd=tcp|udp:[HADDR]:HPORT-[GADDR]:GPORT]...[,restrict=on]\n"
"  -netdev tap,id=ID,ifname=TAP[,script=no][,downscript=no][,vhost=on|off]\n"
"  -device virtio-net-pci|e1000|e1000e|rtl8139,netdev=ID[,mac=52:54:00:xx:xx:xx]\n"
"  -nic user|tap,...[,model=MODEL][,mac=...]   both in one;   -net none\n"
"Entropy:\n"
"  -device virtio-rng-pci[,rng=ID]   -object rng-random|rng-builtin,id=ID[,...]\n"
"Console and display (the serial port is the console):\n"
"  -nographic   -serial stdio|mon:stdio|none|null|file:PATH   -display none\n"
"  -vga none   -monitor none   -parallel none\n"
"Accepted, nothing to do:\n"
"  -enable-kvm   -accel kvm   -machine|-M microvm|pc|q35|...[,PROP=VALUE...]\n"
"  -cpu host|max (other models: the guest still gets the host's CPU)\n"
"  -bios FILE   -boot ...   -nodefaults   -no-user-config   -no-reboot   -name NAME\n"
"bootvm's own:\n"
"  -v           notes on what bootvm ignores (twice: debug output)\n"
"  -h, -help    this help;   -version   bootvm's version\n"
"\n"
"A reset (reboot=k, reboot=a) or triple fault (reboot=t) always ends bootvm, as\n"
"-no-reboot makes QEMU end. Exit status: 0 powered off, 1 bootvm error, 2 bad\n"
"command line, 3 reset, 4 triple fault, 5 panic, 6 KVM internal error, 7 Ctrl-A\n"
"x, 128+N signal N (see bootvm run --help).\n";

#define QEMU_DEFAULT_MEM (128ULL << 20)
#define QEMU_MAX_DRIVES 32
#define QEMU_MAX_NETDEVS 8
#define QEMU_MAX_NOTES 64
#define QEMU_MAX_KV 64
#define QEMU_ID_MAX 63

struct qemu_drive {
	char id[QEMU_ID_MAX + 1];	/* "" without id= */
	char *spec;			/* what --disk takes */
	bool pending;			/* if=none: waits for -device virtio-blk-pci,drive= */
};

struct qemu_netdev {
	char id[QEMU_ID_MAX + 1];
	char *spec;			/* what --net takes, without mac= and id= */
	bool used;
};

/* A -device whose -drive or -netdev comes later on the line (QEMU takes any order). */
struct qemu_later {
	char opt[16], driver[40];
	char ref[QEMU_ID_MAX + 1];
	char *mac;			/* NULL: none given */
	bool net;
};

struct qemu_ctx {
	struct vm_config *cfg;
	struct qemu_drive drives[QEMU_MAX_DRIVES];
	unsigned int nr_drives;
	struct qemu_netdev netdevs[QEMU_MAX_NETDEVS];
	unsigned int nr_netdevs;
	struct qemu_later later[QEMU_MAX_DRIVES];
	unsigned int nr_later;
	char *notes[QEMU_MAX_NOTES];
	unsigned int nr_notes;
	bool serial_given, nic_model_said, cpu_model_said;
};

/* A QEMU option string split at its commas (",," a comma): key[i]=val[i], val NULL with no '='. */
struct qemu_opts {
	unsigned int n;
	char *key[QEMU_MAX_KV];
	const char *val[QEMU_MAX_KV];
};

static int qemu_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One error line "qemu: ... (see bootvm qemu --help)"; returns -1. */
static int qemu_usage(const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return log_usage_error(-1, "qemu", "%s", msg);
}

static void qemu_note(struct qemu_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Something accepted that bootvm does not need: said at -v, once. */
static void qemu_note(struct qemu_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (unsigned int i = 0; i < c->nr_notes; i++)
		if (!strcmp(c->notes[i], msg))
			return;
	if (c->nr_notes < QEMU_MAX_NOTES && (c->notes[c->nr_notes] = strdup(msg)))
		c->nr_notes++;
}

static void qemu_opts_free(struct qemu_opts *o)
{
	for (unsigned int i = 0; i < o->n; i++)
		free(o->key[i]);
	o->n = 0;
}

static int qemu_opts_parse(struct qemu_opts *o, const char *opt, const char *arg)
{
	const char *p = arg;

	o->n = 0;
	while (*p) {
		if (o->n == QEMU_MAX_KV) {
			qemu_opts_free(o);
			return qemu_usage("%s '%s': more than %d properties", opt, arg, QEMU_MAX_KV);
		}
		char *f = vm_config_next_field(&p);

		if (!f) {
			qemu_opts_free(o);
			log_error("out of memory");
			return -1;
		}
		char *eq = strchr(f, '=');

		if (eq)
			*eq = 0;
		o->key[o->n] = f;
		o->val[o->n++] = eq ? eq + 1 : NULL;
	}
	return 0;
}

/* PATH with each comma doubled, as --disk takes it; NULL out of memory (logged). */
static char *qemu_escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	char *out, *d;

	for (const char *c = s; *c; c++)
		commas += *c == ',';
	out = malloc(n + commas + 1);
	if (!out) {
		log_error("out of memory");
		return NULL;
	}
	d = out;
	for (const char *c = s; *c; c++) {
		*d++ = *c;
		if (*c == ',')
			*d++ = ',';
	}
	*d = 0;
	return out;
}

static int qemu_set_id(char *dst, const char *opt, const char *id)
{
	if (!id || !*id || strlen(id) > QEMU_ID_MAX)
		return qemu_usage("%s: id must be 1 to %d characters", opt, QEMU_ID_MAX);
	strcpy(dst, id);
	return 0;
}

static int qemu_need_value(const char *opt, const char *key, const char *val)
{
	if (!val)
		return qemu_usage("%s: '%s' needs a value (%s=...)", opt, key, key);
	return 0;
}

/* ---- boot, memory, CPUs ---- */

static int opt_kernel(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)opt;
	return vm_config_set(c->cfg, &c->cfg->kernel_path, arg);
}

static int opt_initrd(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)opt;
	return vm_config_set(c->cfg, &c->cfg->initrd_path, arg);
}

static int opt_append(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)opt;
	return vm_config_set(c->cfg, &c->cfg->cmdline, arg);
}

static int qemu_size(const char *opt, const char *v, uint64_t *out)
{
	if (!v || size_parse(v, out) < 0)
		return qemu_usage("%s '%s': not a size (try 256M or 2G)", opt, v ? v : "");
	return 0;
}

/* -m [size=]SIZE[,slots=N][,maxmem=SIZE] */
static int opt_memory(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct qemu_opts o;
	uint64_t size = 0, ignored;
	bool have_size = false;
	int ret = 0;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	for (unsigned int i = 0; i < o.n && !ret; i++) {
		const char *k = o.key[i], *v = o.val[i];

		if ((i == 0 && !v) || !strcmp(k, "size")) {
			ret = qemu_size(opt, v ? v : k, &size);
			have_size = true;
		} else if (!strcmp(k, "slots") || !strcmp(k, "maxmem")) {
			ret = !strcmp(k, "maxmem") ? qemu_size(opt, v, &ignored) : qemu_need_value(opt, k, v);
			qemu_note(c, "%s %s=: no memory hotplug in bootvm; ignored", opt, k);
		} else {
			ret = qemu_usage("%s: '%s' is not supported (size, slots, maxmem)", opt, k);
		}
	}
	qemu_opts_free(&o);
	if (ret)
		return -1;
	if (!have_size)
		return qemu_usage("%s '%s': no size", opt, arg);
	c->cfg->mem_size = size;
	return 0;
}

static int qemu_count(const char *opt, const char *key, const char *v, unsigned long *out)
{
	char *end;

	if (!v || !*v || *v < '0' || *v > '9')
		return qemu_usage("%s: %s='%s': not a number", opt, key, v ? v : "");
	*out = strtoul(v, &end, 10);
	if (*end || *out > 4096)
		return qemu_usage("%s: %s='%s': not a number from 0 to 4096", opt, key, v);
	return 0;
}

/* -smp [cpus=]N[,maxcpus=N][,sockets=][,dies=][,clusters=][,cores=][,threads=] */
static int opt_smp(struct qemu_ctx *c, const char *opt, const char *arg)
{
	static const char *const topo_keys[] = { "sockets", "dies", "clusters", "cores", "threads",
						 "books", "drawers" };
	struct qemu_opts o;
	unsigned long cpus = 0, maxcpus = 0, product = 1, v;
	bool topo_given = false, sockets = false, cores = false, threads = false;
	int ret = 0;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	for (unsigned int i = 0; i < o.n && !ret; i++) {
		const char *k = o.key[i], *val = o.val[i];
		size_t t;

		if ((i == 0 && !val) || !strcmp(k, "cpus")) {
			ret = qemu_count(opt, "cpus", val ? val : k, &cpus);
			continue;
		}
		if (!strcmp(k, "maxcpus")) {
			ret = qemu_count(opt, k, val, &maxcpus);
			continue;
		}
		for (t = 0; t < sizeof(topo_keys) / sizeof(topo_keys[0]); t++)
			if (!strcmp(k, topo_keys[t]))
				break;
		if (t == sizeof(topo_keys) / sizeof(topo_keys[0])) {
			ret = qemu_usage("%s: '%s' is not supported (cpus, maxcpus, sockets, dies, "
					 "clusters, cores, threads)", opt, k);
			continue;
		}
		ret = qemu_count(opt, k, val, &v);
		if (ret)
			continue;
		if (!v) {
			ret = qemu_usage("%s: %s=0: must be at least 1", opt, k);
			continue;
		}
		/* Saturated: anything above VM_MAX_CPUS is refused below anyway. */
		product = product * v > 65536 ? 65536 : product * v;
		topo_given = true;
		/* sockets, cores, threads: given all three, cpus must fit in them. */
		sockets |= t == 0;
		cores |= t == 3;
		threads |= t == 4;
		if (v > 1 && t != 3)
			qemu_note(c, "%s %s=%lu: bootvm gives the guest one socket of "
				  "single-thread cores", opt, k, v);
	}
	qemu_opts_free(&o);
	if (ret)
		return -1;
	/* As QEMU: cpus defaults to maxcpus, then to the topology's product. */
	if (!cpus)
		cpus = maxcpus ? maxcpus : topo_given ? product : 1;
	if (sockets && cores && threads && product < cpus)
		return qemu_usage("%s '%s': cpus=%lu is more than sockets*cores*threads = %lu",
				  opt, arg, cpus, product);
	if (maxcpus && maxcpus < cpus)
		return qemu_usage("%s '%s': maxcpus=%lu is less than cpus=%lu", opt, arg,
				  maxcpus, cpus);
	if (maxcpus > cpus)
		qemu_note(c, "%s maxcpus=%lu: no CPU hotplug in bootvm; the guest gets %lu",
			  opt, maxcpus, cpus);
	if (cpus < 1 || cpus > VM_MAX_CPUS)
		return qemu_usage("%s '%s': %lu vCPUs: not from 1 to %d", opt, arg, cpus,
				  VM_MAX_CPUS);
	c->cfg->nr_cpus = (unsigned int)cpus;
	return 0;
}

/* ---- disks ---- */

static int qemu_drive_add(struct qemu_ctx *c, const char *opt, const char *id, char *spec,
			  bool pending)
{
	struct qemu_drive *d;

	for (unsigned int i = 0; id && *id && i < c->nr_drives; i++) {
		if (!strcmp(c->drives[i].id, id)) {
			free(spec);
			return qemu_usage("%s: drive id '%s' given twice", opt, id);
		}
	}
	if (c->nr_drives == QEMU_MAX_DRIVES) {
		free(spec);
		return qemu_usage("%s: at most %d drives", opt, QEMU_MAX_DRIVES);
	}
	d = &c->drives[c->nr_drives];
	if (id && qemu_set_id(d->id, opt, id) < 0) {
		free(spec);
		return -1;
	}
	if (!pending && vm_config_add_disk(c->cfg, spec) < 0) {
		free(spec);
		d->id[0] = 0;
		return -1;
	}
	d->spec = spec;
	d->pending = pending;
	c->nr_drives++;
	return 0;
}

/* The cache modes QEMU has, as the two bootvm has. */
static int qemu_cache(struct qemu_ctx *c, const char *opt, const char *v, const char **out)
{
	if (!v)
		return qemu_need_value(opt, "cache", v);
	if (!strcmp(v, "writeback") || !strcmp(v, "none")) {
		*out = v;
	} else if (!strcmp(v, "writethrough") || !strcmp(v, "unsafe")) {
		*out = "writeback";
		qemu_note(c, "%s cache=%s: bootvm uses cache=writeback (the page cache; "
			  "flushes are fdatasync)", opt, v);
	} else if (!strcmp(v, "directsync")) {
		*out = "none";
		qemu_note(c, "%s cache=directsync: bootvm uses cache=none (O_DIRECT; flushes "
			  "are fdatasync)", opt);
	} else {
		return qemu_usage("%s: cache='%s': expected writeback, none, writethrough, "
				  "directsync or unsafe", opt, v);
	}
	return 0;
}

/* One -drive property into the --disk spec's parts; -1 logged. */
static int qemu_drive_prop(struct qemu_ctx *c, const char *opt, const char *k, const char *v,
			   const char **file, const char **iface, const char **id, char *flags,
			   const char **cache, const char **serial)
{
	bool b;

	if (strcmp(k, "file") && strcmp(k, "snapshot") && qemu_need_value(opt, k, v) < 0)
		return -1;
	if (!strcmp(k, "file")) {
		if (!v || !*v)
			return qemu_usage("%s: file= needs an image path", opt);
		*file = v;
	} else if (!strcmp(k, "if")) {
		*iface = v;
	} else if (!strcmp(k, "id")) {
		*id = v;
	} else if (!strcmp(k, "format")) {
		if (strcmp(v, "raw"))
			return qemu_usage("%s: format=%s is not supported (bootvm takes raw images: "
					  "qemu-img convert -O raw)", opt, v);
	} else if (!strcmp(k, "readonly")) {
		if (vm_config_bool(opt, k, v, &b) < 0)
			return -1;
		flags[0] = b;
	} else if (!strcmp(k, "discard")) {
		if (!strcmp(v, "unmap") || !strcmp(v, "on"))
			flags[1] = 1;
		else if (!strcmp(v, "ignore") || !strcmp(v, "off"))
			flags[1] = 0;
		else
			return qemu_usage("%s: discard='%s': expected unmap or ignore", opt, v);
	} else if (!strcmp(k, "cache")) {
		return qemu_cache(c, opt, v, cache);
	} else if (!strcmp(k, "serial")) {
		*serial = v;
	} else if (!strcmp(k, "media")) {
		if (strcmp(v, "disk"))
			return qemu_usage("%s: media=%s is not supported (disks only)", opt, v);
	} else if (!strcmp(k, "snapshot")) {
		if (vm_config_bool(opt, k, v ? v : "on", &b) < 0)
			return -1;
		if (b)
			return qemu_usage("%s: snapshot=on is not supported (boot a copy of the "
					  "image, or readonly=on)", opt);
	} else if (!strcmp(k, "index") || !strcmp(k, "aio") || !strcmp(k, "werror") ||
		   !strcmp(k, "rerror") || !strcmp(k, "detect-zeroes") || !strcmp(k, "bus") ||
		   !strcmp(k, "unit")) {
		qemu_note(c, "%s %s=%s: ignored (bootvm's disks are virtio-blk in command-line "
			  "order, served through io_uring)", opt, k, v);
	} else {
		return qemu_usage("%s: '%s' is not supported (file, if, format, readonly, id, "
				  "cache, discard, serial, media, index, aio)", opt, k);
	}
	return 0;
}

/* -drive file=IMAGE[,if=...][,format=raw][,readonly=on][,id=][,cache=][,...] */
static int opt_drive(struct qemu_ctx *c, const char *opt, const char *arg)
{
	const char *file = NULL, *iface = NULL, *id = NULL, *cache = NULL, *serial = NULL;
	char flags[2] = { 0, 0 };	/* readonly, discard */
	struct qemu_opts o;
	char *path = NULL, *spec = NULL;
	bool pending = false;
	int ret = 0;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	for (unsigned int i = 0; i < o.n && !ret; i++)
		ret = qemu_drive_prop(c, opt, o.key[i], o.val[i], &file, &iface, &id, flags,
				      &cache, &serial);
	if (ret)
		goto out;
	ret = -1;
	if (!file) {
		qemu_usage("%s '%s': no file= (an empty drive is not supported)", opt, arg);
		goto out;
	}
	if (!iface || !strcmp(iface, "virtio")) {
		/* QEMU's default interface on x86 is ide: said at -v, not an error. */
		if (!iface)
			qemu_note(c, "%s with no if=: the guest gets virtio-blk (/dev/vdX), not IDE",
				  opt);
	} else if (!strcmp(iface, "none")) {
		pending = true;
	} else if (!strcmp(iface, "ide") || !strcmp(iface, "scsi")) {
		qemu_note(c, "%s if=%s: the guest gets virtio-blk (/dev/vdX) instead", opt, iface);
	} else {
		qemu_usage("%s: if=%s is not supported (virtio, none; ide and scsi become "
			   "virtio-blk)", opt, iface);
		goto out;
	}
	/* A serial with a comma would split the spec: --disk's id has none either. */
	if (serial && strchr(serial, ',')) {
		qemu_usage("%s: serial='%s' has a comma", opt, serial);
		goto out;
	}
	path = qemu_escape(file);
	if (!path)
		goto out;
	spec = str_printf("%s%s%s%s%s%s%s", path, flags[0] ? ",ro=on" : "",
			  flags[1] ? ",discard=on" : "", cache ? ",cache=" : "", cache ? cache : "",
			  serial ? ",id=" : "", serial ? serial : "");
	free(path);
	if (!spec) {
		log_error("out of memory");
		goto out;
	}
	ret = qemu_drive_add(c, opt, id, spec, pending);
out:
	qemu_opts_free(&o);
	return ret;
}

/* -hda IMAGE (and a bare IMAGE): QEMU's first IDE disk; here the next virtio-blk disk. */
static int opt_hd(struct qemu_ctx *c, const char *opt, const char *arg)
{
	char *spec = qemu_escape(arg);

	if (!spec)
		return -1;
	qemu_note(c, "%s: the guest gets virtio-blk (/dev/vdX), not IDE", opt);
	return qemu_drive_add(c, opt, NULL, spec, false);
}

/* ---- network ---- */

static int qemu_netdev_find(struct qemu_ctx *c, const char *id)
{
	for (unsigned int i = 0; i < c->nr_netdevs; i++)
		if (!strcmp(c->netdevs[i].id, id))
			return (int)i;
	return -1;
}

/*
 * A -netdev (or the backend half of -nic) from its parsed properties into
 * n->spec. Keys named in skip belong to the caller (-nic's model=, mac=).
 */
static int qemu_netdev_build(struct qemu_ctx *c, const char *opt, struct qemu_opts *o,
			     struct qemu_netdev *n, bool need_id)
{
	const char *type = o->n && !o->val[0] ? o->key[0] : NULL, *ifname = NULL;
	char *spec = NULL, *add;
	bool b;

	if (!type)
		return qemu_usage("%s: first the type (user or tap)", opt);
	if (strcmp(type, "user") && strcmp(type, "tap"))
		return qemu_usage("%s %s: not supported (user and tap are)", opt, type);
	spec = strdup(!strcmp(type, "user") ? "user" : "");
	if (!spec)
		goto err_oom;
	for (unsigned int i = 1; i < o->n; i++) {
		const char *k = o->key[i], *v = o->val[i];

		if (!k[0] && !v)	/* -nic's model=, mac= left an empty slot */
			continue;
		if (qemu_need_value(opt, k, v) < 0)
			goto err;
		if (strchr(v, ',')) {
			qemu_usage("%s: %s='%s': no commas here", opt, k, v);
			goto err;
		}
		if (!strcmp(k, "id")) {
			if (qemu_set_id(n->id, opt, v) < 0)
				goto err;
		} else if (!strcmp(type, "user") && (!strcmp(k, "hostfwd") || !strcmp(k, "restrict"))) {
			if (!strcmp(k, "restrict") && vm_config_bool(opt, k, v, &b) < 0)
				goto err;
			/* hostfwd rules have no commas: --net checks them. */
			add = str_printf("%s,%s=%s", spec, k, !strcmp(k, "restrict") ? (b ? "on" : "off") : v);
			if (!add)
				goto err_oom;
			free(spec);
			spec = add;
		} else if (!strcmp(type, "user") && (!strcmp(k, "net") || !strcmp(k, "host") ||
						     !strcmp(k, "dhcpstart") || !strcmp(k, "dns"))) {
			static const char *const want[] = { "10.0.2.0/24", "10.0.2.2", "10.0.2.15",
							    "10.0.2.3" };
			int w = !strcmp(k, "net") ? 0 : !strcmp(k, "host") ? 1 :
				!strcmp(k, "dhcpstart") ? 2 : 3;

			if (strcmp(v, want[w]) && !(w == 0 && !strcmp(v, "10.0.2.0/255.255.255.0"))) {
				qemu_usage("%s: %s=%s is not supported (bootvm's user network is "
					   "fixed: %s=%s)", opt, k, v, k, want[w]);
				goto err;
			}
		} else if (!strcmp(type, "user") && (!strcmp(k, "ipv6") || !strcmp(k, "ipv4") ||
						     !strcmp(k, "hostname"))) {
			qemu_note(c, "%s %s=%s: ignored (bootvm's user network: IPv4, 10.0.2.0/24)",
				  opt, k, v);
		} else if (!strcmp(type, "tap") && !strcmp(k, "ifname")) {
			ifname = v;
		} else if (!strcmp(type, "tap") && (!strcmp(k, "script") || !strcmp(k, "downscript"))) {
			if (strcmp(v, "no")) {
				qemu_usage("%s: %s=%s is not supported (bootvm runs no scripts: set "
					   "the TAP up first, %s=no)", opt, k, v, k);
				goto err;
			}
		} else if (!strcmp(type, "tap") && !strcmp(k, "vhost")) {
			qemu_note(c, "%s vhost=%s: bootvm serves virtio-net itself (no vhost-net)",
				  opt, v);
		} else {
			qemu_usage("%s: '%s' is not supported for %s (%s)", opt, k, type,
				   !strcmp(type, "user") ? "id, hostfwd, restrict" :
				   "id, ifname, script=no, downscript=no, vhost");
			goto err;
		}
	}
	if (need_id && !n->id[0]) {
		qemu_usage("%s %s: needs id=", opt, type);
		goto err;
	}
	if (!strcmp(type, "tap")) {
		if (!ifname) {
			qemu_usage("%s tap: needs ifname= (an existing TAP device; bootvm creates none)",
				   opt);
			goto err;
		}
		free(spec);
		spec = str_printf("tap=%s", ifname);
		if (!spec)
			goto err_oom;
	}
	n->spec = spec;
	return 0;

err_oom:
	log_error("out of memory");
err:
	free(spec);
	return -1;
}

/* -netdev user|tap,id=ID,...: waits for the -device that uses it. */
static int opt_netdev(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct qemu_netdev n = { 0 };
	struct qemu_opts o;
	int ret;

	if (c->nr_netdevs == QEMU_MAX_NETDEVS)
		return qemu_usage("%s: at most %d", opt, QEMU_MAX_NETDEVS);
	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	ret = qemu_netdev_build(c, opt, &o, &n, true);
	qemu_opts_free(&o);
	if (ret)
		return -1;
	if (qemu_netdev_find(c, n.id) >= 0) {
		free(n.spec);
		return qemu_usage("%s: id '%s' given twice", opt, n.id);
	}
	c->netdevs[c->nr_netdevs++] = n;
	return 0;
}

/* 1 virtio-net, 2 a NIC model virtio-net stands in for, 0 not a NIC. */
static int qemu_nic_kind(const char *model)
{
	static const char *const virtio[] = { "virtio-net-pci", "virtio-net", "virtio",
					       "virtio-net-pci-non-transitional" };
	static const char *const others[] = { "e1000", "e1000e", "e1000-82545em", "rtl8139",
					       "vmxnet3", "ne2k_pci", "pcnet", "i82559er" };

	for (size_t i = 0; i < sizeof(virtio) / sizeof(virtio[0]); i++)
		if (!strcmp(model, virtio[i]))
			return 1;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (!strcmp(model, others[i]))
			return 2;
	return 0;
}

/* A NIC model: virtio-net, or one bootvm stands in for (said once, not only at -v). */
static int qemu_nic_model(struct qemu_ctx *c, const char *opt, const char *model)
{
	int kind = qemu_nic_kind(model);

	if (kind == 2 && !c->nic_model_said) {
		log_warn("qemu: %s %s: bootvm has virtio-net only; the guest gets virtio-net "
			 "instead", opt, model);
		c->nic_model_said = true;
	}
	if (kind)
		return 0;
	return qemu_usage("%s: NIC model '%s' is not supported (virtio-net-pci; e1000 and "
			  "rtl8139 become virtio-net)", opt, model);
}

/* The interface itself: netdev spec + id + mac into --net. */
static int qemu_nic_add(struct qemu_ctx *c, const struct qemu_netdev *n, const char *mac)
{
	char *spec;
	int ret;

	if (mac && (strchr(mac, ',') || !*mac))
		return qemu_usage("mac '%s': not six hex bytes like 52:54:00:12:34:56", mac);
	spec = str_printf("%s,id=%s%s%s", n->spec, n->id, mac ? ",mac=" : "", mac ? mac : "");
	if (!spec) {
		log_error("out of memory");
		return -1;
	}
	ret = vm_config_add_net(c->cfg, spec);
	free(spec);
	return ret;
}

/* -nic user|tap,...[,model=][,mac=]: a -netdev and its -device in one. */
static int opt_nic(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct qemu_netdev n = { 0 };
	struct qemu_opts o;
	const char *model = NULL, *mac = NULL;
	int ret = -1;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	/* model= and mac= are the NIC's; the rest is the backend's. */
	for (unsigned int i = 1; i < o.n; i++) {
		if (o.val[i] && (!strcmp(o.key[i], "model") || !strcmp(o.key[i], "mac"))) {
			*(!strcmp(o.key[i], "model") ? &model : &mac) = o.val[i];
			o.key[i][0] = 0;
			o.val[i] = NULL;
		}
	}
	if (model && qemu_nic_model(c, opt, model) < 0)
		goto out;
	if (qemu_netdev_build(c, opt, &o, &n, false) < 0)
		goto out;
	if (!n.id[0])
		snprintf(n.id, sizeof(n.id), "net%u", c->cfg->nr_nets);
	ret = qemu_nic_add(c, &n, mac);
	free(n.spec);
out:
	qemu_opts_free(&o);
	return ret;
}

/* -net none only: the legacy -net nic/-net user pairs are refused. */
static int opt_net(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)c;
	if (strcmp(arg, "none"))
		return qemu_usage("%s %s: not supported (use -nic user,... or -netdev with -device)",
				  opt, arg);
	return 0;
}

/* 1 attached, 0 no such -netdev (yet), -1 logged. */
static int qemu_attach_net(struct qemu_ctx *c, const char *opt, const char *drv,
			   const char *netdev, const char *mac)
{
	int i = qemu_netdev_find(c, netdev);

	if (i < 0)
		return 0;
	if (c->netdevs[i].used)
		return qemu_usage("%s %s: netdev '%s' is already used by another device", opt, drv,
				  netdev);
	c->netdevs[i].used = true;
	return qemu_nic_add(c, &c->netdevs[i], mac) < 0 ? -1 : 1;
}

/* 1 attached, 0 no such -drive (yet), -1 logged. */
static int qemu_attach_blk(struct qemu_ctx *c, const char *opt, const char *drv,
			   const char *drive)
{
	for (unsigned int i = 0; i < c->nr_drives; i++) {
		struct qemu_drive *d = &c->drives[i];

		if (strcmp(d->id, drive))
			continue;
		if (!d->pending)
			return qemu_usage("%s %s: drive '%s' is already attached (give it if=none)",
					  opt, drv, drive);
		if (vm_config_add_disk(c->cfg, d->spec) < 0)
			return -1;
		d->pending = false;
		return 1;
	}
	return 0;
}

static int qemu_defer(struct qemu_ctx *c, const char *opt, const char *drv, const char *ref,
		      const char *mac, bool net)
{
	struct qemu_later *l = &c->later[c->nr_later];

	if (c->nr_later == QEMU_MAX_DRIVES)
		return qemu_usage("%s: at most %d devices", opt, QEMU_MAX_DRIVES);
	if (strlen(ref) > QEMU_ID_MAX)
		return qemu_usage("%s %s: no -%s with id '%s'", opt, drv, net ? "netdev" : "drive",
				  ref);
	memset(l, 0, sizeof(*l));
	snprintf(l->opt, sizeof(l->opt), "%s", opt);
	snprintf(l->driver, sizeof(l->driver), "%s", drv);
	strcpy(l->ref, ref);
	l->net = net;
	if (mac && !(l->mac = strdup(mac))) {
		log_error("out of memory");
		return -1;
	}
	c->nr_later++;
	return 0;
}

static int qemu_device_net(struct qemu_ctx *c, const char *opt, struct qemu_opts *o)
{
	const char *netdev = NULL, *mac = NULL;
	int ret;

	if (qemu_nic_model(c, opt, o->key[0]) < 0)
		return -1;
	for (unsigned int k = 1; k < o->n; k++) {
		const char *key = o->key[k], *v = o->val[k];

		if (qemu_need_value(opt, key, v) < 0)
			return -1;
		if (!strcmp(key, "netdev"))
			netdev = v;
		else if (!strcmp(key, "mac"))
			mac = v;
		else if (!strcmp(key, "id") || !strcmp(key, "bus") || !strcmp(key, "addr") ||
			 !strcmp(key, "romfile") || !strcmp(key, "mq") || !strcmp(key, "vectors"))
			qemu_note(c, "%s %s=%s: ignored (PCI slots are given in command-line order)",
				  opt, key, v);
		else
			return qemu_usage("%s %s: '%s' is not supported (netdev, mac)", opt,
					  o->key[0], key);
	}
	if (!netdev)
		return qemu_usage("%s %s: needs netdev= (a -netdev id)", opt, o->key[0]);
	ret = qemu_attach_net(c, opt, o->key[0], netdev, mac);
	return ret ? (ret < 0 ? -1 : 0) : qemu_defer(c, opt, o->key[0], netdev, mac, true);
}

static int qemu_device_blk(struct qemu_ctx *c, const char *opt, struct qemu_opts *o)
{
	const char *drive = NULL;
	int ret;

	for (unsigned int k = 1; k < o->n; k++) {
		const char *key = o->key[k], *v = o->val[k];

		if (qemu_need_value(opt, key, v) < 0)
			return -1;
		if (!strcmp(key, "drive"))
			drive = v;
		else if (!strcmp(key, "id") || !strcmp(key, "bus") || !strcmp(key, "addr") ||
			 !strcmp(key, "bootindex") || !strcmp(key, "num-queues"))
			qemu_note(c, "%s %s=%s: ignored (disks are virtio-blk in command-line order)",
				  opt, key, v);
		else
			return qemu_usage("%s %s: '%s' is not supported (drive)", opt, o->key[0], key);
	}
	if (!drive)
		return qemu_usage("%s %s: needs drive= (a -drive id)", opt, o->key[0]);
	ret = qemu_attach_blk(c, opt, o->key[0], drive);
	return ret ? (ret < 0 ? -1 : 0) : qemu_defer(c, opt, o->key[0], drive, NULL, false);
}

/* -device DRIVER,...: virtio-net (or a NIC it stands in for), virtio-blk, virtio-rng. */
static int opt_device(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct qemu_opts o;
	const char *drv;
	int ret;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	drv = o.n && !o.val[0] ? o.key[0] : "";
	if (!strcmp(drv, "virtio-blk-pci") || !strcmp(drv, "virtio-blk")) {
		ret = qemu_device_blk(c, opt, &o);
	} else if (!strcmp(drv, "virtio-rng-pci") || !strcmp(drv, "virtio-rng")) {
		c->cfg->rng = true;
		ret = 0;
		for (unsigned int k = 1; k < o.n; k++)
			qemu_note(c, "%s %s %s: ignored (bootvm's virtio-rng reads getrandom())",
				  opt, drv, o.key[k]);
	} else if (qemu_nic_kind(drv)) {
		ret = qemu_device_net(c, opt, &o);
	} else {
		ret = qemu_usage("%s %s: not supported (virtio-net-pci, e1000, virtio-blk-pci, "
				 "virtio-rng-pci)", opt, drv);
	}
	qemu_opts_free(&o);
	return ret;
}

/* -object rng-random|rng-builtin,...: virtio-rng's backend; bootvm's is getrandom(). */
static int opt_object(struct qemu_ctx *c, const char *opt, const char *arg)
{
	size_t n = strcspn(arg, ",");

	if ((n == 10 && !strncmp(arg, "rng-random", n)) || (n == 11 && !strncmp(arg, "rng-builtin", n))) {
		qemu_note(c, "%s %.*s: virtio-rng is fed by getrandom() here", opt, (int)n, arg);
		return 0;
	}
	return qemu_usage("%s %.*s: not supported (rng-random and rng-builtin are)", opt, (int)n, arg);
}

/* ---- console, display, machine ---- */

static int opt_serial(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct vm_config *cfg = c->cfg;
	bool none = !strcmp(arg, "none") || !strcmp(arg, "null");

	if (c->serial_given) {
		if (none)
			return 0;
		return qemu_usage("%s %s: bootvm has one serial port (the first -serial is it)",
				  opt, arg);
	}
	c->serial_given = true;
	if (!strcmp(arg, "stdio") || !strcmp(arg, "mon:stdio")) {
		cfg->console = CONSOLE_STDIO;
		if (arg[0] == 'm')
			qemu_note(c, "%s mon:stdio: no monitor in bootvm; Ctrl-A x quits, Ctrl-A h "
				  "lists the keys", opt);
	} else if (none) {
		cfg->console = CONSOLE_NONE;
	} else if (!strncmp(arg, "file:", 5) && arg[5]) {
		cfg->console = CONSOLE_FILE;
		return vm_config_set(cfg, &cfg->console_path, arg + 5);
	} else {
		return qemu_usage("%s %s: not supported (stdio, mon:stdio, none, null, file:PATH)",
				  opt, arg);
	}
	return 0;
}

static int opt_nographic(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)arg;
	qemu_note(c, "%s: bootvm has no display; the serial console is on the terminal", opt);
	return 0;
}

/* -display none, -vga none, -monitor none, -parallel none: nothing bootvm has anyway. */
static int opt_none_only(struct qemu_ctx *c, const char *opt, const char *arg)
{
	size_t n = strcspn(arg, ",");

	(void)c;
	if (n != 4 || strncmp(arg, "none", 4))
		return qemu_usage("%s %s: not supported (only %s none: bootvm has no %s)", opt, arg,
				  opt, !strcmp(opt + 1, "vga") || !strcmp(opt + 1, "display") ?
				  "display" : opt + 1);
	return 0;
}

/* kvm, or a list with kvm in it ("kvm:tcg"): bootvm is KVM only. */
static int qemu_accel(const char *opt, const char *v)
{
	const char *p = v;

	while (*p) {
		size_t n = strcspn(p, ":");

		if (n == 3 && !strncmp(p, "kvm", 3))
			return 0;
		p += n + (p[n] == ':');
	}
	return qemu_usage("%s %s: not supported (bootvm runs on KVM only: kvm)", opt, v);
}

static int opt_accel(struct qemu_ctx *c, const char *opt, const char *arg)
{
	struct qemu_opts o;
	int ret = 0;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	for (unsigned int i = 0; i < o.n && !ret; i++) {
		if ((i == 0 && !o.val[i]) || !strcmp(o.key[i], "accel"))
			ret = qemu_accel(opt, o.val[i] ? o.val[i] : o.key[i]);
		else
			qemu_note(c, "%s %s: ignored (bootvm's KVM set-up is fixed)", opt, o.key[i]);
	}
	qemu_opts_free(&o);
	return ret;
}

static int opt_enable_kvm(struct qemu_ctx *c, const char *opt, const char *arg)
{
	(void)arg;
	qemu_note(c, "%s: bootvm always runs on KVM", opt);
	return 0;
}

/* -machine|-M [type=]microvm|pc|q35|pc-*|...[,accel=kvm][,PROP=VALUE...] */
static int opt_machine(struct qemu_ctx *c, const char *opt, const char *arg)
{
	/* Exact names, then versioned ones (pc-i440fx-7.2, pc-q35-8.0, Ubuntu's). */
	static const char *const types[] = { "microvm", "pc", "q35" };
	static const char *const prefixes[] = { "pc-", "ubuntu" };
	struct qemu_opts o;
	int ret = 0;

	if (qemu_opts_parse(&o, opt, arg) < 0)
		return -1;
	for (unsigned int i = 0; i < o.n && !ret; i++) {
		const char *k = o.key[i], *v = o.val[i];

		if ((i == 0 && !v) || !strcmp(k, "type")) {
			const char *t = v ? v : k;
			bool known = false;

			for (size_t j = 0; j < sizeof(types) / sizeof(types[0]); j++)
				known |= !strcmp(t, types[j]);
			for (size_t j = 0; j < sizeof(prefixes) / sizeof(prefixes[0]); j++)
				known |= !strncmp(t, prefixes[j], strlen(prefixes[j]));
			if (!known)
				ret = qemu_usage("%s %s: not supported (an x86 machine bootvm stands in "
						 "for: microvm, pc, q35)", opt, t);
			else
				qemu_note(c, "%s %s: the guest gets bootvm's machine (docs/MACHINE.md)",
					  opt, t);
		} else if (!strcmp(k, "accel")) {
			ret = qemu_need_value(opt, k, v);
			if (!ret)
				ret = qemu_accel(opt, v);
		} else {
			qemu_note(c, "%s %s%s%s: ignored (bootvm's machine is fixed: ACPI, PCI, "
				  "one UART, an MP table for acpi=off)", opt, k, v ? "=" : "", v ? v : "");
		}
	}
	qemu_opts_free(&o);
	return ret;
}

static int opt_cpu(struct qemu_ctx *c, const char *opt, const char *arg)
{
	size_t n = strcspn(arg, ",");

	if ((n == 4 && !strncmp(arg, "host", 4)) || (n == 3 && !strncmp(arg, "max", 3))) {
		if (arg[n])
			qemu_note(c, "%s %s: CPU flags ignored (the guest gets the host's CPUID)", opt,
				  arg);
		return 0;
	}
	if (!c->cpu_model_said)
		log_warn("qemu: %s %s: bootvm gives the guest the host's CPU (as -cpu host)", opt, arg);
	c->cpu_model_said = true;
	return 0;
}

/* Options bootvm accepts and has nothing to do for; the note says why. */
static int opt_ignored(struct qemu_ctx *c, const char *opt, const char *arg)
{
	static const struct { const char *name, *why; } why[] = {
		{ "bios", "no firmware runs: bootvm loads the kernel itself" },
		{ "boot", "bootvm boots -kernel, else the kernel inside the first disk" },
		{ "nodefaults", "bootvm adds no default devices" },
		{ "no-user-config", "bootvm reads no configuration files" },
		{ "no-reboot", "bootvm always ends when the guest resets" },
		{ "name", "the VM's name is not used" },
		{ "L", "no firmware is loaded" },
	};
	const char *name = opt + 1 + (opt[1] == '-');

	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++)
		if (!strcmp(name, why[i].name))
			qemu_note(c, "%s%s%s: %s", opt, arg ? " " : "", arg ? arg : "", why[i].why);
	return 0;
}

static const struct qemu_option {
	const char *name;
	bool has_arg;
	int (*fn)(struct qemu_ctx *c, const char *opt, const char *arg);
} qemu_options[] = {
	{ "kernel", true, opt_kernel },
	{ "initrd", true, opt_initrd },
	{ "append", true, opt_append },
	{ "m", true, opt_memory },
	{ "smp", true, opt_smp },
	{ "drive", true, opt_drive },
	{ "hda", true, opt_hd },
	{ "hdb", true, opt_hd },
	{ "hdc", true, opt_hd },
	{ "hdd", true, opt_hd },
	{ "netdev", true, opt_netdev },
	{ "nic", true, opt_nic },
	{ "net", true, opt_net },
	{ "device", true, opt_device },
	{ "object", true, opt_object },
	{ "serial", true, opt_serial },
	{ "nographic", false, opt_nographic },
	{ "display", true, opt_none_only },
	{ "vga", true, opt_none_only },
	{ "monitor", true, opt_none_only },
	{ "parallel", true, opt_none_only },
	{ "enable-kvm", false, opt_enable_kvm },
	{ "accel", true, opt_accel },
	{ "machine", true, opt_machine },
	{ "M", true, opt_machine },
	{ "cpu", true, opt_cpu },
	{ "bios", true, opt_ignored },
	{ "L", true, opt_ignored },
	{ "boot", true, opt_ignored },
	{ "name", true, opt_ignored },
	{ "nodefaults", false, opt_ignored },
	{ "no-user-config", false, opt_ignored },
	{ "no-reboot", false, opt_ignored },
};

static void qemu_ctx_free(struct qemu_ctx *c)
{
	for (unsigned int i = 0; i < c->nr_drives; i++)
		free(c->drives[i].spec);
	for (unsigned int i = 0; i < c->nr_netdevs; i++)
		free(c->netdevs[i].spec);
	for (unsigned int i = 0; i < c->nr_later; i++)
		free(c->later[i].mac);
	for (unsigned int i = 0; i < c->nr_notes; i++)
		free(c->notes[i]);
}

/* After the whole line: what was defined and never attached, and what must be there. */
static int qemu_finish(struct qemu_ctx *c)
{
	const struct vm_config *cfg = c->cfg;

	for (unsigned int i = 0; i < c->nr_later; i++) {
		const struct qemu_later *l = &c->later[i];
		int ret = l->net ? qemu_attach_net(c, l->opt, l->driver, l->ref, l->mac) :
			  qemu_attach_blk(c, l->opt, l->driver, l->ref);

		if (ret < 0)
			return -1;
		if (!ret)
			return qemu_usage("%s %s: no -%s with id '%s'", l->opt, l->driver,
					  l->net ? "netdev" : "drive", l->ref);
	}
	for (unsigned int i = 0; i < c->nr_drives; i++)
		if (c->drives[i].pending)
			qemu_note(c, "-drive id=%s (if=none): no -device uses it; the guest does not "
				  "get it", c->drives[i].id[0] ? c->drives[i].id : "?");
	for (unsigned int i = 0; i < c->nr_netdevs; i++)
		if (!c->netdevs[i].used)
			log_warn("qemu: -netdev %s: no -device uses it; the guest does not get it",
				 c->netdevs[i].id);
	if (!cfg->kernel_path && !cfg->nr_disks)
		return qemu_usage("-kernel is required, or a -drive with a kernel inside");
	if (!cfg->kernel_path && cfg->initrd_path)
		return qemu_usage("-initrd needs -kernel (a kernel from the disk comes with its "
				  "own initrd)");
	return vm_config_validate(cfg);
}

int cli_qemu_parse(int argc, char **argv, struct vm_config *cfg, struct cli_run_opts *opts)
{
	struct qemu_ctx c = { .cfg = cfg };
	int ret = CLI_USAGE;

	cfg->mem_size = QEMU_DEFAULT_MEM;
	for (int i = 1; i < argc; i++) {
		const char *word = argv[i], *name = word + 1, *arg = NULL;
		const struct qemu_option *o = NULL;

		if (word[0] != '-' || !word[1]) {
			/* A bare word is QEMU's first disk image (as -hda). */
			if (opt_hd(&c, "-hda", word) < 0)
				goto out;
			continue;
		}
		if (*name == '-')
			name++;
		if (!strcmp(name, "h") || !strcmp(name, "help")) {
			fputs(qemu_help, stdout);
			ret = -1;
			goto out;
		}
		if (!strcmp(name, "version")) {
			printf("bootvm %s, taking qemu-system-x86_64's command line "
			       "(bootvm qemu --help lists what)\n", BOOTVM_VERSION);
			ret = -1;
			goto out;
		}
		if (!strcmp(name, "v") || !strcmp(name, "verbose")) {
			opts->verbose++;
			continue;
		}
		for (size_t j = 0; j < sizeof(qemu_options) / sizeof(qemu_options[0]); j++)
			if (!strcmp(name, qemu_options[j].name))
				o = &qemu_options[j];
		if (!o) {
			qemu_usage("option '%s' is not supported by bootvm", word);
			goto out;
		}
		if (o->has_arg) {
			if (i + 1 >= argc) {
				qemu_usage("option '%s' needs a value", word);
				goto out;
			}
			arg = argv[++i];
		}
		if (o->fn(&c, word, arg) < 0)
			goto out;
	}
	if (qemu_finish(&c) < 0)
		goto out;
	ret = 0;
	if (opts->verbose) {
		log_set_level(opts->verbose > 1 ? LOG_DEBUG : LOG_INFO);
		for (unsigned int i = 0; i < c.nr_notes; i++)
			log_info("qemu: %s", c.notes[i]);
	}
out:
	qemu_ctx_free(&c);
	return ret;
}

int cli_qemu(int argc, char **argv)
{
	return cli_parse_and_run(cli_qemu_parse, argc, argv);
}
