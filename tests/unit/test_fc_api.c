/*
 * api/: Firecracker's API request layer (fc_api_handle: every endpoint, its
 * body checks, status codes and fault messages, the pre-/post-boot rules,
 * --config-file, metrics, the logger) and the HTTP connection parser
 * (api/http.c: pieces, pipelining, limits, half-closed clients). The VMM
 * behind struct fc_ops is a recorder here; tests/e2e/firecracker.py drives
 * the real one through the socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

#include "api/fc_api.h"
#include "api/fc_log.h"
#include "api/http.h"
#include "helpers.h"
#include "vmm/timeline.h"

struct recorder {
	int starts, pauses, resumes, ctrl_alt_dels, metrics_calls;
	int fail_start;
	struct vm_config cfg;	/* the last started, kept for checks */
	bool have_cfg;
};

static int rec_start(void *opaque, struct vm_config *cfg, char *fault, size_t size)
{
	struct recorder *r = opaque;

	if (r->fail_start) {
		vm_config_free(cfg);
		free(cfg);
		snprintf(fault, size, "Start microvm error: refused by the test");
		return -1;
	}
	r->starts++;
	if (r->have_cfg)
		vm_config_free(&r->cfg);
	r->cfg = *cfg;
	r->have_cfg = true;
	free(cfg);
	return 0;
}

static int rec_pause(void *opaque, char *fault, size_t size)
{
	((struct recorder *)opaque)->pauses++;
	return 0;
}

static int rec_resume(void *opaque, char *fault, size_t size)
{
	((struct recorder *)opaque)->resumes++;
	return 0;
}

static int rec_cad(void *opaque, char *fault, size_t size)
{
	((struct recorder *)opaque)->ctrl_alt_dels++;
	return 0;
}

/* The running VM's part of a metrics line: a key the test can look for. */
static void rec_metrics(void *opaque, struct json_object *line)
{
	json_object_object_add(line, "recorder",
			       json_object_new_int(++((struct recorder *)opaque)->metrics_calls));
}

static const struct fc_ops rec_ops = { rec_start, rec_pause, rec_resume, rec_cad, rec_metrics };
static const struct fc_ops rec_ops_no_cad = { rec_start, rec_pause, rec_resume, NULL, NULL };

struct fixture {
	struct fc_api api;
	struct recorder rec;
	char *dir, *kernel, *disk, *disk2;
	struct helper_log log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = helper_tmpdir("fcapi");
	f->kernel = helper_asprintf("%s/vmlinux", f->dir);
	f->disk = helper_asprintf("%s/root.img", f->dir);
	f->disk2 = helper_asprintf("%s/data.img", f->dir);
	helper_write_file(f->kernel, "kernel", 6, 0644);
	helper_write_file(f->disk, "disk", 4, 0644);
	helper_write_file(f->disk2, "disk", 4, 0644);
	assert_int_equal(fc_api_init(&f->api, "vm-1", &rec_ops, &f->rec), 0);
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_set_sink(NULL, NULL);
	fc_api_fini(&f->api);
	if (f->rec.have_cfg)
		vm_config_free(&f->rec.cfg);
	free(f->kernel);
	free(f->disk);
	free(f->disk2);
	assert_int_equal(helper_tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

/* One request: returns the status; *body (if given) gets the response body (free it). */
static int req(struct fixture *f, const char *method, const char *path, const char *body,
	       char **out)
{
	struct fc_response r;

	fc_api_handle(&f->api, method, path, body, body ? strlen(body) : 0, &r);
	if (out)
		*out = r.body ? strdup(r.body) : NULL;
	fc_response_free(&r);
	return r.status;
}

/* A 400 whose fault_message contains want (a {"fault_message": string} object only). */
static void expect_fault(struct fixture *f, const char *method, const char *path,
			 const char *body, const char *want)
{
	char *out = NULL;
	int status = req(f, method, path, body, &out);
	struct json_object *o, *m;

	if (status != 400 || !out || !strstr(out, want))
		fail_msg("%s %s %s: got %d %s, want 400 with \"%s\"", method, path,
			 body ? body : "", status, out ? out : "(none)", want);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), 1);
	assert_true(json_object_object_get_ex(o, "fault_message", &m));
	assert_true(json_object_is_type(m, json_type_string));
	json_object_put(o);
	free(out);
}

static void expect_204(struct fixture *f, const char *method, const char *path, const char *body)
{
	char *out = NULL;
	int status = req(f, method, path, body, &out);

	if (status != 204 || out)
		fail_msg("%s %s %s: got %d %s, want 204", method, path, body ? body : "", status,
			 out ? out : "");
}

static struct json_object *get_json(struct fixture *f, const char *path)
{
	char *out = NULL;
	struct json_object *o;

	assert_int_equal(req(f, "GET", path, NULL, &out), 200);
	o = json_tokener_parse(out);
	assert_non_null(o);
	free(out);
	return o;
}

static const char *jfield(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no field %s", key);
	return json_object_get_string(v);
}

static void put_boot(struct fixture *f, const char *args)
{
	char *b = args ? helper_asprintf("{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}",
					 f->kernel, args) :
			 helper_asprintf("{\"kernel_image_path\":\"%s\"}", f->kernel);

	expect_204(f, "PUT", "/boot-source", b);
	free(b);
}

