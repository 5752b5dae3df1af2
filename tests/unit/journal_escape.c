/*
 * journal_escape.c - checks journal_escape() of src/journal.c directly:
 * every byte a client could put in a logged string, and the truncation
 * rules. tests/proxy-logging.bats builds and runs it.
 *
 * Promises: printable ASCII but the backslash is copied; everything else
 * (CR, LF, NUL and the other control bytes, DEL, '\\', bytes >= 0x80)
 * becomes \xHH with lower-case hex; the output is NUL-terminated, never
 * longer than size - 1, and never ends with a partial escape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

static int failures;

static void
expect(const char *what, const char *src, size_t len, size_t size, const char *want)
{
	char out[2048];
	size_t n;

	memset(out, 'Z', sizeof(out));
	n = journal_escape(out, size, src, len);
	if (size == 0) {
		if (n != 0 || out[0] != 'Z') {
			printf("FAIL %s: wrote into an empty buffer\n", what);
			failures++;
		}
		return;
	}
	if (strcmp(out, want) != 0 || n != strlen(want) || out[size] != 'Z') {
		printf("FAIL %s: got \"%s\" (%zu), want \"%s\"\n", what, out, n, want);
		failures++;
	}
}

int
main(void)
{
	char all[256], want[256 * 4 + 1], one[2], hex[8];
	size_t i, o = 0;

	expect("plain", "GET /a?b=c", 10, 64, "GET /a?b=c");
	expect("CR LF", "a\r\nb", 4, 64, "a\\x0d\\x0ab");
	expect("forged line", "x\n<6>GET /forged", 16, 64, "x\\x0a<6>GET /forged");
	expect("NUL", "a\0b", 3, 64, "a\\x00b");
	expect("tab, ESC, DEL", "\t\x1b\x7f", 3, 64, "\\x09\\x1b\\x7f");
	expect("backslash", "a\\x0a", 5, 64, "a\\x5cx0a");
	expect("high bytes", "caf\xc3\xa9", 5, 64, "caf\\xc3\\xa9");
	expect("empty", "", 0, 64, "");
	expect("no room at all", "abc", 3, 0, "");
	expect("room for the NUL only", "abc", 3, 1, "");
	expect("cut before a character", "abcdef", 6, 4, "abc");
	expect("cut before an escape, never inside it", "ab\n", 3, 6, "ab");
	expect("an escape that just fits", "ab\n", 3, 7, "ab\\x0a");

	/* Every byte value, one at a time and all together. */
	for (i = 0; i < 256; i++) {
		all[i] = (char)i;
		one[0] = (char)i;
		one[1] = '\0';
		if (i >= 0x20 && i < 0x7f && i != '\\')
			snprintf(hex, sizeof(hex), "%c", (int)i);
		else
			snprintf(hex, sizeof(hex), "\\x%02x", (unsigned)i);
		expect("one byte", one, 1, 16, hex);
		memcpy(want + o, hex, strlen(hex));
		o += strlen(hex);
	}
	want[o] = '\0';
	expect("every byte", all, 256, sizeof(want), want);

	if (failures > 0) {
		printf("journal_escape: %d checks failed\n", failures);
		return EXIT_FAILURE;
	}
	printf("journal_escape: all checks passed\n");
	return EXIT_SUCCESS;
}
