/*
 * bootvm-mkdisk: tar archives and directories streamed into an ext4 image
 * through libext2fs. mke2fs (Debian's e2fsprogs) makes the empty filesystem
 * on a sparse temporary file; every entry is then written here: inodes,
 * directory entries, data blocks, xattrs. Nothing is mounted or unpacked, so
 * owners, modes, devices and capabilities come out as the archive says even
 * when an unprivileged user runs it.
 *
 * Paths are resolved inside the image by our own table of what has been
 * written (path -> inode), never by following a symlink: an entry "through" a
 * symlink is refused, ".." is refused, a leading '/' is dropped.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/mkdisk.h"
#include "util/log.h"
#include "util/size.h"

extern char **environ;

#define MKDISK_BLOCK_SIZE	4096u
#define MKDISK_INODE_SIZE	256u
/* ext4's file size limit with 4 KiB blocks; anything claiming more is refused. */
#define MKDISK_MAX_FILE		(16ull << 40)
#define MKDISK_MAX_LINKS	65000u
/* Files read back from the image (/etc/passwd, authorized_keys). */
#define MKDISK_MAX_READ		(16u << 20)
#define MKDISK_MAX_KEY		(1u << 20)
/* A file's data is written in runs of at most this many bytes (a multiple of the block size). */
#define MKDISK_RUN_MAX		(32u << 20)

/* ---- path -> inode table: everything written so far ---- */

struct node {
	struct node *next;
	ext2_ino_t ino;
	uint16_t type;		/* LINUX_S_IFMT bits */
	size_t len;
	char path[];
};

struct node_map {
	struct node **buckets;
	size_t n_buckets, count;
};

static uint64_t path_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h;
}

static struct node *map_get(struct node_map *m, const char *path, size_t len)
{
	for (struct node *n = m->buckets[path_hash(path, len) % m->n_buckets]; n; n = n->next)
		if (n->len == len && !memcmp(n->path, path, len))
			return n;
	return NULL;
}

