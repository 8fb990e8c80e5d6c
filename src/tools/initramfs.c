#include "tools/initramfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/elf.h>

#include "util/decompress.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

/* ------------------------------------------------------------------------
 * Growing strings
 */

struct strbuf {
	char *s;
	size_t len, cap;
	bool nomem;
};

static void sb_addn(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->nomem)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		while (cap < sb->len + n + 1)
			cap *= 2;
		char *p = realloc(sb->s, cap);
		if (!p) {
			sb->nomem = true;
			return;
		}
		sb->s = p;
		sb->cap = cap;
	}
	if (n)
		memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = 0;
}

static void sb_add(struct strbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

/* s quoted for sh: in single quotes, each ' as '\''. */
static void sb_add_quoted(struct strbuf *sb, const char *s)
{
	sb_add(sb, "'");
	for (const char *q; (q = strchr(s, '\'')); s = q + 1) {
		sb_addn(sb, s, (size_t)(q - s));
		sb_add(sb, "'\\''");
	}
	sb_add(sb, s);
	sb_add(sb, "'");
}

static char *path_join(const char *a, const char *b)
{
	char *p;

	if (!*a)
		return strdup(b);
	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

static void log_nomem(const char *what)
{
	log_error("%s: out of memory", what);
}

/* ------------------------------------------------------------------------
 * The archive's tree, built in memory, then written in one pass
 */

enum node_kind {
	NODE_DIR,
	NODE_HOST_FILE,		/* regular file read from the host at write time */
	NODE_MEM_FILE,		/* regular file with contents in memory */
	NODE_SYMLINK,		/* target in data */
	NODE_SPECIAL,		/* device node, FIFO, socket */
};

struct node {
	char *name;
	struct node *parent;
	struct node **kids;	/* sorted by name, so the archive is reproducible */
	size_t nkids, kids_cap;

	enum node_kind kind;
	uint32_t mode, uid, gid, mtime;
	uint32_t rmajor, rminor;
	size_t path_len;	/* of its path in the archive */
	char *host_path;	/* NODE_HOST_FILE */
	uint64_t size;		/* file size, or symlink target length */
	unsigned char *data;	/* NODE_MEM_FILE contents, NODE_SYMLINK target */
	dev_t hdev;		/* NODE_HOST_FILE identity, for hard links */
	ino_t hino;
	bool multi_link;	/* st_nlink > 1 on the host */

	/* Set by tree_finalize(). */
	uint32_t ino, nlink;
	bool no_data;		/* a hard link whose data another entry carries */
};

struct tree {
	struct node root;
	uint32_t gen_mtime;	/* mtime of generated entries */
	bool keep_owner;
	bool have_out;		/* the output file already exists: never pack it */
	dev_t out_dev;
	ino_t out_ino;
	size_t entries;
};

static void node_clear(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		node_clear(n->kids[i]);
		free(n->kids[i]->name);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->host_path);
	free(n->data);
	n->kids = NULL;
	n->nkids = n->kids_cap = 0;
	n->host_path = NULL;
	n->data = NULL;
	n->size = 0;
	n->multi_link = false;
	n->rmajor = n->rminor = 0;
}

/* Index of name in dir's children, or where it would go (*found false). */
static size_t node_find(const struct node *dir, const char *name, bool *found)
{
	size_t lo = 0, hi = dir->nkids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(dir->kids[mid]->name, name);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/*
 * A new child of dir at pos; NULL with errno ENAMETOOLONG if its path would be
 * longer than the kernel's unpacker takes (write_walk() refuses those anyway;
 * refusing here also bounds the tree's depth, which the walks recurse on).
 */
static struct node *node_insert(struct node *dir, size_t pos, const char *name)
{
	size_t path_len = (dir->parent ? dir->path_len + 1 : 0) + strlen(name);
	struct node *n;

	if (path_len >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name)))
		goto err_free;
	n->path_len = path_len;
	if (dir->nkids == dir->kids_cap) {
		size_t cap = dir->kids_cap ? dir->kids_cap * 2 : 8;
		struct node **k = realloc(dir->kids, cap * sizeof(*k));
		if (!k)
			goto err_free;
		dir->kids = k;
		dir->kids_cap = cap;
	}
	memmove(dir->kids + pos + 1, dir->kids + pos, (dir->nkids - pos) * sizeof(*dir->kids));
	dir->kids[pos] = n;
	dir->nkids++;
	n->parent = dir;
	return n;

err_free:
	if (n)
		free(n->name);
	free(n);
	errno = ENOMEM;
	return NULL;
}

/* Why node_insert() failed, for the entry `what`. */
static void log_insert_error(const char *what)
{
	if (errno == ENAMETOOLONG)
		log_error("cannot add '%s' to the archive: its path there is too long for the "
			  "kernel's unpacker", what);
	else
		log_nomem(what);
}

static void node_set_generated(struct tree *t, struct node *n, enum node_kind kind, uint32_t mode)
{
	n->kind = kind;
	n->mode = mode;
	n->uid = n->gid = 0;
	n->mtime = t->gen_mtime;
}

/* Symlinks one lookup may follow, nested or one after another: Linux's MAXSYMLINKS. */
#define TREE_MAX_SYMLINKS 40

/*
 * The directory at path (relative to start), creating missing directories
 * and following symlinks already in the tree, as the guest will. what names
 * the entry being added, for errors. *follows counts the symlinks followed
 * so far in this lookup: a budget for all of them, not a nesting depth, or
 * links whose targets go through other links many times would take
 * exponential time.
 */
static struct node *tree_dir(struct tree *t, struct node *start, const char *path,
			     unsigned int *follows, const char *what)
{
	struct node *cur = start;
	char *copy = strdup(path), *save = NULL;

	if (!copy) {
		log_nomem(what);
		return NULL;
	}
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		bool found;
		size_t pos;
		struct node *n;

		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (cur->parent)
				cur = cur->parent;
			continue;
		}
		pos = node_find(cur, c, &found);
		if (!found) {
			n = node_insert(cur, pos, c);
			if (!n) {
				log_insert_error(what);
				goto err_free;
			}
			node_set_generated(t, n, NODE_DIR, S_IFDIR | 0755);
			cur = n;
			continue;
		}
		n = cur->kids[pos];
		if (n->kind == NODE_DIR) {
			cur = n;
		} else if (n->kind == NODE_SYMLINK && *follows < TREE_MAX_SYMLINKS) {
			++*follows;
			cur = tree_dir(t, n->data[0] == '/' ? &t->root : cur, (const char *)n->data,
				       follows, what);
			if (!cur)
				goto err_free;
		} else {
			log_error("cannot add '%s' to the archive: '%s' there is not a directory%s",
				  what, c, n->kind == NODE_SYMLINK ? " (symlink loop)" : "");
			goto err_free;
		}
	}
	free(copy);
	return cur;

