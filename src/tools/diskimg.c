#include "tools/diskimg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "tools/fs_impl.h"
#include "util/log.h"

/* Partition tables count in 512-byte sectors: the guest's virtio-blk sector. */
#define SECTOR 512u

#define MBR_SIGNATURE_OFF 510
#define MBR_DISKSIG_OFF 440
#define MBR_TABLE_OFF 446
#define MBR_TYPE_GPT 0xee
#define MBR_TYPE_ESP 0xef

#define GPT_HEADER_MIN 92
/* Bounds a header may claim before it is taken for garbage. */
#define GPT_ENTRY_MAX_SIZE 4096u
#define GPT_ENTRIES_MAX_BYTES (1u << 20)

static const uint8_t gpt_esp_type[16] = {
	0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
	0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int diskimg_pread_quiet(struct diskimg *d, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (off > d->size || len > d->size - off)
		return -1;
	while (len) {
		ssize_t n = pread(d->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int diskimg_pread(struct diskimg *d, uint64_t off, void *buf, size_t len, const char *what)
{
	if (off > d->size || len > d->size - off) {
		log_error("'%s': %s (%zu bytes at offset %" PRIu64 ") lies beyond the end of the image (%" PRIu64 " bytes)",
			  d->path, what, len, off, d->size);
		return -1;
	}
	if (diskimg_pread_quiet(d, off, buf, len) < 0) {
		log_error("cannot read '%s': %s at offset %" PRIu64 ": %s", d->path, what, off,
			  errno ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

size_t diskimg_utf8_put(uint32_t cp, char *out, size_t room)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80 && room >= 1) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp >= 0x80 && cp < 0x800 && room >= 2) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp >= 0x800 && cp < 0x10000 && room >= 3) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	if (cp >= 0x10000 && room >= 4) {
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		return 4;
	}
	return 0;
}

void diskimg_utf16le_to_utf8(const uint8_t *in, size_t units, char *out, size_t out_size)
{
	size_t o = 0;

	if (!out_size)
		return;
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = le16(in + 2 * i);
		if (!cp)
			break;
		if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < units) {
			uint32_t lo = le16(in + 2 * (i + 1));
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			}
		}
		size_t n = diskimg_utf8_put(cp, out + o, out_size - 1 - o);
		if (!n)
			break;
		o += n;
	}
	out[o] = '\0';
}

