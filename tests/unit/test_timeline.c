/*
 * The boot timeline (src/vmm/timeline.c): order, first occurrences only,
 * bounded guest markers, the console and frame scanners on hostile input,
 * and the JSON read back with json-c.
 */
#include <fcntl.h>
#include <json.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "vmm/bus.h"
#include "vmm/timeline.h"

/* The timeline read back through its JSON text (free with json_object_put). */
static struct json_object *parsed(void)
{
	char *s = timeline_json_string();
	struct json_object *o;

	assert_non_null(s);
	o = json_tokener_parse(s);
	free(s);
	assert_non_null(o);
	return o;
}

static struct json_object *events_of(struct json_object *root)
{
	struct json_object *a;

	assert_true(json_object_object_get_ex(root, "events", &a));
	assert_true(json_object_is_type(a, json_type_array));
	return a;
}

static const char *field(struct json_object *ev, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(ev, key, &v));
	return json_object_get_string(v);
}

static int64_t t_us(struct json_object *ev)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(ev, "t_us", &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

/* How many events named `name`; the detail of the last one in *detail (until the next call). */
static int count_named(const char *name, const char **detail)
{
	static char last[TIMELINE_DETAIL_MAX];
	struct json_object *root = parsed(), *a = events_of(root);
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (!strcmp(field(e, "event"), name)) {
			n++;
			snprintf(last, sizeof(last), "%s", field(e, "detail"));
			if (detail)
				*detail = last;
		}
	}
	json_object_put(root);
	return n;
}

static uint64_t dropped(const char *key)
{
	struct json_object *root = parsed(), *v;
	uint64_t n;

	assert_true(json_object_object_get_ex(root, key, &v));
	n = json_object_get_uint64(v);
	json_object_put(root);
	return n;
}

static void test_order_and_once(void **state)
{
	static const char *const want[] = { "process_start", "vm_created", "memory_ready",
					    "kernel_loaded", "first_kvm_run", "vm_stop" };
	struct json_object *root, *a, *v;

	(void)state;
	timeline_reset();
	timeline_mark_once(TIMELINE_VM_CREATED);
	timeline_mark_oncef(TIMELINE_MEMORY_READY, "%d MiB", 512);
	timeline_mark_once(TIMELINE_VM_CREATED);		/* again: nothing */
	timeline_mark_oncef(TIMELINE_MEMORY_READY, "%d MiB", 1024);
	usleep(2000);
	timeline_mark_oncef(TIMELINE_KERNEL_LOADED, "ELF vmlinux");
	timeline_mark_oncef(TIMELINE_FIRST_KVM_RUN, "vcpu%u", 0);
	timeline_mark_oncef(TIMELINE_FIRST_KVM_RUN, "vcpu%u", 1);
	timeline_mark_oncef(TIMELINE_VM_STOP, "guest powered off");
	assert_true(timeline_seen(TIMELINE_FIRST_KVM_RUN));
	assert_false(timeline_seen(TIMELINE_RUN_INIT));

	root = parsed();
	assert_true(json_object_object_get_ex(root, "clock", &v));
	assert_true(json_object_is_type(v, json_type_string));
	a = events_of(root);
	assert_int_equal(json_object_array_length(a), sizeof(want) / sizeof(want[0]));
	int64_t prev = -1;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		assert_string_equal(field(e, "event"), want[i]);
		assert_true(t_us(e) >= prev);
		prev = t_us(e);
		/* Exactly the three members (a guest marker adds "value"). */
		assert_int_equal(json_object_object_length(e), 3);
	}
	struct json_object *first = json_object_array_get_idx(a, 0);
	assert_int_equal(t_us(first), 0);
	/* The first detail stays; the 2 ms sleep shows in the times. */
	assert_string_equal(field(json_object_array_get_idx(a, 2), "detail"), "512 MiB");
	assert_string_equal(field(json_object_array_get_idx(a, 4), "detail"), "vcpu0");
	assert_true(t_us(json_object_array_get_idx(a, 3)) -
		    t_us(json_object_array_get_idx(a, 2)) >= 2000);
	assert_int_equal(dropped("guest_markers_dropped"), 0);
	json_object_put(root);
}