static int map_grow(struct node_map *m)
{
	size_t nb = m->n_buckets ? m->n_buckets * 2 : 4096;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct node *n = m->buckets[i], *next;

		for (; n; n = next) {
			size_t k = path_hash(n->path, n->len) % nb;

			next = n->next;
			n->next = b[k];
			b[k] = n;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
	return 0;
}

/* Set path's inode (adding it if new). -1 if out of memory (logged). */
static int map_put(struct node_map *m, const char *path, size_t len, ext2_ino_t ino, uint16_t type)
{
	struct node *n = map_get(m, path, len);
	size_t k;

	if (n) {
		n->ino = ino;
		n->type = type;
		return 0;
	}
	if (m->count >= m->n_buckets && map_grow(m) < 0)
		goto oom;
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		goto oom;
	n->ino = ino;
	n->type = type;
	n->len = len;
	memcpy(n->path, path, len);
	n->path[len] = 0;
	k = path_hash(path, len) % m->n_buckets;
	n->next = m->buckets[k];
	m->buckets[k] = n;
	m->count++;
	return 0;
oom:
	log_error("mkdisk: out of memory");
	return -1;
}

static void map_del(struct node_map *m, const char *path, size_t len)
{
	struct node **p = &m->buckets[path_hash(path, len) % m->n_buckets];

	for (; *p; p = &(*p)->next) {
		struct node *n = *p;

		if (n->len == len && !memcmp(n->path, path, len)) {
			*p = n->next;
			free(n);
			m->count--;
			return;
		}
	}
}

static void map_free(struct node_map *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct node *n = m->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = m->count = 0;
}

/* ---- pure helpers (unit-tested) ---- */

int mkdisk_path_normalize(const char *in, char *out, size_t size)
{
	size_t o = 0;

	if (!size)
		return -1;
	while (*in) {
		const char *end;
		size_t n;

		while (*in == '/')
			in++;
		end = strchrnul(in, '/');
		n = (size_t)(end - in);
		if (n == 0 || (n == 1 && in[0] == '.')) {
			in = end;
			continue;
		}
		if (n == 2 && in[0] == '.' && in[1] == '.')
			return -1;
		if (n > EXT2_NAME_LEN || o + (o ? 1 : 0) + n >= size)
			return -1;
		if (o)
			out[o++] = '/';
		memcpy(out + o, in, n);
		o += n;
		in = end;
	}
	out[o] = 0;
	return 0;
}

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (!len || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int mkdisk_passwd_lookup(const char *text, size_t len, const char *user,
			 uint32_t *uid, uint32_t *gid, char **home)
{
	size_t ulen = strlen(user);
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *f[7];
		size_t fl[7];
		int nf = 0;

		if (!eol)
			eol = end;
		/* name:passwd:uid:gid:gecos:home:shell */
		for (const char *q = p; nf < 7; nf++) {
			const char *c = memchr(q, ':', (size_t)(eol - q));

			f[nf] = q;
			fl[nf] = (size_t)((c ? c : eol) - q);
			if (!c) {
				nf++;
				break;
			}
			q = c + 1;
		}
		if (nf >= 6 && fl[0] == ulen && !memcmp(f[0], user, ulen) &&
		    !parse_u32(f[2], fl[2], uid) && !parse_u32(f[3], fl[3], gid)) {
			*home = strndup(f[5], fl[5]);
			return *home ? 0 : -1;
		}
		p = eol + 1;
	}
	return -1;
}

uint64_t mkdisk_auto_size(uint64_t data_blocks, uint64_t inodes, unsigned int block_size)
{
	uint64_t base = data_blocks * block_size + inodes * MKDISK_INODE_SIZE;
	uint64_t size = base + base / 100 * MKDISK_AUTO_PERCENT + MKDISK_AUTO_EXTRA;
	int journal = ext2fs_default_journal_size(size / block_size);

	if (journal > 0)
		size += (uint64_t)journal * block_size;
	return (size + (1u << 20) - 1) & ~((uint64_t)(1u << 20) - 1);
}

/* Inodes for --size auto: the entries plus the same headroom. */
static uint64_t auto_inodes(uint64_t entries)
{
	return entries + entries / 100 * MKDISK_AUTO_PERCENT + 1024;
}

/* ---- the builder ---- */

/*
 * File data straight from a mapped archive is written by a second thread
 * with pwrite() on its own descriptor, so that the kernel's copy into the
 * image's page cache runs beside the parsing and allocating. Metadata stays
 * with libext2fs's io_channel; the two never share a block while both are
 * live: the queue is drained and the io_channel's cache dropped before any
 * block is freed (a replaced file), and drained before a mapping goes away
 * and before the image is closed.
 */
#define WRITER_QUEUE 256

struct writer {
	pthread_t thread;
	bool running;
	int fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct { uint64_t off; const uint8_t *p; size_t len; } q[WRITER_QUEUE];
	unsigned int head, tail;	/* tail: jobs done (not only taken) */
	bool stop;
	int err;			/* the first errno, 0 if none */
};

struct mkdisk {
	const struct mkdisk_options *opt;
	ext2_filsys fs;
	struct node_map map;
	int64_t now;
	/* Progress: raw input bytes of archive sources. */
	bool progress_on;
	uint64_t progress_total, progress_base;
	int progress_last;
	/* --size auto's census. */
	uint64_t census_entries, census_blocks, census_dirent_bytes;
	/* Entries written. */
	uint64_t written;
	/* A file's data on its way into the image (MKDISK_RUN_MAX bytes). */
	uint8_t *run_buf;
	/* The archive being read, when mapped: its data can be written from there. */
	const uint8_t *src_map;
	size_t src_map_len;
	struct writer w;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->head == w->tail && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->head == w->tail)
			break;
		uint64_t off = w->q[w->tail % WRITER_QUEUE].off;
		const uint8_t *p = w->q[w->tail % WRITER_QUEUE].p;
		size_t len = w->q[w->tail % WRITER_QUEUE].len;
		int err = 0;

		pthread_mutex_unlock(&w->lock);
		while (len && !err) {
			ssize_t n = pwrite(w->fd, p, len, (off_t)off);

			if (n > 0) {
				p += n;
				off += (uint64_t)n;
				len -= (size_t)n;
			} else if (n == 0 || errno != EINTR) {
				err = n == 0 ? EIO : errno;
			}
		}
		pthread_mutex_lock(&w->lock);
		if (err && !w->err)
			w->err = err;
		w->tail++;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int writer_start(struct mkdisk *m, const char *path)
{
	struct writer *w = &m->w;
	int err;

	w->fd = open(path, O_WRONLY | O_CLOEXEC);
	if (w->fd < 0) {
		log_error("mkdisk: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	err = pthread_create(&w->thread, NULL, writer_main, w);
	if (err) {
		log_error("mkdisk: cannot start the writer thread: %s", strerror(err));
		close(w->fd);
		return -1;
	}
	w->running = true;
	return 0;
}

/* Wait for every queued write: 0, or -1 (logged) if one failed. */
static int writer_drain(struct mkdisk *m)
{
	struct writer *w = &m->w;
	int err;

	if (!w->running)
		return 0;
	pthread_mutex_lock(&w->lock);
	while (w->head != w->tail)
		pthread_cond_wait(&w->cond, &w->lock);
	err = w->err;
	w->err = 0;
	pthread_mutex_unlock(&w->lock);
	if (err) {
		log_error("mkdisk: writing file data to the image: %s",
			  err == ENOSPC ? "no space left on the host's disk" : strerror(err));
		return -1;
	}
	return 0;
}

static int writer_stop(struct mkdisk *m)
{
	struct writer *w = &m->w;
	int ret;

	if (!w->running)
		return 0;
	ret = writer_drain(m);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	close(w->fd);
	w->running = false;
	return ret;
}

static void writer_put(struct mkdisk *m, uint64_t off, const uint8_t *p, size_t len)
{
	struct writer *w = &m->w;

	pthread_mutex_lock(&w->lock);
	while (w->head - w->tail == WRITER_QUEUE)
		pthread_cond_wait(&w->cond, &w->lock);
	w->q[w->head % WRITER_QUEUE].off = off;
	w->q[w->head % WRITER_QUEUE].p = p;
	w->q[w->head % WRITER_QUEUE].len = len;
	w->head++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Before blocks are freed: no write of theirs still queued, no stale copy in the cache. */
static int writer_barrier(struct mkdisk *m)
{
	errcode_t err;

	if (!m->w.running)
		return 0;
	if (writer_drain(m) < 0)
		return -1;
	/* unix_io drops its cache (after writing it back) when it is turned off */
	err = io_channel_set_options(m->fs->io, "cache=off");
	if (!err)
		err = io_channel_set_options(m->fs->io, "cache=on");
	if (err) {
		log_error("mkdisk: flushing the image's block cache: %s", error_message(err));
		return -1;
	}
	return 0;
}

/* Where the data of a regular file comes from. */
struct data_src {
	struct archive *a;	/* an archive's current entry, or NULL: */
	const void *mem;	/* a buffer */
	size_t mem_len;
};

/* How a source's names map into the image. */
struct source {
	const char *what;	/* for messages: the SOURCE or --add argument */
	struct archive *a;
	bool disk;		/* a directory (or --add file) read with read_disk */
	const char *host_root;	/* disk: the path given to read_disk */
	const char *dest;	/* normalized image path of the source's root */
	bool root_owner;	/* --add: owner and group 0 */
	int (*fn)(struct mkdisk *m, struct source *s, struct archive_entry *e, const char *path);
};

static char tmp_path[PATH_MAX];

static void tmp_cleanup_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The archives are mapped: one cut short while we read it faults here, not in libarchive. */
static void archive_sigbus(int sig)
{
	static const char msg[] = "bootvm: mkdisk: a source archive shrank while it was being read; "
				  "nothing written\n";

	(void)sig;
	if (tmp_path[0])
		unlink(tmp_path);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

static bool err_is_full(errcode_t err)
{
	return err == EXT2_ET_BLOCK_ALLOC_FAIL || err == EXT2_ET_INODE_ALLOC_FAIL ||
	       err == EXT2_ET_EA_NO_SPACE || err == EXT2_ET_DIR_NO_SPACE;
}

/* One line for a libext2fs error on path; returns -1. */
static int fs_fail(struct mkdisk *m, const char *path, const char *what, errcode_t err)
{
	if (err_is_full(err)) {
		log_error("mkdisk: /%s: %s: the image is full (%s): %s is too small for the "
			  "content", path, what, error_message(err),
			  m->opt->size ? "--size" : "the automatic size");
	} else {
		log_error("mkdisk: /%s: %s: %s", path, what, error_message(err));
	}
	return -1;
}

static void progress_show(struct mkdisk *m, struct archive *a)
{
	uint64_t done;
	int pct;
	char d[32], t[32];
	static const char bar[] = "##############################";

	if (!m->progress_on || !a)
		return;
	done = m->progress_base + (uint64_t)archive_filter_bytes(a, -1);
	pct = m->progress_total ? (int)(done * 100 / m->progress_total) : 100;
	if (pct > 100)
		pct = 100;
	if (pct == m->progress_last)
		return;
	m->progress_last = pct;
	fprintf(stderr, "\rbootvm mkdisk: [%-30.*s] %3d%% %s of %s\033[K", pct * 30 / 100, bar, pct,
		size_format(done, d, sizeof(d)), size_format(m->progress_total, t, sizeof(t)));
}

static void progress_end(struct mkdisk *m)
{
	if (m->progress_on && m->progress_last >= 0)
		fprintf(stderr, "\r\033[K");
	m->progress_last = -1;
}

/* ---- inodes ---- */

static uint32_t time_extra(int64_t sec, long nsec)
{
	return (uint32_t)(((sec - (int32_t)sec) >> 32) & EXT4_EPOCH_MASK) |
	       ((uint32_t)nsec << EXT4_EPOCH_BITS);
}

/* ext4 times reach from 1901 to 2446. */
static int64_t time_clamp(int64_t sec)
{
	const int64_t lo = INT32_MIN, hi = (int64_t)INT32_MIN + (1ll << 34) - 1;

	return sec < lo ? lo : sec > hi ? hi : sec;
}

#define INODE_HAS(in, field) \
	(EXT2_GOOD_OLD_INODE_SIZE + (size_t)(in)->i_extra_isize >= \
	 offsetof(struct ext2_inode_large, field) + sizeof((in)->field))

#define INODE_TIME_SET(in, name, sec, nsec) do { \
	int64_t s_ = time_clamp(sec); \
	(in)->i_##name = (uint32_t)s_; \
	if (INODE_HAS(in, i_##name##_extra)) \
		(in)->i_##name##_extra = time_extra(s_, (nsec)); \
} while (0)

/* Mode bits, owner, group and times of e on inode ino (whose type stays). */
static int inode_attrs_set(struct mkdisk *m, ext2_ino_t ino, struct archive_entry *e, const char *path)
{
	struct ext2_inode_large in;
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	int64_t mt = archive_entry_mtime(e);
	long mtn = archive_entry_mtime_nsec(e);
	errcode_t err;

	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX) {
		log_error("mkdisk: /%s: owner %" PRId64 ":%" PRId64 " is out of range", path, uid, gid);
		return -1;
	}
	if (!archive_entry_mtime_is_set(e)) {
		mt = m->now;
		mtn = 0;
	}
	err = ext2fs_read_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot read its inode", err);
	in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (archive_entry_perm(e) & 07777));
	in.i_uid = (uint16_t)uid;
	ext2fs_set_i_uid_high(in, (uint16_t)(uid >> 16));
	in.i_gid = (uint16_t)gid;
	ext2fs_set_i_gid_high(in, (uint16_t)(gid >> 16));
	INODE_TIME_SET(&in, mtime, mt, mtn);
	/* Absent times (plain ustar has only mtime) are the mtime, so that images are reproducible. */
	if (archive_entry_atime_is_set(e))
		INODE_TIME_SET(&in, atime, archive_entry_atime(e), archive_entry_atime_nsec(e));
	else
		INODE_TIME_SET(&in, atime, mt, mtn);
	if (archive_entry_ctime_is_set(e))
		INODE_TIME_SET(&in, ctime, archive_entry_ctime(e), archive_entry_ctime_nsec(e));
	else
		INODE_TIME_SET(&in, ctime, mt, mtn);
	if (INODE_HAS(&in, i_crtime_extra)) {
		if (archive_entry_birthtime_is_set(e))
			INODE_TIME_SET(&in, crtime, archive_entry_birthtime(e),
				       archive_entry_birthtime_nsec(e));
		else
			INODE_TIME_SET(&in, crtime, mt, mtn);
	}
	err = ext2fs_write_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot write its inode", err);
	return 0;
}

static int inode_xattrs_set(struct mkdisk *m, ext2_ino_t ino, struct archive_entry *e, const char *path)
{
	struct ext2_xattr_handle *h;
	const char *name;
	const void *value;
	size_t size;
	errcode_t err;

	if (archive_entry_xattr_reset(e) <= 0)
		return 0;
	err = ext2fs_xattrs_open(m->fs, ino, &h);
	if (err)
		return fs_fail(m, path, "cannot open its xattrs", err);
	err = ext2fs_xattrs_read(h);
	if (err)
		goto fail_handle;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		err = ext2fs_xattr_set(h, name, value, size);
		if (err) {
			log_error("mkdisk: /%s: cannot set xattr %s (%zu bytes): %s", path, name, size,
				  error_message(err));
			ext2fs_xattrs_close(&h);
			return -1;
		}
	}
	err = ext2fs_xattrs_close(&h);
	if (err)
		return fs_fail(m, path, "cannot write its xattrs", err);
	return 0;
fail_handle:
	ext2fs_xattrs_close(&h);
	return fs_fail(m, path, "cannot read its xattrs", err);
}

static int dir_link(struct mkdisk *m, ext2_ino_t dir, const char *name, ext2_ino_t ino, int ft,
		    const char *path)
{
	errcode_t err = ext2fs_link(m->fs, dir, name, ino, ft);

	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(m->fs, dir);
		if (!err)
			err = ext2fs_link(m->fs, dir, name, ino, ft);
	}
	if (err)
		return fs_fail(m, path, "cannot add its directory entry", err);
	return 0;
}

static int ft_of(unsigned int type)
{
	switch (type) {
	case LINUX_S_IFREG: return EXT2_FT_REG_FILE;
	case LINUX_S_IFDIR: return EXT2_FT_DIR;
	case LINUX_S_IFCHR: return EXT2_FT_CHRDEV;
	case LINUX_S_IFBLK: return EXT2_FT_BLKDEV;
	case LINUX_S_IFIFO: return EXT2_FT_FIFO;
	case LINUX_S_IFSOCK: return EXT2_FT_SOCK;
	case LINUX_S_IFLNK: return EXT2_FT_SYMLINK;
	}
	return EXT2_FT_UNKNOWN;
}

/* Remove the non-directory name (node n) from dir, freeing its inode with its last link. */
static int node_unlink(struct mkdisk *m, ext2_ino_t dir, const char *name, struct node *n)
{
	struct ext2_inode_large in;
	ext2_ino_t ino = n->ino;
	errcode_t err;
	const char *path = n->path;

	if (writer_barrier(m) < 0)
		return -1;
	err = ext2fs_unlink(m->fs, dir, name, ino, 0);
	if (err)
		return fs_fail(m, path, "cannot replace it", err);
	err = ext2fs_read_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot read its inode", err);
	if (in.i_links_count > 0)
		in.i_links_count--;
	if (!in.i_links_count) {
		err = ext2fs_free_ext_attr(m->fs, ino, &in);
		if (!err && ext2fs_inode_has_valid_blocks2(m->fs, (struct ext2_inode *)&in))
			err = ext2fs_punch(m->fs, ino, (struct ext2_inode *)&in, NULL, 0, ~0ULL);
		if (err)
			return fs_fail(m, path, "cannot free its blocks", err);
		in.i_dtime = (uint32_t)m->now;
		ext2fs_inode_alloc_stats2(m->fs, ino, -1, 0);
	}
	err = ext2fs_write_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot write its inode", err);
	map_del(&m->map, n->path, n->len);
	return 0;
}

static int node_mkdir(struct mkdisk *m, ext2_ino_t parent, const char *name, const char *path,
		      ext2_ino_t *out)
{
	ext2_ino_t ino;
	errcode_t err;

	err = ext2fs_new_inode(m->fs, parent, LINUX_S_IFDIR | 0755, NULL, &ino);
	if (!err)
		err = ext2fs_mkdir(m->fs, parent, ino, NULL);
	if (err == EXT2_ET_DIR_NO_SPACE)	/* as ext2fs_mkdir reports a full image */
		err = EXT2_ET_BLOCK_ALLOC_FAIL;
	if (err)
		return fs_fail(m, path, "cannot make the directory", err);
	if (dir_link(m, parent, name, ino, EXT2_FT_DIR, path) < 0)
		return -1;
	*out = ino;
	return 0;
}

/*
 * The directory inode of path (len bytes of it), made (0755, root, now) with
 * its parents if missing. Anything else in the way, a symlink included, is
 * an error: nothing is followed.
 */
static int parent_resolve(struct mkdisk *m, const char *path, size_t len, const char *entry,
			  ext2_ino_t *out)
{
	struct node *n = map_get(&m->map, path, len);
	const char *slash;
	ext2_ino_t pino, ino;
	char name[EXT2_NAME_LEN + 1];
	struct archive_entry *e;
	int ret;

	if (n) {
		if (n->type != LINUX_S_IFDIR) {
			log_error("mkdisk: /%s: /%.*s is %s, not a directory (symlinks are not followed "
				  "in the image)", entry, (int)len, path,
				  n->type == LINUX_S_IFLNK ? "a symlink" : "a file");
			return -1;
		}
		*out = n->ino;
		return 0;
	}
	slash = memrchr(path, '/', len);
	if (parent_resolve(m, path, slash ? (size_t)(slash - path) : 0, entry, &pino) < 0)
		return -1;
	snprintf(name, sizeof(name), "%.*s", (int)(len - (slash ? (size_t)(slash + 1 - path) : 0)),
		 slash ? slash + 1 : path);
	{
		char full[PATH_MAX];

		snprintf(full, sizeof(full), "%.*s", (int)len, path);
		if (node_mkdir(m, pino, name, full, &ino) < 0)
			return -1;
		e = archive_entry_new();
		if (!e) {
			log_error("mkdisk: out of memory");
			return -1;
		}
		archive_entry_set_perm(e, 0755);
		archive_entry_set_mtime(e, m->now, 0);
		ret = inode_attrs_set(m, ino, e, full);
		archive_entry_free(e);
		if (ret < 0 || map_put(&m->map, path, len, ino, LINUX_S_IFDIR) < 0)
			return -1;
	}
	*out = ino;
	return 0;
}

static bool block_is_zero(const uint8_t *p, size_t n)
{
	return p[0] == 0 && !memcmp(p, p + 1, n - 1);
}

/* Next piece of a file's data: 1 with it, 0 at the end, -1 on error (logged). */
static int data_next(struct data_src *src, const char *path, const void **buf, size_t *len,
		     int64_t *off)
{
	if (!src->a) {
		if (!src->mem)
			return 0;
		*buf = src->mem;
		*len = src->mem_len;
		*off = 0;
		src->mem = NULL;
		return 1;
	}
	int r = archive_read_data_block(src->a, buf, len, off);

	if (r == ARCHIVE_EOF)
		return 0;
	if (r < ARCHIVE_WARN) {
		log_error("mkdisk: /%s: cannot read its data: %s", path,
			  archive_error_string(src->a) ? archive_error_string(src->a) : "unknown error");
		return -1;
	}
	return 1;
}

/*
 * A file's data is gathered into runs of up to MKDISK_RUN_MAX contiguous
 * bytes (from a block boundary) and each run's non-zero blocks are allocated
 * with one ext2fs_fallocate() and written with one io_channel write per
 * extent: per-block allocation (ext2fs_file_write) rewrote the inode and
 * its checksum for every 4 KiB.
 */
struct run {
	uint64_t start;		/* byte offset in the file, block-aligned */
	size_t len;		/* bytes gathered */
};

/* Allocate and write n blocks of data at file block lblk; the last from tail if not NULL. */
static errcode_t blocks_write(struct mkdisk *m, ext2_ino_t ino, blk64_t lblk, blk64_t n,
			      const uint8_t *data, const uint8_t *tail)
{
	const unsigned int bs = m->fs->blocksize;
	ext2_extent_handle_t h;
	struct ext2fs_extent ex;
	errcode_t err;

	err = ext2fs_fallocate(m->fs, EXT2_FALLOCATE_FORCE_INIT | EXT2_FALLOCATE_INIT_BEYOND_EOF,
			       ino, NULL, ~0ull, lblk, n);
	if (err)
		return err;
	err = ext2fs_extent_open2(m->fs, ino, NULL, &h);
	if (err)
		return err;
	while (n) {
		blk64_t cnt;

		err = ext2fs_extent_goto(h, lblk);
		if (!err)
			err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ex);
		if (err)
			break;
		/* fallocate mapped every block of the range: anything else is a libext2fs bug */
		if (ex.e_lblk > lblk || ex.e_lblk + ex.e_len <= lblk ||
		    (ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT)) {
			err = EXT2_ET_EXTENT_NOT_FOUND;
			break;
		}
		cnt = ex.e_lblk + ex.e_len - lblk;
		if (cnt > n)
			cnt = n;
		blk64_t pblk = ex.e_pblk + (lblk - ex.e_lblk), direct = cnt == n && tail ? cnt - 1 : cnt;

		if (direct && m->w.running && data >= m->src_map && data < m->src_map + m->src_map_len)
			writer_put(m, pblk * bs, data, direct * bs);
		else if (direct)
			err = io_channel_write_blk64(m->fs->io, pblk, (int)direct, data);
		if (!err && direct < cnt)
			err = io_channel_write_blk64(m->fs->io, pblk + direct, 1, tail);
		if (err)
			break;
		lblk += cnt;
		n -= cnt;
		data += cnt * bs;
	}
	ext2fs_extent_free(h);
	return err;
}

/*
 * Write len bytes of data at file offset start (block-aligned): its whole zero
 * blocks stay holes. A last partial block is written zero-padded, through
 * m->run_buf's last block (so data may be m->run_buf itself, shorter than that).
 */
static errcode_t data_put(struct mkdisk *m, ext2_ino_t ino, uint64_t start, const uint8_t *data,
			  size_t len)
{
	const unsigned int bs = m->fs->blocksize;
	size_t nblocks = (len + bs - 1) / bs, i = 0;
	uint8_t *tail = NULL;
	errcode_t err = 0;

	if (len % bs) {
		tail = m->run_buf + MKDISK_RUN_MAX - bs;
		memmove(tail, data + len - len % bs, len % bs);
		memset(tail + len % bs, 0, bs - len % bs);
	}
#define BLOCK(k) (tail && (k) == nblocks - 1 ? tail : data + (k) * bs)
	while (i < nblocks && !err) {
		size_t j;

		while (i < nblocks && block_is_zero(BLOCK(i), bs))
			i++;
		for (j = i; j < nblocks && !block_is_zero(BLOCK(j), bs); j++)
			;
		if (j > i)
			err = blocks_write(m, ino, start / bs + i, j - i, data + i * bs,
					   tail && j == nblocks ? tail : NULL);
		i = j;
	}
#undef BLOCK
	return err;
}

/* Write the run gathered in m->run_buf. */
static errcode_t run_flush(struct mkdisk *m, ext2_ino_t ino, struct run *r)
{
	errcode_t err = data_put(m, ino, r->start, m->run_buf, r->len);

	r->start += r->len;
	r->len = 0;
	return err;
}

/*
 * Add len bytes at file offset o to the run, flushing it when full or when o
 * jumps ahead. A piece that starts a block and is the rest of the file (an
 * uncompressed archive read from memory gives a file's data in one piece) or
 * a whole run's worth is written from where it is, without the copy.
 */
static errcode_t run_put(struct mkdisk *m, ext2_ino_t ino, struct run *r, uint64_t o,
			 const uint8_t *p, size_t len, uint64_t size)
{
	const unsigned int bs = m->fs->blocksize;
	errcode_t err;

	if (!r->len && o % bs == 0 && (o + len == size || len >= MKDISK_RUN_MAX)) {
		size_t n = o + len == size ? len : len - len % bs;

		err = data_put(m, ino, o, p, n);
		if (err)
			return err;
		r->start = o + n;
		o += n;
		p += n;
		len -= n;
	}
	while (len) {
		uint64_t end = r->start + r->len;

		if (r->len && o != end) {
			/* Zeros to the end of the run's last block, so no block is in two runs. */
			size_t pad = (size_t)((bs - end % bs) % bs);

			if (pad > o - end)
				pad = (size_t)(o - end);
			memset(m->run_buf + r->len, 0, pad);
			r->len += pad;
			if (o != end + pad) {
				err = run_flush(m, ino, r);
				if (err)
					return err;
			}
			continue;
		}
		if (!r->len) {
			r->start = o - o % bs;
			r->len = (size_t)(o % bs);
			memset(m->run_buf, 0, r->len);
		}
		size_t n = MKDISK_RUN_MAX - r->len;

		if (n > len)
			n = len;
		memcpy(m->run_buf + r->len, p, n);
		r->len += n;
		o += n;
		p += n;
		len -= n;
		if (r->len == MKDISK_RUN_MAX) {
			err = run_flush(m, ino, r);
			if (err)
				return err;
		}
	}
	return 0;
}

/* The data of a new regular file; whole zero blocks and the archive's holes stay holes. */
static int file_data_write(struct mkdisk *m, ext2_ino_t ino, struct data_src *src, uint64_t size,
			   const char *path)
{
	struct ext2_inode_large in;
	struct run run = { 0 };
	uint64_t pos = 0;
	errcode_t err = 0;
	int r;

	if (!m->run_buf) {
		m->run_buf = malloc(MKDISK_RUN_MAX);
		if (!m->run_buf) {
			log_error("mkdisk: out of memory");
			return -1;
		}
	}
	for (;;) {
		const void *buf;
		size_t len;
		int64_t off;

		r = data_next(src, path, &buf, &len, &off);
		if (r <= 0)
			break;
		if (off < 0 || (uint64_t)off > size || len > size - (uint64_t)off ||
		    (uint64_t)off < pos) {
			log_error("mkdisk: /%s: data at %" PRId64 " is %s", path, off,
				  (uint64_t)off < pos ? "out of order" : "beyond its size");
			return -1;
		}
		err = run_put(m, ino, &run, (uint64_t)off, buf, len, size);
		if (err)
			return fs_fail(m, path, "cannot write its data", err);
		pos = (uint64_t)off + len;
		progress_show(m, src->a);
	}
	if (r < 0)
		return -1;
	if (run.len && (err = run_flush(m, ino, &run)))
		return fs_fail(m, path, "cannot write its data", err);
	err = ext2fs_read_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (!err)
		err = ext2fs_inode_size_set(m->fs, (struct ext2_inode *)&in, size);
	if (!err)
		err = ext2fs_write_inode_full(m->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot write its data", err);
	return 0;
}

/* The data bytes an entry will occupy (its sparse map's, else its size). */
static uint64_t entry_data_bytes(struct archive_entry *e)
{
	la_int64_t off, len;
	uint64_t sum = 0;

	if (archive_entry_sparse_reset(e) <= 0)
		return archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ?
		       (uint64_t)archive_entry_size(e) : 0;
	while (archive_entry_sparse_next(e, &off, &len) == ARCHIVE_OK)
		if (len > 0 && sum < MKDISK_MAX_FILE)
			sum += (uint64_t)len;
	return sum;
}

static int hardlink_put(struct mkdisk *m, ext2_ino_t parent, const char *name, const char *path,
			const char *target_raw)
{
	char target[PATH_MAX];
	struct node *t;
	struct ext2_inode_large in;
	errcode_t err;

	if (mkdisk_path_normalize(target_raw, target, sizeof(target)) < 0) {
		log_error("mkdisk: /%s: hard link to '%s': a '..' component or a name too long",
			  path, target_raw);
		return -1;
	}
	t = map_get(&m->map, target, strlen(target));
	if (!t) {
		log_error("mkdisk: /%s: hard link to /%s, which is not in the image", path, target);
		return -1;
	}
	if (t->type == LINUX_S_IFDIR) {
		log_error("mkdisk: /%s: hard link to the directory /%s", path, target);
		return -1;
	}
	err = ext2fs_read_inode_full(m->fs, t->ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot read the link's inode", err);
	if (in.i_links_count >= MKDISK_MAX_LINKS) {
		log_error("mkdisk: /%s: too many hard links to /%s", path, target);
		return -1;
	}
	in.i_links_count++;
	err = ext2fs_write_inode_full(m->fs, t->ino, (struct ext2_inode *)&in, sizeof(in));
	if (err)
		return fs_fail(m, path, "cannot write the link's inode", err);
	ext2_ino_t ino = t->ino;
	uint16_t type = t->type;

	if (dir_link(m, parent, name, ino, ft_of(type), path) < 0)
		return -1;
	return map_put(&m->map, path, strlen(path), ino, type);
}

/* A new inode for a non-directory entry; symlinks' targets and devices' numbers set. */
static int node_make(struct mkdisk *m, ext2_ino_t parent, const char *path, struct archive_entry *e,
		     unsigned int type, ext2_ino_t *out)
{
	struct ext2_inode in;
	ext2_ino_t ino;
	errcode_t err;

	err = ext2fs_new_inode(m->fs, parent, (int)(type | 0644), NULL, &ino);
	if (err)
		return fs_fail(m, path, "cannot allocate an inode", err);
	if (type == LINUX_S_IFLNK) {
		const char *target = archive_entry_symlink(e);
		char *copy;

		if (!target || !*target || strlen(target) >= m->fs->blocksize) {
			log_error("mkdisk: /%s: symlink with %s target", path,
				  target && *target ? "a too long" : "no");
			return -1;
		}
		copy = strdup(target);
		if (!copy) {
			log_error("mkdisk: out of memory");
			return -1;
		}
		err = ext2fs_symlink(m->fs, parent, ino, NULL, copy);
		free(copy);
		if (err)
			return fs_fail(m, path, "cannot make the symlink", err);
		*out = ino;
		return 0;
	}
	memset(&in, 0, sizeof(in));
	in.i_mode = (uint16_t)(type | 0644);
	in.i_links_count = 1;
	if (type == LINUX_S_IFREG && ext2fs_has_feature_extents(m->fs->super)) {
		ext2_extent_handle_t h;

		/* Opening the extent tree of a blank inode gives it an empty one. */
		err = ext2fs_extent_open2(m->fs, ino, &in, &h);
		if (err)
			return fs_fail(m, path, "cannot start its extent tree", err);
		ext2fs_extent_free(h);
	} else if (type == LINUX_S_IFCHR || type == LINUX_S_IFBLK) {
		unsigned int major = archive_entry_rdevmajor(e), minor = archive_entry_rdevminor(e);

		/* The kernel's old (8:8) and new (12:20) encodings. */
		if (major < 256 && minor < 256) {
			in.i_block[0] = major * 256 + minor;
		} else {
			in.i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
		}
	}
	err = ext2fs_write_new_inode(m->fs, ino, &in);
	if (err)
		return fs_fail(m, path, "cannot write its inode", err);
	ext2fs_inode_alloc_stats2(m->fs, ino, +1, 0);
	*out = ino;
	return 0;
}

static unsigned int type_of(struct archive_entry *e)
{
	switch (archive_entry_filetype(e)) {
	case AE_IFREG: return LINUX_S_IFREG;
	case AE_IFDIR: return LINUX_S_IFDIR;
	case AE_IFLNK: return LINUX_S_IFLNK;
	case AE_IFCHR: return LINUX_S_IFCHR;
	case AE_IFBLK: return LINUX_S_IFBLK;
	case AE_IFIFO: return LINUX_S_IFIFO;
	case AE_IFSOCK: return LINUX_S_IFSOCK;
	}
	return 0;
}

/*
 * Write entry e at image path (normalized; "" is the root). A later entry
 * replaces an earlier one of the same name, as tar does, but never a
 * directory by a non-directory; a directory over a directory only takes its
 * attributes.
 */
/* New xattrs on an existing inode may free its old xattr block: a barrier first. */
static int xattrs_barrier(struct mkdisk *m, struct archive_entry *e)
{
	return archive_entry_xattr_count(e) ? writer_barrier(m) : 0;
}

static int entry_put(struct mkdisk *m, struct archive_entry *e, const char *path,
		     struct data_src *src)
{
	size_t len = strlen(path);
	const char *hl = archive_entry_hardlink(e);
	unsigned int type = type_of(e);
	const char *slash, *name;
	ext2_ino_t parent, ino = 0;
	struct node *old;

	if (!hl && !type) {
		log_error("mkdisk: /%s: unknown file type 0%o", path, (unsigned)archive_entry_filetype(e));
		return -1;
	}
	if (!len) {
		if (hl || type != LINUX_S_IFDIR) {
			log_error("mkdisk: an entry for / that is not a directory");
			return -1;
		}
		return inode_attrs_set(m, EXT2_ROOT_INO, e, path) < 0 ||
		       xattrs_barrier(m, e) < 0 ||
		       inode_xattrs_set(m, EXT2_ROOT_INO, e, path) < 0 ? -1 : 0;
	}
	slash = strrchr(path, '/');
	name = slash ? slash + 1 : path;
	if (parent_resolve(m, path, slash ? (size_t)(slash - path) : 0, path, &parent) < 0)
		return -1;
	old = map_get(&m->map, path, len);
	if (old) {
		if (old->type == LINUX_S_IFDIR) {
			if (!hl && type == LINUX_S_IFDIR)
				return inode_attrs_set(m, old->ino, e, path) < 0 ||
				       xattrs_barrier(m, e) < 0 ||
				       inode_xattrs_set(m, old->ino, e, path) < 0 ? -1 : 0;
			log_error("mkdisk: /%s: a later entry would replace this directory with a "
				  "non-directory", path);
			return -1;
		}
		if (hl) {
			char t[PATH_MAX];

			if (!mkdisk_path_normalize(hl, t, sizeof(t)) && !strcmp(t, path))
				return 0;	/* a link to itself: nothing to do */
		}
		if (node_unlink(m, parent, name, old) < 0)
			return -1;
	}
	if (hl)
		return hardlink_put(m, parent, name, path, hl);
	if (type == LINUX_S_IFDIR) {
		if (node_mkdir(m, parent, name, path, &ino) < 0)
			return -1;
	} else {
		if (type == LINUX_S_IFREG) {
			uint64_t bytes = entry_data_bytes(e);
			uint64_t free_bytes = ext2fs_free_blocks_count(m->fs->super) * m->fs->blocksize;
			int64_t size = archive_entry_size(e);

			if (size < 0 || (uint64_t)size > MKDISK_MAX_FILE) {
				log_error("mkdisk: /%s: size %" PRId64 " is beyond ext4's limit", path, size);
				return -1;
			}
			if (bytes > free_bytes) {
				char a[32], b[32];

				log_error("mkdisk: /%s: %s of data, more than the %s free in the image "
					  "(%s is too small for the content)", path,
					  size_format(bytes, a, sizeof(a)), size_format(free_bytes, b, sizeof(b)),
					  m->opt->size ? "--size" : "the automatic size");
				return -1;
			}
		}
		if (node_make(m, parent, path, e, type, &ino) < 0 ||
		    dir_link(m, parent, name, ino, ft_of(type), path) < 0)
			return -1;
		if (type == LINUX_S_IFREG &&
		    file_data_write(m, ino, src, (uint64_t)archive_entry_size(e), path) < 0)
			return -1;
	}
	if (inode_attrs_set(m, ino, e, path) < 0 || inode_xattrs_set(m, ino, e, path) < 0)
		return -1;
	m->written++;
	return map_put(&m->map, path, len, ino, (uint16_t)type);
}

/* ---- sources ---- */

/* Image path of a name the source gave: 0, or -1 (logged). */
static int source_path(struct source *s, const char *name, char *out, size_t size)
{
	char buf[PATH_MAX * 2];
	const char *rel = name;

	if (!name) {
		log_error("mkdisk: %s: an entry without a name (or not in this locale's charset)",
			  s->what);
		return -1;
	}
	if (s->disk) {
		size_t n = strlen(s->host_root);

		/* read_disk names everything host_root + "/..." */
		rel = strncmp(name, s->host_root, n) ? name : name + n;
	}
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", s->dest, rel) >= sizeof(buf) ||
	    mkdisk_path_normalize(buf, out, size) < 0) {
		log_error("mkdisk: %s: entry '%s': a '..' component, a name over 255 bytes or a path "
			  "too long", s->what, name);
		return -1;
	}
	return 0;
}

static int fill_entry(struct mkdisk *m, struct source *s, struct archive_entry *e, const char *path)
{
	struct data_src src = { .a = s->a };

	if (s->root_owner) {
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
	}
	if (entry_put(m, e, path, &src) < 0)
		return -1;
	progress_show(m, s->disk ? NULL : s->a);
	return 0;
}

/* --size auto: count what the entries need. */
static int census_entry(struct mkdisk *m, struct source *s, struct archive_entry *e, const char *path)
{
	const uint64_t bs = MKDISK_BLOCK_SIZE;
	const char *name = strrchr(path, '/');
	size_t nlen = strlen(name ? name + 1 : path);
	unsigned int type = type_of(e);
	const char *xn;
	const void *xv;
	size_t xs, xattr_bytes = 0;

	m->census_dirent_bytes += 8 + ((nlen + 3) & ~(size_t)3);
	if (archive_entry_hardlink(e))
		return 0;
	m->census_entries++;
	if (type == LINUX_S_IFREG) {
		uint64_t b = (entry_data_bytes(e) + bs - 1) / bs;

		/* and an extent-tree block per 340 extents, taking one extent per 32 MiB */
		m->census_blocks += b + b / (340 * 8192) + (b > 4 * 8192);
	} else if (type == LINUX_S_IFDIR) {
		m->census_blocks++;
	} else if (type == LINUX_S_IFLNK) {
		const char *t = archive_entry_symlink(e);

		m->census_blocks += t && strlen(t) >= 60;
	}
	if (archive_entry_xattr_reset(e) > 0) {
		while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK)
			xattr_bytes += strlen(xn) + xs + 20;
		/* what does not fit beside the inode goes to a block */
		m->census_blocks += xattr_bytes > 96 ? (xattr_bytes + bs - 1) / bs : 0;
	}
	if (m->census_blocks > MKDISK_MAX_FILE / bs) {
		log_error("mkdisk: %s: the content claims more than %" PRIu64 " TiB", s->what,
			  (uint64_t)(MKDISK_MAX_FILE >> 40));
		return -1;
	}
	return 0;
}

static const char *archive_err(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unknown error";
}

/*
 * A regular file mapped read-only, or NULL (then it is read(); so are pipes).
 * From memory, libarchive hands an uncompressed file's data over in one piece
 * that is written from the mapping, not copied into a buffer first.
 */
static void *archive_map(const char *file, size_t *len)
{
	struct stat st;
	void *p = NULL;
	int fd;

	/* Not even opened unless regular: opening and closing a FIFO's read end can SIGPIPE its writer. */
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size <= SIZE_MAX / 2) {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			p = NULL;
		} else {
			*len = (size_t)st.st_size;
			madvise(p, *len, MADV_SEQUENTIAL);
		}
	}
	close(fd);
	return p;
}

