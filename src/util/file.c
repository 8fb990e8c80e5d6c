#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

int file_clear_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? -1 : 0;
}

int file_open_quiet(const char *path, uint64_t *size)
{
	struct stat st;
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, for ever. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), err;

	if (fd < 0)
		return FILE_ERR_OPEN;
	if (fstat(fd, &st) < 0) {
		err = FILE_ERR_STAT;
	} else if (!S_ISREG(st.st_mode)) {
		err = FILE_ERR_NOT_REGULAR;
	} else if (file_clear_nonblock(fd) < 0) {	/* ordinary reads from here on */
		err = FILE_ERR_OPEN;
	} else {
		*size = (uint64_t)st.st_size;
		return fd;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return err;
}

int file_open(const char *path, const char *what, uint64_t *size)
{
	int fd = file_open_quiet(path, size);

	if (fd == FILE_ERR_NOT_REGULAR)
		log_error("%s '%s' is not a regular file", what, path);
	else if (fd < 0)
		log_error("cannot %s %s '%s': %s", fd == FILE_ERR_STAT ? "stat" : "open", what, path,
			  strerror(errno));
	return fd < 0 ? -1 : fd;
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