static void start(struct fixture *f)
{
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
}

static void test_instance_info_and_version(void **state)
{
	struct fixture *f = *state;
	struct json_object *o = get_json(f, "/");

	assert_string_equal(jfield(o, "id"), "vm-1");
	assert_string_equal(jfield(o, "state"), "Not started");
	assert_string_equal(jfield(o, "vmm_version"), FC_VERSION);
	assert_string_equal(jfield(o, "app_name"), "bootvm");
	assert_int_equal(json_object_object_length(o), 4);
	json_object_put(o);
	o = get_json(f, "/version");
	assert_string_equal(jfield(o, "firecracker_version"), FC_VERSION);
	json_object_put(o);
	expect_fault(f, "GET", "/version", "{}", "GET request cannot have a body.");
	expect_fault(f, "GET", "/nope", NULL, "Invalid request method and/or path: GET /nope.");
	expect_fault(f, "DELETE", "/drives/x", NULL, "Invalid request method and/or path");
	expect_fault(f, "GET", "/drives/a/b", NULL, "Invalid request method and/or path");
	expect_fault(f, "PUT", "/balloon", "{}", "bootvm does not support a balloon device");
	expect_fault(f, "PUT", "/vsock", "{}", "a vsock device");
	expect_fault(f, "PUT", "/snapshot/create", "{}", "snapshots");
	expect_fault(f, "PUT", "/mmds", "{}", "MMDS");
	expect_fault(f, "PUT", "/boot-source", NULL, "Empty PUT request.");
	expect_fault(f, "PATCH", "/machine-config", NULL, "Empty PATCH request.");
	/* The instance id follows Firecracker's rule. */
	struct fc_api bad;
	assert_int_equal(fc_api_init(&bad, "bad id!", &rec_ops, NULL), -1);
	assert_int_equal(fc_api_init(&bad, "", &rec_ops, NULL), -1);
}

static void test_machine_config(void **state)
{
	struct fixture *f = *state;
	struct json_object *o = get_json(f, "/machine-config");

	/* Firecracker's defaults. */
	assert_string_equal(jfield(o, "vcpu_count"), "1");
	assert_string_equal(jfield(o, "mem_size_mib"), "128");
	assert_string_equal(jfield(o, "smt"), "false");
	assert_string_equal(jfield(o, "track_dirty_pages"), "false");
	assert_string_equal(jfield(o, "huge_pages"), "None");
	json_object_put(o);

	expect_204(f, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}");
	o = get_json(f, "/machine-config");
	assert_string_equal(jfield(o, "vcpu_count"), "2");
	assert_string_equal(jfield(o, "mem_size_mib"), "256");
	json_object_put(o);
	expect_204(f, "PATCH", "/machine-config", "{\"mem_size_mib\":64}");
	o = get_json(f, "/machine-config");
	assert_string_equal(jfield(o, "vcpu_count"), "2");
	assert_string_equal(jfield(o, "mem_size_mib"), "64");
	json_object_put(o);
	expect_204(f, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":32,"
		   "\"smt\":false,\"track_dirty_pages\":false,\"cpu_template\":\"None\","
		   "\"huge_pages\":\"None\"}");

	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":1}", "missing field `mem_size_mib`");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":0,\"mem_size_mib\":64}",
		     "The number of vCPUs must be greater than 0");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":33,\"mem_size_mib\":64}",
		     "The number of vCPUs");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":-1,\"mem_size_mib\":64}",
		     "invalid type for `vcpu_count`: a negative integer");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":\"2\",\"mem_size_mib\":64}",
		     "invalid type for `vcpu_count`: a string, expected a non-negative integer");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":1.5,\"mem_size_mib\":64}",
		     "a floating point number");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":0}",
		     "The memory size (MiB) is either 0");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":4}",
		     "bootvm takes mem_size_mib from 8");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\":1,\"mem_size_mib\":99999999999999999999}", "mem_size_mib");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":3,\"mem_size_mib\":64,\"smt\":true}",
		     "must be 1 or an even number if SMT is enabled");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":64,\"smt\":true}",
		     "bootvm does not support `smt`");
	expect_fault(f, "PATCH", "/machine-config", "{\"track_dirty_pages\":true}",
		     "does not support `track_dirty_pages`");
	expect_fault(f, "PATCH", "/machine-config", "{\"cpu_template\":\"T2\"}", "CPU templates");
	expect_fault(f, "PATCH", "/machine-config", "{\"huge_pages\":\"2M\"}", "`huge_pages`");
	expect_fault(f, "PATCH", "/machine-config", "{}", "Empty PATCH request.");
	expect_fault(f, "PATCH", "/machine-config", "{\"vcpus\":2}",
		     "unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`");
	/* A failed update changes nothing. */
	o = get_json(f, "/machine-config");
	assert_string_equal(jfield(o, "mem_size_mib"), "32");
	json_object_put(o);
}

