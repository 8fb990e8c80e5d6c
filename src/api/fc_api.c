#include "api/fc_api.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/fc_log.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "vmm/timeline.h"

#define FC_JSON_DEPTH 16
#define FC_CMDLINE_MAX 2048		/* Firecracker's x86 CMDLINE_MAX_SIZE */
#define FC_MAX_MEM_MIB (1ULL << 20)	/* 1 TiB */
#define FC_PARTUUID_MAX 64

static const char fc_deser[] = "An error occurred when deserializing the json body of a request";
static const char fc_post_boot[] =
	"The requested operation is not supported after starting the microVM.";
static const char fc_pre_boot[] =
	"The requested operation is not supported before starting the microVM.";

/* ---- small helpers ---- */

static int fault(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fault(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return -1;
}

static int set_str(char **field, const char *v, char *f, size_t size)
{
	char *c = NULL;

	if (v && !(c = strdup(v)))
		return fault(f, size, "Out of memory.");
	free(*field);
	*field = c;
	return 0;
}

/* ---- JSON bodies, checked field by field as serde's deny_unknown_fields does ---- */

enum jkind { J_STR, J_BOOL, J_UINT, J_OBJ, J_ARRAY, J_ANY };

struct jfield {
	const char *name;
	enum jkind kind;
	bool required;
};

static const char *jkind_name(enum jkind k)
{
	switch (k) {
	case J_STR: return "a string";
	case J_BOOL: return "a boolean";
	case J_UINT: return "a non-negative integer";
	case J_OBJ: return "an object";
	case J_ARRAY: return "an array";
	default: return "a value";
	}
}

static const char *jtype_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a floating point number";
	case json_type_int: return json_object_get_int64(v) < 0 ? "a negative integer" : "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

static bool jkind_ok(struct json_object *v, enum jkind k)
{
	switch (k) {
	case J_STR:
		/* An embedded NUL would cut a path or an id short: refused. */
		return json_object_is_type(v, json_type_string) &&
		       strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v);
	case J_BOOL: return json_object_is_type(v, json_type_boolean);
	case J_UINT:
		/* json-c keeps integers beyond INT64_MAX as uint64; errno tells. */
		if (!json_object_is_type(v, json_type_int))
			return false;
		return json_object_get_int64(v) >= 0;
	case J_OBJ: return json_object_is_type(v, json_type_object);
	case J_ARRAY: return json_object_is_type(v, json_type_array);
	default: return true;
	}
}

/*
 * o must be an object whose keys are all in fields, each of its kind (null
 * counts as absent, as serde's Option), the required ones present.
 */
static int json_check(struct json_object *o, const struct jfield *fields, size_t n,
		      const char *what, char *f, size_t size)
{
	if (!json_object_is_type(o, json_type_object))
		return fault(f, size, "%s: invalid type: %s, expected %s", fc_deser, jtype_name(o),
			     what);
	json_object_object_foreach(o, key, val) {
		size_t i;

		for (i = 0; i < n && strcmp(fields[i].name, key); i++)
			;
		if (i == n) {
			char expected[512] = "";
			size_t len = 0;

			for (size_t j = 0; j < n && len < sizeof(expected); j++)
				len += (size_t)snprintf(expected + len, sizeof(expected) - len, "%s`%s`",
							j ? ", " : "", fields[j].name);
			return fault(f, size, "%s: unknown field `%.64s`, expected %s%s.", fc_deser,
				     key, n > 1 ? "one of " : "", expected);
		}
		if (json_object_is_type(val, json_type_null) && !fields[i].required)
			continue;
		if (!jkind_ok(val, fields[i].kind))
			return fault(f, size, "%s: invalid type for `%s`: %s, expected %s.", fc_deser,
				     key, jtype_name(val), jkind_name(fields[i].kind));
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *v;

		if (fields[i].required &&
		    (!json_object_object_get_ex(o, fields[i].name, &v) ||
		     json_object_is_type(v, json_type_null)))
			return fault(f, size, "%s: missing field `%s`.", fc_deser, fields[i].name);
	}
	return 0;
}

