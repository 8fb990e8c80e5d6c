/*
 * Which kernel a disk boots, found as its own boot loader would (see
 * diskboot.h): the sources in order BLS, UKI, grub.cfg, Debian; each on
 * every partition with a file system; the default is the first source's.
 */
#include "tools/diskboot.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/str.h"

#define BLS_ENTRY_MAX (64u << 10)
#define UKI_MAX ((size_t)DISKBOOT_KERNEL_MAX + DISKBOOT_INITRD_MAX)

const char *diskboot_source_name(enum diskboot_source s)
{
	switch (s) {
	case DISKBOOT_BLS: return "bls";
	case DISKBOOT_UKI: return "uki";
	case DISKBOOT_GRUB: return "grub";
	case DISKBOOT_DEBIAN: return "debian";
	}
	return "?";
}

/* ---- versions and paths ---- */

static bool ver_char(char c)
{
	return isalnum((unsigned char)c) || c == '~' || c == '-' || c == '^' || c == '.';
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

int diskboot_vercmp(const char *a, const char *b)
{
	if (!a || !*a || !b || !*b)
		return CMP(strcmp(a ? a : "", b ? b : ""), 0);
	for (;;) {
		const char *aa, *bb;
		int r;

		while (*a && !ver_char(*a))
			a++;
		while (*b && !ver_char(*b))
			b++;
		if (*a == '~' || *b == '~') {
			r = CMP(*a != '~', *b != '~');
			if (r)
				return r;
			a++, b++;
		}
		if (!*a || !*b)
			return CMP(strcmp(a, b), 0);
		for (const char *sep = "-^."; *sep; sep++) {
			if (*a == *sep || *b == *sep) {
				r = CMP(*a != *sep, *b != *sep);
				if (r)
					return r;
				a++, b++;
			}
		}
		if (isdigit((unsigned char)*a) || isdigit((unsigned char)*b)) {
			for (aa = a; isdigit((unsigned char)*aa); aa++)
				;
			for (bb = b; isdigit((unsigned char)*bb); bb++)
				;
			r = CMP(a != aa, b != bb);
			if (r)
				return r;
			while (*a == '0')
				a++;
			while (*b == '0')
				b++;
			r = CMP(aa - a, bb - b);
			if (r)
				return r;
			r = CMP(strncmp(a, b, (size_t)(aa - a)), 0);
			if (r)
				return r;
		} else {
			for (aa = a; isalpha((unsigned char)*aa); aa++)
				;
			for (bb = b; isalpha((unsigned char)*bb); bb++)
				;
			size_t n = (size_t)(aa - a < bb - b ? aa - a : bb - b);
			r = CMP(strncmp(a, b, n), 0);
			if (r)
				return r;
			r = CMP(aa - a, bb - b);
			if (r)
				return r;
		}
		a = aa;
		b = bb;
	}
}

char *diskboot_path_norm(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(n + 2);
	size_t o = 0;

	if (!out)
		return NULL;
	for (const char *p = path; *p;) {
		const char *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		size_t l = (size_t)(e - p);
		if (l == 1 && p[0] == '.') {
			/* nothing */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;	/* the slash: ".." at "/" stays at "/" */
		} else {
			out[o++] = '/';
			memcpy(out + o, p, l);
			o += l;
		}
		p = e;
	}
	if (!o)
		out[o++] = '/';
	out[o] = 0;
	return out;
}

void diskboot_entry_clear(struct diskboot_entry *e)
{
	free(e->title);
	free(e->id);
	free(e->version);
	free(e->sort_key);
	free(e->machine_id);
	free(e->where);
	free(e->kernel.dev);
	free(e->kernel.path);
	for (unsigned int i = 0; i < e->nr_initrds; i++) {
		free(e->initrds[i].dev);
		free(e->initrds[i].path);
	}
	free(e->options);
	free(e->error);
	memset(e, 0, sizeof(*e));
}

/* ---- Boot Loader Specification ---- */

static int str_append(char **dst, const char *sep, const char *s)
{
	char *n = *dst && **dst ? str_printf("%s%s%s", *dst, sep, s) : strdup(s);

	if (!n)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

static int str_set(char **dst, const char *s)
{
	char *n = strdup(s);

	if (!n)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

int bls_parse(const char *text, size_t len, const char *id, int part, struct diskboot_entry *e)
{
	char *buf = malloc(len + 1), *save = NULL;
	int ret = -1;

	memset(e, 0, sizeof(*e));
	e->source = DISKBOOT_BLS;
	e->kernel.part = part;
	if (!buf)
		goto err_oom;
	memcpy(buf, text, len);
	buf[len] = 0;
	if (!(e->id = strdup(id)) || !(e->options = strdup("")))
		goto err_oom;
	if (memchr(text, 0, len) && !e->error)
		e->error = str_printf("%s: a NUL byte: not a text file", id);
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *k = line, *v;

		while (*k == ' ' || *k == '\t')
			k++;
		if (!*k || *k == '#')
			continue;
		v = k;
		while (*v && *v != ' ' && *v != '\t')
			v++;
		if (*v)
			*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		for (size_t l = strlen(v); l && isspace((unsigned char)v[l - 1]); l--)
			v[l - 1] = 0;
		int r = 0;
		if (!strcmp(k, "title"))
			r = str_set(&e->title, v);
		else if (!strcmp(k, "version"))
			r = str_set(&e->version, v);
		else if (!strcmp(k, "sort-key"))
			r = str_set(&e->sort_key, v);
		else if (!strcmp(k, "machine-id"))
			r = str_set(&e->machine_id, v);
		else if (!strcmp(k, "options"))
			r = str_append(&e->options, " ", v);
		else if (!strcmp(k, "linux")) {
			free(e->kernel.path);
			e->kernel.path = diskboot_path_norm(v);
			r = e->kernel.path ? 0 : -1;
		} else if (!strcmp(k, "initrd")) {
			if (e->nr_initrds == DISKBOOT_MAX_INITRDS) {
				if (!e->error)
					e->error = str_printf("%s: more than %u initrd lines", id,
							     DISKBOOT_MAX_INITRDS);
				continue;
			}
			struct diskboot_file *f = &e->initrds[e->nr_initrds];
			f->part = part;
			f->path = diskboot_path_norm(v);
			if (!f->path)
				goto err_oom;
			e->nr_initrds++;
		} else if (!strcmp(k, "efi")) {
			if (!e->error)
				e->error = str_printf("%s: an efi entry (%s), not a Linux kernel", id, v);
		} else if (!strcmp(k, "architecture")) {
			if (strcasecmp(v, "x64") && !e->error)
				e->error = str_printf("%s: for architecture %s, not x64", id, v);
		}
		if (r < 0)
			goto err_oom;
	}
	if (!e->title && !(e->title = strdup(id)))
		goto err_oom;
	if (!e->kernel.path && !e->error)
		e->error = str_printf("%s: no linux line", id);
	ret = 0;
	goto out;

err_oom:
	log_error("out of memory reading boot entry %s", id);
	diskboot_entry_clear(e);
out:
	free(buf);
	return ret;
}

/* systemd-boot's order: sort-key entries first (by sort-key, machine-id, newest version), then by id, newest first. */
static int bls_compare(const void *pa, const void *pb)
{
	const struct diskboot_entry *a = pa, *b = pb;
	int r = CMP(!a->sort_key, !b->sort_key);

	if (r)
		return r;
	if (a->sort_key && b->sort_key) {
		r = strcmp(a->sort_key, b->sort_key);
		if (r)
			return r;
		r = strcmp(a->machine_id ? a->machine_id : "", b->machine_id ? b->machine_id : "");
		if (r)
			return r;
		r = -diskboot_vercmp(a->version, b->version);
		if (r)
			return r;
	}
	return -diskboot_vercmp(a->id, b->id);
}

int bls_sort(struct diskboot_entry *e, unsigned int n, const char *pattern)
{
	if (!n)
		return -1;
	qsort(e, n, sizeof(*e), bls_compare);
	if (pattern && *pattern && *pattern != '@') {
		for (unsigned int i = 0; i < n; i++) {
			const char *id = e[i].id;
			char noext[256];

			if (!fnmatch(pattern, id, 0))
				return (int)i;
			/* "default fedora-6.1" names the entry without its .conf too */
			size_t l = strlen(id);
			if (l > 5 && l < sizeof(noext) && !strcmp(id + l - 5, ".conf")) {
				memcpy(noext, id, l - 5);
				noext[l - 5] = 0;
				if (!fnmatch(pattern, noext, 0))
					return (int)i;
			}
		}
	}
	return 0;
}

/* ---- Unified Kernel Images ---- */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int uki_parse(const uint8_t *buf, size_t len, struct uki_sections *s, const char **why)
{
	struct { uint64_t start, end; char name[9]; } sec[96];
	unsigned int nsec = 0;
	uint32_t pe;
	uint16_t nr, opt;
	uint64_t table;

	memset(s, 0, sizeof(*s));
	if (len < 0x40 || buf[0] != 'M' || buf[1] != 'Z') {
		*why = "no MZ header: not a PE file";
		return -1;
	}
	pe = le32(buf + 0x3c);
	if ((uint64_t)pe + 24 > len || memcmp(buf + pe, "PE\0\0", 4)) {
		*why = "no PE header";
		return -1;
	}
	if (le16(buf + pe + 4) != 0x8664) {
		*why = "not an x86-64 PE image";
		return -1;
	}
	nr = le16(buf + pe + 6);
	opt = le16(buf + pe + 20);
	table = (uint64_t)pe + 24 + opt;
	if (nr > 96) {
		*why = "more than 96 sections";
		return -1;
	}
	if (table + (uint64_t)nr * 40 > len) {
		*why = "the section table extends past the end of the file";
		return -1;
	}
	for (unsigned int i = 0; i < nr; i++) {
		const uint8_t *h = buf + table + i * 40;
		uint32_t vsize = le32(h + 8), raw = le32(h + 16), ptr = le32(h + 20);
		char name[9];

		memcpy(name, h, 8);
		name[8] = 0;
		if (!raw)
			continue;
		if ((uint64_t)ptr + raw > len) {
			*why = "a section extends past the end of the file";
			return -1;
		}
		for (unsigned int j = 0; j < nsec; j++) {
			if (ptr < sec[j].end && sec[j].start < (uint64_t)ptr + raw) {
				*why = "two sections overlap in the file";
				return -1;
			}
		}
		sec[nsec].start = ptr;
		sec[nsec].end = (uint64_t)ptr + raw;
		strcpy(sec[nsec].name, name);
		nsec++;
		size_t size = vsize && vsize < raw ? vsize : raw;
		const uint8_t *data = buf + ptr;
		const uint8_t **dp = NULL;
		size_t *sp = NULL;

		if (!strcmp(name, ".linux"))
			dp = &s->linux_data, sp = &s->linux_size;
		else if (!strcmp(name, ".initrd"))
			dp = &s->initrd_data, sp = &s->initrd_size;
		else if (!strcmp(name, ".cmdline"))
			dp = (const uint8_t **)&s->cmdline, sp = &s->cmdline_size;
		else if (!strcmp(name, ".osrel"))
			dp = (const uint8_t **)&s->osrel, sp = &s->osrel_size;
		if (!dp)
			continue;
		if (*dp) {
			*why = "a section is given twice";
			return -1;
		}
		*dp = data;
		*sp = size;
	}
	if (!s->linux_data) {
		*why = "no .linux section";
		return -1;
	}
	return 0;
}

/* KEY= from os-release text: malloc'ed, unquoted, or NULL. */
static char *osrel_get(const char *text, size_t len, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < len;) {
		const char *line = text + i, *nl = memchr(line, '\n', len - i);
		size_t l = nl ? (size_t)(nl - line) : len - i;

		if (l > kl && !memcmp(line, key, kl) && line[kl] == '=') {
			const char *v = line + kl + 1;
			size_t vl = l - kl - 1;

			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0])
				v++, vl -= 2;
			return strndup(v, vl);
		}
		i += l + 1;
	}
	return NULL;
}

