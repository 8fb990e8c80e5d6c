/*
 * One HTTP/1.1 connection of the API socket, parsed with libhttp-parser:
 * bytes go in as they arrive, complete requests come out one at a time
 * (pipelined ones wait), with limits on the URL, the headers and the body,
 * so a hostile client costs a bounded amount of memory. No I/O here: the
 * server (api/server.c) reads and writes; the fuzzer and the unit tests
 * feed bytes directly.
 */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_URL 1024
#define HTTP_MAX_HEADER_BYTES 8192
/* Firecracker's default --http-api-max-payload-size. */
#define HTTP_DEFAULT_MAX_BODY 51200

struct http_request {
	const char *method;		/* "GET", "PUT", ... */
	char path[HTTP_MAX_URL + 1];	/* the URL's path, without query */
	char *body;			/* NUL-terminated; NULL when there is none */
	size_t body_len;
	bool keep_alive;
};

enum http_feed {
	HTTP_FEED_MORE,			/* all consumed, the request is not complete yet */
	HTTP_FEED_REQUEST,		/* conn->req is complete: answer, then http_conn_next() */
	HTTP_FEED_ERROR,		/* answer conn->err_status / err_msg and close */
};

struct http_conn {
	http_parser parser;
	size_t max_body;
	struct http_request req;
	size_t url_len, header_bytes, body_cap;
	char hname[32], hval[32];	/* the header being read (only short ones matter) */
	size_t hname_len, hval_len;
	bool in_value;
	bool started;			/* bytes of a request have arrived */
	bool headers_done, expect_continue, continue_sent;
	bool complete;
	int err_status;
	char err_msg[160];
};

void http_conn_init(struct http_conn *c, size_t max_body);
void http_conn_fini(struct http_conn *c);
/*
 * Parse up to len bytes; *used says how many were taken (the rest belongs
 * to the next request: feed it again after http_conn_next()).
 */
enum http_feed http_conn_feed(struct http_conn *c, const char *data, size_t len, size_t *used);
/* The client closed its side: HTTP_FEED_ERROR if a request was half sent. */
enum http_feed http_conn_eof(struct http_conn *c);
/* Forget the answered request; ready for the next one on the same connection. */
void http_conn_next(struct http_conn *c);
/* True once, when the client asked for "100 Continue" and the body is acceptable. */
bool http_conn_wants_continue(struct http_conn *c);
/* A request has started but not completed (for the server's slow-client deadline). */
bool http_conn_busy(const struct http_conn *c);

const char *http_status_text(int status);
/*
 * A whole response in a malloc'ed buffer (*len bytes): status line, Server,
 * Connection, and Content-Type/Length when body is not NULL. NULL when out
 * of memory.
 */
char *http_format_response(int status, const char *body, bool keep_alive, size_t *len);
