/*
 * ext2/3/4 through libext2fs, read-only, on the image at the partition's
 * offset. libext2fs trusts much of what it reads, so before a file or a
 * directory is read its blocks are walked and checked against the file
 * system (at most as many as its size needs), and paths are resolved here,
 * one component at a time, with symlinks bounded.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include "tools/fs_impl.h"
#include "util/log.h"

#define EXT_SUPER_OFF 1024
#define EXT_MAGIC_OFF (EXT_SUPER_OFF + 56)
#define EXT_SYMLINK_MAX 4096

struct ext_fs {
	struct fs fs;
	ext2_filsys e2;
	char where[96];		/* "'IMAGE' partition N" for messages */
};

static const struct fs_ops ext_ops;

static struct ext_fs *ext_of(struct fs *fs)
{
	return (struct ext_fs *)fs;
}

bool fs_ext_magic(struct diskimg *d, uint64_t offset, uint64_t size)
{
	uint8_t m[2];

	if (size < EXT_MAGIC_OFF + 2 || offset > UINT64_MAX - EXT_MAGIC_OFF ||
	    diskimg_pread_quiet(d, offset + EXT_MAGIC_OFF, m, 2) < 0)
		return false;
	return m[0] == 0x53 && m[1] == 0xef;
}

static void ext_tables_init(void)
{
	initialize_ext2_error_table();
}

static void where_format(char *out, size_t size, struct diskimg *d, const struct diskimg_part *part)
{
	if (part->index)
		snprintf(out, size, "'%s' partition %u", d->path, part->index);
	else
		snprintf(out, size, "'%s'", d->path);
}

/* blkid's names: ext4 once anything beyond ext3's feature set is on, ext3 with a journal. */
static const char *ext_type_name(const struct ext2_super_block *sb)
{
	const uint32_t ext3_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_RECOVER |
				       EXT2_FEATURE_INCOMPAT_META_BG;
	const uint32_t ext3_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
					EXT2_FEATURE_RO_COMPAT_LARGE_FILE;

	if ((sb->s_feature_incompat & ~ext3_incompat) || (sb->s_feature_ro_compat & ~ext3_ro_compat))
		return "ext4";
	if (sb->s_feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL)
		return "ext3";
	return "ext2";
}

struct fs *fs_ext_open(struct diskimg *d, const struct diskimg_part *part, bool quiet, bool *corrupt)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char where[96], opts[40];
	ext2_filsys e2;
	errcode_t err;

	*corrupt = false;
	where_format(where, sizeof(where), d, part);
	if (!fs_ext_magic(d, part->offset, part->size)) {
		if (!quiet)
			log_error("%s: no ext2/3/4 file system", where);
		return NULL;
	}
	/* The size the superblock claims, before libext2fs allocates and reads for it. */
	struct ext2_super_block sb;
	if (diskimg_pread(d, part->offset + EXT_SUPER_OFF, &sb, sizeof(sb), "ext superblock") < 0) {
		*corrupt = true;
		return NULL;
	}
	uint64_t blocks = sb.s_blocks_count;
	if (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT)
		blocks |= (uint64_t)sb.s_blocks_count_hi << 32;
	if (sb.s_log_block_size > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE ||
	    blocks > (part->size >> (EXT2_MIN_BLOCK_LOG_SIZE + sb.s_log_block_size))) {
		*corrupt = true;
		log_error("%s: the ext2/3/4 file system (%" PRIu64 " blocks of 2^%u bytes) is larger than its partition (%" PRIu64 " bytes)",
			  where, blocks, EXT2_MIN_BLOCK_LOG_SIZE + (sb.s_log_block_size > 32 ? 32 : sb.s_log_block_size),
			  part->size);
		return NULL;
	}
	pthread_once(&once, ext_tables_init);
	snprintf(opts, sizeof(opts), "offset=%" PRIu64, part->offset);
	err = ext2fs_open2(d->path, opts, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &e2);
	if (err) {
		*corrupt = true;
		log_error("%s: cannot open the ext2/3/4 file system: %s", where, error_message(err));
		return NULL;
	}
	/* blocks_count < 2^64 / blocksize: it was checked when the group count was computed. */
	uint64_t bytes = ext2fs_blocks_count(e2->super) * (uint64_t)e2->blocksize;
	if (bytes / e2->blocksize != ext2fs_blocks_count(e2->super) || bytes > part->size) {
		*corrupt = true;
		log_error("%s: the ext2/3/4 file system (%" PRIu64 " blocks of %u bytes) is larger than its partition (%" PRIu64 " bytes)",
			  where, (uint64_t)ext2fs_blocks_count(e2->super), e2->blocksize, part->size);
		goto err_close;
	}

	struct ext_fs *e = calloc(1, sizeof(*e));
	if (!e) {
		*corrupt = true;
		log_error("%s: out of memory", where);
		goto err_close;
	}
	e->e2 = e2;
	memcpy(e->where, where, sizeof(where));
	e->fs.ops = &ext_ops;
	e->fs.kind = FS_EXT;
	e->fs.type_name = ext_type_name(e2->super);
	e->fs.d = d;
	e->fs.part = part;
	const uint8_t *u = e2->super->s_uuid;
	snprintf(e->fs.uuid, sizeof(e->fs.uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	size_t n = strnlen((const char *)e2->super->s_volume_name, sizeof(e2->super->s_volume_name));
	memcpy(e->fs.label, e2->super->s_volume_name, n);
	e->fs.label[n] = '\0';
	return &e->fs;

err_close:
	ext2fs_close_free(&e2);
	return NULL;
}

static void ext_close(struct fs *fs)
{
	struct ext_fs *e = ext_of(fs);

	ext2fs_close_free(&e->e2);
	free(e);
}

struct block_check {
	struct ext_fs *e;
	e2_blkcnt_t need;	/* logical blocks the size covers */
	e2_blkcnt_t seen;
	blk64_t bad;
	bool too_many;
};

static int block_check_one(ext2_filsys e2, blk64_t *blocknr, e2_blkcnt_t blockcnt,
			   blk64_t ref_blk, int ref_offset, void *priv)
{
	struct block_check *c = priv;

	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt < 0)
		return 0;
	if (blockcnt >= c->need)
		return BLOCK_ABORT;	/* past the size: preallocated, never read */
	if (*blocknr < e2->super->s_first_data_block || *blocknr >= ext2fs_blocks_count(e2->super)) {
		c->bad = *blocknr;
		return BLOCK_ABORT;
	}
	if (++c->seen > c->need) {
		c->too_many = true;
		return BLOCK_ABORT;
	}
	return 0;
}