err_free:
	free(copy);
	return NULL;
}

/*
 * Make the node at path (normalized, not empty) a fresh node of kind. An
 * existing directory stays (with its contents) when kind is a directory; any
 * other existing entry is replaced, unless !clobber: then returns 1.
 */
static int tree_put(struct tree *t, const char *path, enum node_kind kind, bool clobber,
		    struct node **out)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct node *dir = &t->root;
	bool found;
	size_t pos;

	if (slash) {
		char *parent = strndup(path, (size_t)(slash - path));
		if (!parent) {
			log_nomem(path);
			return -1;
		}
		unsigned int follows = 0;
		dir = tree_dir(t, &t->root, parent, &follows, path);
		free(parent);
		if (!dir)
			return -1;
	}
	pos = node_find(dir, base, &found);
	if (found) {
		struct node *n = dir->kids[pos];
		if (!clobber)
			return 1;
		if (kind != NODE_DIR || n->kind != NODE_DIR)
			node_clear(n);
		n->kind = kind;
		*out = n;
		return 0;
	}
	*out = node_insert(dir, pos, base);
	if (!*out) {
		log_insert_error(path);
		return -1;
	}
	(*out)->kind = kind;
	return 0;
}

/* A normalized archive path: no leading '/', no empty or "." parts; ".." is refused. */
static char *path_normalize(const char *in)
{
	struct strbuf sb = { 0 };
	const char *p = in;

	sb_add(&sb, "");
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2)) {
			free(sb.s);
			errno = EINVAL;
			return NULL;
		}
		if (n && !(n == 1 && *p == '.')) {
			if (sb.len)
				sb_add(&sb, "/");
			sb_addn(&sb, p, n);
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (sb.nomem) {
		free(sb.s);
		errno = ENOMEM;
		return NULL;
	}
	return sb.s;
}

static uint32_t clamp_mtime(time_t t)
{
	if (t < 0)
		return 0;
	if ((uint64_t)t > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)t;
}

static int add_host(struct tree *t, const char *host, const char *dest, const struct stat *st);

static int add_host_dir(struct tree *t, const char *host, const char *dest)
{
	DIR *d = opendir(host);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		log_error("cannot read directory '%s': %s", host, strerror(errno));
		return -1;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				log_error("cannot read directory '%s': %s", host, strerror(errno));
				ret = -1;
			}
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *h = path_join(host, de->d_name), *a = path_join(dest, de->d_name);
		struct stat cst;
		if (!h || !a) {
			log_nomem(host);
			ret = -1;
		} else if (lstat(h, &cst) < 0) {
			log_error("cannot stat '%s': %s", h, strerror(errno));
			ret = -1;
		} else {
			ret = add_host(t, h, a, &cst);
		}
		free(h);
		free(a);
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

/* Add host file `host` (whose lstat/stat is st) at archive path dest ("" = root). */
static int add_host(struct tree *t, const char *host, const char *dest, const struct stat *st)
{
	struct node *n;
	enum node_kind kind;

	if (t->have_out && st->st_dev == t->out_dev && st->st_ino == t->out_ino) {
		log_info("not packing '%s': it is the output file", host);
		return 0;
	}
	if (!*dest) {
		if (!S_ISDIR(st->st_mode)) {
			log_error("'%s' is not a directory", host);
			return -1;
		}
		return add_host_dir(t, host, dest);
	}

	switch (st->st_mode & S_IFMT) {
	case S_IFDIR: kind = NODE_DIR; break;
	case S_IFREG: kind = NODE_HOST_FILE; break;
	case S_IFLNK: kind = NODE_SYMLINK; break;
	default: kind = NODE_SPECIAL; break;
	}
	if (tree_put(t, dest, kind, true, &n) < 0)
		return -1;
	n->mode = st->st_mode;
	n->uid = t->keep_owner ? st->st_uid : 0;
	n->gid = t->keep_owner ? st->st_gid : 0;
	n->mtime = clamp_mtime(st->st_mtime);

	switch (kind) {
	case NODE_DIR:
		return add_host_dir(t, host, dest);
	case NODE_HOST_FILE:
		if (!(n->host_path = strdup(host))) {
			log_nomem(host);
			return -1;
		}
		n->size = (uint64_t)st->st_size;
		if (n->size > UINT32_MAX) {
			log_error("'%s' is too large for a cpio archive (4 GiB at most)", host);
			return -1;
		}
		n->hdev = st->st_dev;
		n->hino = st->st_ino;
		n->multi_link = st->st_nlink > 1;
		return 0;
	case NODE_SYMLINK: {
		/* On the heap: this function recurses once per directory level. */
		char *target = malloc(PATH_MAX + 1);
		if (!target) {
			log_nomem(host);
			return -1;
		}
		ssize_t len = readlink(host, target, PATH_MAX + 1);
		if (len < 0 || len > PATH_MAX) {
			log_error("cannot read symlink '%s': %s", host,
				  len < 0 ? strerror(errno) : "target too long");
			free(target);
			return -1;
		}
		target[len] = 0;
		n->data = realloc(target, (size_t)len + 1);
		if (!n->data)
			n->data = (unsigned char *)target;
		n->size = (uint64_t)len;
		return 0;
	}
	case NODE_SPECIAL:
		if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
			n->rmajor = major(st->st_rdev);
			n->rminor = minor(st->st_rdev);
		}
		return 0;
	case NODE_MEM_FILE:
		break;
	}
	return 0;
}

/* A generated regular file; takes ownership of data. */
static int add_mem_file(struct tree *t, const char *path, uint32_t mode, uint32_t mtime,
			unsigned char *data, size_t size, bool clobber)
{
	struct node *n;
	int ret = tree_put(t, path, NODE_MEM_FILE, clobber, &n);

	if (ret) {
		free(data);
		return ret;
	}
	node_set_generated(t, n, NODE_MEM_FILE, S_IFREG | mode);
	n->mtime = mtime;
	n->data = data;
	n->size = size;
	return 0;
}

