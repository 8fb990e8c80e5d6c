/*
 * GRUB's grub.cfg, read the way GRUB would run it, for what distributions
 * generate: `set`, `VAR=value`, `$var`/`${var}` expansion with GRUB's
 * quoting, `if [ ... ]` with string tests, `menuentry` and `submenu`,
 * `set root`, `search`, `configfile`/`source`, and in an entry's body its
 * `linux`/`initrd` lines. Bodies run after the whole file, with the
 * variables the file left, as GRUB runs them when the entry is chosen.
 * What cannot be decided (a condition we cannot evaluate, a loop) is skipped
 * when it cannot change the kernel, initrd or root, and makes the entry an
 * error naming it when it could.
 */
#include "tools/diskboot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"

#define GRUB_WORD_MAX (16u << 10)	/* one expanded word, one variable's value */
#define GRUB_EXPAND_BUDGET (64u << 20)	/* bytes expanded in all: `set a=$a$a` loops end */
#define GRUB_MAX_VARS 4096
#define GRUB_MAX_DEPTH 8		/* submenus and configfiles */
#define GRUB_MAX_FILES 16
#define GRUB_MAX_WORDS 4096		/* per command */

struct gword {
	const char *s;
	size_t len;
};

struct gcmd {
	size_t first;		/* into gfile.words */
	size_t n;
	unsigned int line;
};

struct gfile {
	char *text;
	size_t len;
	char *where;
	bool owned;		/* text and where: read through configfile */
	struct gword *words;
	size_t nr_words, cap_words;
	struct gcmd *cmds;
	size_t nr_cmds, cap_cmds;
};

struct gvars {
	char **name, **val;
	unsigned int n, cap;
};

#define GRUB_LEVELS GRUB_MAX_DEPTH

struct grec {
	struct gfile *f;
	size_t body, body_end;	/* commands [body, body_end) */
	unsigned int depth;
	unsigned int index[GRUB_LEVELS];
	char *title[GRUB_LEVELS];
	char *id[GRUB_LEVELS];
	bool is_submenu;
};

struct gstate {
	const struct grub_host *host;
	struct gvars vars;
	struct gfile *files[GRUB_MAX_FILES];
	unsigned int nr_files;
	struct grec *recs;
	unsigned int nr_recs, cap_recs;
	size_t budget;
	bool oom;
	char *fatal;		/* the whole file cannot be used: one error entry */
	/* while registering: the menu path we are in */
	unsigned int depth;
	unsigned int counter[GRUB_LEVELS + 1];
	unsigned int path_index[GRUB_LEVELS];
	char *path_title[GRUB_LEVELS];
	char *path_id[GRUB_LEVELS];
};

/* What running an entry's body found. */
struct gbody {
	struct gvars vars;
	char *kdev, *kpath, *options;
	char *idev[DISKBOOT_MAX_INITRDS], *ipath[DISKBOOT_MAX_INITRDS];
	unsigned int nr_initrds;
	char *error;
	const char *title;
};

/* ---- variables ---- */

static const char *gvar_get(const struct gvars *v, const char *name)
{
	for (unsigned int i = 0; i < v->n; i++)
		if (!strcmp(v->name[i], name))
			return v->val[i];
	return NULL;
}

static int gvar_set(struct gvars *v, const char *name, const char *val)
{
	for (unsigned int i = 0; i < v->n; i++) {
		if (!strcmp(v->name[i], name)) {
			char *c = strdup(val);

			if (!c)
				return -1;
			free(v->val[i]);
			v->val[i] = c;
			return 0;
		}
	}
	if (v->n == GRUB_MAX_VARS)
		return -2;
	if (v->n == v->cap) {
		unsigned int cap = v->cap ? v->cap * 2 : 32;
		char **a = realloc(v->name, cap * sizeof(*a)), **b;

		if (!a)
			return -1;
		v->name = a;
		b = realloc(v->val, cap * sizeof(*b));
		if (!b)
			return -1;
		v->val = b;
		v->cap = cap;
	}
	v->name[v->n] = strdup(name);
	v->val[v->n] = strdup(val);
	if (!v->name[v->n] || !v->val[v->n]) {
		free(v->name[v->n]);
		free(v->val[v->n]);
		return -1;
	}
	v->n++;
	return 0;
}

static void gvar_unset(struct gvars *v, const char *name)
{
	for (unsigned int i = 0; i < v->n; i++) {
		if (!strcmp(v->name[i], name)) {
			free(v->name[i]);
			free(v->val[i]);
			v->name[i] = v->name[v->n - 1];
			v->val[i] = v->val[v->n - 1];
			v->n--;
			return;
		}
	}
}

static void gvars_free(struct gvars *v)
{
	for (unsigned int i = 0; i < v->n; i++) {
		free(v->name[i]);
		free(v->val[i]);
	}
	free(v->name);
	free(v->val);
	memset(v, 0, sizeof(*v));
}

static int gvars_copy(struct gvars *dst, const struct gvars *src)
{
	memset(dst, 0, sizeof(*dst));
	for (unsigned int i = 0; i < src->n; i++)
		if (gvar_set(dst, src->name[i], src->val[i]) < 0)
			return -1;
	return 0;
}

/* ---- lexing ---- */

static int gfile_word(struct gfile *f, const char *s, size_t len)
{
	if (f->nr_words == f->cap_words) {
		size_t cap = f->cap_words ? f->cap_words * 2 : 256;
		struct gword *w = realloc(f->words, cap * sizeof(*w));

		if (!w)
			return -1;
		f->words = w;
		f->cap_words = cap;
	}
	f->words[f->nr_words++] = (struct gword){ s, len };
	return 0;
}

/* Close the command of the words from first on (nothing when there are none). */
static int gfile_cmd(struct gfile *f, size_t first, unsigned int line)
{
	if (f->nr_words == first)
		return 0;
	if (f->nr_cmds == f->cap_cmds) {
		size_t cap = f->cap_cmds ? f->cap_cmds * 2 : 128;
		struct gcmd *c = realloc(f->cmds, cap * sizeof(*c));

		if (!c)
			return -1;
		f->cmds = c;
		f->cap_cmds = cap;
	}
	f->cmds[f->nr_cmds++] = (struct gcmd){ first, f->nr_words - first, line };
	return 0;
}

