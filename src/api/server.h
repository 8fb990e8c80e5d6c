/*
 * The API socket: a Unix stream socket served by one thread ("api") with
 * poll(), never touching a vCPU. Each connection has its own HTTP parser
 * (api/http.c) and bounded buffers; requests go to fc_api_handle() one at
 * a time. Hostile clients get a 4xx and lose their connection, nothing
 * else: a request that has not arrived whole within API_REQUEST_TIMEOUT_MS
 * gets 408, a client that does not read its responses is dropped, and
 * beyond API_MAX_CONNS the longest-idle connection makes room (or, when
 * all are mid-request, the newcomer gets 429).
 */
#pragma once

#include <stddef.h>

#define API_MAX_CONNS 16
#define API_REQUEST_TIMEOUT_MS 5000

struct api_server;
struct fc_api;

/*
 * Bind path (which must not exist, as with Firecracker) and start serving
 * api. NULL (logged) on failure.
 */
struct api_server *api_server_start(const char *path, struct fc_api *api, size_t max_body);
/* Stop the thread, close every connection, remove the socket file. */
void api_server_stop(struct api_server *s);