static int add_mem_string(struct tree *t, const char *path, uint32_t mode, const char *text,
			  bool clobber)
{
	char *copy = strdup(text);

	if (!copy) {
		log_nomem(path);
		return -1;
	}
	return add_mem_file(t, path, mode, t->gen_mtime, (unsigned char *)copy, strlen(copy),
			    clobber);
}

static int add_symlink(struct tree *t, const char *path, const char *target, bool clobber)
{
	struct node *n;
	int ret = tree_put(t, path, NODE_SYMLINK, clobber, &n);

	if (ret)
		return ret;
	node_set_generated(t, n, NODE_SYMLINK, S_IFLNK | 0777);
	if (!(n->data = (unsigned char *)strdup(target))) {
		log_nomem(path);
		return -1;
	}
	n->size = strlen(target);
	return 0;
}

/* A generated directory or device node, only where the path is free. */
static int add_generated(struct tree *t, const char *path, uint32_t mode, uint32_t rmajor,
			 uint32_t rminor)
{
	struct node *n;
	int ret = tree_put(t, path, S_ISDIR(mode) ? NODE_DIR : NODE_SPECIAL, false, &n);

	if (ret)
		return ret < 0 ? -1 : 0;
	node_set_generated(t, n, S_ISDIR(mode) ? NODE_DIR : NODE_SPECIAL, mode);
	n->rmajor = rmajor;
	n->rminor = rminor;
	return 0;
}

struct link_ref {
	struct node *n;
	size_t order;
};

static int link_cmp(const void *a, const void *b)
{
	const struct link_ref *x = a, *y = b;

	if (x->n->hdev != y->n->hdev)
		return x->n->hdev < y->n->hdev ? -1 : 1;
	if (x->n->hino != y->n->hino)
		return x->n->hino < y->n->hino ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct finalize {
	uint32_t next_ino;
	struct link_ref *links;
	size_t nlinks, links_cap;
	bool nomem;
};

static void finalize_walk(struct finalize *f, struct node *dir)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct node *n = dir->kids[i];

		n->ino = f->next_ino++;
		n->nlink = 1;
		n->no_data = false;
		if (n->kind == NODE_DIR) {
			n->nlink = 2;
			for (size_t j = 0; j < n->nkids; j++)
				n->nlink += n->kids[j]->kind == NODE_DIR;
		}
		if (n->kind == NODE_HOST_FILE && n->multi_link) {
			if (f->nlinks == f->links_cap) {
				size_t cap = f->links_cap ? f->links_cap * 2 : 16;
				struct link_ref *l = realloc(f->links, cap * sizeof(*l));
				if (!l) {
					f->nomem = true;
					return;
				}
				f->links = l;
				f->links_cap = cap;
			}
			f->links[f->nlinks].n = n;
			f->links[f->nlinks].order = f->nlinks;
			f->nlinks++;
		}
		finalize_walk(f, n);
	}
}

/*
 * Inode numbers in archive order; hard links (the same host file at several
 * paths in the archive) share one, with nlink counting the archive's links
 * and the data on the last one, as GNU cpio and the kernel's gen_init_cpio do.
 */
static int tree_finalize(struct tree *t)
{
	struct finalize f = { .next_ino = 1 };

	finalize_walk(&f, &t->root);
	if (f.nomem) {
		free(f.links);
		log_nomem("hard links");
		return -1;
	}
	t->entries = f.next_ino - 1;
	if (f.nlinks)
		qsort(f.links, f.nlinks, sizeof(*f.links), link_cmp);
	for (size_t i = 0, j; i < f.nlinks; i = j) {
		for (j = i + 1; j < f.nlinks && !link_cmp(&(struct link_ref){ f.links[j].n, 0 },
							  &(struct link_ref){ f.links[i].n, 0 }); j++)
			;
		for (size_t k = i; k < j; k++) {
			f.links[k].n->ino = f.links[i].n->ino;
			f.links[k].n->nlink = (uint32_t)(j - i);
			f.links[k].n->no_data = k + 1 < j;
		}
	}
	free(f.links);
	return 0;
}

static int write_host_file(struct cpio_writer *w, const struct node *n)
{
	static unsigned char buf[256 << 10];
	uint64_t left = n->size;
	/* O_NONBLOCK: if the file was swapped for a FIFO since it was listed, fail, not hang. */
	int fd = open(n->host_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		log_error("cannot read '%s': %s", n->host_path, strerror(errno));
		return -1;
	}
	while (left) {
		ssize_t r = read(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("cannot read '%s': %s", n->host_path, strerror(errno));
			goto err_close;
		}
		if (r == 0) {
			log_error("cannot read '%s': it shrank while being packed", n->host_path);
			goto err_close;
		}
		if (cpio_write_data(w, buf, (size_t)r) < 0)
			goto err_close;
		left -= (uint64_t)r;
	}
	if (read(fd, buf, 1) > 0) {
		log_error("cannot read '%s': it grew while being packed", n->host_path);
		goto err_close;
	}
	close(fd);
	return 0;

err_close:
	close(fd);
	return -1;
}

static int write_walk(struct cpio_writer *w, const struct node *dir, struct strbuf *path)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		const struct node *n = dir->kids[i];
		size_t plen = path->len;
		struct cpio_header h = {
			.ino = n->ino, .mode = n->mode, .uid = n->uid, .gid = n->gid,
			.nlink = n->nlink, .mtime = n->mtime,
			.rdevmajor = n->rmajor, .rdevminor = n->rminor,
		};

		if (plen)
			sb_add(path, "/");
		sb_add(path, n->name);
		if (path->nomem) {
			log_nomem(n->name);
			return -1;
		}
		if (path->len >= PATH_MAX) {
			log_error("'%s' is too long a path for the kernel's unpacker", path->s);
			return -1;
		}
		if (n->kind == NODE_HOST_FILE || n->kind == NODE_MEM_FILE || n->kind == NODE_SYMLINK)
			h.filesize = n->no_data ? 0 : n->size;
		if (cpio_write_header(w, &h, path->s) < 0)
			return -1;
		if (n->kind == NODE_HOST_FILE && !n->no_data) {
			if (write_host_file(w, n) < 0)
				return -1;
		} else if (n->kind == NODE_MEM_FILE || n->kind == NODE_SYMLINK) {
			if (cpio_write_data(w, n->data, n->size) < 0)
				return -1;
		}
		if (n->kind == NODE_DIR && write_walk(w, n, path) < 0)
			return -1;
		path->len = plen;
		path->s[plen] = 0;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * busybox
 */