static bool gword_is(const struct gword *w, const char *s)
{
	return w->len == strlen(s) && !memcmp(w->s, s, w->len);
}

/*
 * Split text into commands of raw words (quotes kept, expanded when run).
 * -1 out of memory, -2 malformed (*why, allocated).
 */
static int gfile_lex(struct gfile *f, char **why)
{
	const char *t = f->text;
	size_t pos = 0, len = f->len, first = 0;
	unsigned int line = 1, cmd_line = 1;

	while (pos < len) {
		char c = t[pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			pos++;
			continue;
		}
		if (c == '\\' && pos + 1 < len && t[pos + 1] == '\n') {
			pos += 2;
			line++;
			continue;
		}
		if (c == '\n' || c == ';') {
			if (gfile_cmd(f, first, cmd_line) < 0)
				return -1;
			first = f->nr_words;
			if (c == '\n')
				line++;
			pos++;
			continue;
		}
		if (c == '#') {
			while (pos < len && t[pos] != '\n')
				pos++;
			continue;
		}
		if (f->nr_words == first)
			cmd_line = line;
		size_t start = pos;
		unsigned int start_line = line;
		while (pos < len) {
			c = t[pos];
			if (c == '\'') {
				const char *e = memchr(t + pos + 1, '\'', len - pos - 1);

				if (!e) {
					*why = str_printf("line %u: a ' quote that does not end", start_line);
					return -2;
				}
				for (const char *p = t + pos; p < e; p++)
					line += *p == '\n';
				pos = (size_t)(e - t) + 1;
			} else if (c == '"') {
				pos++;
				while (pos < len && t[pos] != '"') {
					if (t[pos] == '\\' && pos + 1 < len)
						pos++;
					line += t[pos] == '\n';
					pos++;
				}
				if (pos >= len) {
					*why = str_printf("line %u: a \" quote that does not end", start_line);
					return -2;
				}
				pos++;
			} else if (c == '\\') {
				pos += pos + 1 < len ? 2 : 1;
			} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' ||
				   c == '\f' || c == '\v') {
				break;
			} else {
				pos++;
			}
		}
		struct gword w = { t + start, pos - start };
		bool alone = f->nr_words == first;

		if (f->nr_words - first >= GRUB_MAX_WORDS) {
			*why = str_printf("line %u: a command of more than %u words", cmd_line,
					 GRUB_MAX_WORDS);
			return -2;
		}
		if (gword_is(&w, "{")) {
			if (gfile_word(f, w.s, w.len) < 0 || gfile_cmd(f, first, cmd_line) < 0)
				return -1;
			first = f->nr_words;
		} else if (gword_is(&w, "}") ||
			   (alone && (gword_is(&w, "then") || gword_is(&w, "else") ||
				      gword_is(&w, "do") || gword_is(&w, "fi") ||
				      gword_is(&w, "done")))) {
			if (gfile_cmd(f, first, cmd_line) < 0)
				return -1;
			first = f->nr_words;
			if (gfile_word(f, w.s, w.len) < 0 || gfile_cmd(f, first, line) < 0)
				return -1;
			first = f->nr_words;
		} else if (gfile_word(f, w.s, w.len) < 0) {
			return -1;
		}
	}
	return gfile_cmd(f, first, cmd_line);
}

/* ---- expansion ---- */

struct gbuf {
	char *s;
	size_t n, cap;
	bool too_long;
};

static int gbuf_add(struct gbuf *b, const char *s, size_t n)
{
	if (b->n + n > GRUB_WORD_MAX) {
		b->too_long = true;
		return -1;
	}
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p)
			return -1;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
	return 0;
}

static bool gname_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* $name or ${name} at s[*i] (s[*i] == '$'): appends its value. */
static int gexpand_var(struct gstate *st, const struct gvars *v, const char *s, size_t n,
		       size_t *i, struct gbuf *b)
{
	char name[129];
	size_t j = *i + 1, k = 0;

	if (j < n && s[j] == '{') {
		j++;
		while (j < n && s[j] != '}') {
			if (k < sizeof(name) - 1)
				name[k++] = s[j];
			j++;
		}
		if (j < n)
			j++;
	} else {
		while (j < n && gname_char(s[j])) {
			if (k < sizeof(name) - 1)
				name[k++] = s[j];
			j++;
		}
		if (!k && j < n && (s[j] == '?' || s[j] == '#' || s[j] == '@' || s[j] == '*'))
			j++;
	}
	if (j == *i + 1) {
		*i = j;
		return gbuf_add(b, "$", 1);
	}
	name[k] = 0;
	*i = j;
	const char *val = gvar_get(v, name);
	if (!val)
		return 0;
	size_t l = strlen(val);
	if (l > st->budget) {
		b->too_long = true;
		return -1;
	}
	st->budget -= l;
	return gbuf_add(b, val, l);
}

/*
 * Expand one raw word as GRUB does: '...' literal, "..." with $ and \
 * escapes, \x outside quotes. NULL on failure (b.too_long or out of memory).
 */
