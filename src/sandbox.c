/*
 * sandbox.c - the confinement gfproxy and gfproxy-backend apply to
 * themselves, once they hold their connection and have read their
 * configuration, before they read a byte from the client.
 *
 * Under real systemd, every connection is a unit: the namespaces and the
 * seccomp programs that sandboxing directives make PID 1 build at each spawn
 * cost more than the process itself (tests/bench/RESULTS-system.md). The
 * same confinement applied from inside costs microseconds:
 *
 *   - resource ceilings (setrlimit), and no core dump that could hold a
 *     client's data;
 *   - Landlock: nothing on the filesystem but the listed paths, read only
 *     (the CA store, the resolver's files, the libraries it may load); no
 *     TCP connect but to the upstreams' ports, no bind; no signal and no
 *     abstract socket outside the process;
 *   - seccomp: a system call allow-list written out below as BPF, with the
 *     arguments checked where a call can do more than the program needs
 *     (socket families, clone flags, W^X mappings, rlimits, signals);
 *   - not dumpable, so other processes of the same user cannot read its
 *     memory or /proc entries.
 *
 * What the kernel lacks is left out and named by sandbox_describe(); a
 * call that fails for any other reason is an error, and the caller answers
 * 503 and ends rather than serve unconfined.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <termios.h>
#include <unistd.h>

#include "journal.h"
#include "sandbox.h"

/*
 * Under valgrind (make check-valgrind), which refuses a lower descriptor
 * limit, runs its own code under the filter and knows no Landlock call,
 * none of it applies.
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* --- Landlock -------------------------------------------------------------------- */

/*
 * The kernel ABI, spelled out here: the build machine's headers may be older
 * than the kernel the package runs on, and each ABI version only adds.
 */
#define LL_CREATE_RULESET_VERSION  (1U << 0)
#define LL_RULE_PATH_BENEATH       1
#define LL_RULE_NET_PORT           2

#define LL_FS_EXECUTE      (1ULL << 0)
#define LL_FS_WRITE_FILE   (1ULL << 1)
#define LL_FS_READ_FILE    (1ULL << 2)
#define LL_FS_READ_DIR     (1ULL << 3)
#define LL_FS_ABI1         ((1ULL << 13) - 1)  /* execute .. make_sym */
#define LL_FS_REFER        (1ULL << 13)        /* ABI 2 */
#define LL_FS_TRUNCATE     (1ULL << 14)        /* ABI 3 */
#define LL_FS_IOCTL_DEV    (1ULL << 15)        /* ABI 5 */
#define LL_NET_BIND_TCP    (1ULL << 0)         /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)     /* ABI 6 */
#define LL_SCOPE_SIGNAL    (1ULL << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t  parent_fd;
} __attribute__((packed));

struct ll_net_port {
	uint64_t allowed_access;
	uint64_t port;
};

void
sandbox_allow_read(struct sandbox_policy *p, const char *path)
{
	size_t i;

	if (path == NULL)
		return;
	for (i = 0; i < p->nread; i++)
		if (strcmp(p->read[i], path) == 0)
			return;
	if (p->nread < SANDBOX_MAX_PATHS)
		p->read[p->nread++] = path;
}

void
sandbox_allow_connect(struct sandbox_policy *p, uint16_t port)
{
	size_t i;

	for (i = 0; i < p->nconnect; i++)
		if (p->connect[i] == port)
			return;
	/* More upstream ports than can be listed (a configuration nobody writes): any port. */
	if (p->nconnect < SANDBOX_MAX_PORTS)
		p->connect[p->nconnect++] = port;
	else
		p->any_port = true;
}