static void test_boot_source(void **state)
{
	struct fixture *f = *state;

	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\":\"/nonexistent/vmlinux\"}",
		     "Boot source error: The kernel file cannot be opened: /nonexistent/vmlinux: "
		     "No such file or directory");
	expect_fault(f, "PUT", "/boot-source", "{\"boot_args\":\"x\"}",
		     "missing field `kernel_image_path`");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\":\"/dev/null\"}",
		     "not a regular file");
	char *b = helper_asprintf("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"/nope\"}",
				  f->kernel);
	expect_fault(f, "PUT", "/boot-source", b, "The initrd file cannot be opened");
	free(b);
	b = helper_asprintf("{\"kernel_image_path\":\"%s\",\"kernel_args\":\"x\"}", f->kernel);
	expect_fault(f, "PUT", "/boot-source", b, "unknown field `kernel_args`");
	free(b);
	put_boot(f, "console=ttyS0");
	struct json_object *o = get_json(f, "/vm/config"), *bs;
	assert_true(json_object_object_get_ex(o, "boot-source", &bs));
	assert_string_equal(jfield(bs, "kernel_image_path"), f->kernel);
	assert_string_equal(jfield(bs, "boot_args"), "console=ttyS0");
	json_object_put(o);
}

static void test_hostile_bodies(void **state)
{
	struct fixture *f = *state;
	char deep[200];

	expect_fault(f, "PUT", "/boot-source", "{", "An error occurred when deserializing");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\":", "deserializing");
	expect_fault(f, "PUT", "/boot-source", "[1,2]", "invalid type: an array");
	expect_fault(f, "PUT", "/boot-source", "\"x\"", "invalid type: a string");
	expect_fault(f, "PUT", "/boot-source", "{} {}", "deserializing");
	expect_fault(f, "PUT", "/boot-source", "{'a':1}", "deserializing");
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"Instance\\u0000Start\"}",
		     "invalid type for `action_type`");
	for (int i = 0; i < 100; i++)
		deep[i] = '[';
	deep[100] = 0;
	expect_fault(f, "PUT", "/actions", deep, "deserializing");
	/* Binary garbage with NULs: fc_api_handle takes a length. */
	struct fc_response r;
	fc_api_handle(&f->api, "PUT", "/actions", "\0\xff\x01{", 4, &r);
	assert_int_equal(r.status, 400);
	fc_response_free(&r);
	/* White space after the value is fine. */
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"Bogus\"}\n ",
		     "unknown variant `Bogus`, expected one of `FlushMetrics`, `InstanceStart`, "
		     "`SendCtrlAltDel`");
	assert_int_equal(f->rec.starts, 0);
}

static void test_drives(void **state)
{
	struct fixture *f = *state;
	char *b;

	b = helper_asprintf("{\"drive_id\":\"data\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
			    "\"is_read_only\":true}", f->disk2);
	expect_204(f, "PUT", "/drives/data", b);
	expect_fault(f, "PUT", "/drives/other", b,
		     "The id from the path does not match the id from the body!");
	expect_fault(f, "PUT", "/drives/bad-id", b, "API Resource IDs can only contain "
		     "alphanumeric characters and underscores.");
	expect_fault(f, "PUT", "/drives", b, "The ID cannot be empty.");
	free(b);
	expect_fault(f, "PUT", "/drives/x", "{\"drive_id\":\"x\",\"path_on_host\":\"/nope\","
		     "\"is_root_device\":false}", "Unable to create the virtio block device: /nope");
	expect_fault(f, "PUT", "/drives/x", "{\"drive_id\":\"x\",\"is_root_device\":false}",
		     "missing field `path_on_host`");
	expect_fault(f, "PUT", "/drives/x", "{\"drive_id\":\"x\",\"path_on_host\":\"/a\"}",
		     "missing field `is_root_device`");
	expect_fault(f, "PUT", "/drives/x", "{\"drive_id\":\"x\",\"is_root_device\":false,"
		     "\"socket\":\"/s\"}", "bootvm does not support `socket`");
	b = helper_asprintf("{\"drive_id\":\"x\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
			    "\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1}}}", f->disk);
	expect_fault(f, "PUT", "/drives/x", b, "bootvm does not support `rate_limiter`");
	free(b);
	b = helper_asprintf("{\"drive_id\":\"x\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
			    "\"partuuid\":\"1 init=/bin/sh\"}", f->disk);
	expect_fault(f, "PUT", "/drives/x", b, "is not a partition UUID");
	free(b);
	b = helper_asprintf("{\"drive_id\":\"x\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
			    "\"cache_type\":\"Fast\"}", f->disk);
	expect_fault(f, "PUT", "/drives/x", b, "unknown variant `Fast`");
	free(b);

	/* The root drive goes first (/dev/vda), whatever the order of the PUTs. */
	b = helper_asprintf("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
			    "\"is_read_only\":false,\"cache_type\":\"Writeback\",\"io_engine\":\"Async\","
			    "\"rate_limiter\":null}", f->disk);
	expect_204(f, "PUT", "/drives/rootfs", b);
	free(b);
	b = helper_asprintf("{\"drive_id\":\"second\",\"path_on_host\":\"%s\",\"is_root_device\":true}",
			    f->disk);
	expect_fault(f, "PUT", "/drives/second", b, "A root block device already exists!");
	free(b);
	put_boot(f, "console=ttyS0 pci=off acpi=off");
	start(f);
	assert_int_equal(f->rec.starts, 1);
	assert_int_equal(f->rec.cfg.nr_disks, 2);
	assert_string_equal(f->rec.cfg.disks[0].path, f->disk);
	assert_false(f->rec.cfg.disks[0].readonly);
	assert_string_equal(f->rec.cfg.disks[0].serial, "rootfs");
	assert_string_equal(f->rec.cfg.disks[1].path, f->disk2);
	assert_true(f->rec.cfg.disks[1].readonly);
	/* pci=off is dropped (bootvm's devices are PCI); root= as Firecracker adds it. */
	assert_string_equal(f->rec.cfg.cmdline, "console=ttyS0 root=/dev/vda rw");
	assert_int_equal(f->rec.cfg.mem_size, 128ULL << 20);
	assert_int_equal(f->rec.cfg.nr_cpus, 1);

	/* After start: PUT refused, PATCH with the same path accepted, another path refused. */
	b = helper_asprintf("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true}",
			    f->disk);
	expect_fault(f, "PUT", "/drives/rootfs", b, "not supported after starting the microVM");
	free(b);
	b = helper_asprintf("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\"}", f->disk);
	expect_204(f, "PATCH", "/drives/rootfs", b);
	free(b);
	b = helper_asprintf("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\"}", f->disk2);
	expect_fault(f, "PATCH", "/drives/rootfs", b, "cannot change a drive's `path_on_host`");
	free(b);
	expect_fault(f, "PATCH", "/drives/nope", "{\"drive_id\":\"nope\"}", "no drive with drive_id");
	expect_fault(f, "PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"is_read_only\":true}",
		     "unknown field `is_read_only`");
}