static char *gexpand(struct gstate *st, const struct gvars *v, const struct gword *w,
		     bool *quoted, bool *too_long)
{
	struct gbuf b = { 0 };
	const char *s = w->s;
	size_t n = w->len, i = 0;
	int r = gbuf_add(&b, "", 0);

	*quoted = false;
	while (!r && i < n) {
		char c = s[i];

		if (c == '\'') {
			size_t e = i + 1;

			while (e < n && s[e] != '\'')
				e++;
			r = gbuf_add(&b, s + i + 1, e - i - 1);
			i = e + 1;
			*quoted = true;
		} else if (c == '"') {
			*quoted = true;
			i++;
			while (!r && i < n && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < n &&
				    (s[i + 1] == '$' || s[i + 1] == '"' || s[i + 1] == '\\')) {
					r = gbuf_add(&b, s + i + 1, 1);
					i += 2;
				} else if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
					i += 2;
				} else if (s[i] == '$') {
					r = gexpand_var(st, v, s, n, &i, &b);
				} else {
					r = gbuf_add(&b, s + i, 1);
					i++;
				}
			}
			i++;
		} else if (c == '\\') {
			if (i + 1 < n)
				r = gbuf_add(&b, s + i + 1, 1);
			i += 2;
		} else if (c == '$') {
			r = gexpand_var(st, v, s, n, &i, &b);
		} else {
			r = gbuf_add(&b, s + i, 1);
			i++;
		}
	}
	if (r) {
		*too_long = b.too_long;
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* The expanded words of a command (an unquoted word that expands to nothing vanishes). */
struct gargs {
	char **w;
	size_t n;
};

static void gargs_free(struct gargs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->w[i]);
	free(a->w);
	a->w = NULL;
	a->n = 0;
}

/* -1 out of memory, -2 too long (*why). */
static int gargs_expand(struct gstate *st, const struct gvars *v, const struct gfile *f,
			const struct gcmd *c, size_t from, struct gargs *a, char **why)
{
	a->n = 0;
	a->w = calloc(c->n + 1, sizeof(*a->w));
	if (!a->w)
		return -1;
	for (size_t i = from; i < c->n; i++) {
		bool quoted, too_long = false;
		char *e = gexpand(st, v, &f->words[c->first + i], &quoted, &too_long);

		if (!e) {
			gargs_free(a);
			if (!too_long)
				return -1;
			*why = str_printf("%s line %u: a word or variable longer than %u bytes "
					 "(or too much expansion in all)", f->where, c->line,
					 GRUB_WORD_MAX);
			return -2;
		}
		if (!*e && !quoted) {
			free(e);
			continue;
		}
		a->w[a->n++] = e;
	}
	return 0;
}

/* ---- structure ---- */

static bool gcmd_is(const struct gfile *f, size_t ci, const char *kw)
{
	const struct gcmd *c = &f->cmds[ci];

	return c->n && gword_is(&f->words[c->first], kw);
}

static bool gcmd_opens_brace(const struct gfile *f, size_t ci)
{
	const struct gcmd *c = &f->cmds[ci];

	return c->n && gword_is(&f->words[c->first + c->n - 1], "{");
}

static bool gcmd_opens_loop(const struct gfile *f, size_t ci)
{
	return gcmd_is(f, ci, "for") || gcmd_is(f, ci, "while") || gcmd_is(f, ci, "until");
}

/* Whether a command can change what an entry boots. */
static bool gcmd_matters(const struct gfile *f, size_t ci)
{
	static const char *const kw[] = {
		"linux", "linuxefi", "linux16", "initrd", "initrdefi", "initrd16", "search",
		"search.fs_uuid", "search.fs_label", "search.file", "configfile", "source",
	};
	const struct gcmd *c = &f->cmds[ci];

	if (!c->n)
		return false;
	const struct gword *w = &f->words[c->first];
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (gword_is(w, kw[i]))
			return true;
	if (w->len >= 5 && !memcmp(w->s, "root=", 5))
		return true;
	if (gword_is(w, "set") && c->n > 1) {
		const struct gword *a = &f->words[c->first + 1];
		const char *s = a->s;
		size_t n = a->len;

		if (n && (*s == '\'' || *s == '"'))
			s++, n--;
		if (n >= 5 && !memcmp(s, "root=", 5))
			return true;
	}
	return false;
}

/*
 * From command ci (inside a block), the index of the command that closes it
 * at depth 0 with one of the words in stop (NULL-terminated), nested
 * if/fi, loops/done and {/} skipped; f->nr_cmds when none. *matters: whether
 * anything passed over could change the boot.
 */
static size_t gskip(const struct gfile *f, size_t ci, const char *const *stop, bool *matters)
{
	unsigned int depth = 0;

	for (; ci < f->nr_cmds; ci++) {
		if (!depth)
			for (const char *const *s = stop; *s; s++)
				if (gcmd_is(f, ci, *s))
					return ci;
		if (gcmd_is(f, ci, "if") || gcmd_opens_loop(f, ci) || gcmd_opens_brace(f, ci))
			depth++;
		else if ((gcmd_is(f, ci, "fi") || gcmd_is(f, ci, "done") || gcmd_is(f, ci, "}")) &&
			 depth)
			depth--;
		else if (matters && gcmd_matters(f, ci))
			*matters = true;
	}
	return f->nr_cmds;
}

/* [ ... ] / test ...: 1 true, 0 false, -1 cannot tell. */
static int gtest(char **w, size_t n)
{
	bool neg = false;
	int r;

	if (n && !strcmp(w[0], "!")) {
		neg = true;
		w++;
		n--;
	}
	if (n == 0)
		r = 0;
	else if (n == 1)
		r = w[0][0] != 0;
	else if (n == 2 && !strcmp(w[0], "-n"))
		r = w[1][0] != 0;
	else if (n == 2 && !strcmp(w[0], "-z"))
		r = w[1][0] == 0;
	else if (n == 3 && (!strcmp(w[1], "=") || !strcmp(w[1], "==")))
		r = !strcmp(w[0], w[2]);
	else if (n == 3 && !strcmp(w[1], "!="))
		r = !!strcmp(w[0], w[2]);
	else
		return -1;
	return neg ? !r : r;
}

static int geval_cond(struct gargs *a)
{
	if (!a->n)
		return -1;
	if (!strcmp(a->w[0], "true"))
		return 1;
	if (!strcmp(a->w[0], "false"))
		return 0;
	if (!strcmp(a->w[0], "[")) {
		if (a->n < 2 || strcmp(a->w[a->n - 1], "]"))
			return -1;
		return gtest(a->w + 1, a->n - 2);
	}
	if (!strcmp(a->w[0], "test"))
		return gtest(a->w + 1, a->n - 1);
	return -1;
}

/* ---- running ---- */

enum gmode { G_TOP, G_BODY };