/* Read access beneath one path; a path that does not exist is no rule. */
static int
sandbox_ll_path(int ruleset, const char *path)
{
	struct ll_path_beneath rule = { .allowed_access = LL_FS_READ_FILE };
	struct stat st;
	int fd, r = 0;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else {
		if (S_ISDIR(st.st_mode))
			rule.allowed_access |= LL_FS_READ_DIR;
		rule.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

static int
sandbox_landlock(const struct sandbox_policy *p, unsigned *applied, const char **why)
{
	struct ll_ruleset_attr attr = { 0 };
	struct ll_net_port port = { .allowed_access = LL_NET_CONNECT_TCP };
	size_t size, i;
	long abi;
	int ruleset, r = 0;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0;       /* not built in, or not enabled at boot: said by describe */
	attr.handled_access_fs = LL_FS_ABI1;
	size = sizeof(attr.handled_access_fs);
	if (abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | (p->any_port ? 0 : LL_NET_CONNECT_TCP);
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	if ((ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0)) < 0) {
		*why = "landlock_create_ruleset";
		return -errno;
	}
	for (i = 0; i < p->nread && r == 0; i++)
		if ((r = sandbox_ll_path(ruleset, p->read[i])) < 0)
			*why = "landlock_add_rule (path)";
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer lists the process's threads and maps at exit. */
	if (r == 0 && (r = sandbox_ll_path(ruleset, "/proc/self")) < 0)
		*why = "landlock_add_rule (path)";
#endif
	for (i = 0; abi >= 4 && !p->any_port && i < p->nconnect && r == 0; i++) {
		port.port = p->connect[i];
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &port, 0) < 0) {
			r = -errno;
			*why = "landlock_add_rule (port)";
		}
	}
	if (r == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		r = -errno;
		*why = "landlock_restrict_self";
	}
	close(ruleset);
	if (r < 0)
		return r;
	*applied |= SANDBOX_LANDLOCK_FS;
	if (abi >= 4)
		*applied |= SANDBOX_LANDLOCK_NET;
	if (abi >= 6)
		*applied |= SANDBOX_LANDLOCK_SCOPE;
	return 0;
}

/* --- seccomp --------------------------------------------------------------------- */

/*
 * The filter is written for the architectures Debian and Fedora build most.
 * The sanitizer build goes without it: LeakSanitizer stops the world with
 * ptrace at exit.
 */
#if defined(__SANITIZE_ADDRESS__)
#elif defined(__x86_64__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SECCOMP_AUDIT_ARCH

#define SECCOMP_PROG_MAX   512         /* instructions; the filter below has 256 on x86-64 */
#define SECCOMP_DENY       (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define SECCOMP_NR         offsetof(struct seccomp_data, nr)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SECCOMP_ARG_LO(i)  (offsetof(struct seccomp_data, args) + 8 * (i))
#define SECCOMP_ARG_HI(i)  (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#else
#define SECCOMP_ARG_LO(i)  (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#define SECCOMP_ARG_HI(i)  (offsetof(struct seccomp_data, args) + 8 * (i))
#endif
/* The flags that would give a new process or thread a namespace of its own. */
#define SECCOMP_CLONE_NEW  (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
                            CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/*
 * Allowed whatever their arguments: I/O on descriptors already open or opened
 * read-only under Landlock, memory, threads' synchronisation, time, and the
 * socket calls libcurl, the resolver and the journal make. Everything not
 * listed here or checked below fails with EPERM, as SystemCallErrorNumber=
 * did: execve, ptrace, mount, namespaces, keyrings, bpf, kernel modules,
 * clocks, IPC, chmod and chown, setuid and friends, fork.
 */
static const int seccomp_allowed[] = {
	SYS_read, SYS_readv, SYS_pread64, SYS_write, SYS_writev, SYS_close, SYS_lseek,
	SYS_fstat, SYS_newfstatat, SYS_statx, SYS_faccessat,
#ifdef SYS_faccessat2
	SYS_faccessat2,
#endif
	SYS_openat, SYS_getdents64, SYS_readlinkat, SYS_getcwd, SYS_fcntl, SYS_dup, SYS_dup3,
	SYS_pipe2, SYS_eventfd2, SYS_memfd_create,
#ifdef __x86_64__
	SYS_stat, SYS_lstat, SYS_access, SYS_open, SYS_readlink, SYS_dup2, SYS_pipe,
	SYS_poll, SYS_select, SYS_epoll_wait, SYS_time, SYS_alarm, SYS_arch_prctl,
#endif
	SYS_ppoll, SYS_pselect6, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait,
	SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise,
	SYS_futex, SYS_set_robust_list, SYS_get_robust_list, SYS_set_tid_address,
#ifdef SYS_rseq
	SYS_rseq,
#endif
	SYS_exit, SYS_exit_group, SYS_restart_syscall,
	SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack,
	SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid,
	SYS_getegid, SYS_getresuid, SYS_getresgid, SYS_getgroups,
	SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep,
	SYS_clock_nanosleep, SYS_setitimer, SYS_getitimer,
	SYS_getrandom, SYS_uname, SYS_sysinfo, SYS_sched_yield, SYS_sched_getaffinity,
	SYS_getcpu, SYS_getrusage, SYS_getrlimit,
	SYS_connect, SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg,
	SYS_recvmmsg, SYS_shutdown, SYS_getsockopt, SYS_setsockopt, SYS_getsockname,
	SYS_getpeername,
};