static void test_drive_partuuid_ro_and_patch_preboot(void **state)
{
	struct fixture *f = *state;
	char *b = helper_asprintf("{\"drive_id\":\"r\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
				  "\"is_read_only\":true,\"partuuid\":\"0eaa91a0-01\"}", f->disk);

	expect_204(f, "PUT", "/drives/r", b);
	free(b);
	expect_fault(f, "PATCH", "/drives/r", "{\"drive_id\":\"r\"}",
		     "not supported before starting the microVM");
	put_boot(f, NULL);
	start(f);
	/* Without boot_args: Firecracker's default command line. */
	assert_string_equal(f->rec.cfg.cmdline, FC_DEFAULT_CMDLINE " root=PARTUUID=0eaa91a0-01 ro");
	assert_true(f->rec.cfg.disks[0].readonly);
}

/* A path that is no file is refused without being opened: a FIFO's reader sees no writer. */
static void test_drive_fifo_not_opened(void **state)
{
	struct fixture *f = *state;
	char *path = helper_asprintf("%s/drive.fifo", f->dir), *b;
	struct pollfd p;
	int rfd;

	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	b = helper_asprintf("{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":\"%s\"}",
			    path);
	expect_fault(f, "PUT", "/drives/d", b, "not a regular file or block device");
	free(b);
	b = helper_asprintf("{\"kernel_image_path\":\"%s\"}", path);
	expect_fault(f, "PUT", "/boot-source", b, "not a regular file or block device");
	free(b);
	/* A writer that came and went would show as POLLHUP. */
	p = (struct pollfd){ .fd = rfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);
	close(rfd);
	free(path);
}

static void test_network_interfaces(void **state)
{
	struct fixture *f = *state;

	expect_204(f, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":"
		   "\"tap0\",\"guest_mac\":\"06:00:AC:10:00:02\"}");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth0\",\"host_dev_name\":"
		     "\"tap1\"}", "The id from the path [eth1] does not match the id from the body [eth0]!");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"guest_mac\":\"06:00:ac:10:00:02\"}", "The MAC address is already in use");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"guest_mac\":\"06:00:ac:10:00\"}", "invalid MAC address");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\"}",
		     "missing field `host_dev_name`");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"a-very-long-tap-name\"}", "Cannot open/create the tap device");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"mtu\":1400}", "bootvm does not support `mtu`");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"rx_rate_limiter\":{\"ops\":{\"size\":5,\"refill_time\":1}}}",
		     "`rx_rate_limiter`");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"rx_rate_limiter\":{\"burst\":{}}}", "unknown field `burst`");
	/* The extension: user-mode networking with QEMU's hostfwd rules. */
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"bootvm_net\":"
		     "\"tap=x\"}", "must be user[,hostfwd=...]");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"bootvm_net\":"
		     "\"user,hostfwd=tcp::99999-:22\"}", "Network config error:");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
		     "\"tap1\",\"bootvm_net\":\"user\"}", "not both");
	/* Unlimited limiters, as Kata sends them, are accepted. */
	expect_204(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"bootvm_net\":"
		   "\"user,hostfwd=tcp::5555-:22\",\"rx_rate_limiter\":{},\"tx_rate_limiter\":"
		   "{\"bandwidth\":{\"size\":0,\"refill_time\":1000}}}");
	put_boot(f, "console=ttyS0");
	start(f);
	assert_int_equal(f->rec.cfg.nr_nets, 2);
	assert_int_equal(f->rec.cfg.nets[0].kind, VM_NET_TAP);
	assert_string_equal(f->rec.cfg.nets[0].tap_name, "tap0");
	assert_int_equal(f->rec.cfg.nets[0].mac[2], 0xac);
	assert_int_equal(f->rec.cfg.nets[1].kind, VM_NET_USER);
	assert_int_equal(f->rec.cfg.nets[1].nr_fwd, 1);
	assert_int_equal(f->rec.cfg.nets[1].fwd[0].host_port, 5555);
	expect_204(f, "PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\"}");
	expect_fault(f, "PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\","
		     "\"tx_rate_limiter\":{\"bandwidth\":{\"size\":1,\"refill_time\":1}}}",
		     "`tx_rate_limiter`");
	expect_fault(f, "PUT", "/network-interfaces/eth2", "{\"iface_id\":\"eth2\",\"host_dev_name\":"
		     "\"tap2\"}", "not supported after starting");
}

