/*
 * escape.c - what code running in a compromised gfproxy instance would try,
 * compiled into a test build of gfproxy only (make probe: -DGFPROXY_ESCAPE_PROBE),
 * never into a package. That build confines itself exactly as gfproxy does,
 * reads one request head, then makes each attempt below and answers with one
 * line per attempt: "NAME: blocked (ERRNO)" or "NAME: ESCAPED".
 *
 * GET /?pid=N names the victim: another process of the same user (another
 * instance) to signal, trace and read through /proc. With
 * GFPROXY_PROBE_UNCONFINED=1 in its environment the build skips its sandbox,
 * so that the same list, run as root, shows every attempt can succeed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "escape.h"

#define ESCAPE_TCP_OTHER  8199    /* gfproxy.socket itself: no upstream's port */
#define ESCAPE_TCP_BIND   18080

static int escape_fd;

static void
escape_say(const char *name, int escaped, int err)
{
	char line[256];
	int n;

	if (escaped)
		n = snprintf(line, sizeof(line), "%s: ESCAPED\n", name);
	else
		n = snprintf(line, sizeof(line), "%s: blocked (%s)\n", name, strerrorname_np(err) ?
		    strerrorname_np(err) : "?");
	(void)write(escape_fd, line, (size_t)n);
}

/* r >= 0 is success, and so an escape. */
#define TRY(name, expr) do { errno = 0; long r_ = (long)(expr); escape_say((name), r_ >= 0, errno); } while (0)

static long
escape_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	close(fd);
	unlink(path);
	return 0;
}

static long
escape_read(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n;
}

static long
escape_list(const char *path)
{
	DIR *d = opendir(path);
	long n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static long
escape_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static long
escape_ptrace(pid_t victim)
{
	if (ptrace(PTRACE_SEIZE, victim, NULL, NULL) < 0)
		return -1;
	ptrace(PTRACE_DETACH, victim, NULL, NULL);
	return 0;
}

static long
escape_socket(int family, int type, int protocol)
{
	int fd = socket(family, type, protocol);

	if (fd >= 0)
		close(fd);
	return fd;
}

static long
escape_connect(uint16_t port, bool listen_too)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listen_too)
		r = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ? -1 : listen(fd, 1);
	else
		r = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return r;
}

/* CAP_NET_RAW into the permitted and effective sets. */
static long
escape_capset(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[CAP_NET_RAW / 32].permitted |= 1U << (CAP_NET_RAW % 32);
	d[CAP_NET_RAW / 32].effective |= 1U << (CAP_NET_RAW % 32);
	return syscall(SYS_capset, &h, d);
}

/*
 * The soft limit lowered by one, then raised back. Raising a hard limit needs
 * CAP_SYS_RESOURCE, which even root lacks in a container: the kernel guards
 * that without help. What the sandbox adds is that no limit moves at all.
 */
static long
escape_rlimit(void)
{
	struct rlimit rl, lower;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	lower = rl;
	lower.rlim_cur = rl.rlim_cur - 1;
	if (setrlimit(RLIMIT_NOFILE, &lower) < 0)
		return -1;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

static long
escape_wx(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	munmap(p, 4096);
	return 0;
}

static long
escape_personality(void)
{
	int old = personality(0xffffffff);

	if (personality(PER_LINUX32) < 0)
		return -1;
	if (personality(0xffffffff) != PER_LINUX32)
		return errno = EPERM, -1;
	personality((unsigned long)old);
	return 0;
}

static long
escape_mount(void)
{
	/* Private first, or the mount would propagate back to the namespace it came from. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	return mount("none", "/mnt", "tmpfs", 0, NULL);
}

void
escape_probe(int fd, const char *target)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n";
	const char *q = strstr(target, "pid=");
	pid_t victim = q != NULL ? (pid_t)atoi(q + 4) : 1;
	char path[64];

	escape_fd = fd;
	(void)write(fd, head, sizeof(head) - 1);
	TRY("read /etc/shadow", escape_read("/etc/shadow"));
	TRY("list /root", escape_list("/root"));
	TRY("list /home", escape_list("/home"));
	TRY("write /tmp", escape_write("/tmp/gfproxy-escape"));
	TRY("write /var/tmp", escape_write("/var/tmp/gfproxy-escape"));
	TRY("write /dev/shm", escape_write("/dev/shm/gfproxy-escape"));
	TRY("write /etc", escape_write("/etc/gfproxy-escape"));
	TRY("list /proc", escape_list("/proc"));
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)victim);
	TRY("read another instance's /proc/PID/environ", escape_read(path));
	TRY("signal another instance", kill(victim, 0));
	TRY("ptrace another instance", escape_ptrace(victim));
	TRY("fork", escape_fork());
	TRY("raw socket", escape_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	TRY("packet socket", escape_socket(AF_PACKET, SOCK_RAW, 0));
	TRY("netlink socket", escape_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	TRY("connect to a TCP port no upstream uses", escape_connect(ESCAPE_TCP_OTHER, false));
	TRY("bind and listen on a TCP port", escape_connect(ESCAPE_TCP_BIND, true));
	TRY("setuid(0)", setuid(0));
	TRY("gain a capability", escape_capset());
	TRY("change RLIMIT_NOFILE", escape_rlimit());
	TRY("writable and executable memory", escape_wx());
	TRY("change personality", escape_personality());
	TRY("add a key to a keyring", syscall(SYS_add_key, "user", "gfproxy-escape", "x", 1,
	    KEY_SPEC_PROCESS_KEYRING));
	TRY("mount namespace and mount", escape_mount());
	TRY("network namespace", unshare(CLONE_NEWNET));
	TRY("user namespace", unshare(CLONE_NEWUSER));
	/* Last: if it works, echo says so on the connection, and the process is gone. */
	dup2(fd, STDOUT_FILENO);
	TRY("execve", execl("/bin/echo", "echo", "execve: ESCAPED", (char *)NULL));
}