/* The field if present and not null (json_check() already vouched for its kind). */
static struct json_object *jget(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

static const char *jstr(struct json_object *o, const char *name)
{
	struct json_object *v = jget(o, name);

	return v ? json_object_get_string(v) : NULL;
}

/* -1: absent; else 0/1. */
static int jbool(struct json_object *o, const char *name)
{
	struct json_object *v = jget(o, name);

	return v ? json_object_get_boolean(v) : -1;
}

static bool juint(struct json_object *o, const char *name, uint64_t *out)
{
	struct json_object *v = jget(o, name);

	if (!v)
		return false;
	errno = 0;
	*out = json_object_get_uint64(v);
	if (errno)
		*out = UINT64_MAX;
	return true;
}

static struct json_object *json_parse(const char *body, size_t len, char *f, size_t size)
{
	struct json_tokener *tok = json_tokener_new_ex(FC_JSON_DEPTH);
	struct json_object *o;
	enum json_tokener_error err;

	if (!tok) {
		fault(f, size, "Out of memory.");
		return NULL;
	}
	if (len > INT32_MAX) {
		json_tokener_free(tok);
		fault(f, size, "%s: the body is too large.", fc_deser);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	err = json_tokener_get_error(tok);
	if (err == json_tokener_success) {
		/* Nothing but white space may follow the value. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			if (!isspace((unsigned char)body[i])) {
				err = json_tokener_error_parse_unexpected;
				break;
			}
		}
	}
	json_tokener_free(tok);
	if (err != json_tokener_success) {
		json_object_put(o);
		if (err == json_tokener_continue)
			fault(f, size, "%s: EOF while parsing a value.", fc_deser);
		else
			fault(f, size, "%s: %s.", fc_deser, json_tokener_error_desc(err));
		return NULL;
	}
	return o;
}

/* Firecracker's checked_id(): API resource ids are [A-Za-z0-9_]+. */
static int check_id(const char *id, char *f, size_t size)
{
	if (!id || !*id)
		return fault(f, size, "The ID cannot be empty.");
	if (strlen(id) > FC_ID_MAX)
		return fault(f, size, "API Resource IDs can be at most %d characters long.", FC_ID_MAX);
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return fault(f, size, "API Resource IDs can only contain alphanumeric "
				     "characters and underscores.");
	return 0;
}

/* A path the VMM will open: it must open now, or the PUT fails (as Firecracker's do). */
static int check_file(const char *path, bool write, const char *what, char *f, size_t size)
{
	struct stat st;
	int fd;

	/* Opening is not harmless for every file (a watchdog starts, a FIFO's reader wakes): look first. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fault(f, size, "%s %s: not a regular file or block device", what, path);
	fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fault(f, size, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		close(fd);
		return fault(f, size, "%s %s: not a regular file or block device", what, path);
	}
	close(fd);
	return 0;
}

/* Fields bootvm knows from Firecracker's spec but cannot honour: a 400 naming them, never ignored. */
static int refuse_present(struct json_object *o, const char *name, const char *why,
			  char *f, size_t size)
{
	if (jget(o, name))
		return fault(f, size, "bootvm does not support `%s`: %s.", name, why);
	return 0;
}

/*
 * A RateLimiter that limits nothing (no buckets, or buckets of size 0, which
 * Firecracker takes as unlimited) is what clients such as Kata send by
 * default: accepted. One that would limit is refused: bootvm has none.
 */
static int refuse_limiter(struct json_object *o, const char *name, char *f, size_t size)
{
	static const char *const buckets[] = { "bandwidth", "ops" };
	struct json_object *rl = jget(o, name);

	if (!rl)
		return 0;
	for (int i = 0; i < 2; i++) {
		struct json_object *b = jget(rl, buckets[i]), *sz;

		if (!b)
			continue;
		if (!json_object_is_type(b, json_type_object) ||
		    !json_object_object_get_ex(b, "size", &sz) ||
		    !json_object_is_type(sz, json_type_int) || json_object_get_int64(sz) != 0)
			return fault(f, size, "bootvm does not support `%s`: bootvm has no rate "
				     "limiters (only an unlimited one, size 0, is accepted).", name);
	}
	json_object_object_foreach(rl, key, val) {
		(void)val;
		if (strcmp(key, "bandwidth") && strcmp(key, "ops"))
			return fault(f, size, "%s: unknown field `%.64s` in `%s`, expected `bandwidth` "
				     "or `ops`.", fc_deser, key, name);
	}
	return 0;
}

/* ---- the resources ---- */

static void drive_free(struct fc_drive *d)
{
	free(d->path);
	free(d->partuuid);
	memset(d, 0, sizeof(*d));
}

static void net_free(struct fc_net *n)
{
	free(n->tap);
	free(n->bootvm_net);
	memset(n, 0, sizeof(*n));
}

static void resources_init(struct fc_resources *r)
{
	memset(r, 0, sizeof(*r));
	r->vcpu_count = 1;
	r->mem_size_mib = FC_DEFAULT_MEM_MIB;
}

static void resources_free(struct fc_resources *r)
{
	free(r->kernel);
	free(r->initrd);
	free(r->boot_args);
	for (unsigned int i = 0; i < r->nr_drives; i++)
		drive_free(&r->drives[i]);
	for (unsigned int i = 0; i < r->nr_nets; i++)
		net_free(&r->nets[i]);
	resources_init(r);
}

/* ---- endpoints: each takes the parsed body, fills fault and returns -1 on a 400 ---- */

static int put_boot_source(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "kernel_image_path", J_STR, true }, { "initrd_path", J_STR, false },
		{ "boot_args", J_STR, false },
	};
	struct fc_resources *r = &api->res;
	const char *kernel, *initrd, *args;

	if (json_check(o, fields, 3, "struct BootSourceConfig", f, size) < 0)
		return -1;
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	kernel = jstr(o, "kernel_image_path");
	initrd = jstr(o, "initrd_path");
	args = jstr(o, "boot_args");
	if (check_file(kernel, false, "Boot source error: The kernel file cannot be opened:",
		       f, size) < 0)
		return -1;
	if (initrd && check_file(initrd, false, "Boot source error: The initrd file cannot be "
				 "opened:", f, size) < 0)
		return -1;
	if (args && strlen(args) >= FC_CMDLINE_MAX)
		return fault(f, size, "Boot source error: The kernel command line is invalid: "
			     "longer than %d bytes", FC_CMDLINE_MAX - 1);
	if (set_str(&r->kernel, kernel, f, size) < 0 || set_str(&r->initrd, initrd, f, size) < 0 ||
	    set_str(&r->boot_args, args, f, size) < 0)
		return -1;
	return 0;
}

static const struct jfield machine_fields[] = {
	{ "vcpu_count", J_UINT, true }, { "mem_size_mib", J_UINT, true }, { "smt", J_BOOL, false },
	{ "track_dirty_pages", J_BOOL, false }, { "cpu_template", J_STR, false },
	{ "huge_pages", J_STR, false },
};

/* PUT (all of it, defaults for what is missing) or PATCH (what is given). */
static int machine_config(struct fc_api *api, struct json_object *o, bool patch,
			  char *f, size_t size)
{
	struct jfield fields[6];
	struct fc_resources *r = &api->res;
	uint64_t vcpus = patch ? r->vcpu_count : 1, mem = patch ? r->mem_size_mib : 0;
	int smt, dirty;
	const char *tmpl, *huge;

	memcpy(fields, machine_fields, sizeof(fields));
	if (patch)
		fields[0].required = fields[1].required = false;
	if (json_check(o, fields, 6, "struct MachineConfig", f, size) < 0)
		return -1;
	if (patch && !json_object_object_length(o))
		return fault(f, size, "Empty PATCH request.");
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	juint(o, "vcpu_count", &vcpus);
	juint(o, "mem_size_mib", &mem);
	smt = jbool(o, "smt");
	dirty = jbool(o, "track_dirty_pages");
	tmpl = jstr(o, "cpu_template");
	huge = jstr(o, "huge_pages");
	if (vcpus < 1 || vcpus > FC_MAX_VCPUS || (smt == 1 && vcpus > 1 && vcpus % 2))
		return fault(f, size, "Machine config error: The number of vCPUs must be greater "
			     "than 0, less than %d and must be 1 or an even number if SMT is "
			     "enabled.", FC_MAX_VCPUS);
	if (mem == 0)
		return fault(f, size, "Machine config error: The memory size (MiB) is either 0, "
			     "or not a multiple of the configured page size.");
	if (mem < (VM_MIN_MEM_SIZE >> 20) || mem > FC_MAX_MEM_MIB)
		return fault(f, size, "Machine config error: bootvm takes mem_size_mib from %llu "
			     "to %llu.", VM_MIN_MEM_SIZE >> 20, FC_MAX_MEM_MIB);
	if (smt == 1)
		return fault(f, size, "bootvm does not support `smt`: the guest gets one thread "
			     "per core.");
	if (dirty == 1)
		return fault(f, size, "bootvm does not support `track_dirty_pages`: it has no "
			     "snapshots.");
	if (tmpl && strcmp(tmpl, "None"))
		return fault(f, size, "bootvm does not support CPU templates (`cpu_template` "
			     "\"%.32s\"): only \"None\".", tmpl);
	if (huge && strcmp(huge, "None"))
		return fault(f, size, "bootvm does not support `huge_pages` \"%.32s\": only "
			     "\"None\".", huge);
	r->vcpu_count = (unsigned int)vcpus;
	r->mem_size_mib = mem;
	if (!patch || smt >= 0)
		r->smt = false;
	if (!patch || dirty >= 0)
		r->track_dirty_pages = false;
	return 0;
}

static struct fc_drive *drive_find(struct fc_resources *r, const char *id)
{
	for (unsigned int i = 0; i < r->nr_drives; i++)
		if (!strcmp(r->drives[i].id, id))
			return &r->drives[i];
	return NULL;
}

static int partuuid_ok(const char *s)
{
	if (!*s || strlen(s) > FC_PARTUUID_MAX)
		return 0;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return 0;
	return 1;
}

static int put_drive(struct fc_api *api, const char *id, struct json_object *o,
		     char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "drive_id", J_STR, true }, { "partuuid", J_STR, false },
		{ "is_root_device", J_BOOL, true }, { "cache_type", J_STR, false },
		{ "is_read_only", J_BOOL, false }, { "path_on_host", J_STR, false },
		{ "rate_limiter", J_OBJ, false }, { "io_engine", J_STR, false },
		{ "socket", J_STR, false },
	};
	struct fc_resources *r = &api->res;
	struct fc_drive d = { 0 }, *old;
	const char *path, *cache, *engine, *partuuid;

	if (check_id(id, f, size) < 0 ||
	    json_check(o, fields, sizeof(fields) / sizeof(fields[0]), "struct BlockDeviceConfig",
		       f, size) < 0)
		return -1;
	if (strcmp(id, jstr(o, "drive_id")))
		return fault(f, size, "The id from the path does not match the id from the body!");
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	if (refuse_present(o, "socket", "bootvm has no vhost-user block devices", f, size) < 0 ||
	    refuse_limiter(o, "rate_limiter", f, size) < 0)
		return -1;
	path = jstr(o, "path_on_host");
	cache = jstr(o, "cache_type");
	engine = jstr(o, "io_engine");
	partuuid = jstr(o, "partuuid");
	if (!path)
		return fault(f, size, "%s: missing field `path_on_host`.", fc_deser);
	if (cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
		return fault(f, size, "%s: unknown variant `%.32s`, expected `Unsafe` or "
			     "`Writeback`.", fc_deser, cache);
	if (engine && strcmp(engine, "Sync") && strcmp(engine, "Async"))
		return fault(f, size, "%s: unknown variant `%.32s`, expected `Sync` or `Async`.",
			     fc_deser, engine);
	/* It goes on the kernel command line: hex digits and dashes only. */
	if (partuuid && !partuuid_ok(partuuid))
		return fault(f, size, "Drive config error: partuuid \"%.80s\" is not a partition "
			     "UUID (hex digits and dashes).", partuuid);
	snprintf(d.id, sizeof(d.id), "%s", id);
	d.root = jbool(o, "is_root_device") == 1;
	d.ro = jbool(o, "is_read_only") == 1;
	d.cache_unsafe = !cache || !strcmp(cache, "Unsafe");
	d.io_async = engine && !strcmp(engine, "Async");
	old = drive_find(r, id);
	if (d.root) {
		for (unsigned int i = 0; i < r->nr_drives; i++)
			if (r->drives[i].root && &r->drives[i] != old)
				return fault(f, size, "Drive config error: A root block device "
					     "already exists!");
	}
	if (!old && r->nr_drives == VM_MAX_DISKS)
		return fault(f, size, "Drive config error: bootvm takes at most %d drives.",
			     VM_MAX_DISKS);
	if (check_file(path, !d.ro, "Drive config error: Unable to create the virtio block "
		       "device:", f, size) < 0)
		return -1;
	if (set_str(&d.path, path, f, size) < 0 || set_str(&d.partuuid, partuuid, f, size) < 0) {
		drive_free(&d);
		return -1;
	}
	if (old) {
		drive_free(old);
		*old = d;
	} else {
		old = &r->drives[r->nr_drives++];
		*old = d;
	}
	/* The root drive is /dev/vda: first in the list, as Firecracker keeps it. */
	if (old->root && old != &r->drives[0]) {
		struct fc_drive t = *old;

		memmove(&r->drives[1], &r->drives[0], (size_t)(old - r->drives) * sizeof(t));
		r->drives[0] = t;
	}
	return 0;
}

static int patch_drive(struct fc_api *api, const char *id, struct json_object *o,
		       char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "drive_id", J_STR, true }, { "path_on_host", J_STR, false },
		{ "rate_limiter", J_OBJ, false },
	};
	struct fc_drive *d;
	const char *path;

	if (check_id(id, f, size) < 0 ||
	    json_check(o, fields, 3, "struct BlockDeviceUpdateConfig", f, size) < 0)
		return -1;
	if (strcmp(id, jstr(o, "drive_id")))
		return fault(f, size, "The id from the path does not match the id from the body!");
	if (api->state == FC_NOT_STARTED)
		return fault(f, size, "%s", fc_pre_boot);
	d = drive_find(&api->res, id);
	if (!d)
		return fault(f, size, "Drive config error: no drive with drive_id `%s`.", id);
	if (refuse_limiter(o, "rate_limiter", f, size) < 0)
		return -1;
	path = jstr(o, "path_on_host");
	if (path && strcmp(path, d->path))
		return fault(f, size, "bootvm cannot change a drive's `path_on_host` while the VM "
			     "runs.");
	return 0;
}