/* Linux allows a comma in an interface name: it stays in the name, no option follows. */
static void test_network_tap_comma(void **state)
{
	struct fixture *f = *state;

	expect_204(f, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":"
		   "\"tp,id=x,mac=1\"}");
	put_boot(f, "console=ttyS0");
	start(f);
	assert_int_equal(f->rec.cfg.nr_nets, 1);
	assert_string_equal(f->rec.cfg.nets[0].tap_name, "tp,id=x,mac=1");
	assert_string_equal(f->rec.cfg.nets[0].id, "eth0");
}

static void test_actions_and_states(void **state)
{
	struct fixture *f = *state;
	struct json_object *o;

	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}",
		     "Start microvm error: Cannot start microvm without kernel configuration.");
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}",
		     "not supported before starting the microVM");
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}",
		     "not supported before starting the microVM");
	expect_fault(f, "PATCH", "/vm", "{\"state\":\"Paused\"}",
		     "not supported before starting the microVM");
	expect_fault(f, "PUT", "/actions", "{}", "missing field `action_type`");
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"InstanceStart\",\"now\":true}",
		     "unknown field `now`");
	put_boot(f, "console=ttyS0");
	/* A start the VMM refuses leaves the instance not started, its reason in the fault. */
	f->rec.fail_start = 1;
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", "refused by the test");
	o = get_json(f, "/");
	assert_string_equal(jfield(o, "state"), "Not started");
	json_object_put(o);
	f->rec.fail_start = 0;
	start(f);
	o = get_json(f, "/");
	assert_string_equal(jfield(o, "state"), "Running");
	json_object_put(o);
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}",
		     "not supported after starting the microVM");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\":\"/x\"}", "after starting");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":64}",
		     "after starting");
	expect_fault(f, "PUT", "/logger", "{\"level\":\"Info\"}", "after starting");
	expect_fault(f, "PUT", "/entropy", "{}", "after starting");
	expect_fault(f, "PATCH", "/vm", "{\"state\":\"Stopped\"}", "unknown variant `Stopped`");
	expect_204(f, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	o = get_json(f, "/");
	assert_string_equal(jfield(o, "state"), "Paused");
	json_object_put(o);
	expect_204(f, "PATCH", "/vm", "{\"state\":\"Paused\"}");	/* already: no second pause */
	assert_int_equal(f->rec.pauses, 1);
	expect_204(f, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	assert_int_equal(f->rec.resumes, 1);
	o = get_json(f, "/");
	assert_string_equal(jfield(o, "state"), "Running");
	json_object_put(o);
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	assert_int_equal(f->rec.ctrl_alt_dels, 1);
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}",
		     "the metrics system is not initialized");
	/* Once the VM has ended, nothing reaches the VMM any more. */
	fc_api_vm_ended(&f->api);
	expect_fault(f, "PATCH", "/vm", "{\"state\":\"Paused\"}", "The microVM has stopped.");
	assert_int_equal(f->rec.pauses, 1);
	/* Not "no ACPI power button": the VM is gone. */
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}",
		     "The microVM has stopped.");
	assert_int_equal(f->rec.ctrl_alt_dels, 1);
}

static void test_ctrl_alt_del_unavailable(void **state)
{
	struct fixture *f = *state;

	f->api.ops = &rec_ops_no_cad;
	put_boot(f, "console=ttyS0");
	start(f);
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}",
		     "SendCtrlAltDel is not available");
}