/* Every block that holds the first size bytes of ino lies in the file system. */
static int ext_check_blocks(struct ext_fs *e, ext2_ino_t ino, struct ext2_inode *inode,
			    uint64_t size, const char *path)
{
	struct block_check c = { .e = e };
	errcode_t err;

	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return 0;
	if (ext2fs_is_fast_symlink(inode))
		return 0;
	c.need = (e2_blkcnt_t)((size + e->e2->blocksize - 1) / e->e2->blocksize);
	if (!c.need)
		return 0;
	err = ext2fs_block_iterate3(e->e2, ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, NULL,
				    block_check_one, &c);
	if (err) {
		log_error("%s: %s: %s", e->where, path, error_message(err));
		return -1;
	}
	if (c.bad) {
		log_error("%s: %s: block %" PRIu64 " is outside the file system (%" PRIu64 " blocks)",
			  e->where, path, (uint64_t)c.bad, (uint64_t)ext2fs_blocks_count(e->e2->super));
		return -1;
	}
	if (c.too_many) {
		log_error("%s: %s: maps more blocks than its size (%" PRIu64 " bytes) covers",
			  e->where, path, size);
		return -1;
	}
	return 0;
}

static int ext_read_inode(struct ext_fs *e, ext2_ino_t ino, struct ext2_inode *inode, const char *path)
{
	errcode_t err = ext2fs_read_inode(e->e2, ino, inode);

	if (err) {
		log_error("%s: %s: inode %u: %s", e->where, path, ino, error_message(err));
		return -1;
	}
	return 0;
}

/* The first size bytes of ino into buf, its blocks checked first. */
static int ext_read_data(struct ext_fs *e, ext2_ino_t ino, struct ext2_inode *inode, void *buf,
			 size_t size, const char *path)
{
	ext2_file_t file;
	errcode_t err;
	unsigned int got;
	size_t done = 0;

	if (ext_check_blocks(e, ino, inode, size, path) < 0)
		return -1;
	err = ext2fs_file_open2(e->e2, ino, inode, 0, &file);
	if (err)
		goto err_log;
	while (done < size) {
		size_t chunk = size - done > (1u << 30) ? 1u << 30 : size - done;
		err = ext2fs_file_read(file, (char *)buf + done, (unsigned int)chunk, &got);
		if (err)
			goto err_file;
		if (!got) {
			ext2fs_file_close(file);
			log_error("%s: %s: ends after %zu of %zu bytes", e->where, path, done, size);
			return -1;
		}
		done += got;
	}
	ext2fs_file_close(file);
	return 0;

err_file:
	ext2fs_file_close(file);
err_log:
	log_error("%s: %s: %s", e->where, path, error_message(err));
	return -1;
}

