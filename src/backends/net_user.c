/*
 * User-mode networking through bootvm-net-user (libslirp in its own
 * process, see net_user_helper.c): start it on one end of a socketpair,
 * wait for its one status line, then talk to it as a stream backend.
 *
 * The backend handed out wraps the stream backend only to reap the helper
 * when it is destroyed; every op goes straight through (keep the list of
 * ops complete when net.h grows one).
 */
#include "backends/net_user.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"

#define NET_USER_HELPER		"bootvm-net-user"
#define NET_USER_READY_MS	5000	/* binding a few ports and starting slirp takes milliseconds */
#define NET_USER_EXIT_MS	1000	/* after EOF it leaves within one poll round */
#define NET_USER_CHILD_FD	3	/* the socket, in the helper */
#define NET_USER_STATUS_FD	4	/* its status pipe */

extern char **environ;

struct net_user {
	struct net_backend nb;
	struct net_backend *stream;
	pid_t pid;
};

/* The stream counts its drops; the device reads ours. */
static void user_sync(struct net_user *u)
{
	u->nb.tx_dropped = u->stream->tx_dropped;
	u->nb.rx_dropped = u->stream->rx_dropped;
}

static int user_send(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt)
{
	struct net_user *u = (struct net_user *)nb;
	int r = u->stream->ops->send(u->stream, iov, iovcnt);

	user_sync(u);
	return r;
}

static ssize_t user_recv(struct net_backend *nb, void *buf, size_t len)
{
	struct net_user *u = (struct net_user *)nb;
	ssize_t r = u->stream->ops->recv(u->stream, buf, len);

	user_sync(u);
	return r;
}

static int user_flush(struct net_backend *nb)
{
	struct net_user *u = (struct net_user *)nb;
	int r = net_backend_flush(u->stream);

	user_sync(u);
	return r;
}

static int user_set_rx_offloads(struct net_backend *nb, unsigned int offloads)
{
	struct net_user *u = (struct net_user *)nb;

	return u->stream->ops->set_rx_offloads ?
	       u->stream->ops->set_rx_offloads(u->stream, offloads) : 0;
}

