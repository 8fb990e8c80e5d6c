#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

int file_map(const char *path, const char *what, struct file_map *fm)
{
	struct stat st;
	int fd;

	fm->data = NULL;
	fm->size = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
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
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			log_error("cannot map %s '%s': %s", what, path, strerror(errno));
			goto err_close;
		}
		fm->data = p;
		fm->size = (size_t)st.st_size;
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