static int busybox_check(const char *path)
{
	Elf64_Ehdr eh;
	struct stat st;
	int fd;

	if (stat(path, &st) < 0) {
		log_error("busybox '%s': %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("busybox '%s' is not a regular file", path);
		return -1;
	}
	if (!(st.st_mode & 0111) || access(path, X_OK) < 0) {
		log_error("busybox '%s' is not executable", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);	/* a FIFO swapped in: no hang */
	if (fd < 0) {
		log_error("cannot read busybox '%s': %s", path, strerror(errno));
		return -1;
	}
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		log_error("busybox '%s' is not a 64-bit ELF executable", path);
		goto err_close;
	}
	if (eh.e_machine != EM_X86_64) {
		log_error("busybox '%s' is not an x86-64 program (ELF machine %u)", path, eh.e_machine);
		goto err_close;
	}
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph)) {
			log_error("busybox '%s': truncated ELF program headers", path);
			goto err_close;
		}
		if (ph.p_type == PT_INTERP) {
			log_error("busybox '%s' is dynamically linked; the initramfs needs a static "
				  "one (e.g. Debian's busybox-static)", path);
			goto err_close;
		}
	}
	close(fd);
	return 0;

err_close:
	close(fd);
	return -1;
}

#define BUSYBOX_LIST_TIMEOUT_MS 10000	/* a real busybox lists its applets in milliseconds */

/* Run `busybox arg` (as argv[0] "busybox", so it acts as the multi-call
 * binary whatever its file name); its stdout in *out. */
static int busybox_output(const char *path, const char *arg, struct strbuf *out)
{
	int pfd[2], status;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_error("cannot run busybox '%s': %s", path, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("cannot run busybox '%s': %s", path, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 2);
		}
		dup2(pfd[1], 1);
		execl(path, "busybox", arg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* A binary that never finishes (or leaves a child holding stdout) must not hang us. */
	long deadline = time_now_ms() + BUSYBOX_LIST_TIMEOUT_MS;
	for (;;) {
		char buf[4096];
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		long left = deadline - time_now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			log_error("busybox '%s' did not list its applets within %d s", path,
				  BUSYBOX_LIST_TIMEOUT_MS / 1000);
			kill(pid, SIGKILL);
			close(pfd[0]);
			waitpid(pid, &status, 0);
			return -1;
		}
		ssize_t r = read(pfd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out->len < (1u << 20))	/* applet lists are a few KiB */
			sb_addn(out, buf, (size_t)r);
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("cannot run busybox '%s': %s", path, strerror(errno));
			return -1;
		}
	}
	if (out->nomem) {
		log_nomem(path);
		return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 && out->len ? 0 : 1;
}

/*
 * Whether a '/'-separated component of p is "..", or (strict) also empty or
 * "." — which is also what an absolute path, a trailing '/' and "" have.
 */
