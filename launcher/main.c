#include "cli/cli.h"

int main(int argc, char **argv)
{
	return qp_main(argc, argv);
}
