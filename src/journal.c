/*
 * journal.c - every log line goes through journal_log(). With a journal it
 * is one sd_journal_sendv() with structured fields; without one (containers,
 * tests) the MESSAGE goes to stderr with an sd-daemon priority prefix, which
 * journald also understands if stderr is connected to it. A terminal on
 * stderr means someone is watching (`make run`): each entry goes there
 * instead, as one line with the time and the client.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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
static bool journal_console;       /* stderr is a terminal */

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
	journal_console = isatty(STDERR_FILENO);
	/* The time zone is read now: once confined, the process may open no file. */
	if (journal_console)
		tzset();
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
journal_stderr(int priority, const char *message, size_t len)
{
	char line[JOURNAL_MAX_MESSAGE + 8];
	size_t n = 0;

	line[n++] = '<';
	line[n++] = (char)('0' + (priority & 7));
	line[n++] = '>';
	memcpy(line + n, message, len);
	n += len;
	line[n++] = '\n';
	if (!stderr_not_socket) {
		if (send(STDERR_FILENO, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 ||
		    errno != ENOTSOCK)
			return;
		stderr_not_socket = true;
	}
	(void)!write(STDERR_FILENO, line, n);
}

static const char *
journal_field_value(const struct journal_field *fields, size_t nfields, const char *name)
{
	size_t i;

	for (i = 0; i < nfields; i++)
		if (strcmp(fields[i].name, name) == 0)
			return fields[i].value;
	return NULL;
}

/*
 * "15:04:05 127.0.0.1:53530 GET /proxy/user/1 -> ... 200 29B 4.6ms": the
 * local time, the client when the entry has one, the message.
 */
static void
journal_console_line(const struct journal_field *fields, size_t nfields, const char *message,
    size_t len)
{
	char line[JOURNAL_MAX_MESSAGE + 128];
	const char *addr = journal_field_value(fields, nfields, "REMOTE_ADDR");
	const char *port = journal_field_value(fields, nfields, "REMOTE_PORT");
	bool v6 = addr != NULL && strchr(addr, ':') != NULL;
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	n = strftime(line, sizeof(line), "%H:%M:%S ", localtime_r(&now, &tm));
	if (addr != NULL)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s%s%s%s ", v6 ? "[" : "",
		    addr, v6 ? "]" : "", port != NULL && *port != '\0' ? ":" : "",
		    port != NULL ? port : "");
	if (n + len + 1 > sizeof(line))
		len = sizeof(line) - n - 1;
	memcpy(line + n, message, len);
	n += len;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
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

/* "NAME=value" into dst; 0 when it does not fit. */
static size_t
journal_field_line(char *dst, size_t size, const char *name, const char *value)
{
	size_t nlen, vlen;

	if (value == NULL)
		value = "";
	nlen = strlen(name);
	vlen = strlen(value);
	if (nlen + 1 + vlen >= size)
		return 0;
	memcpy(dst, name, nlen);
	dst[nlen] = '=';
	memcpy(dst + nlen + 1, value, vlen);
	dst[nlen + 1 + vlen] = '\0';
	return nlen + 1 + vlen;
}

void
journal_write(int priority, const struct journal_field *fields, size_t nfields,
    const char *message)
{
	char prio[sizeof("PRIORITY=") + 1] = "PRIORITY=0";
	char ident[64], fieldbuf[JOURNAL_MAX_ENTRY];
	struct iovec iov[JOURNAL_MAX_FIELDS + 3];
	size_t i, l, n = 0, used = 0, len = strnlen(message, JOURNAL_MAX_MESSAGE);
	int r;

	if (journal_console) {
		journal_console_line(fields, nfields, message, len);
		return;
	}
	/* sd_journal_sendv() reports success when there is no socket at all. */
	if (journal_state < 0) {
		struct stat st;
		journal_state = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
	}
	if (journal_state == 1) {
		prio[sizeof(prio) - 2] = (char)('0' + (priority & 7));
		l = journal_field_line(fieldbuf, sizeof(fieldbuf), "MESSAGE", "");
		memcpy(fieldbuf + l, message, len);
		iov[n++] = (struct iovec){ fieldbuf, l + len };
		used = l + len + 1;
		iov[n++] = (struct iovec){ prio, sizeof(prio) - 1 };
		iov[n++] = (struct iovec){ ident,
		    journal_field_line(ident, sizeof(ident), "SYSLOG_IDENTIFIER", journal_identifier) };
		for (i = 0; i < nfields && i < JOURNAL_MAX_FIELDS; i++) {
			l = journal_field_line(fieldbuf + used, sizeof(fieldbuf) - used,
			    fields[i].name, fields[i].value);
			if (l == 0)
				break;  /* out of room: the rest of the fields are dropped */
			iov[n++] = (struct iovec){ fieldbuf + used, l };
			used += l + 1;
		}
		r = journal_send(iov, (int)n);
		if (r >= 0)
			return;
		/* No journald listening, or it stopped reading: stderr for good. */
		journal_state = 0;
	}
	journal_stderr(priority, message, len);
}

void
journal_log(int priority, const struct journal_field *fields, size_t nfields,
    const char *fmt, ...)
{
	char message[JOURNAL_MAX_MESSAGE + 1];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	journal_write(priority, fields, nfields, message);
}