static int source_iterate_archive(struct mkdisk *m, struct source *s, const char *file)
{
	struct archive_entry *e;
	char path[PATH_MAX];
	size_t map_len = 0;
	void *map;
	int r, ret = -1;

	s->a = archive_read_new();
	if (!s->a) {
		log_error("mkdisk: out of memory");
		return -1;
	}
	archive_read_support_filter_all(s->a);
	archive_read_support_format_all(s->a);
	map = archive_map(file, &map_len);
	m->src_map = map;
	m->src_map_len = map_len;
	if (map ? archive_read_open_memory(s->a, map, map_len) != ARCHIVE_OK :
		  archive_read_open_filename(s->a, file, 1 << 16) != ARCHIVE_OK) {
		log_error("mkdisk: %s: %s", file, archive_err(s->a));
		goto out;
	}
	for (;;) {
		r = archive_read_next_header(s->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			log_error("mkdisk: %s: %s", file, archive_err(s->a));
			goto out;
		}
		if (r == ARCHIVE_WARN)
			log_warn("mkdisk: %s: %s", file, archive_err(s->a));
		if (source_path(s, archive_entry_pathname(e), path, sizeof(path)) < 0 ||
		    s->fn(m, s, e, path) < 0)
			goto out;
	}
	ret = 0;
out:
	archive_read_free(s->a);
	s->a = NULL;
	/* nothing may still be writing from the mapping */
	if (writer_drain(m) < 0)
		ret = -1;
	m->src_map = NULL;
	m->src_map_len = 0;
	if (map)
		munmap(map, map_len);
	return ret;
}

