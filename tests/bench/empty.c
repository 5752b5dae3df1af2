/*
 * empty.c - the baseline gfproxy's start-up is measured against: a C
 * program linked only against libsystemd that finds its connection the way
 * gfproxy does (sd_listen_fds(), then stdin), reads one request head,
 * writes a fixed 200 with the backend's body and exits. Every cost it has is
 * the floor for any program systemd starts per connection.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define EMPTY_MAX_HEAD 8192

int
main(void)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: 29\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "user info from server backend";
	char buf[EMPTY_MAX_HEAD];
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = sd_listen_fds(1) == 1 ? SD_LISTEN_FDS_START : STDIN_FILENO;
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, -1) <= 0)
		return 66;
	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n <= 0)
			return 0;       /* EOF before a request: what the start-up run measures */
		len += (size_t)n;
		if (memmem(buf, len, "\r\n\r\n", 4) != NULL)
			break;
		if (len == sizeof(buf))
			return 0;
	}
	if (write(fd, resp, sizeof(resp) - 1) < 0)
		return 0;
	shutdown(fd, SHUT_WR);
	return 0;
}