static struct fc_net *net_find(struct fc_resources *r, const char *id)
{
	for (unsigned int i = 0; i < r->nr_nets; i++)
		if (!strcmp(r->nets[i].id, id))
			return &r->nets[i];
	return NULL;
}

/* Whether a bootvm_net spec is one --net takes (user-mode networking only). */
static int check_bootvm_net(const char *spec, char *f, size_t size)
{
	struct vm_config scratch;
	char err[FC_FAULT_MAX];
	int ret;

	if (strncmp(spec, "user", 4) || (spec[4] && spec[4] != ','))
		return fault(f, size, "Network config error: bootvm_net \"%.64s\" must be "
			     "user[,hostfwd=...][,restrict=on] (a TAP device is host_dev_name).",
			     spec);
	vm_config_init(&scratch);
	log_capture_first_error(err, sizeof(err));
	ret = vm_config_add_net(&scratch, spec);
	log_capture_first_error(NULL, 0);
	vm_config_free(&scratch);
	if (ret < 0)
		return fault(f, size, "Network config error: %s", err);
	return 0;
}

static int put_net(struct fc_api *api, const char *id, struct json_object *o,
		   char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "iface_id", J_STR, true }, { "host_dev_name", J_STR, false },
		{ "guest_mac", J_STR, false }, { "mtu", J_UINT, false },
		{ "rx_rate_limiter", J_OBJ, false }, { "tx_rate_limiter", J_OBJ, false },
		{ "bootvm_net", J_STR, false },
	};
	struct fc_resources *r = &api->res;
	struct fc_net n = { 0 }, *old;
	const char *iface, *tap, *mac, *user;

	if (check_id(id, f, size) < 0 ||
	    json_check(o, fields, sizeof(fields) / sizeof(fields[0]),
		       "struct NetworkInterfaceConfig", f, size) < 0)
		return -1;
	iface = jstr(o, "iface_id");
	if (strcmp(id, iface))
		return fault(f, size, "The id from the path [%s] does not match the id from the "
			     "body [%.64s]!", id, iface);
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	if (refuse_limiter(o, "rx_rate_limiter", f, size) < 0 ||
	    refuse_limiter(o, "tx_rate_limiter", f, size) < 0 ||
	    refuse_present(o, "mtu", "bootvm's virtio-net does not advertise an MTU", f, size) < 0)
		return -1;
	tap = jstr(o, "host_dev_name");
	mac = jstr(o, "guest_mac");
	user = jstr(o, "bootvm_net");
	if (!tap && !user)
		return fault(f, size, "%s: missing field `host_dev_name`.", fc_deser);
	if (tap && user)
		return fault(f, size, "Network config error: give host_dev_name (a TAP device) or "
			     "bootvm_net (user-mode networking), not both.");
	if (tap && (!*tap || strlen(tap) >= 16 || strchr(tap, '/')))
		return fault(f, size, "Network config error: Cannot open/create the tap device: "
			     "invalid name \"%.64s\".", tap);
	if (user && check_bootvm_net(user, f, size) < 0)
		return -1;
	if (mac) {
		if (str_parse_mac(mac, n.mac) < 0)
			return fault(f, size, "%s: invalid MAC address \"%.32s\".", fc_deser, mac);
		if (n.mac[0] & 1)
			return fault(f, size, "Network config error: guest_mac %s is a multicast "
				     "address.", mac);
		for (unsigned int i = 0; i < r->nr_nets; i++)
			if (r->nets[i].has_mac && !memcmp(r->nets[i].mac, n.mac, 6) &&
			    strcmp(r->nets[i].id, id))
				return fault(f, size, "Network config error: The MAC address is "
					     "already in use: %s", mac);
		n.has_mac = true;
	}
	old = net_find(r, id);
	if (!old && r->nr_nets == VM_MAX_NETS)
		return fault(f, size, "Network config error: bootvm takes at most %d interfaces.",
			     VM_MAX_NETS);
	snprintf(n.id, sizeof(n.id), "%s", id);
	if (set_str(&n.tap, tap, f, size) < 0 || set_str(&n.bootvm_net, user, f, size) < 0) {
		net_free(&n);
		return -1;
	}
	if (old)
		net_free(old);
	else
		old = &r->nets[r->nr_nets++];
	*old = n;
	return 0;
}