static int source_iterate_disk(struct mkdisk *m, struct source *s)
{
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	struct archive_entry *e = archive_entry_new(), *spare = NULL;
	char path[PATH_MAX];
	int r, ret = -1;

	s->a = archive_read_disk_new();
	if (!s->a || !lr || !e) {
		log_error("mkdisk: out of memory");
		goto out;
	}
	archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_symlink_physical(s->a);
	if (archive_read_disk_open(s->a, s->host_root) != ARCHIVE_OK) {
		log_error("mkdisk: %s: %s", s->what, archive_err(s->a));
		goto out;
	}
	for (;;) {
		archive_entry_clear(e);
		r = archive_read_next_header2(s->a, e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			log_error("mkdisk: %s: %s", s->what, archive_err(s->a));
			goto out;
		}
		if (r == ARCHIVE_WARN)
			log_warn("mkdisk: %s: %s", s->what, archive_err(s->a));
		archive_read_disk_descend(s->a);
		archive_entry_linkify(lr, &e, &spare);
		if (!e)
			continue;
		if (archive_entry_hardlink(e)) {
			/* The resolver names the first link by its host path: map it too. */
			char t[PATH_MAX];

			if (source_path(s, archive_entry_hardlink(e), t, sizeof(t)) < 0)
				goto out;
			archive_entry_copy_hardlink(e, t);
		}
		if (source_path(s, archive_entry_pathname(e), path, sizeof(path)) < 0 ||
		    s->fn(m, s, e, path) < 0)
			goto out;
	}
	ret = 0;
out:
	if (s->a)
		archive_read_free(s->a);
	s->a = NULL;
	if (lr)
		archive_entry_linkresolver_free(lr);
	if (e)
		archive_entry_free(e);
	if (spare)
		archive_entry_free(spare);
	return ret;
}