static bool path_has_bad_component(const char *p, bool strict)
{
	for (;;) {
		size_t n = strcspn(p, "/");

		if ((n == 2 && p[0] == '.' && p[1] == '.') ||
		    (strict && (n == 0 || (n == 1 && p[0] == '.'))))
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

static bool applet_path_ok(const char *p)
{
	/* Relative, no empty, "." or ".." component: "bin/" or "bin/." would unpack badly. */
	if (path_has_bad_component(p, true) || strstr(p, ".."))
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_.+-[]/", *p)))
			return false;
	return true;
}

/*
 * The applets' archive paths, from `busybox --list-full` (as `busybox
 * --install` would place them), else `--list` into bin/. Returned as one
 * malloc'd block of NUL-separated strings.
 */
static int busybox_applets(const char *path, char **list, size_t *count)
{
	struct strbuf out = { 0 }, res = { 0 };
	bool full = true;
	int ret = busybox_output(path, "--list-full", &out);

	if (ret > 0) {
		full = false;
		out.len = 0;
		ret = busybox_output(path, "--list", &out);
	}
	if (ret) {
		if (ret > 0)
			log_error("busybox '%s' does not list its applets (--list)", path);
		free(out.s);
		return -1;
	}
	*count = 0;
	for (char *save = NULL, *l = strtok_r(out.s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!applet_path_ok(l))
			continue;
		/* linuxrc is busybox's init for old initrds; /init is ours. */
		if (!strchr(l, '/') && (full || !strcmp(l, "linuxrc")))
			continue;
		if (!full)
			sb_add(&res, "bin/");
		sb_addn(&res, l, strlen(l) + 1);
		(*count)++;
	}
	free(out.s);
	if (res.nomem || !*count) {
		if (res.nomem)
			log_nomem(path);
		else
			log_error("busybox '%s' lists no applets", path);
		free(res.s);
		return -1;
	}
	*list = res.s;
	return 0;
}

static bool applets_have(const char *list, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++, list += strlen(list) + 1) {
		const char *slash = strrchr(list, '/');
		if (!strcmp(slash ? slash + 1 : list, name))
			return true;
	}
	return false;
}

const char initramfs_fstab[] =
	"# Mounted by /init (bootvm initramfs --busybox) with mount -a -T.\n"
	"proc /proc proc defaults 0 0\n"
	"sysfs /sys sysfs defaults 0 0\n"
	"devtmpfs /dev devtmpfs defaults 0 0\n";

char *initramfs_init_script(const char *init_run, const char *const *insmod_paths, size_t n)
{
	struct strbuf sb = { 0 };

	sb_add(&sb,
	       "#!/bin/sh\n"
	       "# /init written by `bootvm initramfs --busybox`. Every program run costs\n"
	       "# 1-2 s where the guest kernel is emulated, so this keeps to shell builtins\n"
	       "# where it can.\n"
	       "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n"
	       "# proc, sysfs and devtmpfs in one mount run; one by one if mount lacks -T.\n"
	       "mount -a -T /" INITRAMFS_FSTAB_PATH " 2>/dev/null || {\n"
	       "\t[ -e /proc/self ] || mount -t proc proc /proc\n"
	       "\t[ -e /sys/kernel ] || mount -t sysfs sysfs /sys\n"
	       "\tmount -t devtmpfs devtmpfs /dev\n"
	       "}\n");
	if (n) {
		sb_add(&sb, "# Modules, dependencies first.\nfor m in");
		for (size_t i = 0; i < n; i++) {
			sb_add(&sb, " \\\n\t");
			sb_add_quoted(&sb, insmod_paths[i]);
		}
		sb_add(&sb, "\ndo\n"
			    "\tinsmod \"$m\" || echo \"bootvm-init: insmod $m failed\"\n"
			    "done\n");
	}
	if (init_run) {
		sb_add(&sb, "sh -c ");
		sb_add_quoted(&sb, init_run);
		sb_add(&sb, "\necho \"" INITRAMFS_STATUS_PREFIX "$?\"\n");
	} else {
		sb_add(&sb, "echo 'bootvm-init: starting a shell; exit it to power off'\n"
			    "# A session of its own with the console as controlling terminal,\n"
			    "# so that job control and Ctrl-C work.\n"
			    "setsid cttyhack sh\n");
	}
	sb_add(&sb, "poweroff -f\n");
	if (sb.nomem) {
		free(sb.s);
		log_nomem("/init");
		return NULL;
	}
	return sb.s;
}

static int add_busybox(struct tree *t, const char *path, const char *init_run,
		       const char *const *insmod_paths, size_t nr_insmod)
{
	/* What /init runs; insmod last, needed only with modules. */
	static const char *const needed[] = { "sh", "mount", "poweroff", "setsid", "cttyhack",
					       "insmod" };
	size_t nr_needed = sizeof(needed) / sizeof(needed[0]) - (nr_insmod == 0);
	struct stat st;
	struct node *n;
	char *applets, *script;
	size_t count;
	int ret = -1;

	if (busybox_check(path) < 0 || busybox_applets(path, &applets, &count) < 0)
		return -1;
	for (size_t i = 0; i < nr_needed; i++) {
		if (!applets_have(applets, count, needed[i])) {
			log_error("busybox '%s' has no '%s' applet, which /init needs", path,
				  needed[i]);
			goto err_free;
		}
	}
	if (stat(path, &st) < 0) {
		log_error("busybox '%s': %s", path, strerror(errno));
		goto err_free;
	}
	if (tree_put(t, "bin/busybox", NODE_HOST_FILE, true, &n) < 0)
		goto err_free;
	n->mode = S_IFREG | (st.st_mode & 07777);
	n->uid = n->gid = 0;
	n->mtime = clamp_mtime(st.st_mtime);
	n->size = (uint64_t)st.st_size;
	n->hdev = st.st_dev;
	n->hino = st.st_ino;
	if (!(n->host_path = strdup(path))) {
		log_nomem(path);
		goto err_free;
	}
	/* The tree's own files win over applet links. */
	const char *a = applets;
	for (size_t i = 0; i < count; i++, a += strlen(a) + 1)
		if (strcmp(a, "bin/busybox") && add_symlink(t, a, "/bin/busybox", false) < 0)
			goto err_free;

	if (add_generated(t, "dev", S_IFDIR | 0755, 0, 0) < 0 ||
	    add_generated(t, "dev/console", S_IFCHR | 0600, 5, 1) < 0 ||
	    add_generated(t, "proc", S_IFDIR | 0755, 0, 0) < 0 ||
	    add_generated(t, "sys", S_IFDIR | 0755, 0, 0) < 0 ||
	    add_generated(t, "root", S_IFDIR | 0700, 0, 0) < 0 ||
	    add_mem_string(t, INITRAMFS_FSTAB_PATH, 0644, initramfs_fstab, true) < 0)
		goto err_free;

	script = initramfs_init_script(init_run, insmod_paths, nr_insmod);
	if (!script)
		goto err_free;
	bool found;
	node_find(&t->root, "init", &found);
	if (found)
		log_warn("the generated /init replaces the tree's own /init (--busybox)");
	ret = add_mem_file(t, "init", 0755, t->gen_mtime, (unsigned char *)script, strlen(script),
			   true);

err_free:
	free(applets);
	return ret;
}

/* ------------------------------------------------------------------------
 * Modules
 */

struct moddep {
	char *path;		/* relative to the modules directory */
	char *name;		/* normalized: '-' as '_' */
	char **deps;
	size_t ndeps;
	int state;		/* 0 new, 1 visiting, 2 done */
};

struct modtab {
	struct moddep *mods;
	size_t n, cap;
	struct moddep **by_path;
};

static const char *const module_suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };

/* Length of path without its .xz/.zst/.gz after .ko. */
static size_t module_plain_len(const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 1; i < sizeof(module_suffixes) / sizeof(module_suffixes[0]); i++) {
		size_t sl = strlen(module_suffixes[i]);
		if (len > sl && !strcmp(path + len - sl, module_suffixes[i]))
			return len - sl + 3;
	}
	return len;
}

/* "virtio-net", "virtio_net.ko", ".../virtio_net.ko.xz" → "virtio_net". */
static char *module_name(const char *s)
{
	const char *base = strrchr(s, '/');
	char *name;
	size_t len;

	base = base ? base + 1 : s;
	len = strlen(base);
	for (size_t i = 0; i < sizeof(module_suffixes) / sizeof(module_suffixes[0]); i++) {
		size_t sl = strlen(module_suffixes[i]);
		if (len > sl && !strcmp(base + len - sl, module_suffixes[i])) {
			len -= sl;
			break;
		}
	}
	name = strndup(base, len);
	for (char *p = name; p && *p; p++)
		if (*p == '-')
			*p = '_';
	return name;
}

static void modtab_free(struct modtab *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->mods[i].path);
		free(t->mods[i].name);
		for (size_t j = 0; j < t->mods[i].ndeps; j++)
			free(t->mods[i].deps[j]);
		free(t->mods[i].deps);
	}
	free(t->mods);
	free(t->by_path);
}

static int moddep_cmp(const void *a, const void *b)
{
	return strcmp((*(struct moddep *const *)a)->path, (*(struct moddep *const *)b)->path);
}

static struct moddep *modtab_by_path(struct modtab *t, const char *path)
{
	struct moddep key = { .path = (char *)path }, *k = &key, **r;

	r = bsearch(&k, t->by_path, t->n, sizeof(*t->by_path), moddep_cmp);
	return r ? *r : NULL;
}

