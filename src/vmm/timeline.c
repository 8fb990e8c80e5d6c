/* The boot timeline: see timeline.h. */
#include "vmm/timeline.h"

#include <errno.h>
#include <json.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

struct timeline_entry {
	enum timeline_event ev;
	uint64_t t_us;
	bool has_value;
	uint64_t value;
	char detail[TIMELINE_DETAIL_MAX];
};

static struct {
	pthread_mutex_t lock;		/* t0, n, entries, markers */
	struct timespec t0;
	atomic_bool once[TIMELINE_NR_EVENTS];
	atomic_bool markers_full;	/* lock-free refusal once the markers are used up */
	atomic_ulong markers_dropped, events_dropped;
	unsigned int markers;
	unsigned int n;
	struct timeline_entry entries[TIMELINE_MAX_EVENTS];
} tl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const struct {
	const char *name;	/* in the JSON */
	const char *label;	/* in the table */
} events[TIMELINE_NR_EVENTS] = {
	[TIMELINE_PROCESS_START] = { "process_start", "process start" },
	[TIMELINE_VM_CREATED] = { "vm_created", "VM created" },
	[TIMELINE_MEMORY_READY] = { "memory_ready", "memory ready" },
	[TIMELINE_KERNEL_DECOMPRESSED] = { "kernel_decompressed", "kernel decompressed" },
	[TIMELINE_KERNEL_LOADED] = { "kernel_loaded", "kernel loaded" },
	[TIMELINE_FIRST_KVM_RUN] = { "first_kvm_run", "first KVM_RUN" },
	[TIMELINE_FIRST_CONSOLE_BYTE] = { "first_console_byte", "first console byte" },
	[TIMELINE_RUN_INIT] = { "run_init", "Run /init on the console" },
	[TIMELINE_FIRST_PCI_CONFIG] = { "first_pci_config", "first PCI config access" },
	[TIMELINE_QUEUE_NOTIFY] = { "queue_notify", "first queue notification" },
	[TIMELINE_DHCP_LEASE] = { "dhcp_lease", "DHCP lease handed out" },
	[TIMELINE_FORWARDED_CONNECTION] = { "forwarded_connection", "forwarded connection" },
	[TIMELINE_GUEST_MARKER] = { "guest_marker", "guest marker" },
	[TIMELINE_VM_STOP] = { "vm_stop", "VM stopped" },
};

const char *timeline_event_name(enum timeline_event ev)
{
	return (unsigned int)ev < TIMELINE_NR_EVENTS ? events[ev].name : "unknown";
}