struct seccomp_prog {
	struct sock_filter  insn[SECCOMP_PROG_MAX];
	unsigned short      n;
};

static void
seccomp_emit(struct seccomp_prog *p, struct sock_filter insn)
{
	if (p->n < SECCOMP_PROG_MAX)
		p->insn[p->n] = insn;
	p->n++;         /* counted past the end, so sandbox_seccomp() can refuse it */
}

#define STMT(code, k)            ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf)    ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
#define RET(k)                   STMT(BPF_RET | BPF_K, (k))
#define LOAD(off)                STMT(BPF_LD | BPF_W | BPF_ABS, (off))

/* if (nr == call) run the next `len` instructions, which end in a return. */
static void
seccomp_if_call(struct seccomp_prog *p, int call, unsigned char len)
{
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)call, 0, len));
}

/* Allowed when the low word of argument `arg`, masked, has none of `bits`. */
static void
seccomp_allow_unless(struct seccomp_prog *p, int call, unsigned arg, uint32_t bits)
{
	seccomp_if_call(p, call, 4);
	seccomp_emit(p, LOAD(SECCOMP_ARG_LO(arg)));
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 0, 1));
	seccomp_emit(p, RET(SECCOMP_DENY));
	seccomp_emit(p, RET(SECCOMP_RET_ALLOW));
}

/* Allowed when the low word of argument `arg` is one of `vals`. */
static void
seccomp_allow_if(struct seccomp_prog *p, int call, unsigned arg, const uint32_t *vals,
    unsigned char n)
{
	unsigned char i;

	seccomp_if_call(p, call, (unsigned char)(n + 3));
	seccomp_emit(p, LOAD(SECCOMP_ARG_LO(arg)));
	for (i = 0; i < n; i++)
		seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, vals[i], (unsigned char)(n - i), 0));
	seccomp_emit(p, RET(SECCOMP_DENY));
	seccomp_emit(p, RET(SECCOMP_RET_ALLOW));
}

/*
 * socket(): the families the program needs, stream or datagram, with the
 * default protocol or TCP/UDP: no raw, packet, netlink or ping sockets.
 */
static void
seccomp_socket(struct seccomp_prog *p, bool inet)
{
	unsigned char nfam = inet ? 3 : 1, i;
	const uint32_t fam[] = { AF_UNIX, AF_INET, AF_INET6 };

	seccomp_if_call(p, SYS_socket, (unsigned char)(nfam + 14));
	seccomp_emit(p, LOAD(SECCOMP_ARG_LO(0)));
	for (i = 0; i < nfam; i++)
		seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, fam[i], (unsigned char)(nfam - i), 0));
	seccomp_emit(p, RET(SECCOMP_DENY));
	seccomp_emit(p, LOAD(SECCOMP_ARG_LO(1)));
	seccomp_emit(p, STMT(BPF_ALU | BPF_AND | BPF_K, 0xf));      /* SOCK_TYPE_MASK */
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 2, 0));
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_DGRAM, 1, 0));
	seccomp_emit(p, RET(SECCOMP_DENY));
	seccomp_emit(p, LOAD(SECCOMP_ARG_LO(2)));
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0));
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 2, 0));
	seccomp_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 1, 0));
	seccomp_emit(p, RET(SECCOMP_DENY));
	seccomp_emit(p, RET(SECCOMP_RET_ALLOW));
	/* libcurl's multi handle wakes itself through a socketpair. */
	seccomp_allow_if(p, SYS_socketpair, 0, (const uint32_t[]){ AF_UNIX }, 1);
}

