#include "api/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/str.h"

static struct http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int http_fail(struct http_conn *c, int status, const char *msg)
{
	if (!c->err_status) {
		c->err_status = status;
		snprintf(c->err_msg, sizeof(c->err_msg), "%s", msg);
	}
	return -1;
}

static int on_message_begin(http_parser *p)
{
	conn_of(p)->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);

	if (len > HTTP_MAX_URL - c->url_len)
		return http_fail(c, 414, "The request URL is too long.");
	memcpy(c->req.path + c->url_len, at, len);
	c->url_len += len;
	c->req.path[c->url_len] = 0;
	return 0;
}

/* The header just read in full: only Expect matters to us. */
static void header_done(struct http_conn *c)
{
	if (c->hname_len && !strcasecmp(c->hname, "expect") && !strcasecmp(c->hval, "100-continue"))
		c->expect_continue = true;
	c->hname_len = c->hval_len = 0;
	c->hname[0] = c->hval[0] = 0;
}

static void header_append(char *buf, size_t size, size_t *len, const char *at, size_t n)
{
	size_t room = size - 1 - *len;

	if (n > room)
		n = room;
	memcpy(buf + *len, at, n);
	*len += n;
	buf[*len] = 0;
}

static int header_count(struct http_conn *c, size_t len)
{
	if (len > HTTP_MAX_HEADER_BYTES - c->header_bytes)
		return http_fail(c, 431, "The request headers are too large.");
	c->header_bytes += len;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);

	if (header_count(c, len) < 0)
		return -1;
	if (c->in_value)
		header_done(c);
	c->in_value = false;
	header_append(c->hname, sizeof(c->hname), &c->hname_len, at, len);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);

	if (header_count(c, len) < 0)
		return -1;
	c->in_value = true;
	header_append(c->hval, sizeof(c->hval), &c->hval_len, at, len);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	char msg[128];

	if (c->in_value)
		header_done(c);
	c->in_value = false;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->max_body) {
		snprintf(msg, sizeof(msg), "Request payload with size %llu is larger than the limit "
			 "of %zu allowed by server.", (unsigned long long)p->content_length,
			 c->max_body);
		return http_fail(c, 413, msg);
	}
	c->headers_done = true;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	char msg[128];

	if (len > c->max_body - c->req.body_len) {
		snprintf(msg, sizeof(msg), "Request payload is larger than the limit of %zu "
			 "allowed by server.", c->max_body);
		return http_fail(c, 413, msg);
	}
	if (c->req.body_len + len + 1 > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 1024;
		char *b;

		while (cap < c->req.body_len + len + 1)
			cap *= 2;
		b = realloc(c->req.body, cap);
		if (!b)
			return http_fail(c, 500, "Out of memory.");
		c->req.body = b;
		c->body_cap = cap;
	}
	memcpy(c->req.body + c->req.body_len, at, len);
	c->req.body_len += len;
	c->req.body[c->req.body_len] = 0;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	struct http_parser_url u;

	c->req.method = http_method_str((enum http_method)p->method);
	c->req.keep_alive = http_should_keep_alive(p);
	/* Requests name a path ("/drives/rootfs"); curl sends exactly that. */
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->req.path, c->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)))
		return http_fail(c, 400, "The request URL is not a valid path.");
	memmove(c->req.path, c->req.path + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
	c->req.path[u.field_data[UF_PATH].len] = 0;
	c->complete = true;
	http_parser_pause(p, 1);	/* one request at a time: the rest waits */
	return 0;
}

static const http_parser_settings http_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void http_conn_reset(struct http_conn *c)
{
	free(c->req.body);
	memset(&c->req, 0, sizeof(c->req));
	c->url_len = c->header_bytes = c->body_cap = 0;
	c->hname_len = c->hval_len = 0;
	c->hname[0] = c->hval[0] = 0;
	c->in_value = c->started = c->headers_done = false;
	c->expect_continue = c->continue_sent = c->complete = false;
}

void http_conn_init(struct http_conn *c, size_t max_body)
{
	memset(c, 0, sizeof(*c));
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->max_body = max_body;
}

void http_conn_fini(struct http_conn *c)
{
	free(c->req.body);
	c->req.body = NULL;
}

enum http_feed http_conn_feed(struct http_conn *c, const char *data, size_t len, size_t *used)
{
	*used = 0;
	if (c->err_status)
		return HTTP_FEED_ERROR;
	if (c->complete)
		return HTTP_FEED_REQUEST;
	if (!len)
		return HTTP_FEED_MORE;
	*used = http_parser_execute(&c->parser, &http_settings, data, len);
	if (c->complete)
		return HTTP_FEED_REQUEST;
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	if (c->err_status)
		return HTTP_FEED_ERROR;
	if (e != HPE_OK) {
		char msg[128];

		snprintf(msg, sizeof(msg), "Invalid HTTP request: %s.", http_errno_description(e));
		http_fail(c, 400, msg);
		return HTTP_FEED_ERROR;
	}
	return HTTP_FEED_MORE;
}

enum http_feed http_conn_eof(struct http_conn *c)
{
	if (c->err_status)
		return HTTP_FEED_ERROR;
	if (c->started && !c->complete) {
		http_fail(c, 400, "The client closed the connection in the middle of a request.");
		return HTTP_FEED_ERROR;
	}
	return HTTP_FEED_MORE;
}

void http_conn_next(struct http_conn *c)
{
	http_conn_reset(c);
	http_parser_pause(&c->parser, 0);
}

bool http_conn_wants_continue(struct http_conn *c)
{
	if (!c->headers_done || !c->expect_continue || c->continue_sent || c->err_status)
		return false;
	c->continue_sent = true;
	return true;
}

bool http_conn_busy(const struct http_conn *c)
{
	return c->started && !c->complete;
}

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	default: return "Unknown";
	}
}

char *http_format_response(int status, const char *body, bool keep_alive, size_t *len)
{
	char *r;

	if (body)
		r = str_printf("HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: %s\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       status, http_status_text(status), keep_alive ? "keep-alive" : "close",
			       strlen(body), body);
	else
		r = str_printf("HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: %s\r\n\r\n",
			       status, http_status_text(status), keep_alive ? "keep-alive" : "close");
	if (r)
		*len = strlen(r);
	return r;
}