struct grun {
	struct gstate *st;
	struct gvars *vars;
	enum gmode mode;
	struct gbody *body;	/* G_BODY */
	unsigned int file_depth;
};

static int grun_block(struct grun *r, struct gfile *f, size_t *ci, const char *const *stop);

/* Record an entry's error (the first one wins). */
static int gbody_error(struct gbody *b, char *msg)
{
	if (!msg)
		return -1;
	if (b->error)
		free(msg);
	else
		b->error = msg;
	return 0;
}

/* An error that makes the whole grub.cfg unusable. */
static int gfatal(struct gstate *st, char *msg)
{
	if (!msg)
		return -1;
	if (st->fatal)
		free(msg);
	else
		st->fatal = msg;
	return 0;
}

/* Split "(dev)/path" or "/path" with $root: into *dev and *path (allocated). */
static int gsplit_path(const struct gvars *v, const char *s, char **dev, char **path)
{
	const char *root = gvar_get(v, "root");

	const char *d = root ? root : "", *e;

	*dev = NULL;
	if (s[0] == '(' && (e = strchr(s, ')'))) {
		*dev = strndup(s, (size_t)(e - s));
		while (*e == ')')
			e++;
		s = e;
	} else {
		*dev = strdup(d);
	}
	*path = diskboot_path_norm(s);
	if (!*dev || !*path) {
		free(*dev);
		free(*path);
		return -1;
	}
	/* set root=(hd0,1) and set root=hd0,1 name the same device */
	char *o = *dev;
	for (char *c = *dev; *c; c++)
		if (*c != '(' && *c != ')')
			*o++ = *c;
	*o = 0;
	return 0;
}

static int gset_assign(struct grun *r, const char *kv, const struct gfile *f, const struct gcmd *c)
{
	const char *eq = strchr(kv, '=');
	char name[129];
	int ret;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(name))
		return 0;
	memcpy(name, kv, (size_t)(eq - kv));
	name[eq - kv] = 0;
	ret = gvar_set(r->vars, name, eq + 1);
	if (ret == -2)
		return gfatal(r->st, str_printf("%s line %u: more than %u variables", f->where,
					      c->line, GRUB_MAX_VARS));
	return ret;
}

/* search [--no-floppy] --fs-uuid|--label|--file [--set[=VAR]] [--hint...] KEY */
static int grun_search(struct grun *r, struct gargs *a, const char *kind_default)
{
	const char *kind = kind_default, *var = NULL, *key = NULL;
	char dev[64];

	for (size_t i = 1; i < a->n; i++) {
		const char *w = a->w[i];

		if (!strcmp(w, "--fs-uuid") || !strcmp(w, "-u"))
			kind = "fs-uuid";
		else if (!strcmp(w, "--label") || !strcmp(w, "-l"))
			kind = "label";
		else if (!strcmp(w, "--file") || !strcmp(w, "-f"))
			kind = "file";
		else if (!strncmp(w, "--set=", 6))
			var = w + 6;
		else if (!strcmp(w, "--set") || !strcmp(w, "-s"))
			var = "root";
		else if (w[0] == '-')
			continue;	/* --no-floppy, --hint*=... */
		else if (!key)
			key = w;
		else if (kind_default && !var)
			var = w;	/* search.fs_uuid UUID VAR */
	}
	if (!key || !kind)
		return 0;
	if (!var)
		var = kind_default ? "root" : NULL;
	if (!var)
		return 0;	/* search without --set only prints */
	if (!r->st->host->search ||
	    r->st->host->search(r->st->host->arg, kind, key, dev, sizeof(dev)) < 0) {
		log_debug("grub.cfg: search --%s %s: not on this disk", kind, key);
		return 0;
	}
	return gvar_set(r->vars, var, dev) == -1 ? -1 : 0;
}

static int grun_include(struct grun *r, const char *arg, const struct gfile *f,
			const struct gcmd *c);

/* menuentry/submenu TITLE [--class C] [--id ID] ... {  */
static int grun_menu(struct grun *r, struct gfile *f, size_t *ci, bool submenu)
{
	struct gstate *st = r->st;
	const struct gcmd *c = &f->cmds[*ci];
	struct gargs a;
	char *why = NULL, *title = NULL, *id = NULL;
	bool matters = false;
	int ret;

	if (!gcmd_opens_brace(f, *ci))
		return gfatal(st, str_printf("%s line %u: %s without a { on its line", f->where,
					    c->line, submenu ? "submenu" : "menuentry"));
	size_t end = gskip(f, *ci + 1, (const char *const[]){ "}", NULL }, &matters);
	if (end == f->nr_cmds)
		return gfatal(st, str_printf("%s line %u: %s without its closing }", f->where,
					    c->line, submenu ? "submenu" : "menuentry"));
	ret = gargs_expand(st, r->vars, f, c, 1, &a, &why);
	if (ret == -2)
		return gfatal(st, why);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i + 1 < a.n; i++) {	/* the last word is "{" */
		const char *w = a.w[i];

		if (!strcmp(w, "--class") || !strcmp(w, "--users") || !strcmp(w, "--hotkey") ||
		    !strcmp(w, "--source")) {
			i++;
		} else if (!strcmp(w, "--id")) {
			if (i + 2 < a.n)
				id = a.w[++i];
		} else if (!strncmp(w, "--id=", 5)) {
			id = (char *)w + 5;
		} else if (!strncmp(w, "--", 2)) {
			continue;
		} else if (!title) {
			title = a.w[i];
		}
	}
	if (st->depth >= GRUB_LEVELS) {
		gargs_free(&a);
		return gfatal(st, str_printf("%s line %u: submenus nested more than %u deep",
					    f->where, c->line, GRUB_LEVELS));
	}
	unsigned int idx = st->counter[st->depth]++;
	ret = 0;
	if (submenu) {
		unsigned int d = st->depth;

		st->path_index[d] = idx;
		st->path_title[d] = strdup(title ? title : "");
		st->path_id[d] = id ? strdup(id) : NULL;
		if (!st->path_title[d] || (id && !st->path_id[d]))
			ret = -1;
		st->depth++;
		st->counter[st->depth] = 0;
		size_t bi = *ci + 1;
		if (!ret)
			ret = grun_block(r, f, &bi, (const char *const[]){ "}", NULL });
		st->depth--;
		free(st->path_title[d]);
		free(st->path_id[d]);
		st->path_title[d] = st->path_id[d] = NULL;
	} else if (st->nr_recs >= DISKBOOT_MAX_ENTRIES) {
		ret = gfatal(st, str_printf("%s: more than %u menu entries", f->where,
					   DISKBOOT_MAX_ENTRIES));
	} else {
		if (st->nr_recs == st->cap_recs) {
			unsigned int cap = st->cap_recs ? st->cap_recs * 2 : 16;
			struct grec *p = realloc(st->recs, cap * sizeof(*p));

			if (!p) {
				gargs_free(&a);
				return -1;
			}
			st->recs = p;
			st->cap_recs = cap;
		}
		struct grec *rec = &st->recs[st->nr_recs++];

		memset(rec, 0, sizeof(*rec));
		rec->f = f;
		rec->body = *ci + 1;
		rec->body_end = end;
		rec->depth = st->depth + 1;
		for (unsigned int d = 0; d < st->depth; d++) {
			rec->index[d] = st->path_index[d];
			rec->title[d] = strdup(st->path_title[d]);
			rec->id[d] = st->path_id[d] ? strdup(st->path_id[d]) : NULL;
			if (!rec->title[d] || (st->path_id[d] && !rec->id[d]))
				ret = -1;
		}
		rec->index[st->depth] = idx;
		rec->title[st->depth] = strdup(title ? title : "");
		rec->id[st->depth] = id ? strdup(id) : NULL;
		if (!rec->title[st->depth] || (id && !rec->id[st->depth]))
			ret = -1;
	}
	gargs_free(&a);
	*ci = end + 1;
	return ret;
}