/*
 * A modules.dep path, relative to dir (absolute ones must be under it). A
 * ".." would reach outside dir, and put the file outside lib/modules/VERSION
 * in the archive: EXDEV as for an absolute path elsewhere.
 */
static char *modpath_relative(const char *dir, const char *p)
{
	size_t dl = strlen(dir);

	if (*p == '/') {
		if (strncmp(p, dir, dl) || p[dl] != '/' || !p[dl + 1]) {
			errno = EXDEV;
			return NULL;
		}
		p += dl + 1;
	}
	if (path_has_bad_component(p, false)) {
		errno = EXDEV;
		return NULL;
	}
	return strdup(p);
}

/*
 * fopen(path, "re") for a regular file only; else NULL and *why. fopen()
 * itself would wait for ever on a FIFO for a writer.
 */
static FILE *fopen_regular(const char *path, const char **why)
{
	uint64_t size;
	int fd = file_open_quiet(path, &size);
	FILE *f;

	if (fd < 0) {
		*why = fd == FILE_ERR_NOT_REGULAR ? "not a regular file" : strerror(errno);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		*why = strerror(errno);
		close(fd);
	}
	return f;
}

static int modtab_load(struct modtab *t, const char *dir)
{
	char *file = path_join(dir, "modules.dep"), *line = NULL;
	size_t lcap = 0, lineno = 0;
	ssize_t len;
	FILE *f;

	if (!file) {
		log_nomem(dir);
		return -1;
	}
	const char *why;
	f = fopen_regular(file, &why);
	if (!f) {
		log_error("cannot read '%s': %s", file, why);
		free(file);
		return -1;
	}
	while ((len = getline(&line, &lcap, f)) >= 0) {
		char *colon, *save = NULL;
		struct moddep *m;

		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		if (!line[strspn(line, " \t")] || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon || colon == line || strchr(" \t", line[0])) {
			log_error("%s:%zu: malformed line (expected 'MODULE: DEPENDENCIES')", file,
				  lineno);
			goto err;
		}
		*colon = 0;
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 256;
			struct moddep *mm = realloc(t->mods, cap * sizeof(*mm));
			if (!mm)
				goto err_nomem;
			t->mods = mm;
			t->cap = cap;
		}
		m = &t->mods[t->n];
		memset(m, 0, sizeof(*m));
		t->n++;
		m->path = modpath_relative(dir, line);
		if (!m->path) {
			if (errno == EXDEV) {
				log_error("%s:%zu: '%s' is outside %s", file, lineno, line, dir);
				goto err;
			}
			goto err_nomem;
		}
		if (!(m->name = module_name(m->path)))
			goto err_nomem;
		for (char *d = strtok_r(colon + 1, " \t", &save); d; d = strtok_r(NULL, " \t", &save)) {
			char **nd = realloc(m->deps, (m->ndeps + 1) * sizeof(*nd));
			if (!nd)
				goto err_nomem;
			m->deps = nd;
			if (!(m->deps[m->ndeps] = modpath_relative(dir, d))) {
				if (errno == EXDEV) {
					log_error("%s:%zu: '%s' is outside %s", file, lineno, d, dir);
					goto err;
				}
				goto err_nomem;
			}
			m->ndeps++;
		}
	}
	if (ferror(f)) {
		log_error("cannot read '%s': %s", file, strerror(errno));
		goto err;
	}
	if (!(t->by_path = malloc((t->n ? t->n : 1) * sizeof(*t->by_path))))
		goto err_nomem;
	for (size_t i = 0; i < t->n; i++)
		t->by_path[i] = &t->mods[i];
	qsort(t->by_path, t->n, sizeof(*t->by_path), moddep_cmp);
	free(line);
	free(file);
	fclose(f);
	return 0;

err_nomem:
	log_nomem(file);
err:
	free(line);
	free(file);
	fclose(f);
	return -1;
}

/* Whether name is listed in dir/modules.builtin (no file: not builtin). */
static bool module_builtin(const char *dir, const char *name)
{
	char *file = path_join(dir, "modules.builtin"), *line = NULL;
	size_t cap = 0;
	bool found = false;
	const char *why;
	FILE *f = file ? fopen_regular(file, &why) : NULL;

	free(file);
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) >= 0) {
		line[strcspn(line, "\r\n")] = 0;
		char *n = module_name(line);
		found = n && !strcmp(n, name);
		free(n);
	}
	free(line);
	fclose(f);
	return found;
}

/* A module being visited, and how many of its dependencies are still to visit. */
struct resolve_frame {
	struct moddep *m;
	size_t left;
};

struct resolve {
	const char *file;	/* modules.dep, for errors */
	struct modtab *tab;
	struct initramfs_modules *out;
	struct resolve_frame *stack;	/* room for every module: each is on it at most once */
};

/* Append m, whose dependencies are all in already, to the result. */
static int resolve_emit(struct resolve *r, const struct moddep *m)
{
	struct strbuf line = { 0 };

	/* This module's line in the archive's modules.dep, with plain .ko names. */
	sb_addn(&line, m->path, module_plain_len(m->path));
	sb_add(&line, ":");
	for (size_t i = 0; i < m->ndeps; i++) {
		sb_add(&line, " ");
		sb_addn(&line, m->deps[i], module_plain_len(m->deps[i]));
	}
	char *path = strdup(m->path);
	if (line.nomem || !path) {
		free(line.s);
		free(path);
		log_nomem(r->file);
		return -1;
	}
	r->out->paths[r->out->count] = path;
	r->out->deps_lines[r->out->count] = line.s;
	r->out->count++;
	return 0;
}

/*
 * Depth-first, dependencies before the module; a cycle is cut where it
 * closes. With a stack of our own: a modules.dep chain may be as long as the
 * file, too deep for recursion.
 */
static int resolve_visit(struct resolve *r, struct moddep *m)
{
	size_t sp = 0;

	if (m->state)
		return 0;
	m->state = 1;
	r->stack[sp++] = (struct resolve_frame){ m, m->ndeps };
	while (sp) {
		struct resolve_frame *f = &r->stack[sp - 1];

		if (!f->left) {
			f->m->state = 2;
			if (resolve_emit(r, f->m) < 0)
				return -1;
			sp--;
			continue;
		}
		/* modprobe loads a module's modules.dep list from its end. */
		const char *dep = f->m->deps[--f->left];
		struct moddep *d = modtab_by_path(r->tab, dep);
		if (!d) {
			log_error("%s: '%s' needs '%s', which has no line of its own", r->file,
				  f->m->path, dep);
			return -1;
		}
		if (!d->state) {
			d->state = 1;
			r->stack[sp++] = (struct resolve_frame){ d, d->ndeps };
		}
	}
	return 0;
}