/* Append one entry, the clock read under the lock so the entries stay in time order. */
static void timeline_add_locked(enum timeline_event ev, bool has_value, uint64_t value,
				const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void timeline_add_locked(enum timeline_event ev, bool has_value, uint64_t value,
				const char *fmt, va_list ap)
{
	struct timeline_entry *e;
	struct timespec t;

	if (tl.n == TIMELINE_MAX_EVENTS) {
		atomic_fetch_add(&tl.events_dropped, 1);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	e = &tl.entries[tl.n++];
	e->ev = ev;
	e->t_us = (uint64_t)((t.tv_sec - tl.t0.tv_sec) * 1000000LL +
			     (t.tv_nsec - tl.t0.tv_nsec) / 1000);
	e->has_value = has_value;
	e->value = value;
	e->detail[0] = '\0';
	if (fmt)
		vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	/* Details may carry guest bytes (the init path): no terminal escapes, valid UTF-8 JSON. */
	for (char *p = e->detail; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static void timeline_add(enum timeline_event ev, bool has_value, uint64_t value,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void timeline_add(enum timeline_event ev, bool has_value, uint64_t value,
			 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	timeline_add_locked(ev, has_value, value, fmt, ap);
	va_end(ap);
}

/* Record ev once per flag; the flag is tested before the lock, set under it. */
static void timeline_once_v(atomic_bool *flag, enum timeline_event ev, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void timeline_once_v(atomic_bool *flag, enum timeline_event ev, const char *fmt, va_list ap)
{
	if (atomic_load_explicit(flag, memory_order_acquire))
		return;
	pthread_mutex_lock(&tl.lock);
	if (!atomic_exchange_explicit(flag, true, memory_order_acq_rel)) {
		atomic_store_explicit(&tl.once[ev], true, memory_order_release);
		timeline_add_locked(ev, false, 0, fmt, ap);
	}
	pthread_mutex_unlock(&tl.lock);
}

void timeline_mark_once(enum timeline_event ev)
{
	timeline_mark_oncef(ev, NULL);
}

void timeline_mark_oncef(enum timeline_event ev, const char *fmt, ...)
{
	va_list ap;

	if ((unsigned int)ev >= TIMELINE_NR_EVENTS ||
	    atomic_load_explicit(&tl.once[ev], memory_order_acquire))
		return;
	va_start(ap, fmt);
	timeline_once_v(&tl.once[ev], ev, fmt, ap);
	va_end(ap);
}

void timeline_mark_token(struct timeline_once *once, enum timeline_event ev, const char *fmt, ...)
{
	va_list ap;

	if ((unsigned int)ev >= TIMELINE_NR_EVENTS ||
	    atomic_load_explicit(&once->done, memory_order_acquire))
		return;
	va_start(ap, fmt);
	timeline_once_v(&once->done, ev, fmt, ap);
	va_end(ap);
}

bool timeline_seen(enum timeline_event ev)
{
	return (unsigned int)ev < TIMELINE_NR_EVENTS &&
	       atomic_load_explicit(&tl.once[ev], memory_order_acquire);
}

void timeline_guest_marker(uint64_t value, unsigned int size)
{
	/* A guest writing in a loop costs an atomic add per write once the markers are used up. */
	if (atomic_load_explicit(&tl.markers_full, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&tl.markers_dropped, 1, memory_order_relaxed);
		return;
	}
	if (size < 8)
		value &= (1ULL << (8 * size)) - 1;
	pthread_mutex_lock(&tl.lock);
	if (tl.markers == TIMELINE_MAX_MARKERS) {
		atomic_store_explicit(&tl.markers_full, true, memory_order_relaxed);
		atomic_fetch_add_explicit(&tl.markers_dropped, 1, memory_order_relaxed);
	} else {
		tl.markers++;
		atomic_store_explicit(&tl.once[TIMELINE_GUEST_MARKER], true, memory_order_release);
		timeline_add(TIMELINE_GUEST_MARKER, true, value, "%llu (0x%llx)",
			     (unsigned long long)value, (unsigned long long)value);
	}
	pthread_mutex_unlock(&tl.lock);
}

static uint64_t timeline_port_read(void *dev, uint64_t offset, unsigned int size)
{
	return ~0ULL;
}

static void timeline_port_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	if (offset == 0)
		timeline_guest_marker(value, size);
}

const struct bus_ops timeline_port_ops = {
	.read = timeline_port_read,
	.write = timeline_port_write,
};

/* ---- the console: first byte, "Run /init as init process" ---- */

static const char run_prefix[] = "Run ";	/* its 'R' occurs only first */
static const char run_suffix[] = " as init process";

static void timeline_scan_line(struct timeline_scan *s)
{
	size_t n = sizeof(run_suffix) - 1;

	if (s->len > n && s->line[0] == '/' && !memcmp(s->line + s->len - n, run_suffix, n))
		timeline_mark_oncef(TIMELINE_RUN_INIT, "%.*s", (int)(s->len - n), s->line);
}

void timeline_console(struct timeline_scan *s, const uint8_t *buf, size_t len)
{
	if (!len)
		return;
	timeline_mark_once(TIMELINE_FIRST_CONSOLE_BYTE);
	if (atomic_load_explicit(&tl.once[TIMELINE_RUN_INIT], memory_order_relaxed))
		return;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (s->match < sizeof(run_prefix) - 1) {
			if (c == (uint8_t)run_prefix[s->match])
				s->match++;
			else
				s->match = c == (uint8_t)run_prefix[0];
			continue;
		}
		if (c == '\n' || c == '\r' || s->len == sizeof(s->line)) {
			if (c == '\n' || c == '\r')
				timeline_scan_line(s);
			/* A line too long to be the one: look for the prefix again. */
			s->match = c == (uint8_t)run_prefix[0];
			s->len = 0;
			continue;
		}
		s->line[s->len++] = (char)c;
	}
}

/* ---- received frames: the DHCP lease, the first inbound connection ---- */

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define BOOTP_REPLY 2
#define BOOTP_OPTIONS 240		/* after the fixed part and the magic cookie */
#define DHCP_OPT_MSG_TYPE 53
#define DHCP_ACK 5
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void timeline_dhcp(const uint8_t *udp, size_t len)
{
	static const uint8_t cookie[4] = { 0x63, 0x82, 0x53, 0x63 };
	const uint8_t *b = udp + 8;
	size_t n;

	if (len < 8 || be16(udp) != DHCP_SERVER_PORT || be16(udp + 2) != DHCP_CLIENT_PORT)
		return;
	n = be16(udp + 4);
	if (n < 8 || n > len)
		return;
	n -= 8;
	if (n < BOOTP_OPTIONS || b[0] != BOOTP_REPLY || memcmp(b + 236, cookie, 4))
		return;
	for (size_t i = BOOTP_OPTIONS; i < n && b[i] != 255;) {
		if (b[i] == 0) {		/* pad */
			i++;
			continue;
		}
		if (i + 1 >= n || b[i + 1] > n - i - 2)
			return;
		if (b[i] == DHCP_OPT_MSG_TYPE && b[i + 1] == 1) {
			if (b[i + 2] == DHCP_ACK)
				timeline_mark_oncef(TIMELINE_DHCP_LEASE,
						    "%u.%u.%u.%u to %02x:%02x:%02x:%02x:%02x:%02x",
						    b[16], b[17], b[18], b[19],
						    b[28], b[29], b[30], b[31], b[32], b[33]);
			return;
		}
		i += 2 + b[i + 1];
	}
}

static void timeline_tcp(const uint8_t *ip, const uint8_t *tcp, size_t len)
{
	if (len < 20 || (tcp[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	timeline_mark_oncef(TIMELINE_FORWARDED_CONNECTION, "tcp %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u",
			    ip[12], ip[13], ip[14], ip[15], be16(tcp),
			    ip[16], ip[17], ip[18], ip[19], be16(tcp + 2));
}

void timeline_net_rx(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH_HLEN;
	size_t ihl, total;

	if (atomic_load_explicit(&tl.once[TIMELINE_DHCP_LEASE], memory_order_relaxed) &&
	    atomic_load_explicit(&tl.once[TIMELINE_FORWARDED_CONNECTION], memory_order_relaxed))
		return;
	if (len < ETH_HLEN + 20 || be16(f + 12) != ETH_P_IP || ip[0] >> 4 != 4)
		return;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	total = be16(ip + 2);
	/* Fragments (offset or more-fragments set) carry no header we can read whole. */
	if (ihl < 20 || total < ihl || total > len - ETH_HLEN || (be16(ip + 6) & 0x3fff))
		return;
	if (ip[9] == IPPROTO_UDP)
		timeline_dhcp(ip + ihl, total - ihl);
	else if (ip[9] == IPPROTO_TCP)
		timeline_tcp(ip, ip + ihl, total - ihl);
}

/* ---- reports ---- */

/* A copy of the entries, so that reports format them without the lock. */
static unsigned int timeline_snapshot(struct timeline_entry *out)
{
	unsigned int n;

	pthread_mutex_lock(&tl.lock);
	n = tl.n;
	memcpy(out, tl.entries, n * sizeof(*out));
	pthread_mutex_unlock(&tl.lock);
	return n;
}

struct json_object *timeline_json(void)
{
	struct timeline_entry *snap = malloc(sizeof(tl.entries));
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	unsigned int n;

	if (!snap || !root || !arr)
		goto err;
	n = timeline_snapshot(snap);
	json_object_object_add(root, "clock", json_object_new_string(
		"CLOCK_MONOTONIC microseconds since the bootvm process started"));
	for (unsigned int i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		if (!o)
			goto err;
		json_object_array_add(arr, o);
		json_object_object_add(o, "event", json_object_new_string(events[snap[i].ev].name));
		json_object_object_add(o, "t_us", json_object_new_int64((int64_t)snap[i].t_us));
		json_object_object_add(o, "detail", json_object_new_string(snap[i].detail));
		if (snap[i].has_value)
			json_object_object_add(o, "value", json_object_new_uint64(snap[i].value));
	}
	json_object_object_add(root, "events", arr);
	arr = NULL;
	json_object_object_add(root, "guest_markers_dropped",
			       json_object_new_uint64(atomic_load(&tl.markers_dropped)));
	json_object_object_add(root, "events_dropped",
			       json_object_new_uint64(atomic_load(&tl.events_dropped)));
	free(snap);
	return root;

err:
	free(snap);
	json_object_put(arr);
	json_object_put(root);
	return NULL;
}

char *timeline_json_string(void)
{
	struct json_object *o = timeline_json();
	char *s;

	if (!o)
		return NULL;
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

int timeline_write_json(int fd, const char *name)
{
	char *s = timeline_json_string();
	size_t len, off = 0;

	if (!s) {
		log_error("%s: out of memory for the boot timeline", name);
		return -1;
	}
	len = strlen(s);
	s[len++] = '\n';	/* over the NUL: the length is known */
	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("%s: cannot write the boot timeline: %s", name,
				  w < 0 ? strerror(errno) : "nothing written");
			free(s);
			return -1;
		}
		off += (size_t)w;
	}
	free(s);
	return 0;
}

void timeline_print_table(FILE *out)
{
	struct timeline_entry *snap = malloc(sizeof(tl.entries));
	unsigned long dropped = atomic_load(&tl.markers_dropped);
	uint64_t prev = 0;
	unsigned int n;

	if (!snap) {
		log_error("out of memory for the boot timeline");
		return;
	}
	n = timeline_snapshot(snap);
	fprintf(out, "bootvm: boot timeline (ms since bootvm started, +ms since the event before)\n");
	for (unsigned int i = 0; i < n; i++) {
		const struct timeline_entry *e = &snap[i];

		fprintf(out, "%11.3f %+10.3f  %-*s%s\n", (double)e->t_us / 1e3,
			(double)(e->t_us - prev) / 1e3, *e->detail ? 27 : 0, events[e->ev].label,
			e->detail);
		prev = e->t_us;
	}
	if (dropped)
		fprintf(out, "%23s  %lu more guest markers not recorded (at most %d are)\n", "",
			dropped, TIMELINE_MAX_MARKERS);
	if (atomic_load(&tl.events_dropped))
		fprintf(out, "%23s  %lu more events not recorded (at most %d are)\n", "",
			(unsigned long)atomic_load(&tl.events_dropped), TIMELINE_MAX_EVENTS);
	free(snap);
}

void timeline_reset(void)
{
	pthread_mutex_lock(&tl.lock);
	for (unsigned int i = 0; i < TIMELINE_NR_EVENTS; i++)
		atomic_store(&tl.once[i], false);
	atomic_store(&tl.markers_full, false);
	atomic_store(&tl.markers_dropped, 0);
	atomic_store(&tl.events_dropped, 0);
	tl.markers = 0;
	tl.n = 0;
	clock_gettime(CLOCK_MONOTONIC, &tl.t0);
	atomic_store(&tl.once[TIMELINE_PROCESS_START], true);
	timeline_add(TIMELINE_PROCESS_START, false, 0, "pid %ld", (long)getpid());
	tl.entries[0].t_us = 0;		/* it is t0, not the clock read a moment after */
	pthread_mutex_unlock(&tl.lock);
}

/* Before main(): the earliest the process can read the clock itself. */
__attribute__((constructor)) static void timeline_process_start(void)
{
	timeline_reset();
}
