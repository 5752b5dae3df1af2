/*
 * backend.c - gfproxy-backend, the sample backend behind gfproxy.
 *
 * Started by systemd (or inetd) once per TCP connection, it serves every
 * request on that connection in order and exits when the client closes or
 * idles out, answering like the original GoFrame example, for every method
 * (origin.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "origin.h"

#define BACKEND_NAME            "gfproxy-backend"

static void
backend_usage(FILE *f)
{
	fprintf(f,
	    "usage: " BACKEND_NAME "\n"
	    "       " BACKEND_NAME " -h | --help | -V | --version\n"
	    "\n"
	    "The sample HTTP/1.1 backend behind gfproxy. Started once per TCP connection\n"
	    "by systemd socket activation (Accept=yes) or inetd (nowait), it serves every\n"
	    "request on the connection, for any method:\n"
	    "  /user/1, /user/1/   200 \"user info from server backend\"\n"
	    "  anything else       200 \"response from server backend\"\n"
	    "and logs one journal entry per request.\n"
	    "\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "Exit status: 0 after serving, %d bad usage, %d no connected stream socket on\n"
	    "fd 3 or stdin, %d a system call failed before serving.\n",
	    EXIT_USAGE, EXIT_NOCONN, EXIT_OSERR);
}

int
main(int argc, char *argv[])
{
	static struct origin origin;

	return origin_main(&origin, argc, argv, BACKEND_NAME, backend_usage, NULL);
}
