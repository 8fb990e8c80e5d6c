/*
 * vmm/config.c: the one vm_config the CLI (and later the API) fill: owned
 * strings, --disk specs with their options and errors, and validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "util/log.h"
#include "vmm/config.h"

static void test_defaults_and_strings(void **state)
{
	struct vm_config c;
	char buf[16] = "vmlinuz";

	vm_config_init(&c);
	assert_string_equal(c.cmdline, "");
	assert_int_equal(c.nr_cpus, 1);
	assert_int_equal(c.mem_size, VM_DEFAULT_MEM_SIZE);
	assert_true(c.host_decompress);
	assert_int_equal(c.shutdown_grace_ms, 0);		/* signals stop at once */
	/* Copies: the caller's buffer may change afterwards. */
	assert_int_equal(vm_config_set(&c, &c.kernel_path, buf), 0);
	strcpy(buf, "changed");
	assert_string_equal(c.kernel_path, "vmlinuz");
	assert_int_equal(vm_config_set(&c, &c.kernel_path, "second"), 0);
	assert_string_equal(c.kernel_path, "second");
	assert_int_equal(vm_config_set(&c, &c.cmdline, "console=ttyS0"), 0);
	assert_int_equal(vm_config_validate(&c), 0);
	vm_config_free(&c);
	assert_null(c.kernel_path);
}

static void test_disk_specs(void **state)
{
	struct vm_config c;

	vm_config_init(&c);
	assert_int_equal(vm_config_add_disk(&c, "root.ext4"), 0);
	assert_int_equal(vm_config_add_disk(&c,
		"data,,1.img,ro=on,id=SERIAL-1,cache=none,discard=on,queues=4"), 0);
	assert_int_equal(c.nr_disks, 2);
	assert_string_equal(c.disks[0].path, "root.ext4");
	assert_false(c.disks[0].readonly);
	assert_string_equal(c.disks[0].serial, "");
	assert_int_equal(c.disks[0].cache, VM_DISK_CACHE_WRITEBACK);
	assert_int_equal(c.disks[0].nr_queues, 0);
	assert_string_equal(c.disks[1].path, "data,1.img");
	assert_true(c.disks[1].readonly);
	assert_string_equal(c.disks[1].serial, "SERIAL-1");
	assert_int_equal(c.disks[1].cache, VM_DISK_CACHE_NONE);
	assert_true(c.disks[1].discard);
	assert_int_equal(c.disks[1].nr_queues, 4);
	vm_config_free(&c);
	assert_int_equal(c.nr_disks, 0);
}

