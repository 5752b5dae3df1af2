/* journal.h - the one logging wrapper: sd_journal_send, or stderr without a journal */
#ifndef GFPROXY_JOURNAL_H
#define GFPROXY_JOURNAL_H

#include <stddef.h>
#include <syslog.h>

#define JOURNAL_MAX_FIELDS  16    /* structured fields in one entry */
#define JOURNAL_MAX_MESSAGE 2048  /* bytes of MESSAGE after escaping */
#define JOURNAL_MAX_ENTRY   (48 * 1024) /* bytes of all fields of one entry */
#define JOURNAL_SEND_TIMEOUT_MS 50      /* longest wait for a congested journald */

struct journal_field {
	const char *name;       /* upper case, as journald wants */
	const char *value;
};

void    journal_init(const char *identifier);
void    journal_write(int priority, const struct journal_field *fields, size_t nfields,
            const char *message);
void    journal_log(int priority, const struct journal_field *fields, size_t nfields,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
size_t  journal_escape(char *dst, size_t size, const char *src, size_t len);

#endif