int initramfs_resolve_modules(const char *moddir, const char *const *names, size_t nr_names,
			      struct initramfs_modules *out)
{
	struct modtab tab = { 0 };
	struct resolve r = { .tab = &tab, .out = out };
	char *file = NULL;
	const char *slash;

	memset(out, 0, sizeof(*out));
	out->dir = realpath(moddir, NULL);
	if (!out->dir) {
		log_error("modules directory '%s': %s", moddir, strerror(errno));
		return -1;
	}
	slash = strrchr(out->dir, '/');
	out->version = strdup(slash && slash[1] ? slash + 1 : out->dir);
	file = path_join(out->dir, "modules.dep");
	if (!out->version || !file) {
		log_nomem(moddir);
		goto err;
	}
	r.file = file;
	if (modtab_load(&tab, out->dir) < 0)
		goto err;
	out->paths = calloc(tab.n + 1, sizeof(*out->paths));
	out->deps_lines = calloc(tab.n + 1, sizeof(*out->deps_lines));
	r.stack = calloc(tab.n + 1, sizeof(*r.stack));
	if (!out->paths || !out->deps_lines || !r.stack) {
		log_nomem(file);
		goto err;
	}
	for (size_t i = 0; i < nr_names; i++) {
		char *name = module_name(names[i]);
		struct moddep *m = NULL;

		if (!name) {
			log_nomem(names[i]);
			goto err;
		}
		for (size_t j = 0; j < tab.n && !m; j++)
			if (!strcmp(tab.mods[j].name, name))
				m = &tab.mods[j];
		if (!m && module_builtin(out->dir, name)) {
			log_warn("module '%s' is built into kernel %s; nothing to load", names[i],
				 out->version);
			free(name);
			continue;
		}
		free(name);
		if (!m) {
			log_error("module '%s' not found in %s", names[i], file);
			goto err;
		}
		if (resolve_visit(&r, m) < 0)
			goto err;
	}
	free(r.stack);
	modtab_free(&tab);
	free(file);
	return 0;

err:
	free(r.stack);
	modtab_free(&tab);
	free(file);
	initramfs_modules_free(out);
	return -1;
}

void initramfs_modules_free(struct initramfs_modules *m)
{
	for (size_t i = 0; i < m->count; i++) {
		free(m->paths[i]);
		free(m->deps_lines[i]);
	}
	free(m->paths);
	free(m->deps_lines);
	free(m->dir);
	free(m->version);
	memset(m, 0, sizeof(*m));
}

#define MODULE_MAX_SIZE (1u << 30)

int initramfs_read_module(const char *path, unsigned char **data, size_t *size)
{
	struct file_map fm;
	uint8_t *out = NULL;
	size_t out_size = 0;
	const char *why = NULL;

	if (file_map(path, "module", &fm) < 0)
		return -1;
	/* Modules come plain or as .ko.xz, .ko.zst or .ko.gz. */
	enum decompress_format fmt = decompress_detect(fm.data, fm.size);
	bool compressed = fmt == DECOMPRESS_XZ || fmt == DECOMPRESS_ZSTD || fmt == DECOMPRESS_GZIP;
	int ret = 0;

	if (compressed) {
		ret = decompress_buffer(fmt, fm.data, fm.size, 0, MODULE_MAX_SIZE, &out, &out_size,
					&why);
	} else if (!(out = malloc(fm.size ? fm.size : 1))) {
		why = "out of memory";
		ret = -1;
	} else {
		if (fm.size)
			memcpy(out, fm.data, fm.size);
		out_size = fm.size;
	}
	file_unmap(&fm);
	if (ret < 0) {
		log_error("cannot decompress module '%s': %s", path,
			  ret == DECOMPRESS_ERR_TOO_BIG ? "larger than 1 GiB" : why);
		return -1;
	}
	if (out_size < SELFMAG || memcmp(out, ELFMAG, SELFMAG)) {
		log_error("module '%s' is not an ELF file%s", path,
			  compressed ? " once decompressed" : "");
		free(out);
		return -1;
	}
	*data = out;
	*size = out_size;
	return 0;
}

/* Copy the resolved modules to lib/modules/VERSION/ as plain .ko files. */
static int add_modules(struct tree *t, const struct initramfs_modules *m, char ***insmod)
{
	struct strbuf dep = { 0 };
	char *base = NULL;
	int ret = -1;

	*insmod = calloc(m->count + 1, sizeof(**insmod));
	if (!*insmod || asprintf(&base, "lib/modules/%s", m->version) < 0) {
		base = NULL;
		log_nomem("modules");
		goto out;
	}
	for (size_t i = 0; i < m->count; i++) {
		char *src = path_join(m->dir, m->paths[i]);
		char *rel = strndup(m->paths[i], module_plain_len(m->paths[i]));
		char *dst = rel ? path_join(base, rel) : NULL;
		unsigned char *data;
		size_t size;
		struct stat st;
		int r = -1;

		if (!src || !dst) {
			log_nomem("modules");
		} else if (stat(src, &st) < 0) {
			log_error("cannot read module '%s': %s", src, strerror(errno));
		} else if (initramfs_read_module(src, &data, &size) == 0) {
			r = add_mem_file(t, dst, 0644, clamp_mtime(st.st_mtime), data, size, true);
			if (!r && asprintf(&(*insmod)[i], "/%s", dst) < 0) {
				(*insmod)[i] = NULL;
				log_nomem("modules");
				r = -1;
			}
		}
		free(src);
		free(rel);
		free(dst);
		if (r < 0)
			goto out;
		sb_add(&dep, m->deps_lines[i]);
		sb_add(&dep, "\n");
	}
	/* For modprobe in the guest; a modules.dep the tree brings stays. */
	char *dep_path = path_join(base, "modules.dep");
	if (dep.nomem || !dep_path) {
		free(dep_path);
		log_nomem("modules.dep");
		goto out;
	}
	ret = add_mem_file(t, dep_path, 0644, t->gen_mtime, (unsigned char *)dep.s, dep.len, false);
	dep.s = NULL;
	if (ret > 0) {
		log_info("keeping the tree's own /%s", dep_path);
		ret = 0;
	}
	free(dep_path);
out:
	free(dep.s);
	free(base);
	return ret;
}