/* The GUID as Linux and blkid print it: the first three fields are little-endian. */
static void guid_format(const uint8_t *g, char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
		 g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A partition of the table at sectors [start, start + count): checked against the image. */
static int part_add(struct diskimg *d, unsigned int index, uint64_t start, uint64_t count,
		    struct diskimg_part **out)
{
	uint64_t sectors = d->size / SECTOR;

	if (d->nr_parts >= DISKIMG_MAX_PARTS) {
		log_error("'%s': more than %d partitions", d->path, DISKIMG_MAX_PARTS);
		return -1;
	}
	if (start > sectors || count > sectors - start) {
		log_error("'%s': partition %u (sectors %" PRIu64 "+%" PRIu64 ") extends beyond the end of the image (%" PRIu64 " sectors)",
			  d->path, index, start, count, sectors);
		return -1;
	}
	struct diskimg_part *p = &d->parts[d->nr_parts++];
	memset(p, 0, sizeof(*p));
	p->index = index;
	p->offset = start * SECTOR;
	p->size = count * SECTOR;
	*out = p;
	return 0;
}

/* ---- GPT ---- */

struct gpt {
	uint64_t my_lba, entries_lba;
	uint32_t nr_entries, entry_size;
	uint8_t *entries;
};

/* Read and check the header at lba and its entry array; 0, or -1 with why filled in. */
static int gpt_read(struct diskimg *d, uint64_t lba, struct gpt *g, char *why, size_t why_size)
{
	uint8_t h[SECTOR];
	uint64_t sectors = d->size / SECTOR;

	g->entries = NULL;
	if (lba >= sectors || diskimg_pread_quiet(d, lba * SECTOR, h, sizeof(h)) < 0) {
		snprintf(why, why_size, "sector %" PRIu64 " is beyond the end of the image", lba);
		return -1;
	}
	if (memcmp(h, "EFI PART", 8)) {
		snprintf(why, why_size, "no signature at sector %" PRIu64, lba);
		return -1;
	}
	uint32_t hsize = le32(h + 12);
	if (hsize < GPT_HEADER_MIN || hsize > SECTOR) {
		snprintf(why, why_size, "header size %" PRIu32 " at sector %" PRIu64, hsize, lba);
		return -1;
	}
	uint32_t want = le32(h + 16);
	memset(h + 16, 0, 4);
	if ((uint32_t)crc32(0, h, hsize) != want) {
		snprintf(why, why_size, "bad header CRC at sector %" PRIu64, lba);
		return -1;
	}
	g->my_lba = le64(h + 24);
	if (g->my_lba != lba) {
		snprintf(why, why_size, "header at sector %" PRIu64 " says it is at %" PRIu64, lba, g->my_lba);
		return -1;
	}
	g->entries_lba = le64(h + 72);
	g->nr_entries = le32(h + 80);
	g->entry_size = le32(h + 84);
	if (g->entry_size < 128 || g->entry_size > GPT_ENTRY_MAX_SIZE || g->entry_size % 8) {
		snprintf(why, why_size, "entry size %" PRIu32, g->entry_size);
		return -1;
	}
	/* Both are 32-bit: the product cannot overflow 64 bits. */
	uint64_t bytes = (uint64_t)g->nr_entries * g->entry_size;
	if (!g->nr_entries || bytes > GPT_ENTRIES_MAX_BYTES) {
		snprintf(why, why_size, "%" PRIu32 " entries of %" PRIu32 " bytes", g->nr_entries, g->entry_size);
		return -1;
	}
	if (g->entries_lba < 1 || g->entries_lba >= sectors ||
	    bytes > (sectors - g->entries_lba) * SECTOR) {
		snprintf(why, why_size, "entry array at sector %" PRIu64 " is beyond the end of the image",
			 g->entries_lba);
		return -1;
	}
	g->entries = malloc(bytes);
	if (!g->entries) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	if (diskimg_pread_quiet(d, g->entries_lba * SECTOR, g->entries, bytes) < 0) {
		snprintf(why, why_size, "cannot read the entry array at sector %" PRIu64, g->entries_lba);
		goto err_free;
	}
	if ((uint32_t)crc32(0, g->entries, (uInt)bytes) != le32(h + 88)) {
		snprintf(why, why_size, "bad entry array CRC (header at sector %" PRIu64 ")", lba);
		goto err_free;
	}
	return 0;

err_free:
	free(g->entries);
	g->entries = NULL;
	return -1;
}

static int gpt_parse(struct diskimg *d)
{
	struct gpt g;
	char why1[160], why2[160];
	uint64_t last = d->size / SECTOR - 1;

	if (gpt_read(d, 1, &g, why1, sizeof(why1)) < 0) {
		if (gpt_read(d, last, &g, why2, sizeof(why2)) < 0) {
			log_error("'%s': no valid GPT: primary: %s; backup: %s", d->path, why1, why2);
			return -1;
		}
		log_warn("'%s': the primary GPT is corrupt (%s), using the backup", d->path, why1);
	}
	d->table = DISKIMG_GPT;
	for (uint32_t i = 0; i < g.nr_entries; i++) {
		const uint8_t *e = g.entries + (size_t)i * g.entry_size;
		struct diskimg_part *p;

		if (all_zero(e, 16))
			continue;
		uint64_t first = le64(e + 32), end = le64(e + 40);
		if (end < first) {
			log_error("'%s': GPT partition %" PRIu32 " ends (sector %" PRIu64 ") before it starts (%" PRIu64 ")",
				  d->path, i + 1, end, first);
			goto err_free;
		}
		/* end - first + 1 cannot overflow unless first == 0 and end == max: part_add refuses it. */
		uint64_t count = end - first == UINT64_MAX ? UINT64_MAX : end - first + 1;
		if (part_add(d, i + 1, first, count, &p) < 0)
			goto err_free;
		p->esp = !memcmp(e, gpt_esp_type, 16);
		p->bootable = (le64(e + 48) >> 2) & 1;
		guid_format(e + 16, p->partuuid);
		diskimg_utf16le_to_utf8(e + 56, 36, p->name, sizeof(p->name));
	}
	free(g.entries);
	return 0;

err_free:
	free(g.entries);
	return -1;
}

/* ---- MBR ---- */

static bool mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static void mbr_part_fill(struct diskimg_part *p, uint32_t disksig, uint8_t boot, uint8_t type)
{
	p->bootable = boot == 0x80;
	p->mbr_type = type;
	p->esp = type == MBR_TYPE_ESP;
	snprintf(p->partuuid, sizeof(p->partuuid), "%08" PRIx32 "-%02x", disksig, p->index);
}

/*
 * The logical partitions in the chain of EBRs of the extended partition at
 * [ext_start, +ext_size), numbered from *next (5 for the first), as Linux's
 * parse_extended() does. A chain that comes back to an EBR is an error.
 */
static int mbr_parse_extended(struct diskimg *d, uint64_t ext_start, uint64_t ext_size,
			      uint32_t disksig, unsigned int *next)
{
	uint64_t visited[DISKIMG_MAX_PARTS];
	unsigned int nr_visited = 0;
	uint64_t this = ext_start;
	uint8_t s[SECTOR];

	for (;;) {
		for (unsigned int i = 0; i < nr_visited; i++) {
			if (visited[i] == this) {
				log_error("'%s': the extended partition's chain loops back to sector %" PRIu64,
					  d->path, this);
				return -1;
			}
		}
		if (nr_visited == DISKIMG_MAX_PARTS) {
			log_error("'%s': the extended partition's chain has more than %d links",
				  d->path, DISKIMG_MAX_PARTS);
			return -1;
		}
		visited[nr_visited++] = this;
		if (this >= d->size / SECTOR) {
			log_error("'%s': extended partition link at sector %" PRIu64 " is beyond the end of the image",
				  d->path, this);
			return -1;
		}
		if (diskimg_pread(d, this * SECTOR, s, sizeof(s), "extended boot record") < 0)
			return -1;
		if (le16(s + MBR_SIGNATURE_OFF) != 0xaa55)
			return 0;	/* Linux stops here quietly too */

		bool have_link = false;
		uint64_t link = 0;
		for (unsigned int i = 0; i < 4; i++) {
			const uint8_t *e = s + MBR_TABLE_OFF + 16 * i;
			uint8_t type = e[4];
			uint64_t start = le32(e + 8), count = le32(e + 12);
			struct diskimg_part *p;

			if (!count)
				continue;
			if (mbr_is_extended(type)) {
				if (!have_link) {
					have_link = true;
					link = start;
				}
				continue;
			}
			/* Entries 3 and 4 often hold garbage: Linux ignores those outside the extended partition. */
			if (i >= 2 && (this + start < ext_start || this + start + count > ext_start + ext_size))
				continue;
			if (part_add(d, *next, this + start, count, &p) < 0)
				return -1;
			mbr_part_fill(p, disksig, e[0], type);
			(*next)++;
		}
		if (!have_link)
			return 0;
		if (link >= ext_size) {
			log_error("'%s': extended partition link (sector %" PRIu64 ") outside the extended partition",
				  d->path, ext_start + link);
			return -1;
		}
		this = ext_start + link;
	}
}

static int mbr_parse(struct diskimg *d, const uint8_t *s)
{
	uint32_t disksig = le32(s + MBR_DISKSIG_OFF);
	unsigned int next = 5;

	d->table = DISKIMG_MBR;
	for (unsigned int i = 0; i < 4; i++) {
		const uint8_t *e = s + MBR_TABLE_OFF + 16 * i;
		uint8_t type = e[4];
		uint64_t start = le32(e + 8), count = le32(e + 12);
		struct diskimg_part *p;

		if (!count)
			continue;
		/* An extended partition is listed too (Linux makes it a device), then its logical ones. */
		if (part_add(d, i + 1, start, count, &p) < 0)
			return -1;
		mbr_part_fill(p, disksig, e[0], type);
		if (mbr_is_extended(type) && mbr_parse_extended(d, start, count, disksig, &next) < 0)
			return -1;
	}
	/* Logical partitions were appended as their chain was met: table order is by number. */
	for (unsigned int i = 1; i < d->nr_parts; i++) {
		struct diskimg_part t = d->parts[i];
		unsigned int j = i;
		for (; j > 0 && d->parts[j - 1].index > t.index; j--)
			d->parts[j] = d->parts[j - 1];
		d->parts[j] = t;
	}
	return 0;
}

/* ---- detection ---- */

static int whole_disk(struct diskimg *d)
{
	d->table = DISKIMG_NONE;
	d->nr_parts = 1;
	memset(&d->parts[0], 0, sizeof(d->parts[0]));
	d->parts[0].size = d->size;
	return 0;
}

static int table_parse(struct diskimg *d)
{
	uint8_t s[SECTOR];
	bool fs_on_disk = fs_ext_magic(d, 0, d->size) || fs_fat_magic(d, 0, d->size);

	if (diskimg_pread(d, 0, s, sizeof(s), "first sector") < 0)
		return -1;
	if (le16(s + MBR_SIGNATURE_OFF) == 0xaa55) {
		bool valid = true, any = false, gpt = false;
		for (unsigned int i = 0; i < 4; i++) {
			const uint8_t *e = s + MBR_TABLE_OFF + 16 * i;
			/* A FAT boot sector has code here: the boot flag tells them apart, as in Linux. */
			if (e[0] != 0 && e[0] != 0x80)
				valid = false;
			if (le32(e + 12))
				any = true;
			if (e[4] == MBR_TYPE_GPT)
				gpt = true;
		}
		if (valid && gpt)
			return gpt_parse(d);
		if (valid && (any || !fs_on_disk))
			return mbr_parse(d, s);
	}
	if (fs_on_disk)
		return whole_disk(d);
	log_error("'%s': no partition table and no ext2/3/4 or FAT file system", d->path);
	return -1;
}

struct diskimg *diskimg_open(const char *path)
{
	struct diskimg *d = calloc(1, sizeof(*d));
	struct stat st;

	if (!d) {
		log_error("'%s': out of memory", path);
		return NULL;
	}
	d->path = strdup(path);
	if (!d->path) {
		log_error("'%s': out of memory", path);
		goto err_free;
	}
	d->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (d->fd < 0) {
		log_error("cannot open disk image '%s': %s", path, strerror(errno));
		goto err_free;
	}
	if (fstat(d->fd, &st) < 0) {
		log_error("cannot stat disk image '%s': %s", path, strerror(errno));
		goto err_close;
	}
	if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			log_error("cannot get the size of '%s': %s", path, strerror(errno));
			goto err_close;
		}
	} else {
		log_error("disk image '%s' is not a regular file or a block device", path);
		goto err_close;
	}
	if (d->size < SECTOR) {
		log_error("disk image '%s' is too small (%" PRIu64 " bytes)", path, d->size);
		goto err_close;
	}
	if (table_parse(d) < 0)
		goto err_close;
	return d;