static void test_tokens_once_per_device(void **state)
{
	struct timeline_once blk = { false }, net = { false };
	const char *detail = NULL;

	(void)state;
	timeline_reset();
	for (int i = 0; i < 3; i++) {
		timeline_mark_token(&blk, TIMELINE_QUEUE_NOTIFY, "virtio-blk0 queue %d", i);
		timeline_mark_token(&net, TIMELINE_QUEUE_NOTIFY, "virtio-net0 queue %d", i + 1);
	}
	assert_int_equal(count_named("queue_notify", &detail), 2);
	assert_string_equal(detail, "virtio-net0 queue 1");
	assert_true(timeline_seen(TIMELINE_QUEUE_NOTIFY));
}

/* A guest writing the port in a loop: 64 markers kept in order, the rest counted. */
static void test_markers_bounded(void **state)
{
	struct bus pio;
	struct json_object *root, *a;
	uint8_t data[8];
	int n = 0;

	(void)state;
	timeline_reset();
	bus_init(&pio, "pio");
	assert_int_equal(bus_register(&pio, 0x80, TIMELINE_PORT_LEN, "debug-port",
				      &timeline_port_ops, NULL), 0);
	for (unsigned int i = 0; i < 1000; i++) {
		uint32_t v = 0x1200 + i;

		memcpy(data, &v, sizeof(v));
		assert_true(bus_access(&pio, 0x80, data, i == 1 ? 2 : 1, true));
	}
	/* The other ports of the range are no markers. */
	assert_true(bus_access(&pio, 0x81, data, 1, true));
	assert_true(bus_access(&pio, 0x82, data, 2, true));
	memset(data, 0, sizeof(data));
	bus_access(&pio, 0x80, data, 1, false);
	assert_int_equal(data[0], 0xff);		/* reads see all ones */

	root = parsed();
	a = events_of(root);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i), *v;

		if (strcmp(field(e, "event"), "guest_marker"))
			continue;
		assert_true(json_object_object_get_ex(e, "value", &v));
		/* A byte write keeps the low byte; the one word write its 16 bits. */
		uint64_t want = n == 1 ? 0x1201 : (uint64_t)((0x1200 + n) & 0xff);
		assert_int_equal(json_object_get_uint64(v), want);
		n++;
	}
	json_object_put(root);
	assert_int_equal(n, TIMELINE_MAX_MARKERS);
	assert_int_equal(dropped("guest_markers_dropped"), 1000 - TIMELINE_MAX_MARKERS);
	/* Other events still get in after the markers ran out. */
	timeline_mark_once(TIMELINE_VM_STOP);
	assert_int_equal(count_named("vm_stop", NULL), 1);
	bus_destroy(&pio);
}

/* More distinct events than the table holds: the rest are counted, never written past it. */
static void test_events_bounded(void **state)
{
	static struct timeline_once once[TIMELINE_MAX_EVENTS + 10];

	(void)state;
	timeline_reset();
	memset(once, 0, sizeof(once));
	for (unsigned int i = 0; i < TIMELINE_MAX_EVENTS + 10; i++)
		timeline_mark_token(&once[i], TIMELINE_QUEUE_NOTIFY, "dev%u", i);
	assert_int_equal(count_named("queue_notify", NULL), TIMELINE_MAX_EVENTS - 1);
	assert_int_equal(dropped("events_dropped"), 11);
}

struct hammer {
	struct timeline_once *tok;
	int rounds;
};

static void *hammer(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < h->rounds; i++) {
		timeline_mark_once(TIMELINE_FIRST_PCI_CONFIG);
		timeline_mark_token(h->tok, TIMELINE_QUEUE_NOTIFY, "shared");
		timeline_guest_marker((uint64_t)i, 1);
	}
	return NULL;
}

/* Four threads at once: one of each first occurrence, every marker kept or counted. */
static void test_threads(void **state)
{
	struct timeline_once tok = { false };
	struct hammer h = { &tok, 5000 };
	pthread_t t[4];

	(void)state;
	timeline_reset();
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &h), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(count_named("first_pci_config", NULL), 1);
	assert_int_equal(count_named("queue_notify", NULL), 1);
	assert_int_equal(count_named("guest_marker", NULL), TIMELINE_MAX_MARKERS);
	assert_int_equal(dropped("guest_markers_dropped"), 4 * 5000 - TIMELINE_MAX_MARKERS);
}

static void feed(struct timeline_scan *s, const char *text, size_t chunk)
{
	size_t len = strlen(text);

	for (size_t off = 0; off < len; off += chunk)
		timeline_console(s, (const uint8_t *)text + off, len - off < chunk ? len - off : chunk);
}

