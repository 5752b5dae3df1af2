/*
 * check-mprintf.c - what packaging/build-curl runs on each static libcurl it
 * builds, since mprintf-runs.patch changes libcurl's printf: for every case,
 * curl_msnprintf() into a buffer of every size from 0 to one past the output
 * (the patch's truncation path) and curl_maprintf() (its dynbuf path) must
 * give what the C library's vsnprintf() gives, and write nothing beyond.
 * Only conversions that both printfs render alike are used.
 *
 * Exit status: 0 when every case matches, 1 otherwise (each failure printed).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <curl/mprintf.h>

#define CHECK_MAX 512

static int failures;

static void fail(int line, const char *what, size_t max, const char *want, const char *got)
{
	fprintf(stderr, "check-mprintf: line %d: %s (size %zu): want \"%s\", got \"%.*s\"\n",
	    line, what, max, want, CHECK_MAX - 1, got);
	failures++;
}

static void __attribute__((format(printf, 2, 3)))
check(int line, const char *fmt, ...)
{
	char want[CHECK_MAX], got[CHECK_MAX];
	size_t max, k, i;
	va_list ap, aq;
	char *s;
	int n;

	va_start(ap, fmt);
	va_copy(aq, ap);
	n = vsnprintf(want, sizeof(want), fmt, aq);
	va_end(aq);
	if (n < 0 || n >= CHECK_MAX - 1) {
		fail(line, "case too long for the check", 0, "", "");
		va_end(ap);
		return;
	}
	for (max = 0; max <= (size_t)n + 1; max++) {
		memset(got, 'Z', sizeof(got));
		va_copy(aq, ap);
		(void)curl_mvsnprintf(got, max, fmt, aq);
		va_end(aq);
		/* The output cut to max - 1 bytes and terminated, nothing after. */
		k = max == 0 ? 0 : ((size_t)n < max - 1 ? (size_t)n : max - 1);
		if (max > 0 && (memcmp(got, want, k) != 0 || got[k] != '\0'))
			fail(line, "curl_msnprintf", max, want, got);
		for (i = max == 0 ? 0 : k + 1; i < sizeof(got); i++)
			if (got[i] != 'Z') {
				fail(line, "curl_msnprintf wrote past its output", max, want, got);
				break;
			}
	}
	va_copy(aq, ap);
	s = curl_mvaprintf(fmt, aq);
	va_end(aq);
	if (s == NULL || strcmp(s, want) != 0)
		fail(line, "curl_maprintf", 0, want, s != NULL ? s : "(NULL)");
	curl_free(s);
	va_end(ap);
}

int
main(void)
{
	static const char *strs[] = { "", "a", "Host: example.org:8080",
	    "X-Forwarded-For: 192.0.2.1, 198.51.100.7" };
	char big[400];
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		check(__LINE__, "%s\r\n", strs[i]);
		check(__LINE__, "%s", strs[i]);
		check(__LINE__, "lit %s mid %s end", strs[i], strs[3 - i]);
		check(__LINE__, "%.3s|%.0s|%.60s|", strs[i], strs[i], strs[i]);
		check(__LINE__, "%12s|%-12s|%*s|%-*s|", strs[i], strs[i], 9, strs[i], 9, strs[i]);
	}
	check(__LINE__, "%s %s%s%s%s HTTP/%s\r\n", "GET", "", "/user/1", "?", "q=1", "1.1");
	check(__LINE__, "%d %ld %u %x %X %o %#x %05d %-5d| %+d % d %lld", 42, -7L, 7u, 255,
	    255, 8, 255, 42, 42, 5, 5, -1234567890123LL);
	check(__LINE__, "Content-Length: %" CURL_FORMAT_CURL_OFF_T "\r\n", (curl_off_t)1234567890);
	check(__LINE__, "%d%d%d%d%d", 1, 22, 333, 4444, 55555);
	check(__LINE__, "100%% %c%c %s%%", 'o', 'k', "done");
	check(__LINE__, "%s", "no conversion anywhere near, a literal run longer than small buffers");
	check(__LINE__, "no conversion at all, a literal run longer than the small buffers");
	check(__LINE__, "%s", "");
	memset(big, 'x', sizeof(big) - 100);
	big[sizeof(big) - 100] = '\0';
	check(__LINE__, "<%s>", big);
	if (failures > 0)
		fprintf(stderr, "check-mprintf: %d failures\n", failures);
	return failures > 0;
}