/* if COND; then ... [elif COND; then ...] [else ...] fi */
static int grun_if(struct grun *r, struct gfile *f, size_t *ci)
{
	static const char *const branch_end[] = { "elif", "else", "fi", NULL };
	const struct gcmd *c0 = &f->cmds[*ci];
	bool taken = false, unknown = false, matters = false;
	char *cond_text = NULL;

	for (;;) {
		const struct gcmd *c = &f->cmds[*ci];
		bool is_else = gcmd_is(f, *ci, "else");
		int cond = 1;

		if (!is_else) {
			struct gargs a;
			char *why = NULL;
			int ret = gargs_expand(r->st, r->vars, f, c, 1, &a, &why);

			if (ret == -2)
				return gfatal(r->st, why);
			if (ret < 0)
				return -1;
			cond = taken || unknown ? 0 : geval_cond(&a);
			if (cond < 0 && !cond_text) {
				size_t n = 0;
				for (size_t i = 0; i < a.n; i++)
					n += strlen(a.w[i]) + 1;
				cond_text = calloc(1, n + 1);
				for (size_t i = 0; cond_text && i < a.n; i++) {
					if (i)
						strcat(cond_text, " ");
					strcat(cond_text, a.w[i]);
				}
			}
			gargs_free(&a);
			(*ci)++;
			if (*ci >= f->nr_cmds || !gcmd_is(f, *ci, "then")) {
				free(cond_text);
				return gfatal(r->st, str_printf("%s line %u: if without then",
							       f->where, c->line));
			}
		}
		(*ci)++;
		if (cond < 0)
			unknown = true;
		if (cond == 1 && !taken && !unknown) {
			taken = true;
			if (grun_block(r, f, ci, branch_end) < 0) {
				free(cond_text);
				return -1;
			}
		} else {
			*ci = gskip(f, *ci, branch_end, unknown ? &matters : NULL);
		}
		if (*ci >= f->nr_cmds) {
			free(cond_text);
			return gfatal(r->st, str_printf("%s line %u: if without fi", f->where,
						       c0->line));
		}
		if (gcmd_is(f, *ci, "fi"))
			break;
		if (is_else) {
			free(cond_text);
			return gfatal(r->st, str_printf("%s line %u: else followed by more branches",
						       f->where, f->cmds[*ci].line));
		}
	}
	(*ci)++;
	if (unknown) {
		if (matters && r->mode == G_BODY) {
			int ret = gbody_error(r->body, str_printf(
				"%s line %u: menuentry '%s': cannot evaluate the condition `if %s`, "
				"and its branches set the kernel, initrd or root",
				f->where, c0->line, r->body->title, cond_text ? cond_text : "?"));
			free(cond_text);
			return ret;
		}
		log_debug("%s line %u: skipped `if %s` (cannot evaluate it)", f->where, c0->line,
			  cond_text ? cond_text : "?");
	}
	free(cond_text);
	return 0;
}