static void test_disk_errors(void **state)
{
	static const struct { const char *spec, *needle; } bad[] = {
		{ "", "no image path" },
		{ ",ro=on", "no image path" },
		{ "a,foo=bar", "unknown option 'foo'" },
		{ "a,ro", "'ro' is not KEY=VALUE" },
		{ "a,ro=maybe", "expected on or off" },
		{ "a,cache=unsafe", "expected writeback or none" },
		{ "a,id=123456789012345678901", "longer than 20" },
		{ "a,id=tab\there", "printable ASCII" },
		{ "a,queues=0", "from 1 to 16" },
		{ "a,queues=17", "from 1 to 16" },
		{ "a,queues=-1", "from 1 to 16" },
		{ "a,queues=2x", "from 1 to 16" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct helper_log log = { 0 };
		struct vm_config c;

		vm_config_init(&c);
		log_set_sink(helper_log_sink, &log);
		assert_int_equal(vm_config_add_disk(&c, bad[i].spec), -1);
		log_set_sink(NULL, NULL);
		assert_int_equal(c.nr_disks, 0);
		assert_int_equal(log.errors, 1);
		if (!strstr(log.last_error, bad[i].needle))
			fail_msg("'%s': got '%s', wanted '%s'", bad[i].spec, log.last_error, bad[i].needle);
		vm_config_free(&c);
	}
}

static void test_validate(void **state)
{
	struct helper_log log = { 0 };
	struct vm_config c;

	vm_config_init(&c);
	log_set_sink(helper_log_sink, &log);
	assert_int_equal(vm_config_validate(&c), -1);		/* no kernel */
	assert_non_null(strstr(log.last_error, "--kernel is required"));
	/* No --kernel with a disk: the disk's kernel; --boot-entry and --initrd only so. */
	assert_int_equal(vm_config_add_disk(&c, "disk.img"), 0);
	assert_int_equal(vm_config_set(&c, &c.boot_entry, "2"), 0);
	assert_int_equal(vm_config_validate(&c), 0);
	assert_int_equal(vm_config_set(&c, &c.initrd_path, "i"), 0);
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "--initrd needs --kernel"));
	assert_int_equal(vm_config_set(&c, &c.kernel_path, "k"), 0);
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "--boot-entry"));
	free((char *)c.boot_entry);
	c.boot_entry = NULL;
	c.nr_cpus = 0;
	assert_int_equal(vm_config_validate(&c), -1);
	c.nr_cpus = 2;
	c.mem_size = 4096 * 1000 + 1;
	assert_int_equal(vm_config_validate(&c), -1);
	c.mem_size = VM_DEFAULT_MEM_SIZE;
	/* The shutdown grace: up to a day (an API sets it without the CLI's parser). */
	c.shutdown_grace_ms = VM_MAX_SHUTDOWN_GRACE_MS;
	assert_int_equal(vm_config_validate(&c), 0);
	c.shutdown_grace_ms = VM_MAX_SHUTDOWN_GRACE_MS + 1;
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "--shutdown-grace"));
	c.shutdown_grace_ms = 0;

	/* One image twice: only when both are read-only. */
	assert_int_equal(vm_config_add_disk(&c, "same.img,ro=on"), 0);
	assert_int_equal(vm_config_add_disk(&c, "same.img,ro=on"), 0);
	assert_int_equal(vm_config_validate(&c), 0);
	assert_int_equal(vm_config_add_disk(&c, "same.img"), 0);
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "given twice"));

	/* At most VM_MAX_DISKS. */
	vm_config_free(&c);
	vm_config_init(&c);
	for (int i = 0; i < VM_MAX_DISKS; i++)
		assert_int_equal(vm_config_add_disk(&c, "d"), 0);
	assert_int_equal(vm_config_add_disk(&c, "d"), -1);
	assert_non_null(strstr(log.last_error, "at most"));
	log_set_sink(NULL, NULL);
	vm_config_free(&c);
}

static void test_net_specs(void **state)
{
	struct vm_config c;
	const struct vm_net_config *n;

	vm_config_init(&c);
	assert_int_equal(vm_config_add_net(&c, "user,hostfwd=tcp::5555-:22,"
					   "hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,restrict=on"), 0);
	assert_int_equal(vm_config_add_net(&c, "tap=tap0,mac=52:54:00:aa:bb:cc,id=lan"), 0);
	assert_int_equal(c.nr_nets, 2);
	n = &c.nets[0];
	assert_int_equal(n->kind, VM_NET_USER);
	assert_true(n->restrict_net);
	assert_string_equal(n->id, "net0");
	assert_int_equal(n->nr_fwd, 2);
	assert_false(n->fwd[0].udp);
	assert_int_equal(n->fwd[0].host_addr, htonl(0x7f000001));	/* 127.0.0.1 unless given */
	assert_int_equal(n->fwd[0].host_port, 5555);
	assert_int_equal(n->fwd[0].guest_addr, htonl(0x0a00020f));	/* 10.0.2.15 */
	assert_int_equal(n->fwd[0].guest_port, 22);
	assert_true(n->fwd[1].udp);
	assert_int_equal(n->fwd[1].host_addr, 0);
	assert_int_equal(n->fwd[1].host_port, 5353);
	assert_int_equal(n->fwd[1].guest_port, 53);
	/* A generated MAC: QEMU's locally administered prefix, stable for the same id. */
	assert_int_equal(n->mac[0], 0x52);
	assert_int_equal(n->mac[1], 0x54);
	assert_int_equal(n->mac[2], 0x00);
	struct vm_config c2;
	vm_config_init(&c2);
	assert_int_equal(vm_config_add_net(&c2, "user"), 0);
	assert_memory_equal(c2.nets[0].mac, n->mac, 6);
	assert_int_equal(vm_config_add_net(&c2, "user,id=other"), 0);
	assert_memory_not_equal(c2.nets[1].mac, n->mac, 6);
	vm_config_free(&c2);

	n = &c.nets[1];
	assert_int_equal(n->kind, VM_NET_TAP);
	assert_string_equal(n->tap_name, "tap0");
	assert_string_equal(n->id, "lan");
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
	assert_memory_equal(n->mac, mac, 6);
	assert_int_equal(vm_config_validate(&c), -1);	/* no kernel */
	assert_int_equal(vm_config_set(&c, &c.kernel_path, "k"), 0);
	assert_int_equal(vm_config_validate(&c), 0);
	vm_config_free(&c);
	assert_int_equal(c.nr_nets, 0);

	/* passt: hostfwd as for user (to the guest's own address), mac, id. */
	vm_config_init(&c);
	assert_int_equal(vm_config_add_net(&c, "passt,hostfwd=tcp::5555-:22,"
					   "hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,id=p"), 0);
	n = &c.nets[0];
	assert_int_equal(n->kind, VM_NET_PASST);
	assert_string_equal(n->id, "p");
	assert_false(n->restrict_net);
	assert_int_equal(n->nr_fwd, 2);
	assert_int_equal(n->fwd[0].host_addr, htonl(0x7f000001));
	assert_int_equal(n->fwd[0].host_port, 5555);
	assert_int_equal(n->fwd[0].guest_port, 22);
	assert_true(n->fwd[1].udp);
	assert_int_equal(n->fwd[1].host_addr, 0);
	assert_int_equal(n->mac[0], 0x52);
	vm_config_free(&c);
}

