#include "cli.h"

int main(int argc, char **argv)
{
	return qp_main(argc, argv);
}
