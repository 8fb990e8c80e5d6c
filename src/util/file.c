#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

int file_open(const char *path, const char *what, uint64_t *size)
{
	struct stat st;
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, for ever. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		log_error("cannot open %s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		log_error("cannot stat %s '%s': %s", what, path, strerror(errno));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s '%s' is not a regular file", what, path);
		goto err_close;
	}
	/* Back to ordinary reads, whatever a file system makes of O_NONBLOCK. */
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		log_error("cannot open %s '%s': %s", what, path, strerror(errno));
		goto err_close;
	}
	*size = (uint64_t)st.st_size;
	return fd;

err_close:
	close(fd);
	return -1;
}

int file_map(const char *path, const char *what, struct file_map *fm)
{
	uint64_t size;
	int fd;

	fm->data = NULL;
	fm->size = 0;

	fd = file_open(path, what, &size);
	if (fd < 0)
		return -1;
	if (size > 0) {
		void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			log_error("cannot map %s '%s': %s", what, path, strerror(errno));
			goto err_close;
		}
		fm->data = p;
		fm->size = (size_t)size;
	}
	close(fd);
	return 0;

err_close:
	close(fd);
	return -1;
}

void file_unmap(struct file_map *fm)
{
	if (fm->data)
		munmap((void *)fm->data, fm->size);
	fm->data = NULL;
	fm->size = 0;
}
