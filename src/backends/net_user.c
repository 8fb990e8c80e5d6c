/*
 * User-mode networking through a helper process on one end of a socketpair,
 * talked to as a stream backend once it says it is ready:
 *  - bootvm-net-user (libslirp, see net_user_helper.c) writes one status
 *    line to fd 4: "ready" or "error: ...";
 *  - passt (--net passt) writes its PID to its pid file, /proc/self/fd/4,
 *    once its forwards are bound; its messages go to a memfd, read back
 *    when it exits before that.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#define NET_PASST		"passt"
#define NET_PASST_ERR_MAX	4096	/* of passt's messages, the tail is read back */

extern char **environ;

struct net_user {
	struct net_backend nb;
	struct net_backend *stream;
	pid_t pid;
	bool passt;
};

/* The stream counts its drops; the device reads ours. */
static void user_sync(struct net_user *u)
{
	u->nb.tx_dropped = u->stream->tx_dropped;
	u->nb.rx_dropped = u->stream->rx_dropped;
}

#define PASST_TRIM_IOV	64	/* longer chains go as they are */

/*
 * passt (Debian's 2023-03) ignores a TCP segment whose frame carries
 * Ethernet padding (short frames filled up to the 60-byte minimum, as some
 * guests do): the IPv4 frame cut to its datagram's length into out. The
 * new iovcnt, or 0 to send iov as it is (not IPv4, nothing to cut, or a
 * length that does not fit the frame: passt judges it).
 */
static unsigned int passt_trim(const struct iovec *iov, unsigned int iovcnt, struct iovec *out)
{
	uint8_t h[18];
	size_t got = 0, total = 0, want, left;
	unsigned int n = 0;

	for (unsigned int i = 0; i < iovcnt; i++) {
		size_t take = iov[i].iov_len < sizeof(h) - got ? iov[i].iov_len : sizeof(h) - got;

		memcpy(h + got, iov[i].iov_base, take);
		got += take;
		total += iov[i].iov_len;
	}
	if (got < sizeof(h) || h[12] != 0x08 || h[13] != 0x00 || iovcnt > PASST_TRIM_IOV)
		return 0;
	want = 14 + ((size_t)h[16] << 8 | h[17]);
	if (want < 14 + 20 || want >= total)
		return 0;
	for (left = want; left; n++) {
		out[n] = iov[n];
		if (out[n].iov_len > left)
			out[n].iov_len = left;
		left -= out[n].iov_len;
	}
	return n;
}

