/* Unit tests of the pure core (launcher/core) that need no host: check's reading of
 * /proc/iomem. This binary links the core whole and nothing above it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/check.h"

/* /proc/iomem: a boot framebuffer nested under a BAR; zeros (not root) say nothing. */
static void check_iomem(void **state)
{
	(void)state;
	const char *iomem = "00000000-00000fff : Reserved\n"
			    "c0000000-cfffffff : PCI Bus 0000:01\n"
			    "  c0000000-cfffffff : 0000:01:00.0\n"
			    "    c0000000-c07fffff : efifb\n"
			    "  d0000000-d0ffffff : 0000:01:00.0\n";
	uint64_t s = 0, e = 0;
	assert_string_equal(qp_check_iomem_fb(iomem, 0xc0000000, 0xcfffffff, &s, &e), "efifb");
	assert_true(s == 0xc0000000 && e == 0xc07fffff);
	assert_null(qp_check_iomem_fb(iomem, 0xd0000000, 0xd0ffffff, &s, &e));
	assert_null(qp_check_iomem_fb("00000000-00000000 : efifb\n", 0, 0xffffffff, &s, &e));
	assert_null(qp_check_iomem_fb("garbage\n : efifb\n-\n", 0, 0xffffffff, &s, &e));
	assert_string_equal(qp_check_iomem_fb("    e0000000-e02fffff : simpledrm", 0xe0000000,
					      0xefffffff, &s, &e), "simpledrm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_iomem),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
