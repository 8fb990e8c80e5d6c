/* FAT12/16/32, read-only (stub: the reader lands next). */
#include "tools/fs_impl.h"
#include "util/log.h"

bool fs_fat_magic(struct diskimg *d, uint64_t offset, uint64_t size)
{
	uint8_t b[512];

	if (size < 512 || diskimg_pread_quiet(d, offset, b, sizeof(b)) < 0)
		return false;
	unsigned int bps = b[11] | b[12] << 8;
	return b[510] == 0x55 && b[511] == 0xaa && bps >= 512 && bps <= 4096 && !(bps & (bps - 1)) &&
	       b[13] && !(b[13] & (b[13] - 1)) && (b[14] | b[15]) && b[16] >= 1 && b[16] <= 2;
}

struct fs *fs_fat_open(struct diskimg *d, const struct diskimg_part *part, bool quiet, bool *corrupt)
{
	*corrupt = false;
	if (!quiet)
		log_error("'%s': FAT is not supported yet", d->path);
	return NULL;
}