err_close:
	close(d->fd);
err_free:
	free(d->path);
	free(d);
	return NULL;
}

void diskimg_close(struct diskimg *d)
{
	if (!d)
		return;
	close(d->fd);
	free(d->path);
	free(d);
}

/* ---- file systems ---- */

static struct fs *fs_open_part(struct diskimg *d, const struct diskimg_part *part, bool quiet)
{
	bool corrupt = false;
	struct fs *fs = fs_ext_open(d, part, true, &corrupt);

	if (fs || corrupt)
		return fs;
	fs = fs_fat_open(d, part, true, &corrupt);
	if (fs || corrupt)
		return fs;
	if (!quiet) {
		if (part->index)
			log_error("'%s': partition %u: no ext2/3/4 or FAT file system", d->path, part->index);
		else
			log_error("'%s': no ext2/3/4 or FAT file system", d->path);
	}
	return NULL;
}

struct fs *fs_open(struct diskimg *d, const struct diskimg_part *part)
{
	return fs_open_part(d, part, false);
}

struct fs *fs_probe(struct diskimg *d, const struct diskimg_part *part)
{
	return fs_open_part(d, part, true);
}

void fs_close(struct fs *fs)
{
	if (fs)
		fs->ops->close(fs);
}

enum fs_type fs_kind(const struct fs *fs)
{
	return fs->kind;
}

const char *fs_type_name(const struct fs *fs)
{
	return fs->type_name;
}

const char *fs_uuid(const struct fs *fs)
{
	return fs->uuid;
}

const char *fs_label(const struct fs *fs)
{
	return fs->label;
}

int fs_read_file(struct fs *fs, const char *path, size_t max, void **buf, size_t *len)
{
	return fs->ops->read_file(fs, path, max, buf, len);
}

bool fs_is_dir(struct fs *fs, const char *path)
{
	enum fs_node node;
	return fs->ops->stat(fs, path, &node) == 0 && node == FS_NODE_DIR;
}

bool fs_is_file(struct fs *fs, const char *path)
{
	enum fs_node node;
	return fs->ops->stat(fs, path, &node) == 0 && node == FS_NODE_FILE;
}

int fs_list_dir(struct fs *fs, const char *path,
		int (*fn)(void *arg, const char *name, bool is_dir), void *arg)
{
	return fs->ops->list_dir(fs, path, fn, arg);
}
