#include "base/pciaddr.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

/* Reads exactly n hex digits; lower-case only when strict. */
static bool hexn(const char *s, int n, bool strict, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		int h = qp_hexval(s[i]);
		if (h < 0 || (strict && s[i] >= 'A' && s[i] <= 'F'))
			return false;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return true;
}

static int bad_addr(const char *s, struct qp_err **err, const char *form)
{
	qp_autofree char *q = qp_quote(s);
	return qp_err_set(err, 0, "%s is not a PCI address (expected %s)", q, form);
}

int qp_parse_pci_addr(const char *s, struct qp_pci_addr *out, struct qp_err **err)
{
	unsigned d, b, sl, f;
	size_t n = strlen(s);
	/* The domain takes what the fixed-width "BB:SS.F" tail leaves: 4 to 8 digits. */
	int dl = (int)n - 8;
	const char *t = s + (dl > 0 ? dl : 0);
	if (dl < 4 || dl > 8 || s[dl] != ':' || t[3] != ':' || t[6] != '.' ||
	    !hexn(s, dl, true, &d) || (dl > 4 && s[0] == '0') || !hexn(t + 1, 2, true, &b) ||
	    !hexn(t + 4, 2, true, &sl) || !hexn(t + 7, 1, true, &f) || sl > 31 || f > 7)
		return bad_addr(s, err, "DDDD:BB:SS.F, e.g. 0000:04:00.0");
	*out = (struct qp_pci_addr){ d, (uint8_t)b, (uint8_t)sl, (uint8_t)f };
	return 0;
}

int qp_parse_pci_selector(const char *s, struct qp_pci_addr *out, bool *has_func,
			  struct qp_err **err)
{
	const char *form = "[DDDD:]BB:SS[.F], e.g. 0000:04:00, 04:00 or 04:00.1";
	size_t n = strlen(s);
	unsigned d = 0, b, sl, f = 0;
	const char *p = s;
	/* With a domain: "DDDD:" first. */
	if (n >= 10 && s[4] == ':') {
		if (!hexn(s, 4, false, &d))
			return bad_addr(s, err, form);
		p = s + 5;
		n -= 5;
	}
	if (n < 5 || p[2] != ':' || !hexn(p, 2, false, &b) || !hexn(p + 3, 2, false, &sl))
		return bad_addr(s, err, form);
	if (n == 5) {
		*has_func = false;
	} else if (n == 7 && p[5] == '.' && hexn(p + 6, 1, false, &f)) {
		*has_func = true;
	} else {
		return bad_addr(s, err, form);
	}
	if (sl > 31)
		return qp_err_set(err, 0, "'%s': slot 0x%02x is out of range (0-1f)", s, sl);
	if (f > 7)
		return qp_err_set(err, 0, "'%s': function %u is out of range (0-7)", s, f);
	*out = (struct qp_pci_addr){ d, (uint8_t)b, (uint8_t)sl, (uint8_t)f };
	return 0;
}

void qp_pci_addr_fmt(const struct qp_pci_addr *a, char buf[QP_PCI_ADDR_LEN])
{
	snprintf(buf, QP_PCI_ADDR_LEN, "%04x:%02x:%02x.%x", a->domain, a->bus, a->slot, a->func & 7);
}

void qp_pci_slot_fmt(const struct qp_pci_addr *a, char buf[QP_PCI_SLOT_LEN])
{
	snprintf(buf, QP_PCI_SLOT_LEN, "%04x:%02x:%02x", a->domain, a->bus, a->slot & 31);
}

int qp_pci_addr_cmp(const struct qp_pci_addr *a, const struct qp_pci_addr *b)
{
	uint64_t x = (uint64_t)a->domain << 24 | (uint64_t)a->bus << 16 | a->slot << 8 | a->func;
	uint64_t y = (uint64_t)b->domain << 24 | (uint64_t)b->bus << 16 | b->slot << 8 | b->func;
	return x < y ? -1 : x > y;
}

bool qp_pci_same_slot(const struct qp_pci_addr *a, const struct qp_pci_addr *b)
{
	return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot;
}