static void test_console_run_init(void **state)
{
	static const char boot[] =
		"[    0.000000] Linux version 6.1\r\n"
		"[    1.000000] Run /bin/sh\r\n"				/* not the line */
		"RRRun /sbin/init as init processes\r\n"			/* not the end */
		"[    1.200000] Run /init as init process\r\n"
		"[    1.300000] Run /sbin/init as init process\r\n";	/* too late */
	const char *detail = NULL;

	(void)state;
	for (size_t chunk = 1; chunk <= sizeof(boot); chunk += chunk < 8 ? 1 : 13) {
		struct timeline_scan s = { 0 };

		timeline_reset();
		feed(&s, boot, chunk);
		assert_int_equal(count_named("first_console_byte", NULL), 1);
		assert_int_equal(count_named("run_init", &detail), 1);
		assert_string_equal(detail, "/init");
	}

	/* Lines longer than the scanner's buffer, output without newlines: nothing, no overrun. */
	struct timeline_scan s = { 0 };
	char *junk = malloc(100000);

	timeline_reset();
	for (size_t i = 0; i < 99999; i++)
		junk[i] = "Run /x"[i % 6];
	junk[99999] = '\0';
	feed(&s, junk, 4096);
	feed(&s, "\n", 1);
	assert_false(timeline_seen(TIMELINE_RUN_INIT));
	feed(&s, "Run /sbin/init as init process\n", 5);
	assert_int_equal(count_named("run_init", &detail), 1);
	assert_string_equal(detail, "/sbin/init");
	free(junk);

	/* A guest's escape sequence in the path is not passed on to the terminal. */
	memset(&s, 0, sizeof(s));
	timeline_reset();
	feed(&s, "Run /\033]0;owned\007init as init process\n", 7);
	assert_int_equal(count_named("run_init", &detail), 1);
	assert_string_equal(detail, "/?]0;owned?init");
}

/* ---- frames ---- */

static size_t put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

/* Ethernet + IPv4 (20 bytes) header for an L4 payload of l4len bytes; returns ETH + IP size. */
static size_t ipv4_frame(uint8_t *f, uint8_t proto, size_t l4len)
{
	static const uint8_t src[4] = { 10, 0, 2, 2 }, dst[4] = { 10, 0, 2, 15 };

	memset(f, 0, 34);
	memset(f, 0xff, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	put16(f + 16, (uint16_t)(20 + l4len));
	f[22] = 64;
	f[23] = proto;
	memcpy(f + 26, src, 4);
	memcpy(f + 30, dst, 4);
	return 34;
}

static size_t dhcp_frame(uint8_t *f, uint8_t type)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	size_t bootp = 240 + 3 + 6 + 1;		/* options: 53/1/type, 54/4/server, end */
	size_t off = ipv4_frame(f, 17, 8 + bootp);
	uint8_t *u = f + off, *b = u + 8;

	memset(u, 0, 8 + bootp);
	put16(u, 67);
	put16(u + 2, 68);
	put16(u + 4, (uint16_t)(8 + bootp));
	b[0] = 2;
	b[16] = 10, b[17] = 0, b[18] = 2, b[19] = 15;
	memcpy(b + 28, mac, 6);
	b[236] = 0x63, b[237] = 0x82, b[238] = 0x53, b[239] = 0x63;
	b[240] = 0;				/* a pad first */
	b[241] = 54, b[242] = 4;		/* server id before the type */
	b[243] = 10, b[244] = 0, b[245] = 2, b[246] = 2;
	b[247] = 53, b[248] = 1, b[249] = type;
	return off + 8 + bootp;
}

static size_t tcp_frame(uint8_t *f, uint8_t flags)
{
	size_t off = ipv4_frame(f, 6, 20);

	memset(f + off, 0, 20);
	put16(f + off, 40000);
	put16(f + off + 2, 22);
	f[off + 12] = 5 << 4;
	f[off + 13] = flags;
	return off + 20;
}

