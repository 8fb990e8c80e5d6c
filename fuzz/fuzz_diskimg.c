/*
 * libFuzzer target: the partition tables and the FAT reader on an arbitrary
 * image (held in a memfd, opened by its /proc path as a disk image is). Each
 * partition that parses as FAT is walked: the root and its subdirectories
 * two levels down listed, every file read. ext stays out: libext2fs is
 * someone else's parser, and slow to fuzz through.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tools/diskimg.h"
#include "tools/fs_impl.h"
#include "fuzz.h"

#define FUZZ_MAX_FILE (1u << 20)

struct walk {
	struct fs *fs;
	char path[512];
	unsigned int depth, visits;
};

static int walk_entry(void *arg, const char *name, bool is_dir)
{
	struct walk *w = arg;
	size_t len = strlen(w->path);

	if (++w->visits > 2000)
		return 1;
	if (len + 1 + strlen(name) + 1 > sizeof(w->path))
		return 0;
	snprintf(w->path + len, sizeof(w->path) - len, "%s%s", len > 1 ? "/" : "", name);
	if (is_dir && w->depth < 3) {
		w->depth++;
		fs_list_dir(w->fs, w->path, walk_entry, w);
		w->depth--;
	} else if (!is_dir) {
		void *buf;
		size_t n;
		if (fs_read_file(w->fs, w->path, FUZZ_MAX_FILE, &buf, &n) == 0) {
			if (n > FUZZ_MAX_FILE)
				abort();
			free(buf);
		}
	}
	w->path[len] = '\0';
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fuzz_log_quiet();
		fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	struct diskimg *d = diskimg_open(path);
	if (!d)
		return 0;
	if (d->nr_parts > DISKIMG_MAX_PARTS)
		abort();
	for (unsigned int i = 0; i < d->nr_parts; i++) {
		const struct diskimg_part *p = &d->parts[i];
		bool corrupt;
		if (p->offset > d->size || p->size > d->size - p->offset)
			abort();
		struct fs *fs = fs_fat_open(d, p, true, &corrupt);
		if (!fs)
			continue;
		struct walk w = { .fs = fs, .path = "/" };
		fs_list_dir(fs, "/", walk_entry, &w);
		void *buf;
		size_t n;
		if (fs_read_file(fs, "/EFI/BOOT/../boot/./BOOTX64.EFI", FUZZ_MAX_FILE, &buf, &n) == 0)
			free(buf);
		fs_close(fs);
	}
	diskimg_close(d);
	return 0;
}
