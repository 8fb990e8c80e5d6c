/*
 * FAT12/16/32, read-only: the BPB checked against its partition, cluster
 * chains walked with a bitmap of the clusters seen (a loop is an error, a
 * chain is never longer than the file system), directories read whole (at
 * most the 65536 entries FAT allows), long names checked against their
 * short entry's checksum, names matched case-insensitively (ASCII).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/fs_impl.h"
#include "util/log.h"

#define FAT_DIRENT 32
#define FAT_DIR_MAX_BYTES (65536u * FAT_DIRENT)
#define FAT_LFN_MAX 20		/* 20 entries of 13 units: 255 characters and a NUL */
#define FAT_NAME_MAX 1024	/* 260 units as UTF-8, generously */

#define ATTR_VOLUME 0x08
#define ATTR_DIR 0x10
#define ATTR_LFN 0x0f

struct fat_fs {
	struct fs fs;
	struct diskimg *d;
	char where[96];
	unsigned int bits;
	uint32_t cluster_size;
	uint64_t fat_off;		/* the FAT in use, from the start of the image */
	uint64_t root_off;		/* FAT12/16: the fixed root directory */
	uint32_t root_bytes;
	uint32_t root_cluster;		/* FAT32 */
	uint64_t data_off;
	uint32_t nclusters;		/* data clusters: numbers 2 .. nclusters + 1 */
	uint8_t cache[4096];		/* a window of the FAT */
	uint64_t cache_off;
	bool cache_valid;
};

/* A directory: the fixed root of FAT12/16 (cluster 0) or a chain. */
struct fat_node {
	bool is_dir;
	uint32_t cluster;
	uint32_t size;
};

static const struct fs_ops fat_ops;

static struct fat_fs *fat_of(struct fs *fs)
{
	return (struct fat_fs *)fs;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

bool fs_fat_magic(struct diskimg *d, uint64_t offset, uint64_t size)
{
	uint8_t b[512];

	if (size < sizeof(b) || diskimg_pread_quiet(d, offset, b, sizeof(b)) < 0)
		return false;
	uint32_t bps = le16(b + 11);
	/* A jump over the BPB, a sane sector size, the boot signature: the rest is checked on open. */
	return (b[0] == 0xeb || b[0] == 0xe9) && b[510] == 0x55 && b[511] == 0xaa &&
	       bps >= 512 && bps <= 4096 && pow2(bps);
}

static void trim_copy(char *out, const uint8_t *in, size_t n)
{
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\0'))
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? (char)in[i] : '?';
	out[n] = '\0';
}

/* ---- the FAT ---- */

static int fat_bytes(struct fat_fs *ff, uint64_t off, uint8_t *out, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++, off++) {
		uint64_t win = off & ~(uint64_t)(sizeof(ff->cache) - 1);
		if (!ff->cache_valid || ff->cache_off != win) {
			/* The window may run past the FAT's end: harmless, but not past the image's. */
			size_t len = sizeof(ff->cache);
			if (ff->fat_off + win + len > ff->d->size)
				len = (size_t)(ff->d->size - ff->fat_off - win);
			memset(ff->cache, 0, sizeof(ff->cache));
			if (diskimg_pread(ff->d, ff->fat_off + win, ff->cache, len, "FAT") < 0)
				return -1;
			ff->cache_off = win;
			ff->cache_valid = true;
		}
		out[i] = ff->cache[off - win];
	}
	return 0;
}

enum { NEXT_CLUSTER, NEXT_END };

