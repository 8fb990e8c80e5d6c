/*
 * bootvm-mkdisk: an ext4 image from tar archives and directories, written
 * through libext2fs (no mount, no root): every entry's owner, mode, type,
 * times, xattrs, hard links and holes come from the archive, not from who
 * runs it. See docs/ARCHITECTURE.md ("bootvm mkdisk").
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --add SRC:DEST: a host file or directory at DEST in the image (owner root). */
struct mkdisk_add {
	const char *src;
	const char *dest;
};

/* --ssh-key FILE[:USER]: FILE appended to USER's ~/.ssh/authorized_keys. */
struct mkdisk_key {
	const char *file;
	const char *user;	/* "root" unless told */
};

struct mkdisk_options {
	const char *output;
	uint64_t size;			/* bytes; 0: auto (content + headroom) */
	const char *label;		/* NULL: none */
	const char *const *sources;	/* archives or directories, in order */
	size_t n_sources;
	const struct mkdisk_add *adds;
	size_t n_adds;
	const struct mkdisk_key *keys;
	size_t n_keys;
	const char *hostname;		/* NULL: /etc/hostname untouched */
	int progress;			/* 1 on, 0 off, -1 on a terminal for big input */
};

/* The headroom of --size auto (stated in --help). */
#define MKDISK_AUTO_PERCENT	20
#define MKDISK_AUTO_EXTRA	(64ull << 20)
/* Inputs bigger than this get a progress bar on a terminal. */
#define MKDISK_PROGRESS_MIN	(64ull << 20)

/*
 * Build the image: a temporary file beside opt->output, renamed over it only
 * when complete. On failure logs one line and returns -1, leaving nothing
 * under the output name (and no temporary file).
 */
int mkdisk_build(const struct mkdisk_options *opt);

/*
 * A path from an archive made relative to the image's root: leading '/'
 * dropped, "." and empty components dropped. "" is the root itself. Returns
 * 0, or -1 (logs nothing) for a ".." component, a component over 255 bytes
 * or a result that does not fit in size bytes.
 */
int mkdisk_path_normalize(const char *in, char *out, size_t size);

/*
 * Find user in the text of an /etc/passwd: 0 with uid, gid and home (a
 * malloc'ed string), or -1 (logs nothing) if there is no such line.
 */
int mkdisk_passwd_lookup(const char *text, size_t len, const char *user,
			 uint32_t *uid, uint32_t *gid, char **home);

/* The size --size auto picks for this much content (see --help). */
uint64_t mkdisk_auto_size(uint64_t data_blocks, uint64_t inodes, unsigned int block_size);