static int patch_net(struct fc_api *api, const char *id, struct json_object *o,
		     char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "iface_id", J_STR, true }, { "rx_rate_limiter", J_OBJ, false },
		{ "tx_rate_limiter", J_OBJ, false },
	};
	const char *iface;

	if (check_id(id, f, size) < 0 ||
	    json_check(o, fields, 3, "struct NetworkInterfaceUpdateConfig", f, size) < 0)
		return -1;
	iface = jstr(o, "iface_id");
	if (strcmp(id, iface))
		return fault(f, size, "The id from the path [%s] does not match the id from the "
			     "body [%.64s]!", id, iface);
	if (api->state == FC_NOT_STARTED)
		return fault(f, size, "%s", fc_pre_boot);
	if (!net_find(&api->res, id))
		return fault(f, size, "Network config error: no interface with iface_id `%s`.", id);
	if (refuse_limiter(o, "rx_rate_limiter", f, size) < 0 ||
	    refuse_limiter(o, "tx_rate_limiter", f, size) < 0)
		return -1;
	return 0;
}

static int put_logger(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "level", J_STR, false }, { "log_path", J_STR, false },
		{ "show_level", J_BOOL, false }, { "show_log_origin", J_BOOL, false },
		{ "module", J_STR, false },
	};
	struct fc_logger_config cfg = { .level = FC_LOG_UNSET };
	const char *level;

	if (json_check(o, fields, 5, "struct LoggerConfig", f, size) < 0)
		return -1;
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	level = jstr(o, "level");
	if (level && (cfg.level = fc_log_level_parse(level)) == FC_LOG_UNSET)
		return fault(f, size, "Logger error: Invalid level `%.32s`, expected one of Error, "
			     "Warning, Info, Debug, Trace, Off.", level);
	cfg.log_path = jstr(o, "log_path");
	cfg.show_level = jbool(o, "show_level");
	cfg.show_log_origin = jbool(o, "show_log_origin");
	cfg.module = jstr(o, "module");
	return fc_log_configure(&cfg, api->id, f, size);
}

int fc_api_set_metrics(struct fc_api *api, const char *path, bool emit_id, char *f, size_t size)
{
	int fd;

	if (api->metrics_fd >= 0)
		return fault(f, size, "Metrics error: Cannot initialize the metrics system due to "
			     "bad user input: Reinitialization of metrics not allowed.");
	/* As Firecracker: the file or FIFO must exist; non-blocking, a full FIFO drops a line. */
	fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fault(f, size, "Metrics error: Cannot initialize the metrics system due to "
			     "bad user input: %s: %s", path, strerror(errno));
	api->metrics_fd = fd;
	api->metrics_emit_id = emit_id;
	api->last_flush_ms = (uint64_t)time_now_ms();
	return 0;
}

static int put_metrics(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "metrics_path", J_STR, true }, { "emit_id", J_BOOL, false },
		{ "properties", J_OBJ, false },
	};

	if (json_check(o, fields, 3, "struct MetricsConfig", f, size) < 0)
		return -1;
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	if (refuse_present(o, "properties", "metrics lines carry no custom properties here",
			   f, size) < 0)
		return -1;
	return fc_api_set_metrics(api, jstr(o, "metrics_path"), jbool(o, "emit_id") == 1, f, size);
}

static int put_entropy(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = { { "rate_limiter", J_OBJ, false } };

	if (json_check(o, fields, 1, "struct EntropyDeviceConfig", f, size) < 0)
		return -1;
	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	if (refuse_limiter(o, "rate_limiter", f, size) < 0)
		return -1;
	api->res.entropy = true;
	return 0;
}

/* ---- to a vm_config ---- */

/* Append " word" to a malloc'ed command line. */
static int cmdline_add(char **line, const char *word)
{
	size_t a = strlen(*line), b = strlen(word);
	char *n = realloc(*line, a + b + 2);

	if (!n)
		return -1;
	if (a)
		n[a++] = ' ';
	memcpy(n + a, word, b + 1);
	*line = n;
	return 0;
}

/*
 * The command line bootvm boots: boot_args (or Firecracker's default), less
 * pci=off and acpi=off, which clients pass for Firecracker's machine (virtio
 * over MMIO, no ACPI; Kata passes both) but would take from a bootvm guest
 * its disks (PCI) and its power button and CPUs (ACPI); plus root= for the
 * root drive.
 */
static char *fc_cmdline(const struct fc_resources *r)
{
	const char *src = r->boot_args ? r->boot_args : FC_DEFAULT_CMDLINE;
	char *line = strdup(""), *copy = strdup(src), *save = NULL;

	if (!line || !copy)
		goto err;
	for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (!strcmp(w, "pci=off") || !strcmp(w, "acpi=off")) {
			log_info("boot_args: dropped %s (bootvm's machine has PCI devices and ACPI)", w);
			continue;
		}
		if (cmdline_add(&line, w) < 0)
			goto err;
	}
	if (r->nr_drives && r->drives[0].root) {
		char root[FC_PARTUUID_MAX + 32];

		if (r->drives[0].partuuid)
			snprintf(root, sizeof(root), "root=PARTUUID=%s", r->drives[0].partuuid);
		else
			snprintf(root, sizeof(root), "root=/dev/vda");
		if (cmdline_add(&line, root) < 0 || cmdline_add(&line, r->drives[0].ro ? "ro" : "rw") < 0)
			goto err;
	}
	free(copy);
	return line;
err:
	free(copy);
	free(line);
	return NULL;
}

