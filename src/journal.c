/*
 * journal.c - every log line goes through journal_log(). With a journal it
 * is one sd_journal_sendv() with structured fields; without one (development,
 * containers, tests) the MESSAGE goes to stderr with an sd-daemon priority
 * prefix, which journald also understands if stderr is connected to it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "journal.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const char *journal_identifier = "gfproxy";
static int journal_state = -1;     /* -1 not looked yet, 0 absent, 1 present */

static void
journal_alarm(int sig)
{
	(void)sig;      /* only there to interrupt sendmsg() */
}

void
journal_init(const char *identifier)
{
	struct sigaction sa = { .sa_handler = journal_alarm };  /* no SA_RESTART */

	journal_identifier = identifier;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

/*
 * sd_journal_sendv() blocks while journald's socket queue is full (a stopped
 * or overloaded journald). A proxy must not wait on its log: a timer bounds
 * the wait, its signal interrupts sendmsg(), and the entry goes to stderr.
 */
static int
journal_send(struct iovec *iov, int n)
{
	struct itimerval arm = { .it_value = { 0, JOURNAL_SEND_TIMEOUT_MS * 1000 } };
	struct itimerval disarm = { 0 };
	int r;

	setitimer(ITIMER_REAL, &arm, NULL);
	r = sd_journal_sendv(iov, n);
	setitimer(ITIMER_REAL, &disarm, NULL);
	return r;
}

static bool stderr_not_socket;     /* stderr is a file or a pipe: write() it */

/* Under systemd stderr is a stream to journald too: never block on it either. */
static void
journal_stderr(int priority, const char *message)
{
	char line[JOURNAL_MAX_MESSAGE + 8];
	int n;

	n = snprintf(line, sizeof(line), "<%d>%s\n", priority & 7, message);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (!stderr_not_socket) {
		if (send(STDERR_FILENO, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 ||
		    errno != ENOTSOCK)
			return;
		stderr_not_socket = true;
	}
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/*
 * Make a client-supplied string safe for a one-line log: bytes outside
 * printable ASCII, and the backslash itself, become \xHH, so nothing a
 * client sends can start a new line or forge a field. Always NUL-terminates.
 */
size_t
journal_escape(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;
	unsigned char ch;

	if (size == 0)
		return 0;
	for (i = 0; i < len; i++) {
		ch = (unsigned char)src[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			if (o + 1 >= size)
				break;
			dst[o++] = (char)ch;
		} else {
			if (o + 4 >= size)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 0xf];
		}
	}
	dst[o] = '\0';
	return o;
}

void
journal_log(int priority, const struct journal_field *fields, size_t nfields,
    const char *fmt, ...)
{
	char message[JOURNAL_MAX_MESSAGE + sizeof("MESSAGE=")];
	char prio[sizeof("PRIORITY=") + 1], ident[64];
	char fieldbuf[JOURNAL_MAX_ENTRY];
	struct iovec iov[JOURNAL_MAX_FIELDS + 3];
	size_t i, n = 0, used = 0;
	va_list ap;
	int r, len;

	va_start(ap, fmt);
	len = vsnprintf(message + 8, sizeof(message) - 8, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(message) - 8)
		len = (int)sizeof(message) - 9;
	memcpy(message, "MESSAGE=", 8);

	/* sd_journal_sendv() reports success when there is no socket at all. */
	if (journal_state < 0) {
		struct stat st;
		journal_state = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
	}
	if (journal_state == 1) {
		snprintf(prio, sizeof(prio), "PRIORITY=%d", priority & 7);
		snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", journal_identifier);
		iov[n++] = (struct iovec){ message, 8 + (size_t)len };
		iov[n++] = (struct iovec){ prio, strlen(prio) };
		iov[n++] = (struct iovec){ ident, strlen(ident) };
		for (i = 0; i < nfields && i < JOURNAL_MAX_FIELDS; i++) {
			char *f = fieldbuf + used;
			int l = snprintf(f, sizeof(fieldbuf) - used, "%s=%s", fields[i].name,
			    fields[i].value != NULL ? fields[i].value : "");
			if (l < 0 || (size_t)l >= sizeof(fieldbuf) - used)
				break;  /* out of room: the rest of the fields are dropped */
			iov[n++] = (struct iovec){ f, (size_t)l };
			used += (size_t)l + 1;
		}
		r = journal_send(iov, (int)n);
		if (r >= 0)
			return;
		/* No journald listening, or it stopped reading: stderr for good. */
		journal_state = 0;
	}
	journal_stderr(priority, message + 8);
}
