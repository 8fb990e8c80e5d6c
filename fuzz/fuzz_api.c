/*
 * libFuzzer target: the API's request layer as a client reaches it. The
 * input is the byte stream of one connection (its first byte picks how it
 * is split into reads, its top bit skips HTTP: the rest is then
 * "METHOD PATH\nBODY", straight to the JSON layer, METHOD CONFIG being a
 * --config-file); every request
 * libhttp-parser completes goes to
 * fc_api_handle() on a fresh instance whose VMM (struct fc_ops) accepts
 * everything, so the post-boot paths are reached too. /logger and /metrics
 * are left out: they append to whatever existing file the input names.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/fc_api.h"
#include "api/http.h"
#include "fuzz.h"

static int fz_start(void *opaque, struct vm_config *cfg, char *fault, size_t size)
{
	vm_config_free(cfg);
	free(cfg);
	return 0;
}

static int fz_ok(void *opaque, char *fault, size_t size)
{
	return 0;
}

static const struct fc_ops fz_ops = { fz_start, fz_ok, fz_ok, fz_ok, NULL };

/* As fc_api.c splits paths: leading slashes do not count. */
static bool fz_allowed(const char *path)
{
	path += strspn(path, "/");
	return strncmp(path, "logger", 6) && strncmp(path, "metrics", 7);
}

/* "METHOD PATH\nBODY": a few requests in a row, separated by NUL bytes. */
static void fz_direct(struct fc_api *api, const char *data, size_t size)
{
	while (size) {
		const char *end = memchr(data, 0, size);
		size_t len = end ? (size_t)(end - data) : size;
		const char *nl = memchr(data, '\n', len), *sp;
		char method[16], path[256];
		struct fc_response resp;

		sp = nl ? memchr(data, ' ', (size_t)(nl - data)) : NULL;
		if (sp && (size_t)(sp - data) < sizeof(method) && (size_t)(nl - sp - 1) < sizeof(path)) {
			memcpy(method, data, (size_t)(sp - data));
			method[sp - data] = 0;
			memcpy(path, sp + 1, (size_t)(nl - sp - 1));
			path[nl - sp - 1] = 0;
			if (!strcmp(method, "CONFIG")) {
				/* --config-file; its logger and metrics sections would open files. */
				char fault[FC_FAULT_MAX];
				size_t blen = len - (size_t)(nl + 1 - data);

				if (!memmem(nl + 1, blen, "logger", 6) && !memmem(nl + 1, blen, "metrics", 7) &&
				    !memmem(nl + 1, blen, "\\u", 2))	/* no "\u006cogger" */
					fc_api_load_config(api, nl + 1, blen, fault, sizeof(fault));
			} else if (fz_allowed(path)) {
				fc_api_handle(api, method, path, nl + 1, len - (size_t)(nl + 1 - data),
					      &resp);
				fc_response_free(&resp);
			}
		}
		if (!end)
			break;
		size -= len + 1;
		data = end + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fc_api api;
	struct http_conn c;
	size_t step, off = 1;

	if (size < 1)
		return 0;
	fuzz_log_quiet();
	step = data[0] & 0x7f ? data[0] & 0x7f : size;
	fc_api_init(&api, "fuzz", &fz_ops, NULL);
	if (data[0] & 0x80) {
		fz_direct(&api, (const char *)data + 1, size - 1);
		fc_api_fini(&api);
		return 0;
	}
	http_conn_init(&c, 4096);
	while (off < size) {
		size_t take = size - off < step ? size - off : step, used;
		enum http_feed r = http_conn_feed(&c, (const char *)data + off, take, &used);

		off += used;
		if (r == HTTP_FEED_ERROR)
			break;
		if (r == HTTP_FEED_REQUEST) {
			struct fc_response resp;

			if (fz_allowed(c.req.path)) {
				fc_api_handle(&api, c.req.method, c.req.path, c.req.body,
					      c.req.body_len, &resp);
				fc_response_free(&resp);
			}
			http_conn_next(&c);
		}
	}
	http_conn_eof(&c);
	http_conn_fini(&c);
	fc_api_fini(&api);
	return 0;
}