int fc_resources_to_vm_config(const struct fc_resources *r, struct vm_config *cfg,
			      char *f, size_t size)
{
	char err[FC_FAULT_MAX] = "", *line;

	vm_config_init(cfg);
	if (!r->kernel) {
		fault(f, size, "Start microvm error: Cannot start microvm without kernel "
		      "configuration.");
		goto err;
	}
	line = fc_cmdline(r);
	if (!line) {
		fault(f, size, "Out of memory.");
		goto err;
	}
	cfg->cmdline = line;
	cfg->mem_size = r->mem_size_mib << 20;
	cfg->nr_cpus = r->vcpu_count;
	cfg->rng = r->entropy;
	cfg->console = CONSOLE_STDIO;
	log_capture_first_error(err, sizeof(err));
	if (vm_config_set(cfg, &cfg->kernel_path, r->kernel) < 0 ||
	    (r->initrd && vm_config_set(cfg, &cfg->initrd_path, r->initrd) < 0))
		goto err_capture;
	for (unsigned int i = 0; i < r->nr_drives; i++) {
		struct vm_disk_config *d = &cfg->disks[cfg->nr_disks];

		memset(d, 0, sizeof(*d));
		if (vm_config_set(cfg, &d->path, r->drives[i].path) < 0)
			goto err_capture;
		cfg->nr_disks++;
		d->readonly = r->drives[i].ro;
		/* The guest reads the drive_id as the disk's serial, as in Firecracker (20 bytes). */
		snprintf(d->serial, sizeof(d->serial), "%s", r->drives[i].id);
		d->cache = VM_DISK_CACHE_WRITEBACK;
	}
	for (unsigned int i = 0; i < r->nr_nets; i++) {
		const struct fc_net *n = &r->nets[i];
		char spec[64];
		struct vm_net_config *nc;

		if (n->tap) {
			/* A comma is a TAP name's own, not the start of an option: doubled. */
			size_t o = (size_t)snprintf(spec, sizeof(spec), "tap=");

			for (const char *c = n->tap; *c && o + 3 < sizeof(spec); c++) {
				spec[o++] = *c;
				if (*c == ',')
					spec[o++] = ',';
			}
			spec[o] = 0;
		}
		if (vm_config_add_net(cfg, n->tap ? spec : n->bootvm_net) < 0)
			goto err_capture;
		nc = &cfg->nets[cfg->nr_nets - 1];
		snprintf(nc->id, sizeof(nc->id), "%s", n->id);
		if (n->has_mac)
			memcpy(nc->mac, n->mac, 6);
	}
	if (vm_config_validate(cfg) < 0)
		goto err_capture;
	log_capture_first_error(NULL, 0);
	return 0;

err_capture:
	log_capture_first_error(NULL, 0);
	fault(f, size, "Start microvm error: %s", err[0] ? err : "invalid configuration");
err:
	vm_config_free(cfg);
	return -1;
}

/* ---- actions and state ---- */

static int do_start(struct fc_api *api, char *f, size_t size)
{
	struct vm_config *cfg;

	if (api->state != FC_NOT_STARTED)
		return fault(f, size, "%s", fc_post_boot);
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return fault(f, size, "Out of memory.");
	if (fc_resources_to_vm_config(&api->res, cfg, f, size) < 0) {
		free(cfg);
		return -1;
	}
	if (!api->ops || !api->ops->start) {
		vm_config_free(cfg);
		free(cfg);
		return fault(f, size, "Start microvm error: no VMM to start.");
	}
	if (api->ops->start(api->opaque, cfg, f, size) < 0)
		return -1;
	api->state = FC_RUNNING;
	return 0;
}

static int put_actions(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = { { "action_type", J_STR, true } };
	const char *type;

	if (json_check(o, fields, 1, "struct ActionBody", f, size) < 0)
		return -1;
	type = jstr(o, "action_type");
	if (!strcmp(type, "InstanceStart"))
		return do_start(api, f, size);
	if (!strcmp(type, "FlushMetrics")) {
		if (api->state == FC_NOT_STARTED)
			return fault(f, size, "%s", fc_pre_boot);
		return fc_api_flush_metrics(api, f, size);
	}
	if (!strcmp(type, "SendCtrlAltDel")) {
		if (api->state == FC_NOT_STARTED)
			return fault(f, size, "%s", fc_pre_boot);
		if (!api->ops)
			return fault(f, size, "The microVM has stopped.");
		if (!api->ops->ctrl_alt_del)
			return fault(f, size, "SendCtrlAltDel is not available: this bootvm has no "
				     "way to ask the guest to shut down yet (no ACPI power button).");
		return api->ops->ctrl_alt_del(api->opaque, f, size);
	}
	return fault(f, size, "%s: unknown variant `%.32s`, expected one of `FlushMetrics`, "
		     "`InstanceStart`, `SendCtrlAltDel`.", fc_deser, type);
}

static int patch_vm(struct fc_api *api, struct json_object *o, char *f, size_t size)
{
	static const struct jfield fields[] = { { "state", J_STR, true } };
	const char *state;

	if (json_check(o, fields, 1, "struct Vm", f, size) < 0)
		return -1;
	state = jstr(o, "state");
	if (strcmp(state, "Paused") && strcmp(state, "Resumed"))
		return fault(f, size, "%s: unknown variant `%.32s`, expected `Paused` or `Resumed`.",
			     fc_deser, state);
	if (api->state == FC_NOT_STARTED)
		return fault(f, size, "%s", fc_pre_boot);
	if (!api->ops)
		return fault(f, size, "The microVM has stopped.");
	if (!strcmp(state, "Paused")) {
		if (api->state == FC_RUNNING && api->ops->pause(api->opaque, f, size) < 0)
			return -1;
		api->state = FC_PAUSED;
	} else {
		if (api->state == FC_PAUSED && api->ops->resume(api->opaque, f, size) < 0)
			return -1;
		api->state = FC_RUNNING;
	}
	return 0;
}

/* ---- GET bodies ---- */

static const char *state_name(enum fc_state s)
{
	return s == FC_RUNNING ? "Running" : s == FC_PAUSED ? "Paused" : "Not started";
}

static struct json_object *machine_json(const struct fc_resources *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "vcpu_count", json_object_new_int64(r->vcpu_count));
	json_object_object_add(o, "mem_size_mib", json_object_new_int64((int64_t)r->mem_size_mib));
	json_object_object_add(o, "smt", json_object_new_boolean(r->smt));
	json_object_object_add(o, "track_dirty_pages", json_object_new_boolean(r->track_dirty_pages));
	json_object_object_add(o, "huge_pages", json_object_new_string("None"));
	return o;
}

static struct json_object *jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *vm_config_json(const struct fc_api *api)
{
	const struct fc_resources *r = &api->res;
	struct json_object *o = json_object_new_object(), *drives = json_object_new_array();
	struct json_object *nets = json_object_new_array(), *boot = NULL;