/* ---- scanning the disk ---- */

struct scan {
	struct diskimg *d;
	struct diskboot *db;
	struct fs *fs[DISKIMG_MAX_PARTS];
	struct diskboot_entry *e;	/* growing list */
	unsigned int n;
};

static const char *part_name(const struct diskimg *d, int part, char *buf, size_t len)
{
	if (part < 0 || (unsigned int)part >= d->nr_parts)
		snprintf(buf, len, "no partition");
	else if (d->table == DISKIMG_NONE)
		snprintf(buf, len, "the disk");
	else
		snprintf(buf, len, "partition %u", d->parts[part].index);
	return buf;
}

static int scan_push(struct scan *sc, struct diskboot_entry *e)
{
	if (sc->n >= DISKBOOT_MAX_ENTRIES) {
		log_warn("more than %u boot entries: the rest are ignored", DISKBOOT_MAX_ENTRIES);
		diskboot_entry_clear(e);
		return 0;
	}
	struct diskboot_entry *p = realloc(sc->e, (sc->n + 1) * sizeof(*p));

	if (!p) {
		diskboot_entry_clear(e);
		log_error("out of memory listing boot entries");
		return -1;
	}
	sc->e = p;
	sc->e[sc->n++] = *e;
	return 0;
}

struct names {
	char **v;
	unsigned int n;
	const char *prefix, *suffix;
	bool dirs;
	bool oom;
};