/* A symlink's target, NUL-terminated, into target[EXT_SYMLINK_MAX + 1]. */
static int ext_read_link(struct ext_fs *e, ext2_ino_t ino, struct ext2_inode *inode, char *target,
			 const char *path)
{
	uint64_t size = EXT2_I_SIZE(inode);

	if (!size || size > EXT_SYMLINK_MAX) {
		log_error("%s: %s: symlink of %" PRIu64 " bytes", e->where, path, size);
		return -1;
	}
	if (ext2fs_is_fast_symlink(inode)) {
		if (size >= sizeof(inode->i_block)) {
			log_error("%s: %s: inline symlink of %" PRIu64 " bytes", e->where, path, size);
			return -1;
		}
		memcpy(target, inode->i_block, size);
	} else if (ext_read_data(e, ino, inode, target, size, path) < 0) {
		return -1;
	}
	target[size] = '\0';
	if (strlen(target) != size) {
		log_error("%s: %s: symlink target holds a NUL", e->where, path);
		return -1;
	}
	return 0;
}

/*
 * Resolve path to an inode: 0, -2 (quiet) when a component does not exist or
 * is not a directory, -1 logged. Symlinks are followed (the last one too if
 * follow_last), FS_MAX_SYMLINKS at most.
 */
static int ext_resolve(struct ext_fs *e, const char *path, ext2_ino_t *out, struct ext2_inode *inode)
{
	size_t cap = strlen(path) + 1;
	char *work = malloc(cap), *rest;
	char target[EXT_SYMLINK_MAX + 1];
	ext2_ino_t cur = EXT2_ROOT_INO;
	unsigned int links = 0;
	int ret = -1;

	if (!work) {
		log_error("%s: %s: out of memory", e->where, path);
		return -1;
	}
	memcpy(work, path, cap);
	rest = work;
	if (ext_read_inode(e, cur, inode, path) < 0)
		goto out;
	for (;;) {
		while (*rest == '/')
			rest++;
		if (!*rest)
			break;
		char *comp = rest;
		size_t len = strcspn(rest, "/");
		rest += len;
		if (len == 1 && comp[0] == '.')
			continue;
		if (len > EXT2_NAME_LEN) {
			ret = -2;
			goto out;
		}
		if (!LINUX_S_ISDIR(inode->i_mode)) {
			ret = -2;
			goto out;
		}
		if (ext_check_blocks(e, cur, inode, EXT2_I_SIZE(inode), path) < 0)
			goto out;
		ext2_ino_t ino;
		errcode_t err = ext2fs_lookup(e->e2, cur, comp, (int)len, NULL, &ino);
		if (err == EXT2_ET_FILE_NOT_FOUND) {
			ret = -2;
			goto out;
		}
		if (err) {
			log_error("%s: %s: %s", e->where, path, error_message(err));
			goto out;
		}
		if (ino < EXT2_ROOT_INO || ino > e->e2->super->s_inodes_count) {
			log_error("%s: %s: directory entry names inode %u, outside the file system",
				  e->where, path, ino);
			goto out;
		}
		struct ext2_inode next;
		if (ext_read_inode(e, ino, &next, path) < 0)
			goto out;
		if (!LINUX_S_ISLNK(next.i_mode)) {
			cur = ino;
			*inode = next;
			continue;
		}
		if (++links > FS_MAX_SYMLINKS) {
			log_error("%s: %s: more than %d symlinks", e->where, path, FS_MAX_SYMLINKS);
			goto out;
		}
		if (ext_read_link(e, ino, &next, target, path) < 0)
			goto out;
		/* The target, then what was left of the path. */
		size_t tlen = strlen(target), rlen = strlen(rest);
		char *nw = malloc(tlen + 1 + rlen + 1);
		if (!nw) {
			log_error("%s: %s: out of memory", e->where, path);
			goto out;
		}
		memcpy(nw, target, tlen);
		nw[tlen] = '/';
		memcpy(nw + tlen + 1, rest, rlen + 1);
		free(work);
		work = rest = nw;
		if (target[0] == '/') {
			cur = EXT2_ROOT_INO;
			if (ext_read_inode(e, cur, inode, path) < 0)
				goto out;
		}
	}
	*out = cur;
	ret = 0;
out:
	free(work);
	return ret;
}