/* The image path --add SRC:DEST puts SRC at ("DEST/" means inside DEST). */
static int add_dest(const struct mkdisk_add *ad, char *out, size_t size)
{
	char buf[PATH_MAX * 2];
	size_t n = strlen(ad->dest);

	if (n && ad->dest[n - 1] == '/') {
		const char *base = strrchr(ad->src, '/');
		char src[PATH_MAX];

		/* the last non-empty component of SRC */
		snprintf(src, sizeof(src), "%s", ad->src);
		for (size_t k = strlen(src); k > 1 && src[k - 1] == '/'; k--)
			src[k - 1] = 0;
		base = strrchr(src, '/');
		snprintf(buf, sizeof(buf), "%s/%s", ad->dest, base ? base + 1 : src);
	} else {
		snprintf(buf, sizeof(buf), "%s", ad->dest);
	}
	if (mkdisk_path_normalize(buf, out, size) < 0) {
		log_error("mkdisk: --add %s:%s: a '..' component or a name over 255 bytes in DEST",
			  ad->src, ad->dest);
		return -1;
	}
	return 0;
}

/* Each SOURCE, then each --add, handed to fn entry by entry. */
static int sources_iterate(struct mkdisk *m,
			   int (*fn)(struct mkdisk *, struct source *, struct archive_entry *,
				     const char *))
{
	const struct mkdisk_options *opt = m->opt;
	char dest[PATH_MAX];
	struct stat st;

	m->progress_base = 0;
	for (size_t i = 0; i < opt->n_sources; i++) {
		struct source s = { .what = opt->sources[i], .dest = "", .fn = fn };
		int ret;

		if (stat(opt->sources[i], &st) < 0) {
			log_error("mkdisk: source %s: %s", opt->sources[i], strerror(errno));
			return -1;
		}
		if (S_ISDIR(st.st_mode)) {
			s.disk = true;
			s.host_root = opt->sources[i];
			ret = source_iterate_disk(m, &s);
		} else {
			ret = source_iterate_archive(m, &s, opt->sources[i]);
			m->progress_base += (uint64_t)st.st_size;
		}
		if (ret < 0)
			return -1;
	}
	for (size_t i = 0; i < opt->n_adds; i++) {
		struct source s = { .what = opt->adds[i].src, .disk = true, .host_root = opt->adds[i].src,
				    .dest = dest, .root_owner = true, .fn = fn };

		if (add_dest(&opt->adds[i], dest, sizeof(dest)) < 0)
			return -1;
		if (stat(s.host_root, &st) < 0) {
			log_error("mkdisk: --add %s: %s", s.host_root, strerror(errno));
			return -1;
		}
		if (source_iterate_disk(m, &s) < 0)
			return -1;
	}
	return 0;
}