/* The entry for cluster c (valid): NEXT_CLUSTER with *next valid, NEXT_END, or -1 logged. */
static int fat_next(struct fat_fs *ff, uint32_t c, uint32_t *next, const char *path)
{
	uint8_t b[4];
	uint32_t v, eoc, bad;

	if (ff->bits == 12) {
		if (fat_bytes(ff, (uint64_t)c + c / 2, b, 2) < 0)
			return -1;
		v = le16(b);
		v = c & 1 ? v >> 4 : v & 0xfff;
		eoc = 0xff8;
		bad = 0xff7;
	} else if (ff->bits == 16) {
		if (fat_bytes(ff, (uint64_t)c * 2, b, 2) < 0)
			return -1;
		v = le16(b);
		eoc = 0xfff8;
		bad = 0xfff7;
	} else {
		if (fat_bytes(ff, (uint64_t)c * 4, b, 4) < 0)
			return -1;
		v = le32(b) & 0x0fffffff;
		eoc = 0x0ffffff8;
		bad = 0x0ffffff7;
	}
	if (v >= eoc)
		return NEXT_END;
	if (v == bad || v < 2 || v > ff->nclusters + 1) {
		log_error("%s: %s: cluster %" PRIu32 " is followed by %s (%#" PRIx32 ")", ff->where, path, c,
			  v == bad ? "a bad cluster" : v == 0 ? "a free cluster" : "an invalid cluster", v);
		return -1;
	}
	*next = v;
	return NEXT_CLUSTER;
}

static bool cluster_valid(const struct fat_fs *ff, uint32_t c)
{
	return c >= 2 && c <= ff->nclusters + 1;
}

/*
 * Read the chain from first into a malloc'ed buffer: want bytes of it (a
 * file: the chain must have that many) or, if whole, all of it up to limit
 * bytes (a directory).
 */