static int names_add(void *arg, const char *name, bool is_dir)
{
	struct names *nm = arg;
	size_t l = strlen(name), pl = nm->prefix ? strlen(nm->prefix) : 0,
	       sl = nm->suffix ? strlen(nm->suffix) : 0;

	if (is_dir != nm->dirs || l < pl + sl || (pl && strncmp(name, nm->prefix, pl)) ||
	    (sl && strcasecmp(name + l - sl, nm->suffix)))
		return 0;
	if (nm->n >= DISKBOOT_MAX_ENTRIES)
		return 1;
	char **p = realloc(nm->v, (nm->n + 1) * sizeof(*p));
	if (!p || !(p[nm->n] = strdup(name))) {
		if (p)
			nm->v = p;
		nm->oom = true;
		return 1;
	}
	nm->v = p;
	nm->n++;
	return 0;
}

static void names_free(struct names *nm)
{
	for (unsigned int i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

static int names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir matching prefix*suffix, sorted. -1 when out of memory (logged). */
static int list_names(struct fs *fs, const char *dir, const char *prefix, const char *suffix,
		      bool dirs, struct names *nm)
{
	memset(nm, 0, sizeof(*nm));
	nm->prefix = prefix;
	nm->suffix = suffix;
	nm->dirs = dirs;
	if (!fs_is_dir(fs, dir))
		return 0;
	if (fs_list_dir(fs, dir, names_add, nm) == -1)
		log_warn("cannot list %s: its boot entries are ignored", dir);
	if (nm->oom) {
		names_free(nm);
		log_error("out of memory listing %s", dir);
		return -1;
	}
	if (nm->n > 1)
		qsort(nm->v, nm->n, sizeof(*nm->v), names_cmp);
	return 0;
}

static char *path_join(const char *a, const char *b)
{
	return str_printf("%s%s%s", a, a[strlen(a) - 1] == '/' || b[0] == '/' ? "" : "/", b);
}

/* A BLS path relative to the partition of an entry found under base ("/boot"): base/path when it exists there. */
static int bls_rebase(struct fs *fs, const char *base, char **path)
{
	if (!*base || !*path)
		return 0;
	char *p = path_join(base, *path);
	if (!p)
		return -1;
	if (fs_is_file(fs, p)) {
		free(*path);
		*path = p;
	} else {
		free(p);
	}
	return 0;
}

static int scan_bls(struct scan *sc, char **pattern)
{
	static const char *const bases[] = { "", "/boot" };
	unsigned int first = sc->n;

	for (unsigned int p = 0; p < sc->d->nr_parts; p++) {
		struct fs *fs = sc->fs[p];

		if (!fs)
			continue;
		for (size_t b = 0; b < 2; b++) {
			char dir[64], conf[64];
			struct names nm;

			snprintf(dir, sizeof(dir), "%s/loader/entries", bases[b]);
			snprintf(conf, sizeof(conf), "%s/loader/loader.conf", bases[b]);
			if (!*pattern) {
				void *buf;
				size_t len;

				if (fs_read_file(fs, conf, BLS_ENTRY_MAX, &buf, &len) == 0) {
					struct diskboot_entry tmp;

					/* loader.conf has the same "key value" lines */
					char *t = realloc(buf, len + 1);
					if (t) {
						t[len] = 0;
						for (char *save = NULL, *l = strtok_r(t, "\n", &save); l;
						     l = strtok_r(NULL, "\n", &save)) {
							while (*l == ' ' || *l == '\t')
								l++;
							if (!strncmp(l, "default", 7) &&
							    (l[7] == ' ' || l[7] == '\t')) {
								char *v = l + 8;
								while (*v == ' ' || *v == '\t')
									v++;
								for (size_t n = strlen(v);
								     n && isspace((unsigned char)v[n - 1]); n--)
									v[n - 1] = 0;
								*pattern = strdup(v);
							}
						}
						free(t);
					} else {
						free(buf);
					}
					(void)tmp;
				}
			}
			if (list_names(fs, dir, NULL, ".conf", false, &nm) < 0)
				return -1;
			for (unsigned int i = 0; i < nm.n; i++) {
				char *path = path_join(dir, nm.v[i]);
				struct diskboot_entry e;
				char pn[32];
				void *buf;
				size_t len;
				int r;

				if (!path) {
					names_free(&nm);
					return -1;
				}
				r = fs_read_file(fs, path, BLS_ENTRY_MAX, &buf, &len);
				if (r < 0) {
					free(path);
					continue;
				}
				r = bls_parse(buf, len, nm.v[i], (int)p, &e);
				free(buf);
				if (!r) {
					e.where = str_printf("%s:%s", part_name(sc->d, (int)p, pn,
									 sizeof(pn)), path);
					r = e.where ? 0 : -1;
				}
				free(path);
				if (!r)
					r = bls_rebase(fs, bases[b], &e.kernel.path);
				for (unsigned int k = 0; !r && k < e.nr_initrds; k++)
					r = bls_rebase(fs, bases[b], &e.initrds[k].path);
				if (r < 0 || scan_push(sc, &e) < 0) {
					names_free(&nm);
					return -1;
				}
			}
			names_free(&nm);
		}
	}
	if (sc->n > first)
		return (int)first + bls_sort(sc->e + first, sc->n - first, *pattern);
	return -2;
}

static int scan_uki(struct scan *sc, const char *pattern)
{
	unsigned int first = sc->n;

	for (unsigned int p = 0; p < sc->d->nr_parts; p++) {
		struct fs *fs = sc->fs[p];
		struct names nm;

		if (!fs)
			continue;
		if (list_names(fs, "/EFI/Linux", NULL, ".efi", false, &nm) < 0)
			return -1;
		for (unsigned int i = 0; i < nm.n; i++) {
			struct diskboot_entry e = { .source = DISKBOOT_UKI };
			struct uki_sections s;
			const char *why;
			char pn[32];
			void *buf = NULL;
			size_t len;
			int r = 0;

			e.kernel.part = (int)p;
			e.kernel.path = path_join("/EFI/Linux", nm.v[i]);
			e.id = strdup(nm.v[i]);
			e.where = e.kernel.path ? str_printf("%s:%s", part_name(sc->d, (int)p, pn,
					sizeof(pn)), e.kernel.path) : NULL;
			if (!e.kernel.path || !e.id || !e.where)
				r = -1;
			if (!r && fs_read_file(fs, e.kernel.path, UKI_MAX, &buf, &len) < 0) {
				e.error = str_printf("%s: cannot be read", e.where);
			} else if (!r && uki_parse(buf, len, &s, &why) < 0) {
				e.error = str_printf("%s: not a usable unified kernel image: %s",
						    e.where, why);
			} else if (!r) {
				size_t cl = s.cmdline_size;

				while (cl && (s.cmdline[cl - 1] == 0 ||
					      isspace((unsigned char)s.cmdline[cl - 1])))
					cl--;
				e.options = strndup(s.cmdline ? s.cmdline : "", cl);
				if (e.options)
					for (char *c = e.options; *c; c++)
						if (*c == '\n' || *c == '\t' || !*c)
							*c = ' ';
				if (s.osrel) {
					e.title = osrel_get(s.osrel, s.osrel_size, "PRETTY_NAME");
					e.version = osrel_get(s.osrel, s.osrel_size, "IMAGE_VERSION");
					if (!e.version)
						e.version = osrel_get(s.osrel, s.osrel_size,
								      "VERSION_ID");
				}
				if (s.initrd_data)
					e.nr_initrds = 0;	/* inside the image */
				if (!e.options)
					r = -1;
			}
			free(buf);
			if (!r && !e.title)
				e.title = strdup(nm.v[i]);
			if (!r && !e.options)
				e.options = strdup("");
			if (r < 0 || !e.title || !e.options) {
				diskboot_entry_clear(&e);
				names_free(&nm);
				log_error("out of memory listing unified kernel images");
				return -1;
			}
			if (scan_push(sc, &e) < 0) {
				names_free(&nm);
				return -1;
			}
		}
		names_free(&nm);
	}
	if (sc->n > first)
		return (int)first + bls_sort(sc->e + first, sc->n - first, pattern);
	return -2;
}

/* GRUB's name for partition p: "hd0", "hd0,msdos1", "hd0,gpt2". */
static void grub_dev_name(const struct diskimg *d, unsigned int p, char *buf, size_t len)
{
	if (d->table == DISKIMG_NONE)
		snprintf(buf, len, "hd0");
	else
		snprintf(buf, len, "hd0,%s%u", d->table == DISKIMG_GPT ? "gpt" : "msdos",
			 d->parts[p].index);
}

/* The parts[] index GRUB device dev names, or -1. */
static int grub_dev_part(const struct diskimg *d, const char *dev)
{
	int n = grub_dev_partnum(dev);

	if (n < 0)
		return -1;
	for (unsigned int p = 0; p < d->nr_parts; p++)
		if (d->parts[p].index == (unsigned int)n)
			return (int)p;
	return -1;
}

static int grub_host_search(void *arg, const char *kind, const char *key, char *dev, size_t len)
{
	struct scan *sc = arg;

	for (unsigned int p = 0; p < sc->d->nr_parts; p++) {
		const struct diskboot_part *dp = &sc->db->parts[p];

		if (!sc->fs[p])
			continue;
		if ((!strcmp(kind, "fs-uuid") && !strcasecmp(dp->uuid, key)) ||
		    (!strcmp(kind, "label") && !strcmp(dp->label, key)) ||
		    (!strcmp(kind, "file") && fs_is_file(sc->fs[p], key))) {
			grub_dev_name(sc->d, p, dev, len);
			return 0;
		}
	}
	return -1;
}

static int grub_host_read(void *arg, const char *dev, const char *path, char **text, size_t *len)
{
	struct scan *sc = arg;
	int p = grub_dev_part(sc->d, dev);
	void *buf;

	if (p < 0 || !sc->fs[p])
		return -1;
	if (fs_read_file(sc->fs[p], path, DISKBOOT_GRUB_CFG_MAX, &buf, len) < 0)
		return -1;
	*text = buf;
	return 0;
}

static int grub_resolve(struct scan *sc, struct diskboot_file *f, struct diskboot_entry *e)
{
	if (!f->path || f->part >= 0)
		return 0;
	f->part = grub_dev_part(sc->d, f->dev ? f->dev : "");
	if (f->part < 0 && !e->error) {
		e->error = str_printf("%s: menuentry '%s': (%s)%s is not on this disk", e->where,
				     e->title, f->dev ? f->dev : "", f->path);
		if (!e->error)
			return -1;
	}
	return 0;
}

static int scan_grub(struct scan *sc)
{
	static const char *const cfgs[] = {
		"/boot/grub/grub.cfg", "/grub/grub.cfg", "/boot/grub2/grub.cfg", "/grub2/grub.cfg",
	};
	int def = -2;

	for (unsigned int p = 0; p < sc->d->nr_parts; p++) {
		struct fs *fs = sc->fs[p];

		if (!fs)
			continue;
		for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
			char dev[32], prefix[32], pn[32], *where;
			void *buf;
			size_t len;
			unsigned int first = sc->n;
			int d, r;

			if (!fs_is_file(fs, cfgs[c]))
				continue;
			where = str_printf("%s:%s", part_name(sc->d, (int)p, pn, sizeof(pn)), cfgs[c]);
			if (!where)
				goto err_oom;
			grub_dev_name(sc->d, p, dev, sizeof(dev));
			snprintf(prefix, sizeof(prefix), "%.*s", (int)(strrchr(cfgs[c], '/') - cfgs[c]),
				 cfgs[c]);
			struct grub_host host = {
				.search = grub_host_search, .read = grub_host_read, .arg = sc,
				.root = dev, .prefix = prefix, .where = where,
			};
			r = fs_read_file(fs, cfgs[c], DISKBOOT_GRUB_CFG_MAX, &buf, &len);
			if (r < 0) {
				struct diskboot_entry e = { .source = DISKBOOT_GRUB, .kernel.part = -1 };

				e.title = strdup("(grub.cfg)");
				e.where = where;
				e.options = strdup("");
				e.error = str_printf("%s: cannot be read (see above)", where);
				where = NULL;
				if (!e.title || !e.options || !e.error) {
					diskboot_entry_clear(&e);
					goto err_oom;
				}
				d = (int)sc->n;
				r = scan_push(sc, &e);
			} else {
				r = grub_parse(buf, len, &host, &sc->e, &sc->n, &d);
				free(buf);
			}
			free(where);
			if (r < 0)
				return -1;
			for (unsigned int i = first; i < sc->n; i++) {
				struct diskboot_entry *e = &sc->e[i];

				if (grub_resolve(sc, &e->kernel, e) < 0)
					goto err_oom;
				for (unsigned int k = 0; k < e->nr_initrds; k++)
					if (grub_resolve(sc, &e->initrds[k], e) < 0)
						goto err_oom;
			}
			if (def == -2 && d >= 0)
				def = d;
			break;	/* one grub.cfg per partition */
		}
	}
	return def;

err_oom:
	log_error("out of memory reading grub.cfg");
	return -1;
}

static int debian_add(struct scan *sc, unsigned int p, const char *kernel, const char *initrd,
		      const char *version)
{
	struct diskboot_entry e = { .source = DISKBOOT_DEBIAN, .root_from_fs = true };
	char pn[32];

	e.kernel.part = (int)p;
	e.kernel.path = strdup(kernel);
	e.title = strdup(kernel);
	e.id = strdup(kernel);
	e.where = str_printf("%s:%s", part_name(sc->d, (int)p, pn, sizeof(pn)), kernel);
	e.options = strdup("");
	e.version = version ? strdup(version) : NULL;
	if (initrd && fs_is_file(sc->fs[p], initrd)) {
		e.initrds[0].part = (int)p;
		e.initrds[0].path = strdup(initrd);
		e.nr_initrds = 1;
		if (!e.initrds[0].path)
			goto err_oom;
	}
	if (!e.kernel.path || !e.title || !e.id || !e.where || !e.options || (version && !e.version))
		goto err_oom;
	return scan_push(sc, &e);

err_oom:
	diskboot_entry_clear(&e);
	log_error("out of memory listing kernels");
	return -1;
}

static int ver_desc(const void *a, const void *b)
{
	return -diskboot_vercmp(*(char *const *)a, *(char *const *)b);
}

static int scan_debian(struct scan *sc)
{
	unsigned int first = sc->n;

	for (unsigned int p = 0; p < sc->d->nr_parts; p++) {
		struct fs *fs = sc->fs[p];

		if (!fs)
			continue;
		static const char *const links[][2] = {
			{ "/vmlinuz", "/initrd.img" }, { "/boot/vmlinuz", "/boot/initrd.img" },
		};
		for (size_t i = 0; i < 2; i++)
			if (fs_is_file(fs, links[i][0]) &&
			    debian_add(sc, p, links[i][0], links[i][1], NULL) < 0)
				return -1;
		static const char *const dirs[] = { "/boot", "/" };
		for (size_t di = 0; di < 2; di++) {
			struct names nm;

			if (list_names(fs, dirs[di], "vmlinuz-", NULL, false, &nm) < 0)
				return -1;
			if (nm.n > 1)
				qsort(nm.v, nm.n, sizeof(*nm.v), ver_desc);
			for (unsigned int i = 0; i < nm.n; i++) {
				const char *ver = nm.v[i] + strlen("vmlinuz-");
				char *k = path_join(dirs[di], nm.v[i]);
				char *ird = str_printf("%s%sinitrd.img-%s", dirs[di],
						      di ? "" : "/", ver);
				int r = k && ird && fs_is_file(fs, k) ? debian_add(sc, p, k, ird, ver)
								      : (k && ird ? 0 : -1);

				free(k);
				free(ird);
				if (r < 0) {
					names_free(&nm);
					return -1;
				}
			}
			names_free(&nm);
		}
	}
	return sc->n > first ? (int)first : -2;
}

int diskboot_scan(struct diskimg *d, struct diskboot *db)
{
	struct scan sc = { .d = d, .db = db };
	char *pattern = NULL;
	int defs[4], ret = -1;

	memset(db, 0, sizeof(*db));
	db->def = -1;
	for (unsigned int p = 0; p < d->nr_parts; p++) {
		struct diskboot_part *dp = &db->parts[p];
		struct fs *fs = fs_probe(d, &d->parts[p]);

		sc.fs[p] = fs;
		if (!fs)
			continue;
		dp->has_fs = true;
		snprintf(dp->fstype, sizeof(dp->fstype), "%s", fs_type_name(fs));
		snprintf(dp->uuid, sizeof(dp->uuid), "%s", fs_uuid(fs) ? fs_uuid(fs) : "");
		snprintf(dp->label, sizeof(dp->label), "%s", fs_label(fs) ? fs_label(fs) : "");
		dp->has_fstab = fs_is_file(fs, "/etc/fstab");
	}
	if ((defs[0] = scan_bls(&sc, &pattern)) == -1 ||
	    (defs[1] = scan_uki(&sc, pattern)) == -1 ||
	    (defs[2] = scan_grub(&sc)) == -1 ||
	    (defs[3] = scan_debian(&sc)) == -1)
		goto out;
	for (int i = 0; i < 4; i++) {
		if (defs[i] >= 0) {
			db->def = defs[i];
			break;
		}
	}
	db->entries = sc.e;
	db->nr_entries = sc.n;
	sc.e = NULL;
	sc.n = 0;
	ret = 0;
out:
	for (unsigned int i = 0; i < sc.n; i++)
		diskboot_entry_clear(&sc.e[i]);
	free(sc.e);
	free(pattern);
	for (unsigned int p = 0; p < d->nr_parts; p++)
		if (sc.fs[p])
			fs_close(sc.fs[p]);
	return ret;
}

void diskboot_free(struct diskboot *db)
{
	for (unsigned int i = 0; i < db->nr_entries; i++)
		diskboot_entry_clear(&db->entries[i]);
	free(db->entries);
	db->entries = NULL;
	db->nr_entries = 0;
	db->def = -1;
}

int diskboot_select(const struct diskboot *db, const char *sel)
{
	int idx = -1;

	if (!sel) {
		if (db->def < 0) {
			log_error("no kernel found on the disk: no /loader/entries/*.conf, "
				  "EFI/Linux/*.efi, grub.cfg or /vmlinuz, /boot/vmlinuz-* "
				  "(give --kernel)");
			return -1;
		}
		idx = db->def;
	} else {
		char *end;
		unsigned long n = strtoul(sel, &end, 10);

		if (*sel >= '0' && *sel <= '9' && !*end) {
			if (n >= db->nr_entries) {
				log_error("--boot-entry %s: the disk has %u boot entries (0 to %d; "
					  "bootvm disk-info lists them)", sel, db->nr_entries,
					  (int)db->nr_entries - 1);
				return -1;
			}
			idx = (int)n;
		}
		for (unsigned int i = 0; idx < 0 && i < db->nr_entries; i++) {
			const struct diskboot_entry *e = &db->entries[i];

			if ((e->title && !strcmp(e->title, sel)) || (e->id && !strcmp(e->id, sel)))
				idx = (int)i;
		}
		if (idx < 0) {
			log_error("--boot-entry '%s': no boot entry has that number, title or id "
				  "(bootvm disk-info lists them)", sel);
			return -1;
		}
	}
	if (db->entries[idx].error) {
		log_error("boot entry %d: %s", idx, db->entries[idx].error);
		return -1;
	}
	return idx;
}

/* ---- the command line ---- */

static void vda_name(const struct diskimg *d, unsigned int p, char *buf, size_t len)
{
	if (d->table == DISKIMG_NONE || d->parts[p].index == 0)
		snprintf(buf, len, "/dev/vda");
	else
		snprintf(buf, len, "/dev/vda%u", d->parts[p].index);
}

/* root= value v as /dev/vdaN in out; false when it names nothing on this disk. */
static bool root_resolve(const struct diskimg *d, const struct diskboot *db, const char *v,
			 char *out, size_t len)
{
	static const struct { const char *pfx; int kind; } forms[] = {
		{ "UUID=", 0 }, { "/dev/disk/by-uuid/", 0 },
		{ "LABEL=", 1 }, { "/dev/disk/by-label/", 1 },
		{ "PARTUUID=", 2 }, { "/dev/disk/by-partuuid/", 2 },
	};
	static const char *const devs[] = { "/dev/sda", "/dev/hda", "/dev/xvda", "/dev/vda" };

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].pfx);

		if (strncmp(v, forms[i].pfx, pl))
			continue;
		const char *key = v + pl;
		for (unsigned int p = 0; p < d->nr_parts; p++) {
			const struct diskboot_part *dp = &db->parts[p];
			bool hit = forms[i].kind == 0 ? dp->has_fs && *dp->uuid && !strcasecmp(dp->uuid, key)
				 : forms[i].kind == 1 ? dp->has_fs && *dp->label && !strcmp(dp->label, key)
				 : *d->parts[p].partuuid && !strcasecmp(d->parts[p].partuuid, key);
			if (hit) {
				vda_name(d, p, out, len);
				return true;
			}
		}
		return false;
	}
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		size_t pl = strlen(devs[i]);
		char *end;

		if (strncmp(v, devs[i], pl))
			continue;
		if (!v[pl]) {
			snprintf(out, len, "/dev/vda");
			return true;
		}
		unsigned long n = strtoul(v + pl, &end, 10);
		if (*end || v[pl] < '1' || v[pl] > '9')
			return false;
		snprintf(out, len, "/dev/vda%lu", n);
		return true;
	}
	if (!strncmp(v, "/dev/nvme0n1p", 13) && v[13] >= '1' && v[13] <= '9') {
		char *end;
		unsigned long n = strtoul(v + 13, &end, 10);

		if (!*end) {
			snprintf(out, len, "/dev/vda%lu", n);
			return true;
		}
	}
	return false;
}

