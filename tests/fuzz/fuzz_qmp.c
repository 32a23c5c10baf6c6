/* The QMP reader on any bytes from QEMU's socket, fed in two pieces split where the first
 * byte says (a message cut across reads, as a socket gives it). */
#include "fuzz.h"

#include "qmp/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t cut = (size_t)data[0] * (size - 1) / 255;
	struct qp_qmp_reader *r = qp_qmp_reader_new();
	qp_qmp_reader_feed(r, (const char *)data + 1, cut);
	struct qp_qmp_msg m;
	while (qp_qmp_reader_next(r, &m) == 1)
		qp_qmp_msg_free(&m);
	qp_qmp_reader_feed(r, (const char *)data + 1 + cut, size - 1 - cut);
	while (qp_qmp_reader_next(r, &m) == 1)
		qp_qmp_msg_free(&m);
	qp_qmp_reader_free(r);
	return 0;
}