static int fat_read_chain(struct fat_fs *ff, uint32_t first, uint64_t want, bool whole, uint64_t limit,
			  uint8_t **out, size_t *out_len, const char *path)
{
	uint8_t *buf = NULL, *seen;
	size_t len = 0, cap = 0;
	uint32_t c = first, n = 0;
	int ret = -1;

	if (!cluster_valid(ff, first)) {
		log_error("%s: %s: starts at invalid cluster %" PRIu32, ff->where, path, first);
		return -1;
	}
	seen = calloc((ff->nclusters + 2 + 7) / 8, 1);
	if (!seen) {
		log_error("%s: %s: out of memory", ff->where, path);
		return -1;
	}
	for (;;) {
		if (seen[c / 8] & (1u << (c % 8))) {
			log_error("%s: %s: cluster chain loops at cluster %" PRIu32, ff->where, path, c);
			goto out;
		}
		seen[c / 8] |= (uint8_t)(1u << (c % 8));
		n++;
		size_t chunk = ff->cluster_size;
		if (!whole && want - len < chunk)
			chunk = (size_t)(want - len);
		if (whole && len + chunk > limit) {
			log_error("%s: %s: directory larger than %" PRIu64 " bytes", ff->where, path, limit);
			goto out;
		}
		if (len + chunk > cap) {
			size_t ncap = cap ? cap * 2 : ff->cluster_size;
			while (ncap < len + chunk)
				ncap *= 2;
			if (!whole && ncap > want)
				ncap = (size_t)want;
			uint8_t *nb = realloc(buf, ncap);
			if (!nb) {
				log_error("%s: %s: out of memory", ff->where, path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		uint64_t off = ff->data_off + (uint64_t)(c - 2) * ff->cluster_size;
		if (diskimg_pread(ff->d, off, buf + len, chunk, "FAT cluster") < 0)
			goto out;
		len += chunk;
		if (!whole && len == want)
			break;
		int r = fat_next(ff, c, &c, path);
		if (r < 0)
			goto out;
		if (r == NEXT_END) {
			if (!whole) {
				log_error("%s: %s: cluster chain ends after %" PRIu32 " clusters, its size (%" PRIu64 " bytes) needs %" PRIu64,
					  ff->where, path, n, want, (want + ff->cluster_size - 1) / ff->cluster_size);
				goto out;
			}
			break;
		}
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
	ret = 0;
out:
	free(seen);
	free(buf);
	return ret;
}

/* ---- directories ---- */

static int fat_read_dir(struct fat_fs *ff, uint32_t cluster, uint8_t **buf, size_t *len, const char *path)
{
	if (cluster == 0 && ff->bits != 32) {
		*buf = malloc(ff->root_bytes ? ff->root_bytes : 1);
		if (!*buf) {
			log_error("%s: %s: out of memory", ff->where, path);
			return -1;
		}
		*len = ff->root_bytes;
		if (diskimg_pread(ff->d, ff->root_off, *buf, ff->root_bytes, "FAT root directory") < 0) {
			free(*buf);
			return -1;
		}
		return 0;
	}
	if (cluster == 0)
		cluster = ff->root_cluster;
	return fat_read_chain(ff, cluster, 0, true, FAT_DIR_MAX_BYTES, buf, len, path);
}

struct fat_dirent {
	const char *name;	/* the long name if there is a valid one, else the short name */
	const char *short_name;
	const uint8_t *raw;	/* the 11 bytes of the short name (a volume label's text) */
	uint8_t attr;
	uint32_t cluster;
	uint32_t size;
};

static uint8_t lfn_checksum(const uint8_t *short_name)
{
	uint8_t sum = 0;

	for (unsigned int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + short_name[i]);
	return sum;
}

static void short_name_format(const uint8_t *e, char *out)
{
	uint8_t raw[11];
	size_t o = 0;

	memcpy(raw, e, 11);
	if (raw[0] == 0x05)
		raw[0] = 0xe5;
	bool lower_base = e[12] & 0x08, lower_ext = e[12] & 0x10;
	for (unsigned int i = 0; i < 8 && raw[i] != ' '; i++)
		out[o++] = raw[i] >= 0x80 || raw[i] < 0x20 ? '?' :
			   lower_base && raw[i] >= 'A' && raw[i] <= 'Z' ? (char)(raw[i] + 32) : (char)raw[i];
	if (raw[8] != ' ') {
		out[o++] = '.';
		for (unsigned int i = 8; i < 11 && raw[i] != ' '; i++)
			out[o++] = raw[i] >= 0x80 || raw[i] < 0x20 ? '?' :
				   lower_ext && raw[i] >= 'A' && raw[i] <= 'Z' ? (char)(raw[i] + 32) : (char)raw[i];
	}
	out[o] = '\0';
}

/*
 * Call fn for each live entry of the directory in buf (volume labels too,
 * with ATTR_VOLUME): 0, or fn's non-zero return.
 */
static int fat_dir_each(const uint8_t *buf, size_t len,
			int (*fn)(void *arg, const struct fat_dirent *de), void *arg)
{
	uint8_t lfn[FAT_LFN_MAX * 13 * 2];
	unsigned int lfn_expect = 0, lfn_count = 0;
	uint8_t lfn_sum = 0;
	char long_name[FAT_NAME_MAX], short_name[16];

	for (size_t off = 0; off + FAT_DIRENT <= len; off += FAT_DIRENT) {
		const uint8_t *e = buf + off;
		uint8_t attr = e[11];

		if (e[0] == 0x00)
			break;
		if (e[0] == 0xe5) {
			lfn_expect = 0;
			continue;
		}
		if ((attr & 0x3f) == ATTR_LFN) {
			unsigned int seq = e[0] & 0x1f;
			if (e[0] & 0x40) {
				if (!seq || seq > FAT_LFN_MAX) {
					lfn_expect = 0;
					continue;
				}
				lfn_count = seq;
				lfn_sum = e[13];
				memset(lfn, 0, sizeof(lfn));
			} else if (!lfn_expect || seq != lfn_expect - 1 || e[13] != lfn_sum) {
				lfn_expect = 0;
				continue;
			}
			lfn_expect = seq;
			uint8_t *dst = lfn + (seq - 1) * 26;
			memcpy(dst, e + 1, 10);
			memcpy(dst + 10, e + 14, 12);
			memcpy(dst + 22, e + 28, 4);
			continue;
		}

		struct fat_dirent de = {
			.attr = attr,
			.cluster = (uint32_t)le16(e + 20) << 16 | le16(e + 26),
			.size = le32(e + 28),
		};
		short_name_format(e, short_name);
		de.short_name = short_name;
		de.name = short_name;
		de.raw = e;
		if (lfn_expect == 1 && lfn_checksum(e) == lfn_sum) {
			/* 0xffff pads after the NUL; a name without NUL fills every unit. */
			diskimg_utf16le_to_utf8(lfn, lfn_count * 13, long_name, sizeof(long_name));
			if (long_name[0])
				de.name = long_name;
		}
		lfn_expect = 0;
		int r = fn(arg, &de);
		if (r)
			return r;
	}
	return 0;
}

/* ---- open ---- */

static int fat_find_label(void *arg, const struct fat_dirent *de)
{
	char *label = arg;

	if ((de->attr & (ATTR_VOLUME | ATTR_DIR)) == ATTR_VOLUME) {
		trim_copy(label, de->raw, 11);
		return 1;
	}
	return 0;
}

struct fs *fs_fat_open(struct diskimg *d, const struct diskimg_part *part, bool quiet, bool *corrupt)
{
	char where[96];
	uint8_t b[512];

	*corrupt = false;
	if (part->index)
		snprintf(where, sizeof(where), "'%s' partition %u", d->path, part->index);
	else
		snprintf(where, sizeof(where), "'%s'", d->path);
	if (!fs_fat_magic(d, part->offset, part->size)) {
		if (!quiet)
			log_error("%s: no FAT file system", where);
		return NULL;
	}
	*corrupt = true;
	if (diskimg_pread(d, part->offset, b, sizeof(b), "FAT boot sector") < 0)
		return NULL;

	uint32_t bps = le16(b + 11), spc = b[13], reserved = le16(b + 14), nfats = b[16];
	uint32_t root_entries = le16(b + 17), total = le16(b + 19), fatsz = le16(b + 22);
	bool fat32 = fatsz == 0;	/* as Linux decides */
	if (!total)
		total = le32(b + 32);
	if (fat32)
		fatsz = le32(b + 36);
	const char *bad = NULL;
	if (!pow2(spc))
		bad = "sectors per cluster is not a power of two";
	else if (!reserved)
		bad = "no reserved sectors";
	else if (nfats < 1 || nfats > 2)
		bad = "not one or two FATs";
	else if (!total)
		bad = "no sectors";
	else if (!fatsz)
		bad = "FATs of no sectors";
	else if (fat32 && root_entries)
		bad = "FAT32 with a fixed root directory";
	else if (!fat32 && !root_entries)
		bad = "no root directory entries";
	if (bad) {
		log_error("%s: bad FAT boot sector: %s (%" PRIu32 " bytes/sector, %" PRIu32 " sectors/cluster, %" PRIu32 " reserved, %" PRIu32 " FATs)",
			  where, bad, bps, spc, reserved, nfats);
		return NULL;
	}
	if ((uint64_t)total * bps > part->size) {
		log_error("%s: the FAT file system (%" PRIu32 " sectors of %" PRIu32 " bytes) is larger than its partition (%" PRIu64 " bytes)",
			  where, total, bps, part->size);
		return NULL;
	}
	uint64_t root_sectors = ((uint64_t)root_entries * FAT_DIRENT + bps - 1) / bps;
	uint64_t data_start = reserved + (uint64_t)nfats * fatsz + root_sectors;
	if (data_start >= total || (total - data_start) / spc < 1) {
		log_error("%s: bad FAT boot sector: no room for data (%" PRIu64 " of %" PRIu32 " sectors before it)",
			  where, data_start, total);
		return NULL;
	}
	uint64_t nclusters = (total - data_start) / spc;
	unsigned int bits = fat32 ? 32 : nclusters > 4084 ? 16 : 12;
	uint64_t fat_entries = (uint64_t)fatsz * bps * 8 / bits;
	if (nclusters + 2 > fat_entries || (bits == 32 && nclusters > 0x0ffffff5)) {
		log_error("%s: bad FAT boot sector: %" PRIu64 " clusters, the FAT holds %" PRIu64,
			  where, nclusters, fat_entries >= 2 ? fat_entries - 2 : 0);
		return NULL;
	}

	struct fat_fs *ff = calloc(1, sizeof(*ff));
	if (!ff) {
		log_error("%s: out of memory", where);
		return NULL;
	}
	memcpy(ff->where, where, sizeof(where));
	ff->d = d;
	ff->bits = bits;
	ff->cluster_size = bps * spc;
	ff->nclusters = (uint32_t)nclusters;
	unsigned int active = 0;
	if (fat32 && (le16(b + 40) & 0x80))
		active = le16(b + 40) & 0x0f;	/* mirroring off: one FAT is in use */
	if (active >= nfats) {
		log_error("%s: bad FAT boot sector: active FAT %u of %" PRIu32, where, active, nfats);
		goto err_free;
	}
	ff->fat_off = part->offset + ((uint64_t)reserved + (uint64_t)active * fatsz) * bps;
	ff->root_off = part->offset + ((uint64_t)reserved + (uint64_t)nfats * fatsz) * bps;
	ff->root_bytes = root_entries * FAT_DIRENT;
	ff->data_off = part->offset + data_start * bps;
	if (fat32) {
		ff->root_cluster = le32(b + 44);
		if (!cluster_valid(ff, ff->root_cluster)) {
			log_error("%s: bad FAT boot sector: root directory at invalid cluster %" PRIu32,
				  where, ff->root_cluster);
			goto err_free;
		}
	}

	ff->fs.ops = &fat_ops;
	ff->fs.kind = FS_FAT;
	ff->fs.type_name = "vfat";
	ff->fs.d = d;
	ff->fs.part = part;
	const uint8_t *ext = b + (fat32 ? 64 : 36);	/* drive number, then the extended BPB */
	if (ext[2] == 0x29 || ext[2] == 0x28)
		snprintf(ff->fs.uuid, sizeof(ff->fs.uuid), "%02X%02X-%02X%02X",
			 ext[6], ext[5], ext[4], ext[3]);
	/* blkid's order: the root directory's volume label, else the boot sector's but "NO NAME". */
	uint8_t *root;
	size_t root_len;
	char label[16] = "";
	if (fat_read_dir(ff, 0, &root, &root_len, "/") < 0)
		goto err_free;
	fat_dir_each(root, root_len, fat_find_label, label);
	free(root);
	if (!label[0] && ext[2] == 0x29 && memcmp(ext + 7, "NO NAME    ", 11))
		trim_copy(label, ext + 7, 11);
	snprintf(ff->fs.label, sizeof(ff->fs.label), "%s", label);
	*corrupt = false;
	return &ff->fs;

err_free:
	free(ff);
	return NULL;
}

static void fat_close(struct fs *fs)
{
	free(fat_of(fs));
}

/* ---- paths ---- */

struct lookup {
	const char *name;
	size_t len;
	bool found;
	struct fat_node node;
};

static bool name_eq(const char *a, const char *b, size_t blen)
{
	return strlen(a) == blen && !strncasecmp(a, b, blen);
}

static int lookup_one(void *arg, const struct fat_dirent *de)
{
	struct lookup *l = arg;

	if (de->attr & ATTR_VOLUME)
		return 0;
	if (!name_eq(de->name, l->name, l->len) && !name_eq(de->short_name, l->name, l->len))
		return 0;
	l->found = true;
	l->node.is_dir = de->attr & ATTR_DIR;
	l->node.cluster = de->cluster;
	l->node.size = de->size;
	return 1;
}

/* Depth of directories kept for "..": more components than this cannot fit in a path anyway. */
#define FAT_MAX_DEPTH 256

/* path to its node: 0, -2 (quiet) when it does not exist, -1 logged. */
static int fat_resolve(struct fat_fs *ff, const char *path, struct fat_node *out)
{
	uint32_t stack[FAT_MAX_DEPTH];
	unsigned int depth = 0;
	struct fat_node cur = { .is_dir = true, .cluster = 0 };
	const char *p = path;

	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *comp = p;
		size_t len = strcspn(p, "/");
		p += len;
		if (len == 1 && comp[0] == '.')
			continue;
		if (!cur.is_dir)
			return -2;
		if (len == 2 && comp[0] == '.' && comp[1] == '.') {
			cur.cluster = depth ? stack[--depth] : 0;
			continue;
		}
		if (depth == FAT_MAX_DEPTH) {
			log_error("%s: %s: more than %d directories deep", ff->where, path, FAT_MAX_DEPTH);
			return -1;
		}

		uint8_t *buf;
		size_t blen;
		if (fat_read_dir(ff, cur.cluster, &buf, &blen, path) < 0)
			return -1;
		struct lookup l = { .name = comp, .len = len };
		fat_dir_each(buf, blen, lookup_one, &l);
		free(buf);
		if (!l.found)
			return -2;
		if (l.node.is_dir) {
			if (!cluster_valid(ff, l.node.cluster)) {
				log_error("%s: %s: directory at invalid cluster %" PRIu32, ff->where, path,
					  l.node.cluster);
				return -1;
			}
			stack[depth++] = cur.cluster;
		}
		cur = l.node;
	}
	*out = cur;
	return 0;
}

static int fat_stat(struct fs *fs, const char *path, enum fs_node *node)
{
	struct fat_node n;
	int ret = fat_resolve(fat_of(fs), path, &n);

	if (ret)
		return ret;
	*node = n.is_dir ? FS_NODE_DIR : FS_NODE_FILE;
	return 0;
}

static int fat_read_file(struct fs *fs, const char *path, size_t max, void **buf, size_t *len)
{
	struct fat_fs *ff = fat_of(fs);
	struct fat_node n;
	int ret = fat_resolve(ff, path, &n);

	if (ret)
		return ret;
	if (n.is_dir) {
		log_error("%s: %s: not a regular file", ff->where, path);
		return -1;
	}
	if (n.size > max) {
		log_error("%s: %s: %" PRIu32 " bytes, more than %zu", ff->where, path, n.size, max);
		return -1;
	}
	if (!n.size) {
		*buf = malloc(1);
		if (!*buf) {
			log_error("%s: %s: out of memory", ff->where, path);
			return -1;
		}
		*len = 0;
		return 0;
	}
	uint8_t *data;
	size_t got;
	if (fat_read_chain(ff, n.cluster, n.size, false, 0, &data, &got, path) < 0)
		return -1;
	*buf = data;
	*len = got;
	return 0;
}

struct list_ctx {
	int (*fn)(void *arg, const char *name, bool is_dir);
	void *arg;
};

static int list_one(void *arg, const struct fat_dirent *de)
{
	struct list_ctx *c = arg;

	if (de->attr & ATTR_VOLUME)
		return 0;
	if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
		return 0;
	/* A directory holds at most 65536 entries (FAT_DIR_MAX_BYTES): below the API's bound. */
	return c->fn(c->arg, de->name, de->attr & ATTR_DIR) ? 1 : 0;
}

static int fat_list_dir(struct fs *fs, const char *path,
			int (*fn)(void *arg, const char *name, bool is_dir), void *arg)
{
	struct fat_fs *ff = fat_of(fs);
	struct fat_node n;
	int ret = fat_resolve(ff, path, &n);

	if (ret)
		return ret;
	if (!n.is_dir)
		return -2;

	uint8_t *buf;
	size_t len;
	if (fat_read_dir(ff, n.cluster, &buf, &len, path) < 0)
		return -1;
	struct list_ctx c = { .fn = fn, .arg = arg };
	fat_dir_each(buf, len, list_one, &c);
	free(buf);
	return 0;
}

static const struct fs_ops fat_ops = {
	.close = fat_close,
	.stat = fat_stat,
	.read_file = fat_read_file,
	.list_dir = fat_list_dir,
};