static void test_entropy_and_vm_config(void **state)
{
	struct fixture *f = *state;
	struct json_object *o, *v;

	expect_fault(f, "PUT", "/entropy", "{\"rate_limiter\":{\"ops\":{}}}", "`rate_limiter`");
	expect_fault(f, "PUT", "/entropy", "{\"x\":1}", "unknown field `x`, expected `rate_limiter`");
	expect_204(f, "PUT", "/entropy", "{}");
	put_boot(f, "console=ttyS0");
	o = get_json(f, "/vm/config");
	/* FullVmConfiguration's sections, with what bootvm lacks as null. */
	static const char *const keys[] = { "balloon", "drives", "boot-source", "cpu-config",
					    "logger", "machine-config", "metrics", "mmds-config",
					    "network-interfaces", "vsock", "entropy" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_true(json_object_object_get_ex(o, keys[i], &v));
	assert_true(json_object_object_get_ex(o, "entropy", &v));
	assert_true(json_object_is_type(v, json_type_object));
	json_object_put(o);
	start(f);
	assert_true(f->rec.cfg.rng);
}

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	char *path = helper_asprintf("%s/metrics", f->dir), *b, *text;
	struct json_object *line, *put, *v;
	size_t len;

	b = helper_asprintf("{\"metrics_path\":\"%s\"}", path);
	expect_fault(f, "PUT", "/metrics", b, "Cannot initialize the metrics system");	/* missing */
	helper_write_file(path, "", 0, 0644);
	expect_fault(f, "PUT", "/metrics", "{\"metrics_path\":\"x\",\"properties\":{\"a\":\"b\"}}",
		     "`properties`");
	free(b);
	b = helper_asprintf("{\"metrics_path\":\"%s\",\"emit_id\":true}", path);
	expect_204(f, "PUT", "/metrics", b);
	expect_fault(f, "PUT", "/metrics", b, "Reinitialization of metrics not allowed.");
	free(b);
	put_boot(f, "console=ttyS0");
	start(f);
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	text = helper_read_file(path, &len);
	assert_non_null(text);
	assert_true(len > 2 && text[len - 1] == '\n');
	line = json_tokener_parse(text);
	assert_non_null(line);
	assert_true(json_object_object_get_ex(line, "utc_timestamp_ms", &v));
	assert_string_equal(jfield(line, "id"), "vm-1");
	assert_true(json_object_object_get_ex(line, "put_api_requests", &put));
	/* Since the last line: metrics 2 (1 failed), boot-source 1, actions 2 (this flush too). */
	assert_string_equal(jfield(put, "boot_source_count"), "1");
	assert_string_equal(jfield(put, "metrics_count"), "4");
	assert_string_equal(jfield(put, "metrics_fails"), "3");
	assert_string_equal(jfield(put, "actions_count"), "2");
	json_object_put(line);
	free(text);
	/* The counters start again from zero. */
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	text = helper_read_file(path, &len);
	char *second = strchr(text, '\n') + 1;
	line = json_tokener_parse(second);
	assert_non_null(line);
	assert_true(json_object_object_get_ex(line, "put_api_requests", &put));
	assert_string_equal(jfield(put, "boot_source_count"), "0");
	assert_string_equal(jfield(put, "actions_count"), "1");
	json_object_put(line);
	free(text);
	free(path);
}

/* Line n (0-based) of the metrics file, parsed; NULL if there are fewer. */
static struct json_object *metrics_line(const char *path, int n)
{
	size_t len;
	char *text = helper_read_file(path, &len), *p = text;
	struct json_object *line;

	assert_non_null(text);
	for (; n > 0 && p; n--)
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
	line = p && *p ? json_tokener_parse(p) : NULL;
	free(text);
	return line;
}

/*
 * Line n of the metrics file: its boot_timeline's event names, space-separated,
 * are want; the recorder's figure is recorder (NULL: no figure from the VM).
 */
static void check_metrics_line(const char *path, int n, const char *want, const char *recorder)
{
	struct json_object *line = metrics_line(path, n), *tl, *events, *v;
	char *names = strdup("");

	assert_non_null(line);
	assert_true(json_object_object_get_ex(line, "boot_timeline", &tl));
	assert_true(json_object_object_get_ex(tl, "events", &events));
	assert_true(json_object_object_get_ex(tl, "events_dropped", &v));
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		char *more = helper_asprintf("%s%s%s", names, i ? " " : "",
					     jfield(json_object_array_get_idx(events, i), "event"));
		free(names);
		names = more;
	}
	assert_string_equal(names, want);
	free(names);
	if (recorder)
		assert_string_equal(jfield(line, "recorder"), recorder);
	else
		assert_false(json_object_object_get_ex(line, "recorder", &v));
	json_object_put(line);
}

/*
 * Every metrics line carries the boot timeline; the line written when the
 * VM ends still has the running VM's figures, later ones (no VM) do not.
 */
static void test_metrics_timeline(void **state)
{
	struct fixture *f = *state;
	char *path = helper_asprintf("%s/metrics", f->dir), *b;

	helper_write_file(path, "", 0, 0644);
	b = helper_asprintf("{\"metrics_path\":\"%s\"}", path);
	expect_204(f, "PUT", "/metrics", b);
	free(b);
	timeline_reset();
	put_boot(f, "console=ttyS0");
	start(f);
	timeline_mark_once(TIMELINE_VM_CREATED);
	timeline_mark_once(TIMELINE_FIRST_KVM_RUN);
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	check_metrics_line(path, 0, "process_start vm_created first_kvm_run", "1");

	timeline_mark_oncef(TIMELINE_VM_STOP, "poweroff, exit status 0");
	fc_api_vm_ended(&f->api);
	check_metrics_line(path, 1, "process_start vm_created first_kvm_run vm_stop", "2");
	assert_null(metrics_line(path, 2));

	/* After it, a FlushMetrics line has the timeline but nothing from the VM. */
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	check_metrics_line(path, 2, "process_start vm_created first_kvm_run vm_stop", NULL);
	assert_int_equal(f->rec.metrics_calls, 2);
	free(path);
}

