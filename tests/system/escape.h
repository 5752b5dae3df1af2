/* escape.h - the confinement probe built into a test build of gfproxy (escape.c) */
#ifndef GFPROXY_ESCAPE_H
#define GFPROXY_ESCAPE_H

void escape_probe(int fd, const char *target);

#endif
