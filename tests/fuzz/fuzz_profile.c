/* The profile parser with its position index (file:line:column in every message), on
 * any text: it must refuse or accept, never crash, leak or read out of bounds. */
#include "fuzz.h"

#include "base/err.h"
#include "profiles/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = qp_fuzz_text(data, size);
	struct qp_profile p;
	struct qp_err *err = NULL;
	if (qp_profile_parse(text, "fuzz.json", &p, &err) == 0)
		qp_profile_free(&p);
	qp_err_free(err);
	free(text);
	return 0;
}