static int
sandbox_seccomp(const struct sandbox_policy *p, unsigned *applied, const char **why)
{
	static struct seccomp_prog prog;
	struct sock_fprog fprog;
	size_t i;

	prog.n = 0;
	/* Another architecture's numbers mean other calls: kill, never guess. */
	seccomp_emit(&prog, LOAD(offsetof(struct seccomp_data, arch)));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_AUDIT_ARCH, 1, 0));
	seccomp_emit(&prog, RET(SECCOMP_RET_KILL_PROCESS));
	seccomp_emit(&prog, LOAD(SECCOMP_NR));
#ifdef __x86_64__
	/* The x32 ABI's calls are the same numbers with one bit set. */
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
	seccomp_emit(&prog, RET(SECCOMP_RET_KILL_PROCESS));
#endif
	for (i = 0; i < sizeof(seccomp_allowed) / sizeof(seccomp_allowed[0]); i++) {
		seccomp_if_call(&prog, seccomp_allowed[i], 1);
		seccomp_emit(&prog, RET(SECCOMP_RET_ALLOW));
	}
	/*
	 * Each block below runs only for its call and ends in a return on every
	 * path; for any other call it is jumped over with the number still loaded.
	 */
	/* Threads (libcurl's resolver), never a process nor a namespace. */
	seccomp_if_call(&prog, SYS_clone, 5);
	seccomp_emit(&prog, LOAD(SECCOMP_ARG_LO(0)));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JSET | BPF_K, SECCOMP_CLONE_NEW, 2, 0));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1));
	seccomp_emit(&prog, RET(SECCOMP_RET_ALLOW));
	seccomp_emit(&prog, RET(SECCOMP_DENY));
	/* clone3 passes its flags in memory, out of a filter's reach: glibc falls back. */
	seccomp_if_call(&prog, SYS_clone3, 1);
	seccomp_emit(&prog, RET(SECCOMP_RET_ERRNO | ENOSYS));
	/* No memory both writable and executable, and none made executable later. */
	seccomp_if_call(&prog, SYS_mmap, 5);
	seccomp_emit(&prog, LOAD(SECCOMP_ARG_LO(2)));
	seccomp_emit(&prog, STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1));
	seccomp_emit(&prog, RET(SECCOMP_DENY));
	seccomp_emit(&prog, RET(SECCOMP_RET_ALLOW));
	seccomp_allow_unless(&prog, SYS_mprotect, 2, PROT_EXEC);
	/* Limits may be read, never set: the new limit, a pointer, must be NULL. */
	seccomp_if_call(&prog, SYS_prlimit64, 6);
	seccomp_emit(&prog, LOAD(SECCOMP_ARG_LO(2)));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2));
	seccomp_emit(&prog, LOAD(SECCOMP_ARG_HI(2)));
	seccomp_emit(&prog, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
	seccomp_emit(&prog, RET(SECCOMP_DENY));
	seccomp_emit(&prog, RET(SECCOMP_RET_ALLOW));
	/* Signals only to itself: raise() and abort() are tgkill(getpid(), ...). */
	seccomp_allow_if(&prog, SYS_tgkill, 0, (const uint32_t[]){ (uint32_t)getpid() }, 1);
	/* The requests libcurl, libsystemd and stdio make of a descriptor. */
	seccomp_allow_if(&prog, SYS_ioctl, 1,
	    (const uint32_t[]){ FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, TIOCOUTQ, TCGETS }, 6);
	seccomp_socket(&prog, p->inet);
	seccomp_emit(&prog, RET(SECCOMP_DENY));

	if (prog.n > SECCOMP_PROG_MAX) {
		*why = "seccomp filter longer than SECCOMP_PROG_MAX";
		return -E2BIG;
	}
	fprog = (struct sock_fprog){ .len = prog.n, .filter = prog.insn };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0) {
		if (errno == EINVAL)
			return 0;       /* a kernel without seccomp filters: said by describe */
		*why = "seccomp";
		return -errno;
	}
	*applied |= SANDBOX_SECCOMP;
	return 0;
}

#define SANDBOX_BUILT SANDBOX_ALL

#else /* no filter in this build: said by describe */

static int
sandbox_seccomp(const struct sandbox_policy *p, unsigned *applied, const char **why)
{
	return 0;
}