static void test_net_errors(void **state)
{
	static const struct { const char *spec, *needle; } bad[] = {
		{ "", "expected user" },
		{ "slirp", "expected user" },
		{ "tap=", "expected user" },
		{ "tap=a-name-longer-than-15", "longer than 15" },
		{ "user,hostfwd=sctp::1-:2", "tcp: or udp:" },
		{ "user,hostfwd=tcp::5555", "is not tcp|udp" },
		{ "user,hostfwd=tcp::0-:22", "is not tcp|udp" },
		{ "user,hostfwd=tcp::65536-:22", "is not tcp|udp" },
		{ "user,hostfwd=tcp:1.2.3:5555-:22", "is not tcp|udp" },
		{ "user,hostfwd=tcp::5555-10.0.2.15:x", "is not tcp|udp" },
		{ "user,restrict=maybe", "expected on or off" },
		{ "user,mac=52:54:00:12:34", "six hex bytes" },
		{ "user,mac=53:54:00:12:34:56", "multicast" },
		{ "user,mac=+2:54:00:12:34:56", "six hex bytes" },
		{ "user,mac= 2:54:00:12:34:56", "six hex bytes" },
		{ "user,id=", "1 to 31" },
		{ "user,foo=1", "unknown option 'foo'" },
		{ "tap=tap0,hostfwd=tcp::1-:2", "unknown option 'hostfwd'" },
		{ "user,restrict", "not KEY=VALUE" },
		{ "passt,restrict=on", "unknown option 'restrict' (hostfwd, mac, id)" },
		{ "passt,hostfwd=tcp::5555-10.0.2.16:22", "the guest's own address" },
		{ "passt,hostfwd=sctp::1-:2", "tcp: or udp:" },
		{ "passtx", "passt[,...]" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct helper_log log = { 0 };
		struct vm_config c;

		vm_config_init(&c);
		log_set_sink(helper_log_sink, &log);
		assert_int_equal(vm_config_add_net(&c, bad[i].spec), -1);
		log_set_sink(NULL, NULL);
		assert_int_equal(c.nr_nets, 0);
		assert_int_equal(log.errors, 1);
		if (!strstr(log.last_error, bad[i].needle))
			fail_msg("'%s': got '%s', wanted '%s'", bad[i].spec, log.last_error, bad[i].needle);
		vm_config_free(&c);
	}

	/* Conflicts only the whole configuration shows. */
	struct helper_log log = { 0 };
	struct vm_config c;
	vm_config_init(&c);
	assert_int_equal(vm_config_set(&c, &c.kernel_path, "k"), 0);
	log_set_sink(helper_log_sink, &log);
	assert_int_equal(vm_config_add_net(&c, "user,hostfwd=tcp::5555-:22,hostfwd=tcp::5555-:80"), 0);
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "forwarded twice"));
	vm_config_free(&c);
	vm_config_init(&c);
	assert_int_equal(vm_config_set(&c, &c.kernel_path, "k"), 0);
	assert_int_equal(vm_config_add_net(&c, "user,id=a"), 0);
	assert_int_equal(vm_config_add_net(&c, "user,id=a"), 0);
	assert_int_equal(vm_config_validate(&c), -1);
	assert_non_null(strstr(log.last_error, "the same MAC"));
	log_set_sink(NULL, NULL);
	vm_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_strings),
		cmocka_unit_test(test_disk_specs),
		cmocka_unit_test(test_disk_errors),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_net_specs),
		cmocka_unit_test(test_net_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
