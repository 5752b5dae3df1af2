/*
 * launch.c - run a per-connection program the way systemd's Accept=yes does,
 * without a TCP listener in between, so hyperfine, callgrind and strace see
 * one process start and nothing else.
 *
 *   launch [-i] [-r FILE] [-o] -- PROGRAM [ARG...]
 *
 * A socketpair stands for the accepted connection. The child gets one end as
 * fd 3 with LISTEN_FDS=1 and LISTEN_PID set to its own pid (what
 * systemd-socket-activate and PID 1 pass), or as stdin with -i (inetd), then
 * execs PROGRAM; its pid survives the exec, and so does it under valgrind.
 * The parent writes FILE (a request, or nothing), half-closes, so the program
 * reads EOF right after it, reads the answer until EOF (to stdout with -o)
 * and exits with the program's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "launch: %s: %s\n", what, strerror(errno));
	exit(71);
}

static void
usage(void)
{
	fprintf(stderr, "usage: launch [-i] [-r FILE] [-o] -- PROGRAM [ARG...]\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	const char *request = NULL;
	char buf[65536], pid[24];
	int sv[2], ch, fd, status, inetd = 0, echo = 0;
	ssize_t n, w;
	pid_t child;

	while ((ch = getopt(argc, argv, "+ir:o")) != -1) {
		switch (ch) {
		case 'i': inetd = 1; break;
		case 'r': request = optarg; break;
		case 'o': echo = 1; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		/* dup2() clears FD_CLOEXEC on the copy, which is the one we keep. */
		if (dup2(sv[1], inetd ? STDIN_FILENO : 3) < 0)
			die("dup2");
		if (inetd) {
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_PID");
		} else {
			snprintf(pid, sizeof(pid), "%ld", (long)getpid());
			setenv("LISTEN_FDS", "1", 1);
			setenv("LISTEN_PID", pid, 1);
		}
		execvp(argv[optind], argv + optind);
		die(argv[optind]);
	}
	close(sv[1]);

	if (request != NULL) {
		if ((fd = open(request, O_RDONLY | O_CLOEXEC)) < 0)
			die(request);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			for (char *p = buf; n > 0; p += w, n -= w)
				if ((w = write(sv[0], p, (size_t)n)) < 0)
					die("write");
		close(fd);
	}
	/*
	 * Without a request, EOF is what the program meets first. With one,
	 * keep our side open: a half-close reads as a client that left (the
	 * request ends with Connection: close instead).
	 */
	if (request == NULL)
		shutdown(sv[0], SHUT_WR);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0)
		if (echo && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			die("stdout");
	if (waitpid(child, &status, 0) < 0)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
