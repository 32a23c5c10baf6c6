/* The command line: global options, then one command. */
#ifndef QP_CLI_H
#define QP_CLI_H

#include "base/exit.h"

int qp_main(int argc, char **argv);

#endif