/* ------------------------------------------------------------------------
 * Building
 */

int initramfs_parse_add(char *arg, struct initramfs_add *out)
{
	char *colon = strrchr(arg, ':');

	if (!colon || colon == arg || !colon[1])
		return -1;
	*colon = 0;
	out->src = arg;
	out->dest = colon + 1;
	return 0;
}

static int add_extra(struct tree *t, const struct initramfs_add *a)
{
	struct stat st;
	char *dest, *full = NULL;
	int ret;

	if (stat(a->src, &st) < 0) {
		log_error("--add '%s:%s': cannot read '%s': %s", a->src, a->dest, a->src,
			  strerror(errno));
		return -1;
	}
	dest = path_normalize(a->dest);
	if (!dest) {
		log_error("--add '%s:%s': %s", a->src, a->dest,
			  errno == EINVAL ? "'..' is not allowed in DEST" : strerror(errno));
		return -1;
	}
	if (a->dest[strlen(a->dest) - 1] == '/') {
		/* DEST/ names the directory to put SRC in. */
		char *copy = strdup(a->src);
		char *b = copy;
		size_t l = copy ? strlen(copy) : 0;
		while (l > 1 && copy[l - 1] == '/')
			copy[--l] = 0;
		if (copy && strrchr(copy, '/'))
			b = strrchr(copy, '/') + 1;
		full = copy && strcmp(b, ".") && strcmp(b, "..") && strcmp(b, "/") && *b ?
		       path_join(dest, b) : NULL;
		free(copy);
		free(dest);
		if (!full) {
			log_error("--add '%s:%s': cannot tell SRC's name; give DEST in full", a->src,
				  a->dest);
			return -1;
		}
		dest = full;
	}
	if (!*dest && !S_ISDIR(st.st_mode)) {
		log_error("--add '%s:%s': DEST must name a file in the archive", a->src, a->dest);
		free(dest);
		return -1;
	}
	ret = add_host(t, a->src, dest, &st);
	free(dest);
	return ret;
}

static uint32_t generated_mtime(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-' || v > UINT32_MAX) {
		log_warn("ignoring SOURCE_DATE_EPOCH '%s': not a number of seconds", s);
		return 0;
	}
	return (uint32_t)v;
}

static int output_write(struct tree *t, const struct initramfs_options *opt)
{
	char *dir = strdup(opt->output), *tmp = NULL, *slash;
	const char *base;
	struct cpio_writer *w = NULL;
	struct strbuf path = { 0 };
	mode_t mask;
	int fd = -1, ret = -1;

	if (!dir) {
		log_nomem(opt->output);
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		base = slash + 1;
	} else {
		base = dir;
	}
	if (!*base) {
		log_error("cannot write '%s': not a file name", opt->output);
		goto out;
	}
	/* The temporary file is in OUT's directory, so that rename() is atomic. */
	if (asprintf(&tmp, "%s%s.%s.XXXXXX", slash ? dir : "", slash ? "/" : "", base) < 0) {
		tmp = NULL;
		log_nomem(opt->output);
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot write '%s': %s", opt->output, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	w = cpio_writer_open(fd, opt->output, opt->compress);
	if (!w)
		goto out;
	sb_add(&path, "");
	if (write_walk(w, &t->root, &path) < 0 || cpio_writer_finish(w) < 0)
		goto out;
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0 || fsync(fd) < 0) {
		log_error("cannot write '%s': %s", opt->output, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		log_error("cannot write '%s': %s", opt->output, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, opt->output) < 0) {
		log_error("cannot write '%s': %s", opt->output, strerror(errno));
		goto out;
	}
	log_info("wrote '%s': %zu entries, %llu bytes of cpio, %llu bytes %s", opt->output,
		 t->entries, (unsigned long long)cpio_writer_size(w),
		 (unsigned long long)cpio_writer_written(w), cpio_compress_name(opt->compress));
	free(tmp);
	tmp = NULL;
	ret = 0;
out:
	cpio_writer_free(w);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(path.s);
	free(dir);
	return ret;
}

int initramfs_build(const struct initramfs_options *opt)
{
	struct tree t = { 0 };
	struct initramfs_modules mods = { 0 };
	char **insmod = NULL;
	struct stat st;
	int ret = -1;

	t.root.kind = NODE_DIR;
	t.root.mode = S_IFDIR | 0755;
	t.keep_owner = opt->keep_owner;
	t.gen_mtime = generated_mtime();

	if (!opt->output) {
		log_error("initramfs: no output file");
		return -1;
	}
	if (opt->init_run && !opt->busybox) {
		log_error("initramfs: --init-run needs --busybox");
		return -1;
	}
	if (opt->nr_modules && !opt->modules_from) {
		log_error("initramfs: --module needs --modules-from");
		return -1;
	}
	if (!stat(opt->output, &st)) {
		if (S_ISDIR(st.st_mode)) {
			log_error("cannot write '%s': it is a directory", opt->output);
			return -1;
		}
		t.have_out = true;
		t.out_dev = st.st_dev;
		t.out_ino = st.st_ino;
	}

	if (opt->dir) {
		if (stat(opt->dir, &st) < 0) {
			log_error("directory '%s': %s", opt->dir, strerror(errno));
			goto out;
		}
		if (add_host(&t, opt->dir, "", &st) < 0)
			goto out;
	}
	if (opt->modules_from) {
		if (initramfs_resolve_modules(opt->modules_from, opt->modules, opt->nr_modules,
					      &mods) < 0)
			goto out;
		if (add_modules(&t, &mods, &insmod) < 0)
			goto out;
	}
	if (opt->busybox &&
	    add_busybox(&t, opt->busybox, opt->init_run, (const char *const *)insmod, mods.count) < 0)
		goto out;
	for (size_t i = 0; i < opt->nr_adds; i++)
		if (add_extra(&t, &opt->adds[i]) < 0)
			goto out;
	if (tree_finalize(&t) < 0)
		goto out;
	ret = output_write(&t, opt);
out:
	if (insmod)
		for (size_t i = 0; i < mods.count; i++)
			free(insmod[i]);
	free(insmod);
	initramfs_modules_free(&mods);
	node_clear(&t.root);
	return ret;
}