	if (r->kernel) {
		boot = json_object_new_object();
		json_object_object_add(boot, "kernel_image_path", json_object_new_string(r->kernel));
		json_object_object_add(boot, "initrd_path", jstr_or_null(r->initrd));
		json_object_object_add(boot, "boot_args", jstr_or_null(r->boot_args));
	}
	for (unsigned int i = 0; i < r->nr_drives; i++) {
		const struct fc_drive *d = &r->drives[i];
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "drive_id", json_object_new_string(d->id));
		json_object_object_add(j, "partuuid", jstr_or_null(d->partuuid));
		json_object_object_add(j, "is_root_device", json_object_new_boolean(d->root));
		json_object_object_add(j, "cache_type",
				       json_object_new_string(d->cache_unsafe ? "Unsafe" : "Writeback"));
		json_object_object_add(j, "is_read_only", json_object_new_boolean(d->ro));
		json_object_object_add(j, "path_on_host", json_object_new_string(d->path));
		json_object_object_add(j, "rate_limiter", NULL);
		json_object_object_add(j, "io_engine",
				       json_object_new_string(d->io_async ? "Async" : "Sync"));
		json_object_object_add(j, "socket", NULL);
		json_object_array_add(drives, j);
	}
	for (unsigned int i = 0; i < r->nr_nets; i++) {
		const struct fc_net *n = &r->nets[i];
		struct json_object *j = json_object_new_object();
		char mac[18];

		json_object_object_add(j, "iface_id", json_object_new_string(n->id));
		json_object_object_add(j, "host_dev_name", json_object_new_string(n->tap ? n->tap : ""));
		if (n->has_mac) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			json_object_object_add(j, "guest_mac", json_object_new_string(mac));
		} else {
			json_object_object_add(j, "guest_mac", NULL);
		}
		json_object_object_add(j, "rx_rate_limiter", NULL);
		json_object_object_add(j, "tx_rate_limiter", NULL);
		if (n->bootvm_net)
			json_object_object_add(j, "bootvm_net", json_object_new_string(n->bootvm_net));
		json_object_array_add(nets, j);
	}
	json_object_object_add(o, "balloon", NULL);
	json_object_object_add(o, "drives", drives);
	json_object_object_add(o, "boot-source", boot);
	json_object_object_add(o, "cpu-config", NULL);
	json_object_object_add(o, "logger", NULL);
	json_object_object_add(o, "machine-config", machine_json(r));
	json_object_object_add(o, "metrics", NULL);
	json_object_object_add(o, "mmds-config", NULL);
	json_object_object_add(o, "network-interfaces", nets);
	json_object_object_add(o, "vsock", NULL);
	if (r->entropy) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "rate_limiter", NULL);
		json_object_object_add(o, "entropy", e);
	} else {
		json_object_object_add(o, "entropy", NULL);
	}
	return o;
}

/* ---- metrics ---- */

static void metrics_group(struct json_object *line, struct fc_api *api, const char *group,
			  const char *const *names, const enum fc_counter *ids, size_t n)
{
	struct json_object *g = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		json_object_object_add(g, names[i],
				       json_object_new_int64((int64_t)api->counters[ids[i]]));
	json_object_object_add(line, group, g);
}

/*
 * Whether a line of len bytes fits in the metrics FIFO now: a non-blocking
 * write of more than PIPE_BUF bytes (a line with many guest markers) into a
 * fuller FIFO writes part of it, and the reader gets a torn line glued to the
 * next one. A line that does not fit is dropped whole instead.
 */
static bool metrics_fits(int fd, size_t len)
{
	struct stat st;
	int cap, queued;

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return true;
	cap = fcntl(fd, F_GETPIPE_SZ);
	if (cap < 0 || ioctl(fd, FIONREAD, &queued) < 0)
		return true;
	return queued <= cap && (size_t)(cap - queued) >= len;
}

int fc_api_flush_metrics(struct fc_api *api, char *f, size_t size)
{
	static const char *const get_names[] = { "instance_info_count", "machine_cfg_count",
						 "vmm_version_count", "vm_config_count" };
	static const enum fc_counter get_ids[] = { FC_GET_INSTANCE_INFO, FC_GET_MACHINE_CFG,
						   FC_GET_VERSION, FC_GET_VM_CONFIG };
	static const char *const put_names[] = {
		"actions_count", "actions_fails", "boot_source_count", "boot_source_fails",
		"drive_count", "drive_fails", "logger_count", "logger_fails", "machine_cfg_count",
		"machine_cfg_fails", "metrics_count", "metrics_fails", "network_count",
		"network_fails", "entropy_count", "entropy_fails",
	};
	static const enum fc_counter put_ids[] = {
		FC_PUT_ACTIONS, FC_PUT_ACTIONS_FAILS, FC_PUT_BOOT_SOURCE, FC_PUT_BOOT_SOURCE_FAILS,
		FC_PUT_DRIVE, FC_PUT_DRIVE_FAILS, FC_PUT_LOGGER, FC_PUT_LOGGER_FAILS,
		FC_PUT_MACHINE_CFG, FC_PUT_MACHINE_CFG_FAILS, FC_PUT_METRICS, FC_PUT_METRICS_FAILS,
		FC_PUT_NETWORK, FC_PUT_NETWORK_FAILS, FC_PUT_ENTROPY, FC_PUT_ENTROPY_FAILS,
	};
	static const char *const patch_names[] = {
		"drive_count", "drive_fails", "network_count", "network_fails",
		"machine_cfg_count", "machine_cfg_fails", "vm_count", "vm_fails",
	};
	static const enum fc_counter patch_ids[] = {
		FC_PATCH_DRIVE, FC_PATCH_DRIVE_FAILS, FC_PATCH_NETWORK, FC_PATCH_NETWORK_FAILS,
		FC_PATCH_MACHINE_CFG, FC_PATCH_MACHINE_CFG_FAILS, FC_PATCH_VM, FC_PATCH_VM_FAILS,
	};
	struct json_object *line, *api_server, *tl;
	const char *text;
	char *buf;
	size_t len;
	ssize_t w;

	if (api->metrics_fd < 0)
		return fault(f, size, "Metrics error: the metrics system is not initialized "
			     "(PUT /metrics first).");
	line = json_object_new_object();
	json_object_object_add(line, "utc_timestamp_ms",
			       json_object_new_int64(time_wall_ms()));
	if (api->metrics_emit_id)
		json_object_object_add(line, "id", json_object_new_string(api->id));
	api_server = json_object_new_object();
	json_object_object_add(api_server, "sync_response_fails",
			       json_object_new_int64((int64_t)api->counters[FC_API_FAULTS]));
	json_object_object_add(line, "api_server", api_server);
	metrics_group(line, api, "get_api_requests", get_names, get_ids, 4);
	metrics_group(line, api, "put_api_requests", put_names, put_ids, 16);
	metrics_group(line, api, "patch_api_requests", patch_names, patch_ids, 8);
	if (api->ops && api->ops->metrics && api->state != FC_NOT_STARTED)
		api->ops->metrics(api->opaque, line);
	/* bootvm's boot timeline, as --boot-timeline=FILE writes it (process-wide, so always). */
	tl = timeline_json();
	if (tl)
		json_object_object_add(line, "boot_timeline", tl);
	text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	buf = malloc(len + 1);
	if (!buf) {
		json_object_put(line);
		return fault(f, size, "Out of memory.");
	}
	memcpy(buf, text, len);
	buf[len] = '\n';
	json_object_put(line);
	/* Counters count since the last line, as Firecracker's do. */
	memset(api->counters, 0, sizeof(api->counters));
	api->last_flush_ms = (uint64_t)time_now_ms();
	if (!metrics_fits(api->metrics_fd, len + 1)) {
		free(buf);
		return fault(f, size, "Metrics error: cannot write the metrics line: the FIFO is "
			     "full (%zu bytes; the line is dropped)", len + 1);
	}
	w = write(api->metrics_fd, buf, len + 1);
	free(buf);
	if (w != (ssize_t)(len + 1))
		return fault(f, size, "Metrics error: cannot write the metrics line: %s",
			     w < 0 ? strerror(errno) : "short write");
	return 0;
}