#define SANDBOX_BUILT (SANDBOX_ALL & ~SANDBOX_SECCOMP)

#endif

/* --- resource limits ------------------------------------------------------------ */

static int
sandbox_rlimits(unsigned *applied, const char **why)
{
	static const struct {
		int       resource;
		rlim_t    limit;
	} limits[] = {
		{ RLIMIT_NOFILE,   SANDBOX_MAX_FILES },
		/* AddressSanitizer's shadow memory would not fit. */
#if !defined(__SANITIZE_ADDRESS__)
		{ RLIMIT_DATA,     SANDBOX_MAX_DATA },
#endif
		{ RLIMIT_CORE,     0 },     /* a core could hold a client's data */
		{ RLIMIT_MEMLOCK,  0 },
		{ RLIMIT_MSGQUEUE, 0 },
		{ RLIMIT_RTPRIO,   0 },     /* as RestrictRealtime= */
		{ RLIMIT_NICE,     0 },
	};
	struct rlimit rl, cur;
	size_t i;

	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (getrlimit(limits[i].resource, &cur) < 0) {
			*why = "getrlimit";
			return -errno;
		}
		/* Only ever lowered: a unit's tighter limit stays. */
		rl.rlim_max = cur.rlim_max < limits[i].limit ? cur.rlim_max : limits[i].limit;
		rl.rlim_cur = cur.rlim_cur < rl.rlim_max ? cur.rlim_cur : rl.rlim_max;
		if (setrlimit(limits[i].resource, &rl) < 0) {
			*why = "setrlimit";
			return -errno;
		}
	}
	*applied |= SANDBOX_RLIMITS;
	return 0;
}

/* --- the whole ------------------------------------------------------------------ */

static unsigned sandbox_built = SANDBOX_BUILT;  /* what this build and run can apply */

int
sandbox_apply(const struct sandbox_policy *p, unsigned *ret_applied, const char **ret_why)
{
	unsigned applied = 0;
	int r;

	/*
	 * Not dumpable: its /proc entries belong to root, and no process of the
	 * same user may ptrace it or read its memory. No new privileges: no
	 * setuid binary, no file capability, and what Landlock and seccomp need.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		*ret_why = "prctl";
		return -errno;
	}
	if (RUNNING_ON_VALGRIND)
		sandbox_built = 0;
	else if ((r = sandbox_rlimits(&applied, ret_why)) < 0 ||
	    (r = sandbox_landlock(p, &applied, ret_why)) < 0 ||
	    (r = sandbox_seccomp(p, &applied, ret_why)) < 0)
		return r;
	*ret_applied = applied;
	return 0;
}

/* Did the kernel let us apply all that this build knows how to? */
bool
sandbox_complete(unsigned applied)
{
	return (applied & sandbox_built) == sandbox_built;
}

/* "rlimits seccomp landlock-fs landlock-net landlock-scope", or what of it applied. */
const char *
sandbox_describe(unsigned applied)
{
	static const char *const names[] = {
		"rlimits", "seccomp", "landlock-fs", "landlock-net", "landlock-scope"
	};
	static char buf[96];
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(applied & (1U << i)))
			continue;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len > 0 ? " " : "",
		    names[i]);
	}
	return len > 0 ? buf : "none";
}

/*
 * Confine the process. What the kernel does not offer is run without, said
 * at PRIORITY 4, and named in the SANDBOX field of every entry. A call that
 * fails otherwise (no descriptor left, say) is logged at PRIORITY 2 and
 * returns NULL: the caller answers 503 and ends, serving nobody unconfined.
 */
const char *
sandbox_enter(const struct sandbox_policy *p)
{
	struct journal_field field = { "SANDBOX", NULL };
	const char *why = NULL;
	unsigned applied = 0;
	int r;

	if ((r = sandbox_apply(p, &applied, &why)) < 0) {
		field.value = why;
		journal_log(LOG_CRIT, &field, 1, "cannot confine the process: %s: %s", why,
		    strerror(-r));
		return NULL;
	}
	field.value = sandbox_describe(applied);
	if (!sandbox_complete(applied))
		journal_log(LOG_WARNING, &field, 1, "the kernel allows only part of the sandbox: %s",
		    field.value);
	return field.value;
}
