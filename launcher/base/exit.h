/* qpass's exit statuses, documented in --help and the README. */
#ifndef QP_EXIT_H
#define QP_EXIT_H

enum {
	QP_EXIT_OK = 0,
	QP_EXIT_FAIL = 1,   /* the command failed; stderr says what and how to fix it */
	QP_EXIT_USAGE = 2,  /* the command line is wrong */
	QP_EXIT_QEMU = 3,   /* up: QEMU ended on its own (crashed, killed) */
};

#endif