/* A line no request asked for (periodic, at exit): a failure is only logged. With the lock. */
static void flush_unasked(struct fc_api *api)
{
	char f[FC_FAULT_MAX];

	if (api->metrics_fd >= 0 && api->state != FC_NOT_STARTED &&
	    fc_api_flush_metrics(api, f, sizeof(f)) < 0)
		log_warn("%s", f);
}

void fc_api_tick(struct fc_api *api)
{
	pthread_mutex_lock(&api->lock);
	if ((uint64_t)time_now_ms() - api->last_flush_ms >= 60000)
		flush_unasked(api);
	pthread_mutex_unlock(&api->lock);
}

/* ---- dispatch ---- */

static char *json_text(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

static void respond_fault(struct fc_response *resp, int status, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "fault_message", json_object_new_string(msg));
	resp->status = status;
	resp->body = json_text(o);
}

void fc_response_free(struct fc_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}

/* Which endpoint a (method, first path segment) is, for counting. */
struct route {
	const char *method, *path;
	enum fc_counter count, fails;	/* FC_COUNTERS: none */
};

static const struct route routes[] = {
	{ "PUT", "actions", FC_PUT_ACTIONS, FC_PUT_ACTIONS_FAILS },
	{ "PUT", "boot-source", FC_PUT_BOOT_SOURCE, FC_PUT_BOOT_SOURCE_FAILS },
	{ "PUT", "drives", FC_PUT_DRIVE, FC_PUT_DRIVE_FAILS },
	{ "PUT", "logger", FC_PUT_LOGGER, FC_PUT_LOGGER_FAILS },
	{ "PUT", "machine-config", FC_PUT_MACHINE_CFG, FC_PUT_MACHINE_CFG_FAILS },
	{ "PUT", "metrics", FC_PUT_METRICS, FC_PUT_METRICS_FAILS },
	{ "PUT", "network-interfaces", FC_PUT_NETWORK, FC_PUT_NETWORK_FAILS },
	{ "PUT", "entropy", FC_PUT_ENTROPY, FC_PUT_ENTROPY_FAILS },
	{ "PATCH", "drives", FC_PATCH_DRIVE, FC_PATCH_DRIVE_FAILS },
	{ "PATCH", "network-interfaces", FC_PATCH_NETWORK, FC_PATCH_NETWORK_FAILS },
	{ "PATCH", "machine-config", FC_PATCH_MACHINE_CFG, FC_PATCH_MACHINE_CFG_FAILS },
	{ "PATCH", "vm", FC_PATCH_VM, FC_PATCH_VM_FAILS },
};

/* Firecracker endpoints for what bootvm does not have: a 400 that says so. */
static const struct {
	const char *path, *what;
} unsupported[] = {
	{ "balloon", "a balloon device" },
	{ "cpu-config", "custom CPU templates" },
	{ "mmds", "MMDS (the microVM metadata service)" },
	{ "snapshot", "snapshots" },
	{ "vsock", "a vsock device" },
	{ "pmem", "virtio-pmem devices" },
	{ "serial", "serial output redirection through the API (the console is stdio)" },
	{ "hotplug", "memory hotplug" },
};

static int dispatch(struct fc_api *api, const char *method, const char *seg, const char *id,
		    struct json_object *o, char *f, size_t size)
{
	bool put = !strcmp(method, "PUT"), patch = !strcmp(method, "PATCH");

	if (put && !strcmp(seg, "actions") && !id)
		return put_actions(api, o, f, size);
	if (put && !strcmp(seg, "boot-source") && !id)
		return put_boot_source(api, o, f, size);
	if ((put || patch) && !strcmp(seg, "machine-config") && !id)
		return machine_config(api, o, patch, f, size);
	if (put && !strcmp(seg, "drives"))
		return put_drive(api, id, o, f, size);
	if (patch && !strcmp(seg, "drives"))
		return patch_drive(api, id, o, f, size);
	if (put && !strcmp(seg, "network-interfaces"))
		return put_net(api, id, o, f, size);
	if (patch && !strcmp(seg, "network-interfaces"))
		return patch_net(api, id, o, f, size);
	if (put && !strcmp(seg, "logger") && !id)
		return put_logger(api, o, f, size);
	if (put && !strcmp(seg, "metrics") && !id)
		return put_metrics(api, o, f, size);
	if (put && !strcmp(seg, "entropy") && !id)
		return put_entropy(api, o, f, size);
	if (patch && !strcmp(seg, "vm") && !id)
		return patch_vm(api, o, f, size);
	return 1;	/* no such endpoint */
}

/*
 * Split "/drives/rootfs/" into "drives" and "rootfs" (Firecracker trims
 * leading slashes and ignores a trailing one). -1 when there are more parts.
 */
static int split_path(const char *path, char *seg, size_t seg_size, char *id, size_t id_size,
		      bool *has_id)
{
	const char *p = path, *slash;
	size_t n;

	while (*p == '/')
		p++;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n >= seg_size)
		return -1;
	memcpy(seg, p, n);
	seg[n] = 0;
	*has_id = false;
	id[0] = 0;
	if (!slash || !slash[1])
		return 0;
	p = slash + 1;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if ((slash && slash[1]) || n >= id_size)
		return -1;
	memcpy(id, p, n);
	id[n] = 0;
	*has_id = true;
	return 0;
}

static void handle_locked(struct fc_api *api, const char *method, const char *path,
			  const char *body, size_t len, struct fc_response *resp)
{
	char f[FC_FAULT_MAX] = "", seg[32], id[FC_ID_MAX + 2];
	const struct route *route = NULL;
	struct json_object *o;
	bool has_id, has_body = body && len;
	int ret;

	resp->status = 204;
	resp->body = NULL;
	if (split_path(path, seg, sizeof(seg), id, sizeof(id), &has_id) < 0)
		goto bad_path;

	if (!strcmp(method, "GET")) {
		if (has_body) {
			respond_fault(resp, 400, "GET request cannot have a body.");
			return;
		}
		if (!seg[0] && !has_id) {
			struct json_object *o2 = json_object_new_object();

			api->counters[FC_GET_INSTANCE_INFO]++;
			json_object_object_add(o2, "id", json_object_new_string(api->id));
			json_object_object_add(o2, "state", json_object_new_string(state_name(api->state)));
			json_object_object_add(o2, "vmm_version", json_object_new_string(FC_VERSION));
			json_object_object_add(o2, "app_name", json_object_new_string("bootvm"));
			resp->status = 200;
			resp->body = json_text(o2);
			return;
		}
		if (!strcmp(seg, "version") && !has_id) {
			struct json_object *o2 = json_object_new_object();

			api->counters[FC_GET_VERSION]++;
			json_object_object_add(o2, "firecracker_version", json_object_new_string(FC_VERSION));
			resp->status = 200;
			resp->body = json_text(o2);
			return;
		}
		if (!strcmp(seg, "machine-config") && !has_id) {
			api->counters[FC_GET_MACHINE_CFG]++;
			resp->status = 200;
			resp->body = json_text(machine_json(&api->res));
			return;
		}
		if (!strcmp(seg, "vm") && has_id && !strcmp(id, "config")) {
			api->counters[FC_GET_VM_CONFIG]++;
			resp->status = 200;
			resp->body = json_text(vm_config_json(api));
			return;
		}
	} else if (!strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
			if (!strcmp(routes[i].method, method) && !strcmp(routes[i].path, seg))
				route = &routes[i];
		if (route)
			api->counters[route->count]++;
		if (!has_body) {
			if (route)
				api->counters[route->fails]++;
			respond_fault(resp, 400, !strcmp(method, "PUT") ? "Empty PUT request." :
				      "Empty PATCH request.");
			return;
		}
		if (route) {
			if ((!strcmp(seg, "drives") || !strcmp(seg, "network-interfaces")) && !has_id) {
				api->counters[route->fails]++;
				respond_fault(resp, 400, "The ID cannot be empty.");
				return;
			}
			o = json_parse(body, len, f, sizeof(f));
			ret = o ? dispatch(api, method, seg, has_id ? id : NULL, o, f, sizeof(f)) : -1;
			json_object_put(o);
			if (ret == 0)
				return;
			if (ret < 0) {
				api->counters[route->fails]++;
				api->counters[FC_API_FAULTS]++;
				log_info("api: %s %s: %s", method, path, f);
				respond_fault(resp, 400, f);
				return;
			}
		}
	}
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (!strcmp(seg, unsupported[i].path)) {
			snprintf(f, sizeof(f), "bootvm does not support %s (%s /%s).",
				 unsupported[i].what, method, seg);
			respond_fault(resp, 400, f);
			return;
		}
	}