/* ---- generated files ---- */

static int generated_put(struct mkdisk *m, const char *path, unsigned int type, const void *data,
			 size_t len, unsigned int perm, uint32_t uid, uint32_t gid)
{
	struct archive_entry *e = archive_entry_new();
	struct data_src src = { .mem = data, .mem_len = len };
	int ret;

	if (!e) {
		log_error("mkdisk: out of memory");
		return -1;
	}
	archive_entry_set_filetype(e, type == LINUX_S_IFDIR ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, perm);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, m->now, 0);
	ret = entry_put(m, e, path, &src);
	archive_entry_free(e);
	return ret;
}

/* The regular file at image path: *data (malloc'ed, NUL-terminated) and *len; 1 if absent. */
static int image_file_read(struct mkdisk *m, const char *path, char **data, size_t *len)
{
	struct node *n = map_get(&m->map, path, strlen(path));
	ext2_file_t f;
	__u64 size;
	unsigned int got;
	errcode_t err;
	char *buf;

	if (!n)
		return 1;
	if (n->type != LINUX_S_IFREG) {
		log_error("mkdisk: /%s is not a regular file (symlinks are not followed in the image)",
			  path);
		return -1;
	}
	err = ext2fs_file_open(m->fs, n->ino, 0, &f);
	if (err)
		return fs_fail(m, path, "cannot open it", err);
	err = ext2fs_file_get_lsize(f, &size);
	if (!err && size > MKDISK_MAX_READ) {
		ext2fs_file_close(f);
		log_error("mkdisk: /%s is over %u MiB", path, MKDISK_MAX_READ >> 20);
		return -1;
	}
	buf = err ? NULL : malloc(size + 1);
	if (!err && !buf) {
		ext2fs_file_close(f);
		log_error("mkdisk: out of memory");
		return -1;
	}
	if (!err)
		err = ext2fs_file_read(f, buf, (unsigned int)size, &got);
	ext2fs_file_close(f);
	if (!err && got != size)
		err = EXT2_ET_SHORT_READ;
	if (err) {
		free(buf);
		return fs_fail(m, path, "cannot read it", err);
	}
	buf[size] = 0;
	*data = buf;
	*len = (size_t)size;
	return 0;
}