static int user_send(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt)
{
	struct net_user *u = (struct net_user *)nb;
	struct iovec cut[PASST_TRIM_IOV];
	unsigned int ncut = u->passt ? passt_trim(iov, iovcnt, cut) : 0;
	int r = ncut ? u->stream->ops->send(u->stream, cut, ncut) :
		       u->stream->ops->send(u->stream, iov, iovcnt);

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

/* The helper named by environment variable var into path: 1, 0 if unset, -1 (logged). */
static int net_helper_from_env(const char *what, const char *var, char *path, size_t size)
{
	const char *env = getenv(var);

	if (!env || !*env)
		return 0;
	if (access(env, X_OK) < 0) {
		log_error("%s: helper %s (from %s): %s", what, env, var, strerror(errno));
		return -1;
	}
	snprintf(path, size, "%s", env);
	return 1;
}

/* $BOOTVM_NET_USER, else bootvm-net-user in the directory of our executable. */
static int net_user_find(char *path, size_t size)
{
	int env = net_helper_from_env("--net user", "BOOTVM_NET_USER", path, size);
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env)
		return env < 0 ? -1 : 0;
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

static int net_user_spawn(const char *what, const char *path, char *const argv[], int sock,
			  int status, int errfd, pid_t *pid)
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
	if (errfd >= 0)
		posix_spawn_file_actions_adddup2(&fa, errfd, 2);
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
		log_error("%s: cannot start %s: %s", what, path, strerror(err));
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

/* The last line of what passt wrote to errfd that is not about syslog, into msg. */
static void net_passt_last_message(int errfd, char *msg, size_t size)
{
	char buf[NET_PASST_ERR_MAX + 1];
	off_t end = lseek(errfd, 0, SEEK_END);
	off_t start = end > NET_PASST_ERR_MAX ? end - NET_PASST_ERR_MAX : 0;
	ssize_t n = end > 0 ? pread(errfd, buf, (size_t)(end - start), start) : 0;

	msg[0] = 0;
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (*line && !strstr(line, "syslog"))
			snprintf(msg, size, "%s", line);
}

static void net_user_describe_exit(const char *what, const char *path, pid_t pid, int errfd)
{
	char msg[256] = "";
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (errfd >= 0)
		net_passt_last_message(errfd, msg, sizeof(msg));
	if (WIFSIGNALED(st))
		log_error("%s: %s was killed by signal %d before it was ready%s%s", what, path,
			  WTERMSIG(st), *msg ? ": " : "", msg);
	else
		log_error("%s: %s exited with status %d before it was ready%s%s", what, path,
			  WEXITSTATUS(st), *msg ? ": " : "", msg);
}

/* $BOOTVM_PASST, else passt in $PATH. */
static int net_passt_find(char *path, size_t size)
{
	int env = net_helper_from_env("--net passt", "BOOTVM_PASST", path, size);
	const char *dirs = getenv("PATH");

	if (env)
		return env < 0 ? -1 : 0;
	for (const char *d = dirs ? dirs : "/usr/bin:/bin"; *d;) {
		size_t len = strcspn(d, ":");

		if (len && (size_t)snprintf(path, size, "%.*s/" NET_PASST, (int)len, d) < size &&
		    access(path, X_OK) == 0)
			return 0;
		d += len + (d[len] == ':');
	}
	log_error("--net passt: no " NET_PASST " in PATH (Debian's passt package) and "
		  "BOOTVM_PASST is not set");
	return -1;
}

/*
 * passt's command line for cfg: foreground, quiet, one client (it leaves when
 * the socket closes), the socket on fd 3, the pid file on the status pipe,
 * and the addresses --net user has (guest 10.0.2.15/24, gateway 10.0.2.2,
 * which passt maps to the host). fwd holds the -t/-u specs.
 */
static void net_passt_argv(const struct vm_net_config *cfg, char **argv,
				   char fwd[][64])
{
	unsigned int argc = 0;

	argv[argc++] = (char *)NET_PASST;
	argv[argc++] = (char *)"--foreground";
	argv[argc++] = (char *)"--quiet";
	argv[argc++] = (char *)"--one-off";
	argv[argc++] = (char *)"--fd";
	argv[argc++] = (char *)"3";		/* NET_USER_CHILD_FD */
	argv[argc++] = (char *)"--pid";
	argv[argc++] = (char *)"/proc/self/fd/4";	/* NET_USER_STATUS_FD */
	argv[argc++] = (char *)"--address";
	argv[argc++] = (char *)"10.0.2.15";
	argv[argc++] = (char *)"--netmask";
	argv[argc++] = (char *)"24";
	argv[argc++] = (char *)"--gateway";
	argv[argc++] = (char *)"10.0.2.2";
	/*
	 * Ethernet's MTU, not passt's 65520: with 64 KiB segments passt 2023-03
	 * overran a Linux guest's window and never resent what the guest
	 * dropped (host-to-guest TCP stalled in tests/e2e/netlinux.py).
	 */
	argv[argc++] = (char *)"--mtu";
	argv[argc++] = (char *)"1500";
	/* As root passt changes to nobody anyway; asked, it does so without a warning. */
	if (geteuid() == 0) {
		argv[argc++] = (char *)"--runas";
		argv[argc++] = (char *)"nobody";
	}
	for (unsigned int i = 0; i < cfg->nr_fwd && i < VM_NET_MAX_HOSTFWD; i++) {
		const struct vm_hostfwd *f = &cfg->fwd[i];
		char ha[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &f->host_addr, ha, sizeof(ha));
		snprintf(fwd[i], 64, "%s/%u:%u", ha, f->host_port, f->guest_port);
		argv[argc++] = (char *)(f->udp ? "--udp-ports" : "--tcp-ports");
		argv[argc++] = fwd[i];
	}
	argv[argc] = NULL;
}

/* bootvm-net-user's command line for cfg; fwd holds the hostfwd rules. */
static void net_user_argv(const struct vm_net_config *cfg, char **argv, char fwd[][64])
{
	unsigned int argc = 0;

	argv[argc++] = (char *)NET_USER_HELPER;
	argv[argc++] = (char *)"--fd";
	argv[argc++] = (char *)"3";		/* NET_USER_CHILD_FD */
	argv[argc++] = (char *)"--status-fd";
	argv[argc++] = (char *)"4";		/* NET_USER_STATUS_FD */
	if (cfg->restrict_net)
		argv[argc++] = (char *)"--restrict";
	for (unsigned int i = 0; i < cfg->nr_fwd && i < VM_NET_MAX_HOSTFWD; i++) {
		const struct vm_hostfwd *f = &cfg->fwd[i];
		char ha[INET_ADDRSTRLEN], ga[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &f->host_addr, ha, sizeof(ha));
		inet_ntop(AF_INET, &f->guest_addr, ga, sizeof(ga));
		snprintf(fwd[i], 64, "%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp",
			 ha, f->host_port, ga, f->guest_port);
		argv[argc++] = (char *)"--hostfwd";
		argv[argc++] = fwd[i];
	}
	argv[argc] = NULL;
}

/* Whether the status line says the helper is ready; else logs why not. */
static bool net_user_ready(const char *what, const char *path, bool passt, const char *line)
{
	if (passt) {	/* its pid file: a number */
		if (*line && strspn(line, "0123456789") == strlen(line))
			return true;
		log_error("%s: %s wrote '%s' to its pid file instead of its PID", what, path, line);
		return false;
	}
	if (!strcmp(line, "ready"))
		return true;
	if (!strncmp(line, "error: ", 7))
		log_error("%s: %s", what, line + 7);
	else
		log_error("%s: %s said '%s' instead of ready", what, path, line);
	return false;
}

struct net_backend *net_user_start(const struct vm_net_config *cfg)
{
	const bool passt = cfg->kind == VM_NET_PASST;
	const char *what = passt ? "--net passt" : "--net user";
	char path[PATH_MAX], line[512];
	char fwd[VM_NET_MAX_HOSTFWD][64];
	char *argv[24 + 2 * VM_NET_MAX_HOSTFWD];
	int sv[2], st[2], errfd = -1;
	struct net_user *u;
	bool timed_out;
	pid_t pid;

	if ((passt ? net_passt_find(path, sizeof(path)) : net_user_find(path, sizeof(path))) < 0)
		return NULL;
	if (passt)
		net_passt_argv(cfg, argv, fwd);
	else
		net_user_argv(cfg, argv, fwd);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("%s: socketpair: %s", what, strerror(errno));
		return NULL;
	}
	if (pipe2(st, O_CLOEXEC) < 0) {
		log_error("%s: pipe: %s", what, strerror(errno));
		goto err_close_sock;
	}
	/* passt as root opens its pid file as nobody: let it write the pipe. */
	if (passt && fchmod(st[1], 0622) < 0) {
		log_error("%s: fchmod of the status pipe: %s", what, strerror(errno));
		goto err_close_pipe;
	}
	if (passt && (errfd = memfd_create("passt-messages", MFD_CLOEXEC)) < 0) {
		log_error("%s: memfd_create: %s", what, strerror(errno));
		goto err_close_pipe;
	}
	sv[1] = fd_above(sv[1], NET_USER_STATUS_FD + 1);
	st[1] = fd_above(st[1], NET_USER_STATUS_FD + 1);
	if (errfd >= 0)
		errfd = fd_above(errfd, NET_USER_STATUS_FD + 1);
	if (sv[1] < 0 || st[1] < 0 || (passt && errfd < 0)) {
		log_error("%s: fcntl: %s", what, strerror(errno));
		goto err_close_pipe;
	}
	if (net_user_spawn(what, path, argv, sv[1], st[1], errfd, &pid) < 0)
		goto err_close_pipe;
	/* Only the helper holds these now: its exit is EOF on both. */
	close(sv[1]);
	close(st[1]);
	sv[1] = st[1] = -1;

	if (net_user_status(st[0], line, sizeof(line), &timed_out) < 0) {
		if (timed_out) {
			log_error("%s: %s did not report ready within %d s", what, path,
				  NET_USER_READY_MS / 1000);
			goto err_kill;
		}
		net_user_describe_exit(what, path, pid, errfd);
		goto err_close_status;
	}
	if (!net_user_ready(what, path, passt, line))
		goto err_kill;
	close(st[0]);
	if (errfd >= 0)
		close(errfd);	/* passt keeps writing to its copy */

	u = calloc(1, sizeof(*u));
	if (!u) {
		log_error("%s: out of memory", what);
		close(sv[0]);
		net_user_reap(pid, NET_USER_EXIT_MS);
		return NULL;
	}
	u->stream = net_stream_open(sv[0], passt ? "passt" : "user");
	if (!u->stream) {	/* it closed sv[0]: the helper leaves */
		free(u);
		net_user_reap(pid, NET_USER_EXIT_MS);
		return NULL;
	}
	u->pid = pid;
	u->passt = passt;
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
	if (errfd >= 0)
		close(errfd);
	close(st[0]);
	close(sv[0]);
	return NULL;
err_close_pipe:
	if (errfd >= 0)
		close(errfd);
	close(st[0]);
	if (st[1] >= 0)
		close(st[1]);
err_close_sock:
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return NULL;
}