static int grun_body_cmd(struct grun *r, struct gargs *a, const struct gfile *f,
			 const struct gcmd *c)
{
	struct gbody *b = r->body;
	const char *cmd = a->w[0];

	if (!strcmp(cmd, "linux") || !strcmp(cmd, "linuxefi") || !strcmp(cmd, "linux16")) {
		size_t i = 1, n = 0;

		while (i < a->n && !strncmp(a->w[i], "--", 2) && strcmp(a->w[i], "--"))
			i++;	/* --no-mem-option */
		if (i >= a->n)
			return gbody_error(b, str_printf("%s line %u: %s without a kernel", f->where,
						       c->line, cmd));
		free(b->kdev);
		free(b->kpath);
		free(b->options);
		b->kdev = b->kpath = b->options = NULL;
		if (gsplit_path(r->vars, a->w[i], &b->kdev, &b->kpath) < 0)
			return -1;
		for (size_t j = i + 1; j < a->n; j++)
			n += strlen(a->w[j]) + 3;
		b->options = calloc(1, n + 1);
		if (!b->options)
			return -1;
		/* As GRUB's loader: an argument with a blank goes in double quotes. */
		for (size_t j = i + 1; j < a->n; j++) {
			bool q = strpbrk(a->w[j], " \t") != NULL;

			if (j > i + 1)
				strcat(b->options, " ");
			if (q)
				strcat(b->options, "\"");
			strcat(b->options, a->w[j]);
			if (q)
				strcat(b->options, "\"");
		}
		return 0;
	}
	if (!strcmp(cmd, "initrd") || !strcmp(cmd, "initrdefi") || !strcmp(cmd, "initrd16")) {
		for (unsigned int k = 0; k < b->nr_initrds; k++) {
			free(b->idev[k]);
			free(b->ipath[k]);
		}
		b->nr_initrds = 0;
		for (size_t i = 1; i < a->n; i++) {
			if (!strncmp(a->w[i], "--", 2))
				continue;
			if (b->nr_initrds == DISKBOOT_MAX_INITRDS)
				return gbody_error(b, str_printf("%s line %u: more than %u initrds",
							       f->where, c->line,
							       DISKBOOT_MAX_INITRDS));
			if (gsplit_path(r->vars, a->w[i], &b->idev[b->nr_initrds],
					&b->ipath[b->nr_initrds]) < 0)
				return -1;
			b->nr_initrds++;
		}
		return 0;
	}
	static const char *const foreign[] = {
		"chainloader", "multiboot", "multiboot2", "kfreebsd", "knetbsd", "kopenbsd",
		"appleloader", "ntldr", "xnu_kernel", "xnu_kernel64", "legacy_kernel",
	};
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		if (!strcmp(cmd, foreign[i]))
			return gbody_error(b, str_printf("%s line %u: menuentry '%s' uses %s: "
						       "not a Linux entry", f->where, c->line,
						       b->title, cmd));
	if (!strcmp(cmd, "configfile") || !strcmp(cmd, "source"))
		return gbody_error(b, str_printf("%s line %u: menuentry '%s': %s inside an entry "
					       "is not supported", f->where, c->line, b->title,
					       cmd));
	return 0;
}