/* Kernel command-line words: split at blanks outside double quotes. */
static char *next_word(const char **p)
{
	const char *s = *p;
	bool q = false;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (!*s) {
		*p = s;
		return NULL;
	}
	const char *start = s;
	while (*s && (q || (*s != ' ' && *s != '\t' && *s != '\n'))) {
		if (*s == '"')
			q = !q;
		s++;
	}
	*p = s;
	return strndup(start, (size_t)(s - start));
}

static bool has_console(const char *s)
{
	const char *p = s;
	char *w;
	bool found = false;

	while (!found && (w = next_word(&p))) {
		found = !strncmp(w, "console=", 8);
		free(w);
	}
	return found;
}

char *diskboot_cmdline(const struct diskimg *d, const struct diskboot *db,
		       const struct diskboot_entry *e, const char *append)
{
	char *out = strdup(""), *w;
	const char *p = e->options ? e->options : "";
	bool root_seen = false;
	char dev[32];

	if (!out)
		goto err_oom;
	while ((w = next_word(&p))) {
		int r;

		if (!strncmp(w, "root=", 5)) {
			root_seen = true;
			if (root_resolve(d, db, w + 5, dev, sizeof(dev))) {
				char *nw = str_printf("root=%s", dev);

				if (strcmp(w + 5, dev))
					log_info("boot entry: root=%s is %s here", w + 5, dev);
				free(w);
				w = nw;
			} else if (strncmp(w + 5, "/dev/vd", 7)) {
				log_warn("boot entry: root=%s: not found on the first disk; "
					 "left as it is", w + 5);
			}
		}
		r = w ? str_append(&out, " ", w) : -1;
		free(w);
		if (r < 0)
			goto err_oom;
	}
	if (!root_seen && e->root_from_fs) {
		int rp = -1;

		if (e->kernel.part >= 0 && db->parts[e->kernel.part].has_fstab)
			rp = e->kernel.part;
		for (unsigned int i = 0; rp < 0 && i < d->nr_parts; i++)
			if (db->parts[i].has_fstab)
				rp = (int)i;
		if (rp < 0 && e->kernel.part >= 0)
			rp = e->kernel.part;
		if (rp >= 0) {
			char *n;

			vda_name(d, (unsigned int)rp, dev, sizeof(dev));
			n = *out ? str_printf("root=%s ro %s", dev, out) : str_printf("root=%s ro", dev);
			if (!n)
				goto err_oom;
			free(out);
			out = n;
		}
	}
	if (!has_console(out) && !(append && has_console(append)) &&
	    str_append(&out, " ", "console=ttyS0") < 0)
		goto err_oom;
	if (append && *append && str_append(&out, " ", append) < 0)
		goto err_oom;
	return out;

err_oom:
	free(out);
	log_error("out of memory building the command line");
	return NULL;
}