static void test_net_dhcp_and_syn(void **state)
{
	uint8_t f[600];
	const char *detail = NULL;
	size_t len;

	(void)state;
	timeline_reset();
	/* An OFFER, a SYN-ACK (the guest's own connection): neither counts. */
	timeline_net_rx(f, dhcp_frame(f, 2));
	timeline_net_rx(f, tcp_frame(f, 0x12));
	assert_false(timeline_seen(TIMELINE_DHCP_LEASE));
	assert_false(timeline_seen(TIMELINE_FORWARDED_CONNECTION));

	/* Every truncation of an ACK and a SYN is ignored without reading past it. */
	len = dhcp_frame(f, 5);
	for (size_t l = 0; l < len; l++) {
		uint8_t *copy = malloc(l ? l : 1);

		memcpy(copy, f, l);
		timeline_net_rx(copy, l);
		free(copy);
	}
	assert_false(timeline_seen(TIMELINE_DHCP_LEASE));
	/* A fragment is not read either. */
	f[20] = 0x20;
	timeline_net_rx(f, len);
	assert_false(timeline_seen(TIMELINE_DHCP_LEASE));
	/* An option length running past the end. */
	len = dhcp_frame(f, 5);
	f[34 + 8 + 242] = 200;
	timeline_net_rx(f, len);
	assert_false(timeline_seen(TIMELINE_DHCP_LEASE));

	len = dhcp_frame(f, 5);
	timeline_net_rx(f, len);
	timeline_net_rx(f, len);
	assert_int_equal(count_named("dhcp_lease", &detail), 1);
	assert_string_equal(detail, "10.0.2.15 to 52:54:00:12:34:56");

	timeline_net_rx(f, tcp_frame(f, 0x02));
	assert_int_equal(count_named("forwarded_connection", &detail), 1);
	assert_string_equal(detail, "tcp 10.0.2.2:40000 -> 10.0.2.15:22");
	/* Random bytes never count. */
	timeline_reset();
	srand(10);
	for (int i = 0; i < 20000; i++) {
		len = (size_t)(rand() % (int)sizeof(f));
		for (size_t k = 0; k < len; k++)
			f[k] = (uint8_t)rand();
		timeline_net_rx(f, len);
	}
	assert_false(timeline_seen(TIMELINE_DHCP_LEASE));
}

/*
 * The file form: the same JSON, a trailing newline, control and non-ASCII bytes (a guest's
 * init path) as '?'; a full disk is one error line.
 */
static void test_write_json(void **state)
{
	struct helper_log log = { 0 };
	char *dir = helper_tmpdir("timeline"), *path = helper_asprintf("%s/tl.json", dir);
	size_t len;
	int fd;

	(void)state;
	timeline_reset();
	timeline_mark_oncef(TIMELINE_VM_STOP, "quote \" backslash \\ tab \t esc \033[2J \xff");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(timeline_write_json(fd, path), 0);
	close(fd);
	char *text = helper_read_file(path, &len);
	assert_non_null(text);
	assert_true(len > 2 && text[len - 1] == '\n');
	struct json_object *root = json_tokener_parse(text), *a = events_of(root);
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(field(json_object_array_get_idx(a, 1), "detail"),
			    "quote \" backslash \\ tab ? esc ?[2J ?");
	json_object_put(root);
	free(text);

	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		log_set_sink(helper_log_sink, &log);
		assert_int_equal(timeline_write_json(fd, "/dev/full"), -1);
		log_set_sink(NULL, NULL);
		close(fd);
		assert_int_equal(log.errors, 1);
		assert_non_null(strstr(log.last_error, "/dev/full"));
	}
	free(path);
	assert_int_equal(helper_tmpdir_remove(dir), 0);
}

static void test_table(void **state)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	int lines = 0;

	(void)state;
	assert_non_null(f);
	timeline_reset();
	timeline_mark_once(TIMELINE_VM_CREATED);
	for (int i = 0; i < TIMELINE_MAX_MARKERS + 3; i++)
		timeline_guest_marker(7, 1);
	timeline_print_table(f);
	fclose(f);
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	/* The header, two events, the markers, the line counting the rest. */
	assert_int_equal(lines, 1 + 2 + TIMELINE_MAX_MARKERS + 1);
	assert_non_null(strstr(buf, "VM created\n"));
	assert_non_null(strstr(buf, "guest marker               7 (0x7)\n"));
	assert_non_null(strstr(buf, "3 more guest markers not recorded"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_once),
		cmocka_unit_test(test_tokens_once_per_device),
		cmocka_unit_test(test_markers_bounded),
		cmocka_unit_test(test_events_bounded),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_console_run_init),
		cmocka_unit_test(test_net_dhcp_and_syn),
		cmocka_unit_test(test_write_json),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