/* Wait up to ms for pid to exit, then kill it; reaps it either way. */
static void net_user_reap(pid_t pid, int ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd >= 0) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		while (poll(&pfd, 1, ms) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
	if (waitpid(pid, NULL, WNOHANG) == pid)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void user_destroy(struct net_backend *nb)
{
	struct net_user *u = (struct net_user *)nb;

	net_backend_destroy(u->stream);	/* closes the socket: the helper sees EOF and exits */
	net_user_reap(u->pid, NET_USER_EXIT_MS);
	free(u);
}

static const struct net_backend_ops user_ops = {
	.send = user_send,
	.recv = user_recv,
	.destroy = user_destroy,
	.flush = user_flush,
	.set_rx_offloads = user_set_rx_offloads,
};

/* $BOOTVM_NET_USER, else bootvm-net-user in the directory of our executable. */
static int net_user_find(char *path, size_t size)
{
	const char *env = getenv("BOOTVM_NET_USER");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		if (access(env, X_OK) < 0) {
			log_error("--net user: helper %s (from BOOTVM_NET_USER): %s", env, strerror(errno));
			return -1;
		}
		snprintf(path, size, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		log_error("--net user: cannot find the " NET_USER_HELPER " helper: BOOTVM_NET_USER "
			  "is not set and /proc/self/exe is unreadable: %s", strerror(errno));
		return -1;
	}
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(path, size, "%s/" NET_USER_HELPER, self) >= size) {
		log_error("--net user: the path of the " NET_USER_HELPER " helper is too long");
		return -1;
	}
	if (access(path, X_OK) < 0) {
		log_error("--net user: no " NET_USER_HELPER " helper: %s: %s, and BOOTVM_NET_USER "
			  "is not set", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Move fd to at least min (close-on-exec), so that the helper's dup2s cannot clobber it. */
static int fd_above(int fd, int min)
{
	int nfd;

	if (fd >= min)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	close(fd);
	return nfd;
}

static int net_user_spawn(const char *path, char *const argv[], int sock, int status, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int err;

	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* Only these fds: whatever else bootvm has open (images, the console) stays ours. */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sock, NET_USER_CHILD_FD);
	posix_spawn_file_actions_adddup2(&fa, status, NET_USER_STATUS_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, NET_USER_STATUS_FD + 1);
	/*
	 * Unblocked signals (our threads block some), and a process group of its
	 * own: a Ctrl-C meant for bootvm must not kill the network under it; the
	 * helper goes when bootvm closes the socket.
	 */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
	err = posix_spawn(pid, path, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		log_error("--net user: cannot start %s: %s", path, strerror(err));
		return -1;
	}
	return 0;
}

/*
 * The helper's one status line into line (without '\n'): 0, or -1 when it
 * closed the pipe without one (it died) or took longer than the deadline.
 */
static int net_user_status(int fd, char *line, size_t size, bool *timed_out)
{
	long deadline = time_now_ms() + NET_USER_READY_MS;
	size_t len = 0;

	*timed_out = false;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - time_now_ms();
		int r;

		if (left <= 0) {
			*timed_out = true;
			return -1;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;	/* the deadline check ends it */
		ssize_t n = read(fd, line + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		line[len] = 0;
		char *nl = strchr(line, '\n');
		if (nl) {
			*nl = 0;
			return 0;
		}
		if (len == size - 1)
			return 0;	/* an overlong line: judged as it is */
	}
}

static void net_user_describe_exit(const char *path, pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st))
		log_error("--net user: %s was killed by signal %d before it was ready", path,
			  WTERMSIG(st));
	else
		log_error("--net user: %s exited with status %d before it was ready", path,
			  WEXITSTATUS(st));
}

struct net_backend *net_user_start(const struct vm_net_config *cfg)
{
	char path[PATH_MAX], fd_arg[16], status_arg[16], line[512];
	char fwd[VM_NET_MAX_HOSTFWD][64];
	char *argv[8 + 2 * VM_NET_MAX_HOSTFWD];
	unsigned int argc = 0;
	int sv[2], st[2];
	struct net_user *u;
	bool timed_out;
	pid_t pid;

	if (net_user_find(path, sizeof(path)) < 0)
		return NULL;

	snprintf(fd_arg, sizeof(fd_arg), "%d", NET_USER_CHILD_FD);
	snprintf(status_arg, sizeof(status_arg), "%d", NET_USER_STATUS_FD);
	argv[argc++] = (char *)NET_USER_HELPER;
	argv[argc++] = (char *)"--fd";
	argv[argc++] = fd_arg;
	argv[argc++] = (char *)"--status-fd";
	argv[argc++] = status_arg;
	if (cfg->restrict_net)
		argv[argc++] = (char *)"--restrict";
	for (unsigned int i = 0; i < cfg->nr_fwd && i < VM_NET_MAX_HOSTFWD; i++) {
		const struct vm_hostfwd *f = &cfg->fwd[i];
		char ha[INET_ADDRSTRLEN], ga[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &f->host_addr, ha, sizeof(ha));
		inet_ntop(AF_INET, &f->guest_addr, ga, sizeof(ga));
		snprintf(fwd[i], sizeof(fwd[i]), "%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp",
			 ha, f->host_port, ga, f->guest_port);
		argv[argc++] = (char *)"--hostfwd";
		argv[argc++] = fwd[i];
	}
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("--net user: socketpair: %s", strerror(errno));
		return NULL;
	}
	if (pipe2(st, O_CLOEXEC) < 0) {
		log_error("--net user: pipe: %s", strerror(errno));
		goto err_close_sock;
	}
	sv[1] = fd_above(sv[1], NET_USER_STATUS_FD + 1);
	st[1] = fd_above(st[1], NET_USER_STATUS_FD + 1);
	if (sv[1] < 0 || st[1] < 0) {
		log_error("--net user: fcntl: %s", strerror(errno));
		goto err_close_pipe;
	}
	if (net_user_spawn(path, argv, sv[1], st[1], &pid) < 0)
		goto err_close_pipe;
	/* Only the helper holds these now: its exit is EOF on both. */
	close(sv[1]);
	close(st[1]);
	sv[1] = st[1] = -1;

	if (net_user_status(st[0], line, sizeof(line), &timed_out) < 0) {
		if (timed_out) {
			log_error("--net user: %s did not report ready within %d s", path,
				  NET_USER_READY_MS / 1000);
			goto err_kill;
		}
		net_user_describe_exit(path, pid);
		goto err_close_status;
	}
	if (strcmp(line, "ready")) {
		if (!strncmp(line, "error: ", 7))
			log_error("--net user: %s", line + 7);
		else
			log_error("--net user: %s said '%s' instead of ready", path, line);
		goto err_kill;
	}
	close(st[0]);

	u = calloc(1, sizeof(*u));
	if (!u) {
		log_error("--net user: out of memory");
		close(sv[0]);
		net_user_reap(pid, NET_USER_EXIT_MS);
		return NULL;
	}
	u->stream = net_stream_open(sv[0], "user");
	if (!u->stream) {	/* it closed sv[0]: the helper leaves */
		free(u);
		net_user_reap(pid, NET_USER_EXIT_MS);
		return NULL;
	}
	u->pid = pid;
	u->nb.ops = &user_ops;
	u->nb.fd = u->stream->fd;
	u->nb.vnet_hdr_len = u->stream->vnet_hdr_len;
	u->nb.offloads = u->stream->offloads;
	snprintf(u->nb.name, sizeof(u->nb.name), "%s", u->stream->name);
	return &u->nb;

err_kill:
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
err_close_status:
	close(st[0]);
	close(sv[0]);
	return NULL;
err_close_pipe:
	close(st[0]);
	if (st[1] >= 0)
		close(st[1]);
err_close_sock:
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return NULL;
}