/* ---- loading ---- */

void diskboot_image_free(struct diskboot_image *img)
{
	free(img->kernel);
	free(img->initrd);
	memset(img, 0, sizeof(*img));
}

static struct fs *load_fs(struct diskimg *d, struct fs **cache, int part)
{
	if (!cache[part])
		cache[part] = fs_open(d, &d->parts[part]);
	return cache[part];
}

/* Read file f of entry e (what: "kernel", "initrd"). */
static int load_file(struct diskimg *d, struct fs **cache, const struct diskboot_entry *e,
		     const struct diskboot_file *f, const char *what, size_t max, void **buf,
		     size_t *len)
{
	char pn[32];
	struct fs *fs;
	int r;

	if (f->part < 0 || (unsigned int)f->part >= d->nr_parts) {
		log_error("boot entry '%s': its %s %s is not on this disk", e->title, what, f->path);
		return -1;
	}
	fs = load_fs(d, cache, f->part);
	if (!fs)
		return -1;
	r = fs_read_file(fs, f->path, max, buf, len);
	if (r == -2)
		log_error("boot entry '%s' (%s): its %s %s does not exist on %s", e->title, e->where,
			  what, f->path, part_name(d, f->part, pn, sizeof(pn)));
	return r < 0 ? -1 : 0;
}