bad_path:
	snprintf(f, sizeof(f), "Invalid request method and/or path: %.16s %.200s.", method, path);
	respond_fault(resp, 400, f);
}

void fc_api_handle(struct fc_api *api, const char *method, const char *path,
		   const char *body, size_t len, struct fc_response *resp)
{
	pthread_mutex_lock(&api->lock);
	handle_locked(api, method, path, body, len, resp);
	pthread_mutex_unlock(&api->lock);
	if (!resp->body && resp->status != 204)
		resp->status = 500;	/* out of memory while formatting */
	log_debug("api: %s %s -> %d", method, path, resp->status);
}

/* ---- --config-file ---- */

int fc_api_load_config(struct fc_api *api, const char *json, size_t len, char *f, size_t size)
{
	static const struct jfield fields[] = {
		{ "boot-source", J_OBJ, true }, { "machine-config", J_OBJ, false },
		{ "drives", J_ARRAY, false }, { "network-interfaces", J_ARRAY, false },
		{ "logger", J_OBJ, false }, { "metrics", J_OBJ, false }, { "entropy", J_OBJ, false },
		{ "balloon", J_ANY, false }, { "cpu-config", J_ANY, false },
		{ "mmds-config", J_ANY, false }, { "vsock", J_ANY, false }, { "pmem", J_ANY, false },
		{ "memory-hotplug", J_ANY, false },
	};
	static const char *const refused[] = { "balloon", "cpu-config", "mmds-config", "vsock",
					       "pmem", "memory-hotplug" };
	struct json_object *o, *v;
	char err[FC_FAULT_MAX] = "";
	int ret = -1;

	o = json_parse(json, len, err, sizeof(err));
	if (!o)
		return fault(f, size, "%s", err);
	pthread_mutex_lock(&api->lock);
	if (json_check(o, fields, sizeof(fields) / sizeof(fields[0]), "struct VmmConfig",
		       err, sizeof(err)) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		v = jget(o, refused[i]);
		/* An empty list is no device. */
		if (v && !(json_object_is_type(v, json_type_array) && !json_object_array_length(v))) {
			fault(err, sizeof(err), "bootvm does not support \"%s\"", refused[i]);
			goto out;
		}
	}
	/* The logger first, so what follows logs where it was asked to. */
	if ((v = jget(o, "logger")) && put_logger(api, v, err, sizeof(err)) < 0)
		goto out_section_logger;
	if ((v = jget(o, "metrics")) && put_metrics(api, v, err, sizeof(err)) < 0)
		goto out_section_metrics;
	if (put_boot_source(api, jget(o, "boot-source"), err, sizeof(err)) < 0) {
		fault(f, size, "boot-source: %s", err);
		goto out_quiet;
	}
	if ((v = jget(o, "machine-config")) && machine_config(api, v, false, err, sizeof(err)) < 0) {
		fault(f, size, "machine-config: %s", err);
		goto out_quiet;
	}
	if ((v = jget(o, "drives"))) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *d = json_object_array_get_idx(v, i);
			struct json_object *idv = json_object_is_type(d, json_type_object) ?
						  jget(d, "drive_id") : NULL;
			const char *id = idv && json_object_is_type(idv, json_type_string) ?
					 json_object_get_string(idv) : "";

			if (put_drive(api, id, d, err, sizeof(err)) < 0) {
				fault(f, size, "drives[%zu]: %s", i, err);
				goto out_quiet;
			}
		}
	}
	if ((v = jget(o, "network-interfaces"))) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *n = json_object_array_get_idx(v, i);
			struct json_object *idv = json_object_is_type(n, json_type_object) ?
						  jget(n, "iface_id") : NULL;
			const char *id = idv && json_object_is_type(idv, json_type_string) ?
					 json_object_get_string(idv) : "";

			if (put_net(api, id, n, err, sizeof(err)) < 0) {
				fault(f, size, "network-interfaces[%zu]: %s", i, err);
				goto out_quiet;
			}
		}
	}
	if ((v = jget(o, "entropy")) && put_entropy(api, v, err, sizeof(err)) < 0) {
		fault(f, size, "entropy: %s", err);
		goto out_quiet;
	}
	ret = 0;
	goto out_quiet;

out_section_logger:
	fault(f, size, "logger: %s", err);
	goto out_quiet;
out_section_metrics:
	fault(f, size, "metrics: %s", err);
	goto out_quiet;
out:
	fault(f, size, "%s", err);
out_quiet:
	pthread_mutex_unlock(&api->lock);
	json_object_put(o);
	return ret;
}

int fc_api_start(struct fc_api *api, char *f, size_t size)
{
	int ret;

	pthread_mutex_lock(&api->lock);
	ret = do_start(api, f, size);
	pthread_mutex_unlock(&api->lock);
	return ret;
}

void fc_api_vm_ended(struct fc_api *api)
{
	pthread_mutex_lock(&api->lock);
	/* The last line, while ops can still read the running VM's counters. */
	flush_unasked(api);
	api->ops = NULL;
	pthread_mutex_unlock(&api->lock);
}

/* Firecracker's validate_instance_id(). */
static bool instance_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > FC_ID_MAX)
		return false;
	for (; *id; id++)
		if (!isalnum((unsigned char)*id) && *id != '-')
			return false;
	return true;
}

int fc_api_init(struct fc_api *api, const char *id, const struct fc_ops *ops, void *opaque)
{
	memset(api, 0, sizeof(*api));
	if (!instance_id_ok(id)) {
		log_error("--id '%s': 1 to %d letters, digits or '-'", id, FC_ID_MAX);
		return -1;
	}
	snprintf(api->id, sizeof(api->id), "%s", id);
	pthread_mutex_init(&api->lock, NULL);
	resources_init(&api->res);
	api->ops = ops;
	api->opaque = opaque;
	api->metrics_fd = -1;
	api->start_us = (uint64_t)time_wall_ms() * 1000;
	return 0;
}

void fc_api_fini(struct fc_api *api)
{
	resources_free(&api->res);
	if (api->metrics_fd >= 0)
		close(api->metrics_fd);
	api->metrics_fd = -1;
	pthread_mutex_destroy(&api->lock);
}