/* A line longer than PIPE_BUF into a nearly full FIFO: dropped whole, never torn. */
static void test_metrics_fifo_full(void **state)
{
	struct fixture *f = *state;
	char *path = helper_asprintf("%s/metrics.fifo", f->dir), *b, *fill, buf[8192];
	size_t total = 0;
	int rfd, wfd, cap;
	ssize_t n;

	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	b = helper_asprintf("{\"metrics_path\":\"%s\"}", path);
	expect_204(f, "PUT", "/metrics", b);
	free(b);
	timeline_reset();
	for (int i = 0; i < TIMELINE_MAX_MARKERS; i++)	/* the guest's: a line of some 8 KB */
		timeline_guest_marker(0x1234567890abcdefULL + (uint64_t)i, 8);
	put_boot(f, "console=ttyS0");
	start(f);
	/* All but 100 bytes of the FIFO taken. */
	wfd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(wfd >= 0);
	cap = fcntl(wfd, F_GETPIPE_SZ);
	assert_true(cap > 8192);
	fill = calloc(1, (size_t)cap + 1);
	assert_non_null(fill);
	memset(fill, 'x', (size_t)cap - 100);
	assert_int_equal(write(wfd, fill, (size_t)cap - 100), cap - 100);
	expect_fault(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", "the FIFO is full");
	while ((n = read(rfd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	assert_int_equal(total, (size_t)cap - 100);	/* not a byte of the line */
	/* Room again: the next line goes out whole. */
	expect_204(f, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	total = 0;
	while ((n = read(rfd, fill + total, (size_t)cap - total)) > 0)
		total += (size_t)n;
	assert_true(total > 4096 && fill[total - 1] == '\n');
	fill[total] = 0;
	struct json_object *line = json_tokener_parse(fill);

	assert_non_null(line);
	json_object_put(line);
	free(fill);
	close(wfd);
	close(rfd);
	free(path);
}

static void test_logger(void **state)
{
	struct fixture *f = *state;
	char *path = helper_asprintf("%s/log", f->dir), *b, *text;
	size_t len;

	expect_fault(f, "PUT", "/logger", "{\"level\":\"Loud\"}", "Invalid level `Loud`");
	b = helper_asprintf("{\"log_path\":\"%s\"}", path);
	expect_fault(f, "PUT", "/logger", b, "cannot open log_path");
	free(b);
	helper_write_file(path, "", 0, 0644);
	b = helper_asprintf("{\"log_path\":\"%s\",\"level\":\"warning\",\"show_level\":true,"
			    "\"show_log_origin\":true}", path);
	expect_204(f, "PUT", "/logger", b);
	free(b);
	log_warn("a warning for the log");
	log_info("an info line the level drops");
	fc_log_reset();
	log_set_sink(helper_log_sink, &f->log);
	text = helper_read_file(path, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "[vm-1:"));
	assert_non_null(strstr(text, ":WARN:"));
	assert_non_null(strstr(text, "test_fc_api.c:"));
	assert_non_null(strstr(text, "] a warning for the log\n"));
	assert_null(strstr(text, "info line"));
	free(text);
	free(path);
}

static void test_config_file(void **state)
{
	struct fixture *f = *state;
	char fault[FC_FAULT_MAX], *json;

	json = helper_asprintf("{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"a\"},"
			       "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64},"
			       "\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\","
			       "\"is_root_device\":true,\"is_read_only\":true}],"
			       "\"network-interfaces\":[],\"entropy\":{},\"vsock\":null,"
			       "\"balloon\":null}", f->kernel, f->disk);
	assert_int_equal(fc_api_load_config(&f->api, json, strlen(json), fault, sizeof(fault)), 0);
	free(json);
	assert_int_equal(fc_api_start(&f->api, fault, sizeof(fault)), 0);
	assert_int_equal(f->rec.cfg.nr_cpus, 2);
	assert_string_equal(f->rec.cfg.cmdline, "a root=/dev/vda ro");
	assert_true(f->rec.cfg.rng);
	assert_int_equal(fc_api_start(&f->api, fault, sizeof(fault)), -1);
	assert_non_null(strstr(fault, "after starting"));
}

static void test_config_file_errors(void **state)
{
	struct fixture *f = *state;
	char fault[FC_FAULT_MAX], *json;
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{}", "missing field `boot-source`" },
		{ "{\"boot-source\":{\"kernel_image_path\":\"/nope\"}}",
		  "boot-source: Boot source error: The kernel file cannot be opened" },
		{ "{\"boot-source\":1}", "invalid type for `boot-source`" },
		{ "{\"bootsource\":{}}", "unknown field `bootsource`" },
		{ "not json", "deserializing" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fc_api_load_config(&f->api, cases[i].json, strlen(cases[i].json),
						    fault, sizeof(fault)), -1);
		if (!strstr(fault, cases[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, fault, cases[i].want);
	}
	json = helper_asprintf("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"vsock\":"
			       "{\"guest_cid\":3,\"uds_path\":\"/v\"}}", f->kernel);
	assert_int_equal(fc_api_load_config(&f->api, json, strlen(json), fault, sizeof(fault)), -1);
	assert_non_null(strstr(fault, "bootvm does not support \"vsock\""));
	free(json);
	json = helper_asprintf("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[{\"drive_id\":"
			       "\"a\",\"path_on_host\":\"/nope\",\"is_root_device\":false}]}", f->kernel);
	assert_int_equal(fc_api_load_config(&f->api, json, strlen(json), fault, sizeof(fault)), -1);
	assert_non_null(strstr(fault, "drives[0]: Drive config error"));
	free(json);
	json = helper_asprintf("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[7]}",
			       f->kernel);
	assert_int_equal(fc_api_load_config(&f->api, json, strlen(json), fault, sizeof(fault)), -1);
	assert_non_null(strstr(fault, "drives[0]:"));
	free(json);
	assert_int_equal(f->rec.starts, 0);
}

/* ---- the HTTP layer ---- */

/* Feed everything in chunks of step bytes; the number of requests seen, each answered. */
static int http_count(const char *data, size_t step, struct http_conn *c, char paths[][1100])
{
	size_t off = 0, len = strlen(data);
	int n = 0;

	while (off < len) {
		size_t take = len - off < step ? len - off : step, used;
		enum http_feed r = http_conn_feed(c, data + off, take, &used);

		off += used;
		if (r == HTTP_FEED_ERROR)
			return -1;
		if (r == HTTP_FEED_REQUEST) {
			snprintf(paths[n++], 1100, "%s %s %zu", c->req.method, c->req.path,
				 c->req.body_len);
			http_conn_next(c);
		}
	}
	return n;
}

static void test_http_pieces_and_pipelining(void **state)
{
	static const char two[] =
		"PUT /drives/rootfs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
		"GET /?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char paths[4][1100];

	for (size_t step = 1; step <= sizeof(two); step += 7) {
		struct http_conn c;

		http_conn_init(&c, HTTP_DEFAULT_MAX_BODY);
		assert_int_equal(http_count(two, step, &c, paths), 2);
		assert_string_equal(paths[0], "PUT /drives/rootfs 5");
		assert_string_equal(paths[1], "GET / 0");
		assert_int_equal(http_conn_eof(&c), HTTP_FEED_MORE);
		http_conn_fini(&c);
	}
}

static void test_http_limits(void **state)
{
	struct http_conn c;
	size_t used;
	char *big;

	/* A body over the limit is refused from its Content-Length, before it arrives. */
	http_conn_init(&c, 100);
	assert_int_equal(http_conn_feed(&c, "PUT /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 40,
					&used), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 413);
	assert_non_null(strstr(c.err_msg, "larger than the limit of 100"));
	http_conn_fini(&c);
	/* Chunked bodies count too. */
	http_conn_init(&c, 10);
	const char chunked[] = "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
	assert_int_equal(http_conn_feed(&c, chunked, strlen(chunked), &used), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 413);
	http_conn_fini(&c);
	/* Headers and URL are bounded. */
	big = malloc(HTTP_MAX_HEADER_BYTES + 100);
	memset(big, 'a', HTTP_MAX_HEADER_BYTES + 99);
	big[HTTP_MAX_HEADER_BYTES + 99] = 0;
	http_conn_init(&c, 100);
	http_conn_feed(&c, "GET / HTTP/1.1\r\nX: ", 19, &used);
	assert_int_equal(http_conn_feed(&c, big, strlen(big), &used), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 431);
	http_conn_fini(&c);
	http_conn_init(&c, 100);
	http_conn_feed(&c, "GET /", 5, &used);
	assert_int_equal(http_conn_feed(&c, big, HTTP_MAX_URL + 10, &used), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 414);
	http_conn_fini(&c);
	free(big);
	/* Not HTTP at all. */
	http_conn_init(&c, 100);
	assert_int_equal(http_conn_feed(&c, "\x16\x03\x01\x02\x00", 5, &used), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 400);
	http_conn_fini(&c);
	/* Half a request, then the client closes. */
	http_conn_init(&c, 100);
	assert_int_equal(http_conn_feed(&c, "PUT /x HTTP/1.1\r\nContent-Length: 9\r\n\r\nab", 41,
					&used), HTTP_FEED_MORE);
	assert_true(http_conn_busy(&c));
	assert_int_equal(http_conn_eof(&c), HTTP_FEED_ERROR);
	assert_int_equal(c.err_status, 400);
	http_conn_fini(&c);
}

static void test_http_continue_and_response(void **state)
{
	struct http_conn c;
	size_t used, len;
	char *r;
	const char head[] = "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";

	http_conn_init(&c, 100);
	assert_int_equal(http_conn_feed(&c, head, strlen(head), &used), HTTP_FEED_MORE);
	assert_true(http_conn_wants_continue(&c));
	assert_false(http_conn_wants_continue(&c));	/* once */
	assert_int_equal(http_conn_feed(&c, "{}", 2, &used), HTTP_FEED_REQUEST);
	assert_string_equal(c.req.body, "{}");
	assert_true(c.req.keep_alive);
	http_conn_fini(&c);

	r = http_format_response(204, NULL, true, &len);
	assert_string_equal(r, "HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\n"
			    "Connection: keep-alive\r\n\r\n");
	free(r);
	r = http_format_response(400, "{\"fault_message\":\"x\"}", false, &len);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "Content-Length: 21\r\n\r\n{\"fault_message\":\"x\"}"));
	assert_int_equal(len, strlen(r));
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_instance_info_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_machine_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drive_partuuid_ro_and_patch_preboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drive_fifo_not_opened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_interfaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_tap_comma, setup, teardown),
		cmocka_unit_test_setup_teardown(test_actions_and_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_alt_del_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entropy_and_vm_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_timeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_fifo_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_file_errors, setup, teardown),
		cmocka_unit_test(test_http_pieces_and_pipelining),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test(test_http_continue_and_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