int diskboot_load(struct diskimg *d, const struct diskboot_entry *e, struct diskboot_image *img)
{
	struct fs *cache[DISKIMG_MAX_PARTS] = { 0 };
	void *buf = NULL;
	size_t len;
	int ret = -1;

	memset(img, 0, sizeof(*img));
	if (e->source == DISKBOOT_UKI) {
		struct uki_sections s;
		const char *why;

		if (load_file(d, cache, e, &e->kernel, "image", UKI_MAX, &buf, &len) < 0)
			goto out;
		if (uki_parse(buf, len, &s, &why) < 0) {
			log_error("%s: not a usable unified kernel image: %s", e->where, why);
			goto out;
		}
		img->kernel = malloc(s.linux_size ? s.linux_size : 1);
		img->initrd = s.initrd_data ? malloc(s.initrd_size ? s.initrd_size : 1) : NULL;
		if (!img->kernel || (s.initrd_data && !img->initrd)) {
			log_error("out of memory loading %s", e->where);
			goto out;
		}
		memcpy(img->kernel, s.linux_data, s.linux_size);
		img->kernel_size = s.linux_size;
		if (s.initrd_data) {
			memcpy(img->initrd, s.initrd_data, s.initrd_size);
			img->initrd_size = s.initrd_size;
		}
		ret = 0;
		goto out;
	}
	if (load_file(d, cache, e, &e->kernel, "kernel", DISKBOOT_KERNEL_MAX, &buf, &len) < 0)
		goto out;
	img->kernel = buf;
	img->kernel_size = len;
	buf = NULL;
	for (unsigned int i = 0; i < e->nr_initrds; i++) {
		size_t max = DISKBOOT_INITRD_MAX - img->initrd_size;
		uint8_t *n;

		if (load_file(d, cache, e, &e->initrds[i], "initrd", max, &buf, &len) < 0)
			goto out;
		size_t padded = (img->initrd_size + 3) & ~(size_t)3;
		n = realloc(img->initrd, padded + len + 1);
		if (!n) {
			log_error("out of memory loading the initrds of '%s'", e->title);
			goto out;
		}
		memset(n + img->initrd_size, 0, padded - img->initrd_size);
		memcpy(n + padded, buf, len);
		img->initrd = n;
		img->initrd_size = padded + len;
		free(buf);
		buf = NULL;
	}
	ret = 0;
out:
	free(buf);
	for (unsigned int p = 0; p < DISKIMG_MAX_PARTS; p++)
		if (cache[p])
			fs_close(cache[p]);
	if (ret < 0)
		diskboot_image_free(img);
	return ret;
}