/* Run commands from *ci until one in stop (left at *ci) or the end. */
static int grun_block(struct grun *r, struct gfile *f, size_t *ci, const char *const *stop)
{
	while (*ci < f->nr_cmds) {
		const struct gcmd *c = &f->cmds[*ci];
		struct gargs a;
		char *why = NULL;
		int ret = 0;

		if (r->st->fatal)
			return 0;
		for (const char *const *s = stop; s && *s; s++)
			if (gcmd_is(f, *ci, *s))
				return 0;
		if (gcmd_is(f, *ci, "if")) {
			if (grun_if(r, f, ci) < 0)
				return -1;
			continue;
		}
		if (gcmd_is(f, *ci, "menuentry") || gcmd_is(f, *ci, "submenu")) {
			if (r->mode == G_BODY) {
				return gbody_error(r->body, str_printf(
					"%s line %u: a menu entry inside menuentry '%s' is not supported",
					f->where, c->line, r->body->title));
			}
			if (grun_menu(r, f, ci, gcmd_is(f, *ci, "submenu")) < 0)
				return -1;
			continue;
		}
		if (gcmd_opens_loop(f, *ci) || gcmd_opens_brace(f, *ci)) {
			bool matters = false;
			const char *const *end = gcmd_opens_loop(f, *ci)
				? (const char *const[]){ "done", NULL }
				: (const char *const[]){ "}", NULL };
			size_t e = gskip(f, *ci + 1, end, &matters);

			if (e == f->nr_cmds)
				return gfatal(r->st, str_printf("%s line %u: a block that does not end",
							       f->where, c->line));
			if (matters && r->mode == G_BODY)
				return gbody_error(r->body, str_printf(
					"%s line %u: menuentry '%s': a loop or function that sets the "
					"kernel, initrd or root is not supported", f->where, c->line,
					r->body->title));
			*ci = e + 1;
			continue;
		}
		if (gcmd_is(f, *ci, "fi") || gcmd_is(f, *ci, "done") || gcmd_is(f, *ci, "}") ||
		    gcmd_is(f, *ci, "then") || gcmd_is(f, *ci, "else") || gcmd_is(f, *ci, "elif") ||
		    gcmd_is(f, *ci, "do"))
			return gfatal(r->st, str_printf("%s line %u: a stray %.*s", f->where, c->line,
						       (int)f->words[c->first].len,
						       f->words[c->first].s));
		ret = gargs_expand(r->st, r->vars, f, c, 0, &a, &why);
		if (ret == -2)
			return gfatal(r->st, why);
		if (ret < 0)
			return -1;
		(*ci)++;
		if (!a.n) {
			gargs_free(&a);
			continue;
		}
		const char *cmd = a.w[0];
		if (!strcmp(cmd, "set")) {
			for (size_t i = 1; !ret && i < a.n; i++)
				ret = gset_assign(r, a.w[i], f, c);
		} else if (strchr(cmd, '=') && cmd[0] != '=' && a.n == 1) {
			ret = gset_assign(r, cmd, f, c);
		} else if (!strcmp(cmd, "unset")) {
			for (size_t i = 1; i < a.n; i++)
				gvar_unset(r->vars, a.w[i]);
		} else if (!strcmp(cmd, "search")) {
			ret = grun_search(r, &a, NULL);
		} else if (!strcmp(cmd, "search.fs_uuid")) {
			ret = grun_search(r, &a, "fs-uuid");
		} else if (!strcmp(cmd, "search.fs_label")) {
			ret = grun_search(r, &a, "label");
		} else if (!strcmp(cmd, "search.file")) {
			ret = grun_search(r, &a, "file");
		} else if (r->mode == G_BODY) {
			ret = grun_body_cmd(r, &a, f, c);
		} else if ((!strcmp(cmd, "configfile") || !strcmp(cmd, "source")) && a.n >= 2) {
			ret = grun_include(r, a.w[1], f, c);
		}
		gargs_free(&a);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* Lex text into a new file of st; text and where become st's when owned. NULL: *why, or st->oom. */
static struct gfile *gfile_add(struct gstate *st, char *text, size_t len, bool owned,
			       char *where, char **why)
{
	struct gfile *f;
	int ret;

	if (st->nr_files == GRUB_MAX_FILES) {
		*why = str_printf("%s: more than %u configuration files", where, GRUB_MAX_FILES);
		goto err_free;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		st->oom = true;
		goto err_free;
	}
	f->text = text;
	f->len = len;
	f->where = where;
	f->owned = owned;
	st->files[st->nr_files++] = f;
	ret = gfile_lex(f, why);
	if (ret == -1)
		st->oom = true;
	if (ret == -2) {
		char *w = str_printf("%s %s", where, *why);

		free(*why);
		*why = w;
	}
	return ret < 0 ? NULL : f;

err_free:
	if (owned) {
		free(text);
		free(where);
	}
	return NULL;
}

static int grun_include(struct grun *r, const char *arg, const struct gfile *f,
			const struct gcmd *c)
{
	struct gstate *st = r->st;
	char *dev, *path, *text = NULL, *why = NULL, *where;
	struct gfile *nf;
	size_t len, ci = 0;
	int ret = 0;

	if (r->file_depth >= 4)
		return gfatal(st, str_printf("%s line %u: configfile nested more than 4 deep",
					    f->where, c->line));
	if (!st->host->read)
		return 0;
	if (gsplit_path(r->vars, arg, &dev, &path) < 0)
		return -1;
	if (st->host->read(st->host->arg, dev, path, &text, &len) < 0) {
		log_debug("%s line %u: configfile %s: cannot read it", f->where, c->line, arg);
		goto out;
	}
	where = str_printf("(%s)%s", dev, path);
	if (!where) {
		free(text);
		ret = -1;
		goto out;
	}
	if (len > DISKBOOT_GRUB_CFG_MAX || memchr(text, 0, len)) {
		ret = gfatal(st, str_printf("%s: larger than %u KiB or not text", where,
					   DISKBOOT_GRUB_CFG_MAX >> 10));
		free(text);
		free(where);
		goto out;
	}
	nf = gfile_add(st, text, len, true, where, &why);
	if (!nf) {
		ret = st->oom ? -1 : gfatal(st, why);
		goto out;
	}
	r->file_depth++;
	ret = grun_block(r, nf, &ci, NULL);
	r->file_depth--;
out:
	free(dev);
	free(path);
	return ret;
}

static void gstate_free(struct gstate *st)
{
	for (unsigned int i = 0; i < st->nr_files; i++) {
		struct gfile *f = st->files[i];

		if (f->owned) {
			free(f->text);
			free(f->where);
		}
		free(f->words);
		free(f->cmds);
		free(f);
	}
	for (unsigned int i = 0; i < st->nr_recs; i++) {
		for (unsigned int d = 0; d < st->recs[i].depth; d++) {
			free(st->recs[i].title[d]);
			free(st->recs[i].id[d]);
		}
	}
	free(st->recs);
	gvars_free(&st->vars);
	free(st->fatal);
}

static void gbody_free(struct gbody *b)
{
	gvars_free(&b->vars);
	free(b->kdev);
	free(b->kpath);
	free(b->options);
	for (unsigned int i = 0; i < b->nr_initrds; i++) {
		free(b->idev[i]);
		free(b->ipath[i]);
	}
	free(b->error);
}

/* a joined with sep from level 0 to depth; NULL parts as "". */
static char *gjoin(char *const *parts, unsigned int depth, const char *sep, bool need_all)
{
	size_t n = 1;

	for (unsigned int d = 0; d < depth; d++) {
		if (!parts[d] && need_all)
			return NULL;
		n += (parts[d] ? strlen(parts[d]) : 0) + strlen(sep);
	}
	char *s = calloc(1, n);
	if (!s)
		return NULL;
	for (unsigned int d = 0; d < depth; d++) {
		if (d)
			strcat(s, sep);
		if (parts[d])
			strcat(s, parts[d]);
	}
	return s;
}

static bool gdefault_matches(const struct grec *rec, const char *spec)
{
	char buf[1024];
	unsigned int d = 0;

	if (strlen(spec) >= sizeof(buf))
		return false;
	strcpy(buf, spec);
	for (char *save = NULL, *p = strtok_r(buf, ">", &save); p; p = strtok_r(NULL, ">", &save)) {
		char *end;
		unsigned long n;

		if (d >= rec->depth)
			return false;
		n = strtoul(p, &end, 10);
		if (!(*p >= '0' && *p <= '9' && !*end && n == rec->index[d]) &&
		    strcmp(p, rec->title[d]) && !(rec->id[d] && !strcmp(p, rec->id[d])))
			return false;
		d++;
	}
	return d > 0;
}

static int grub_error_entry(struct diskboot_entry **entries, unsigned int *nr, int *def,
			    const struct grub_host *host, char *msg)
{
	struct diskboot_entry *p = realloc(*entries, (*nr + 1) * sizeof(*p));

	if (!p || !msg) {
		if (p)
			*entries = p;
		free(msg);
		log_error("out of memory reading grub.cfg");
		return -1;
	}
	*entries = p;
	p += *nr;
	memset(p, 0, sizeof(*p));
	p->source = DISKBOOT_GRUB;
	p->title = strdup("(grub.cfg)");
	p->where = strdup(host->where ? host->where : "grub.cfg");
	p->options = strdup("");
	p->kernel.part = -1;
	p->error = msg;
	if (!p->title || !p->where || !p->options) {
		diskboot_entry_clear(p);
		log_error("out of memory reading grub.cfg");
		return -1;
	}
	*def = 0;
	(*nr)++;
	return 0;
}

int grub_parse(const char *text, size_t len, const struct grub_host *host,
	       struct diskboot_entry **entries, unsigned int *nr, int *def)
{
	struct gstate st = { .host = host, .budget = GRUB_EXPAND_BUDGET };
	const char *where = host->where ? host->where : "grub.cfg";
	struct grun r = { .st = &st, .vars = &st.vars, .mode = G_TOP };
	struct gfile *f;
	char *why = NULL;
	unsigned int first = *nr;
	int ret = -1;

	*def = -1;
	if (len > DISKBOOT_GRUB_CFG_MAX)
		return grub_error_entry(entries, nr, def, host,
					str_printf("%s: %zu bytes, larger than the %u KiB a grub.cfg "
						  "may be here", where, len,
						  DISKBOOT_GRUB_CFG_MAX >> 10));
	if (memchr(text, 0, len))
		return grub_error_entry(entries, nr, def, host,
					str_printf("%s: a NUL byte: not a text file", where));
	/* What GRUB itself sets before it reads grub.cfg. */
	static const char *const preset[][2] = {
		{ "grub_platform", "pc" }, { "grub_cpu", "i386" },
		{ "feature_menuentry_id", "y" }, { "feature_platform_search_hint", "y" },
		{ "feature_default_font_path", "y" }, { "feature_all_video_module", "y" },
		{ "feature_timeout_style", "y" }, { "feature_chainloader_bpb", "y" },
		{ "feature_ntldr", "y" }, { "feature_nativedisk_cmd", "y" },
	};
	for (size_t i = 0; i < sizeof(preset) / sizeof(preset[0]); i++)
		if (gvar_set(&st.vars, preset[i][0], preset[i][1]) < 0)
			goto err_oom;
	if (gvar_set(&st.vars, "root", host->root ? host->root : "hd0") < 0)
		goto err_oom;
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "(%s)%s", host->root ? host->root : "hd0",
		 host->prefix ? host->prefix : "/boot/grub");
	if (gvar_set(&st.vars, "prefix", prefix) < 0 || gvar_set(&st.vars, "cmdpath", prefix) < 0)
		goto err_oom;

	f = gfile_add(&st, (char *)text, len, false, (char *)where, &why);
	if (!f) {
		if (st.oom)
			goto err_oom;
		gstate_free(&st);
		return grub_error_entry(entries, nr, def, host, why);
	}
	size_t ci = 0;
	if (grun_block(&r, f, &ci, NULL) < 0)
		goto err_oom;
	if (st.fatal) {
		char *m = st.fatal;

		st.fatal = NULL;
		gstate_free(&st);
		return grub_error_entry(entries, nr, def, host, m);
	}
	if (st.nr_recs && *nr + st.nr_recs > DISKBOOT_MAX_ENTRIES) {
		gstate_free(&st);
		return grub_error_entry(entries, nr, def, host,
					str_printf("%s: too many menu entries", where));
	}
	struct diskboot_entry *p = realloc(*entries, (*nr + st.nr_recs + 1) * sizeof(*p));
	if (!p)
		goto err_oom;
	*entries = p;

	const char *dspec = gvar_get(&st.vars, "default");
	int d = -1;
	for (unsigned int i = 0; i < st.nr_recs; i++) {
		struct grec *rec = &st.recs[i];
		struct gbody b = { .title = rec->title[rec->depth - 1] };
		struct grun br = { .st = &st, .vars = &b.vars, .mode = G_BODY, .body = &b };
		struct diskboot_entry *e = &(*entries)[*nr];
		size_t bi = rec->body;

		if (gvars_copy(&b.vars, &st.vars) < 0) {
			gbody_free(&b);
			goto err_oom;
		}
		/* The body is run in a file of its own range: stop at its closing }. */
		if (grun_block(&br, rec->f, &bi, (const char *const[]){ "}", NULL }) < 0) {
			gbody_free(&b);
			goto err_oom;
		}
		if (st.fatal && !b.error) {
			b.error = st.fatal;
			st.fatal = NULL;
		}
		memset(e, 0, sizeof(*e));
		e->source = DISKBOOT_GRUB;
		e->title = gjoin(rec->title, rec->depth, ">", false);
		e->id = gjoin(rec->id, rec->depth, ">", true);
		e->where = strdup(where);
		e->kernel.part = -1;
		e->kernel.dev = b.kdev;
		e->kernel.path = b.kpath;
		e->options = b.options ? b.options : strdup("");
		b.kdev = b.kpath = b.options = NULL;
		for (unsigned int k = 0; k < b.nr_initrds; k++) {
			e->initrds[k].part = -1;
			e->initrds[k].dev = b.idev[k];
			e->initrds[k].path = b.ipath[k];
		}
		e->nr_initrds = b.nr_initrds;
		b.nr_initrds = 0;
		e->error = b.error;
		b.error = NULL;
		if (!e->error && !e->kernel.path)
			e->error = str_printf("%s: menuentry '%s' has no linux line", where, e->title);
		(*nr)++;
		gbody_free(&b);
		if (!e->title || !e->where || !e->options || (!e->kernel.path && !e->error))
			goto err_oom;
		if (d < 0 && dspec && gdefault_matches(rec, dspec))
			d = (int)i;
	}
	if (st.nr_recs)
		*def = (int)first + (d < 0 ? 0 : d);
	ret = 0;
	gstate_free(&st);
	return ret;

err_oom:
	log_error("out of memory reading %s", where);
	gstate_free(&st);
	return -1;
}

int grub_dev_partnum(const char *dev)
{
	char buf[64];
	size_t n = strlen(dev);
	const char *p;
	char *end;
	unsigned long v;

	if (n >= sizeof(buf))
		return -1;
	if (dev[0] == '(' && n >= 2 && dev[n - 1] == ')') {
		memcpy(buf, dev + 1, n - 2);
		buf[n - 2] = 0;
	} else {
		strcpy(buf, dev);
	}
	if (strncmp(buf, "hd0", 3))
		return -1;
	p = buf + 3;
	if (!*p)
		return 0;
	if (*p != ',')
		return -1;
	p++;
	if (!strncmp(p, "msdos", 5))
		p += 5;
	else if (!strncmp(p, "gpt", 3))
		p += 3;
	if (*p < '1' || *p > '9')
		return -1;
	v = strtoul(p, &end, 10);
	if (*end || v > DISKIMG_MAX_PARTS)
		return -1;
	return (int)v;
}