static int ext_stat(struct fs *fs, const char *path, enum fs_node *node)
{
	struct ext_fs *e = ext_of(fs);
	struct ext2_inode inode;
	ext2_ino_t ino;
	int ret = ext_resolve(e, path, &ino, &inode);

	if (ret)
		return ret;
	*node = LINUX_S_ISDIR(inode.i_mode) ? FS_NODE_DIR :
		LINUX_S_ISREG(inode.i_mode) ? FS_NODE_FILE : FS_NODE_OTHER;
	return 0;
}

static int ext_read_file(struct fs *fs, const char *path, size_t max, void **buf, size_t *len)
{
	struct ext_fs *e = ext_of(fs);
	struct ext2_inode inode;
	ext2_ino_t ino;
	int ret = ext_resolve(e, path, &ino, &inode);

	if (ret)
		return ret;
	if (!LINUX_S_ISREG(inode.i_mode)) {
		log_error("%s: %s: not a regular file", e->where, path);
		return -1;
	}
	uint64_t size = EXT2_I_SIZE(&inode);
	if (size > max) {
		log_error("%s: %s: %" PRIu64 " bytes, more than %zu", e->where, path, size, max);
		return -1;
	}
	void *p = malloc(size ? size : 1);
	if (!p) {
		log_error("%s: %s: out of memory for %" PRIu64 " bytes", e->where, path, size);
		return -1;
	}
	if (ext_read_data(e, ino, &inode, p, size, path) < 0) {
		free(p);
		return -1;
	}
	*buf = p;
	*len = size;
	return 0;
}

struct list_ctx {
	struct ext_fs *e;
	const char *path;
	int (*fn)(void *arg, const char *name, bool is_dir);
	void *arg;
	unsigned int count;
	bool failed, stopped;
};

static int list_one(struct ext2_dir_entry *dirent, int offset, int blocksize, char *buf, void *priv)
{
	struct list_ctx *c = priv;
	char name[EXT2_NAME_LEN + 1];
	int len = ext2fs_dirent_name_len(dirent);
	bool is_dir;

	(void)offset;
	(void)blocksize;
	(void)buf;
	memcpy(name, dirent->name, (size_t)len);
	name[len] = '\0';
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (++c->count > FS_MAX_DIR_ENTRIES) {
		log_error("%s: %s: more than %d directory entries", c->e->where, c->path, FS_MAX_DIR_ENTRIES);
		c->failed = true;
		return DIRENT_ABORT;
	}
	if (ext2fs_has_feature_filetype(c->e->e2->super)) {
		is_dir = ext2fs_dirent_file_type(dirent) == EXT2_FT_DIR;
	} else {
		struct ext2_inode inode;
		if (ext_read_inode(c->e, dirent->inode, &inode, c->path) < 0) {
			c->failed = true;
			return DIRENT_ABORT;
		}
		is_dir = LINUX_S_ISDIR(inode.i_mode);
	}
	if (c->fn(c->arg, name, is_dir)) {
		c->stopped = true;
		return DIRENT_ABORT;
	}
	return 0;
}

static int ext_list_dir(struct fs *fs, const char *path,
			int (*fn)(void *arg, const char *name, bool is_dir), void *arg)
{
	struct ext_fs *e = ext_of(fs);
	struct ext2_inode inode;
	ext2_ino_t ino;
	int ret = ext_resolve(e, path, &ino, &inode);

	if (ret)
		return ret;
	if (!LINUX_S_ISDIR(inode.i_mode))
		return -2;
	if (ext_check_blocks(e, ino, &inode, EXT2_I_SIZE(&inode), path) < 0)
		return -1;

	struct list_ctx c = { .e = e, .path = path, .fn = fn, .arg = arg };
	errcode_t err = ext2fs_dir_iterate(e->e2, ino, 0, NULL, list_one, &c);
	if (c.failed)
		return -1;
	if (err && !c.stopped) {
		log_error("%s: %s: %s", e->where, path, error_message(err));
		return -1;
	}
	return 0;
}

static const struct fs_ops ext_ops = {
	.close = ext_close,
	.stat = ext_stat,
	.read_file = ext_read_file,
	.list_dir = ext_list_dir,
};