static int hostname_put(struct mkdisk *m, const char *name)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%s\n", name);

	return generated_put(m, "etc/hostname", LINUX_S_IFREG, line, (size_t)n, 0644, 0, 0);
}

/* Read a host file of at most max bytes into a malloc'ed buffer. */
static int host_file_read(const char *path, const char *what, size_t max, char **data, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (!f) {
		log_error("mkdisk: %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		log_error("mkdisk: out of memory");
		return -1;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		log_error("mkdisk: %s %s: %s", what, path, ferror(f) ? strerror(errno) : "too big");
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 0;
}

static int ssh_key_put(struct mkdisk *m, const struct mkdisk_key *k)
{
	const char *user = k->user ? k->user : "root";
	char *key = NULL, *passwd = NULL, *home = NULL, *old = NULL, *all = NULL;
	size_t key_len, passwd_len, old_len = 0;
	char hpath[PATH_MAX], path[PATH_MAX + 32];
	uint32_t uid, gid;
	struct node *n;
	int r, ret = -1;

	if (host_file_read(k->file, "--ssh-key", MKDISK_MAX_KEY, &key, &key_len) < 0)
		return -1;
	if (!key_len || memchr(key, 0, key_len)) {
		log_error("mkdisk: --ssh-key %s: %s", k->file, key_len ? "not a text file" : "empty");
		goto out;
	}
	r = image_file_read(m, "etc/passwd", &passwd, &passwd_len);
	if (r < 0)
		goto out;
	if (r > 0 && strcmp(user, "root")) {
		log_error("mkdisk: --ssh-key %s:%s: the image has no /etc/passwd", k->file, user);
		goto out;
	}
	if (r > 0) {
		uid = gid = 0;
		home = strdup("/root");
	} else if (mkdisk_passwd_lookup(passwd, passwd_len, user, &uid, &gid, &home) < 0) {
		log_error("mkdisk: --ssh-key %s: no user '%s' in the image's /etc/passwd", k->file, user);
		goto out;
	}
	if (!home || mkdisk_path_normalize(home, hpath, sizeof(hpath)) < 0) {
		log_error("mkdisk: --ssh-key: user %s's home '%s' is not a usable path", user,
			  home ? home : "");
		goto out;
	}
	n = map_get(&m->map, hpath, strlen(hpath));
	if (n && n->type != LINUX_S_IFDIR) {
		log_error("mkdisk: --ssh-key: user %s's home /%s is not a directory", user, hpath);
		goto out;
	}
	if (!n && generated_put(m, hpath, LINUX_S_IFDIR, NULL, 0, 0700, uid, gid) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s%s.ssh", hpath, *hpath ? "/" : "");
	/* sshd's StrictModes: the user's, not writable by others */
	if (generated_put(m, path, LINUX_S_IFDIR, NULL, 0, 0700, uid, gid) < 0)
		goto out;
	strcat(path, "/authorized_keys");
	n = map_get(&m->map, path, strlen(path));
	if (n && n->type == LINUX_S_IFREG && image_file_read(m, path, &old, &old_len) < 0)
		goto out;
	all = malloc(old_len + key_len + 2);
	if (!all) {
		log_error("mkdisk: out of memory");
		goto out;
	}
	size_t len = 0;

	if (old_len) {
		memcpy(all, old, old_len);
		len = old_len;
		if (all[len - 1] != '\n')
			all[len++] = '\n';
	}
	memcpy(all + len, key, key_len);
	len += key_len;
	if (all[len - 1] != '\n')
		all[len++] = '\n';
	ret = generated_put(m, path, LINUX_S_IFREG, all, len, 0600, uid, gid);
out:
	free(key);
	free(passwd);
	free(home);
	free(old);
	free(all);
	return ret;
}

/* ---- the filesystem ---- */

static int mke2fs_find(char *out, size_t size)
{
	const char *env = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", env && *env ? env : "/usr/bin:/bin");
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(out, size, "%s/mke2fs", d) < size && !access(out, X_OK))
			return 0;
	}
	log_error("mkdisk: mke2fs not found in $PATH, /usr/sbin or /sbin (install e2fsprogs)");
	return -1;
}

/* An empty ext4 on path: 4 KiB blocks, 256-byte inodes, root's root directory. */
static int mke2fs_run(const char *path, uint64_t inodes, const char *label)
{
	char prog[PATH_MAX], n_arg[32];
	const char *argv[24];
	int argc = 0, status;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int err;

	if (mke2fs_find(prog, sizeof(prog)) < 0)
		return -1;
	argv[argc++] = prog;
	argv[argc++] = "-F";
	argv[argc++] = "-q";
	argv[argc++] = "-t";
	argv[argc++] = "ext4";
	argv[argc++] = "-T";
	argv[argc++] = "default";
	argv[argc++] = "-b";
	argv[argc++] = "4096";
	argv[argc++] = "-I";
	argv[argc++] = "256";
	/* The fresh sparse file reads as zeros: no need to zero the journal. */
	argv[argc++] = "-E";
	argv[argc++] = "lazy_journal_init=1,root_owner=0:0";
	if (inodes) {
		snprintf(n_arg, sizeof(n_arg), "%" PRIu64, inodes);
		argv[argc++] = "-N";
		argv[argc++] = n_arg;
	}
	if (label) {
		argv[argc++] = "-L";
		argv[argc++] = label;
	}
	argv[argc++] = path;
	argv[argc] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	err = posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		log_error("mkdisk: cannot run %s: %s", prog, strerror(err));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("mkdisk: waiting for mke2fs: %s", strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		log_error("mkdisk: %s failed (%s %d) making the filesystem", prog,
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	return 0;
}

static int fs_open(struct mkdisk *m, const char *path)
{
	ext2_ino_t lf;
	errcode_t err;

	err = ext2fs_open2(path, NULL, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &m->fs);
	if (err) {
		log_error("mkdisk: cannot open the new filesystem %s: %s", path, error_message(err));
		return -1;
	}
	m->fs->now = (time_t)m->now;
	/* Every block read back was written by us: checking its checksum again only costs time. */
	m->fs->flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
	err = ext2fs_read_bitmaps(m->fs);
	if (err) {
		log_error("mkdisk: cannot read the new filesystem's bitmaps: %s", error_message(err));
		return -1;
	}
	if (map_grow(&m->map) < 0 || map_put(&m->map, "", 0, EXT2_ROOT_INO, LINUX_S_IFDIR) < 0) {
		log_error("mkdisk: out of memory");
		return -1;
	}
	if (!ext2fs_lookup(m->fs, EXT2_ROOT_INO, "lost+found", 10, NULL, &lf) &&
	    map_put(&m->map, "lost+found", 10, lf, LINUX_S_IFDIR) < 0)
		return -1;
	return 0;
}

static int temp_create(const char *output)
{
	const char *slash = strrchr(output, '/');
	int fd;
	mode_t um;

	if ((size_t)snprintf(tmp_path, sizeof(tmp_path), "%.*s%s.%s.mkdisk-XXXXXX",
			     slash ? (int)(slash - output) : 0, output, slash ? "/" : "",
			     slash ? slash + 1 : output) >= sizeof(tmp_path)) {
		tmp_path[0] = 0;
		log_error("mkdisk: output path too long");
		return -1;
	}
	fd = mkstemp(tmp_path);
	if (fd < 0) {
		log_error("mkdisk: cannot create a temporary file beside %s: %s", output, strerror(errno));
		tmp_path[0] = 0;
		return -1;
	}
	um = umask(0);
	umask(um);
	if (fchmod(fd, 0666 & ~um) < 0) {
		log_error("mkdisk: chmod %s: %s", tmp_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void signals_set(void (*handler)(int))
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGBUS };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa = {
			.sa_handler = sigs[i] == SIGBUS && handler != SIG_DFL ? archive_sigbus : handler,
		};

		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

static int64_t now_get(void)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	char *end;

	if (sde && *sde) {
		long long v = strtoll(sde, &end, 10);

		if (!*end)
			return v;
	}
	return (int64_t)time(NULL);
}

int mkdisk_build(const struct mkdisk_options *opt)
{
	struct mkdisk m = { .opt = opt, .progress_last = -1 };
	uint64_t size = opt->size, inodes = 0;
	struct stat st;
	char sz[32];
	int fd, ret = -1;
	errcode_t err;

	initialize_ext2_error_table();
	m.now = now_get();
	for (size_t i = 0; i < opt->n_sources; i++) {
		if (stat(opt->sources[i], &st) < 0) {
			log_error("mkdisk: source %s: %s", opt->sources[i], strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !opt->size) {
			/* The census would eat the stream and the image come out empty. */
			log_error("mkdisk: source %s is not a regular file and can be read only once; "
				  "--size auto reads the sources twice: give --size", opt->sources[i]);
			return -1;
		}
		if (!S_ISDIR(st.st_mode))
			m.progress_total += (uint64_t)st.st_size;
	}
	for (size_t i = 0; i < opt->n_keys; i++) {
		if (access(opt->keys[i].file, R_OK) < 0) {
			log_error("mkdisk: --ssh-key %s: %s", opt->keys[i].file, strerror(errno));
			return -1;
		}
	}
	m.progress_on = opt->progress > 0 ||
			(opt->progress < 0 && isatty(STDERR_FILENO) &&
			 m.progress_total > MKDISK_PROGRESS_MIN);
	/* From here on the archives are mapped. */
	struct sigaction bus = { .sa_handler = archive_sigbus };

	sigemptyset(&bus.sa_mask);
	sigaction(SIGBUS, &bus, NULL);
	if (!size) {
		bool on = m.progress_on;

		m.progress_on = false;
		if (sources_iterate(&m, census_entry) < 0)
			return -1;
		m.progress_on = on;
		/* the generated files: a few blocks */
		m.census_entries += 4 + 2 * opt->n_keys;
		m.census_blocks += 4 + 2 * opt->n_keys + m.census_dirent_bytes / MKDISK_BLOCK_SIZE;
		inodes = auto_inodes(m.census_entries);
		size = mkdisk_auto_size(m.census_blocks, inodes, MKDISK_BLOCK_SIZE);
		log_info("mkdisk: %" PRIu64 " entries, %" PRIu64 " blocks of content: %s",
			 m.census_entries, m.census_blocks, size_format(size, sz, sizeof(sz)));
	}

	fd = temp_create(opt->output);
	if (fd < 0)
		return -1;
	signals_set(tmp_cleanup_signal);
	if (ftruncate(fd, (off_t)size) < 0) {
		log_error("mkdisk: cannot size %s to %s: %s", tmp_path, size_format(size, sz, sizeof(sz)),
			  strerror(errno));
		close(fd);
		goto out_tmp;
	}
	close(fd);
	if (mke2fs_run(tmp_path, inodes, opt->label) < 0 || fs_open(&m, tmp_path) < 0 ||
	    writer_start(&m, tmp_path) < 0)
		goto out_fs;
	if (sources_iterate(&m, fill_entry) < 0)
		goto out_fs;
	progress_end(&m);
	if (writer_stop(&m) < 0)
		goto out_fs;
	if (opt->hostname && hostname_put(&m, opt->hostname) < 0)
		goto out_fs;
	for (size_t i = 0; i < opt->n_keys; i++)
		if (ssh_key_put(&m, &opt->keys[i]) < 0)
			goto out_fs;
	err = ext2fs_close2(m.fs, EXT2_FLAG_FLUSH_NO_SYNC);
	m.fs = NULL;
	if (err) {
		log_error("mkdisk: writing the filesystem: %s", err_is_full(err) ?
			  "the image is full" : error_message(err));
		goto out_tmp;
	}
	if (rename(tmp_path, opt->output) < 0) {
		log_error("mkdisk: cannot rename %s to %s: %s", tmp_path, opt->output, strerror(errno));
		goto out_tmp;
	}
	tmp_path[0] = 0;
	log_info("mkdisk: wrote %s (%s, %" PRIu64 " entries)", opt->output,
		 size_format(size, sz, sizeof(sz)), m.written);
	ret = 0;
	goto out;
out_fs:
	progress_end(&m);
	writer_stop(&m);
	if (m.fs)
		ext2fs_free(m.fs);
	m.fs = NULL;
out_tmp:
	if (tmp_path[0])
		unlink(tmp_path);
	tmp_path[0] = 0;
out:
	signals_set(SIG_DFL);
	map_free(&m.map);
	free(m.run_buf);
	return ret;
}
