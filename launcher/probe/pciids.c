#include "probe/pciids.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* libpci's lookup buffer (pcilib.c used 256): longer names end in "...". */
#define NAME_MAX_LEN 255

struct entry {
	uint16_t id;
	const char *line;  /* its line in the text */
	char *name;        /* made the first time it is asked for */
};

struct block {
	uint16_t id;       /* a vendor, or a class (its base) */
	const char *at;    /* its line in the text; NULL: pci.ids has none */
	char *name;
	bool indexed;      /* subs holds its nested entries */
	struct entry *subs;  /* devices, or subclasses; sorted by id */
	size_t n_subs;
};

struct qp_pciids {
	const char *text;
	size_t len;
	struct block *vendors, *classes;  /* those asked for, in the order asked */
	size_t n_vendors, n_classes;
};

struct qp_pciids *qp_pciids_new(const char *text, size_t len)
{
	struct qp_pciids *ids = qp_xcalloc(1, sizeof(*ids));
	ids->text = text;
	ids->len = len;
	return ids;
}

static void free_blocks(struct block *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(b[i].name);
		for (size_t j = 0; j < b[i].n_subs; j++)
			free(b[i].subs[j].name);
		free(b[i].subs);
	}
	free(b);
}

void qp_pciids_free(struct qp_pciids *ids)
{
	if (!ids)
		return;
	free_blocks(ids->vendors, ids->n_vendors);
	free_blocks(ids->classes, ids->n_classes);
	free(ids);
}

/* --- lines, read as libpci reads them --------------------------------------------- */

struct line {
	const char *p, *end;  /* the line without its end, nor one trailing blank */
	const char *next;     /* the next line, or NULL */
	int nest;             /* leading tabs */
	bool skip;            /* blank, or a comment */
};

static bool white(char c)
{
	return c == ' ' || c == '\t';
}

static void read_line(const struct qp_pciids *ids, const char *at, struct line *l)
{
	const char *stop = ids->text + ids->len;
	const char *nl = at < stop ? memchr(at, '\n', (size_t)(stop - at)) : NULL;
	const char *e = nl ? nl : stop;
	const char *cr = memchr(at, '\r', (size_t)(e - at));
	if (cr)
		e = cr;
	l->next = nl && nl + 1 < stop ? nl + 1 : NULL;
	if (e > at && white(e[-1]))
		e--;
	l->p = at;
	l->end = e;
	const char *q = at;
	while (q < e && white(*q))
		q++;
	l->skip = q == e || *q == '#';
	l->nest = 0;
	while (at + l->nest < e && at[l->nest] == '\t')
		l->nest++;
}

static int hex(const char *p, const char *end, int digits)
{
	int x = 0;
	for (int i = 0; i < digits; i++) {
		if (p + i >= end)
			return -1;
		int v = qp_hexval(p[i]);
		if (v < 0)
			return -1;
		x = x << 4 | v;
	}
	return x;
}

/* The name after an id of `digits` hex digits and its blank; NULL when malformed. */
static char *entry_name(const char *p, const char *end, int digits, int *id)
{
	*id = hex(p, end, digits);
	if (*id < 0 || p + digits >= end || !white(p[digits]))
		return NULL;
	p += digits + 1;
	while (p < end && white(*p))
		p++;
	return p == end ? NULL : qp_xstrndup(p, (size_t)(end - p));
}

/* The first top-level entry line that starts with key (vendor "10de", class "C 03")
 * at or after text + off, found by searching the text for it at a line's start. */
static const char *find_top_from(const struct qp_pciids *ids, size_t off, const char *key)
{
	size_t k = strlen(key);
	if (!off && ids->len > k && !memcmp(ids->text, key, k) && white(ids->text[k]))
		return ids->text;
	char pat[16];
	snprintf(pat, sizeof(pat), "\n%s", key);
	const char *from = ids->text + off;
	for (;;) {
		size_t left = ids->len - (size_t)(from - ids->text);
		const char *hit = memmem(from, left, pat, k + 1);
		if (!hit)
			return NULL;
		if (hit + 1 + k < ids->text + ids->len && white(hit[1 + k]))
			return hit + 1;
		from = hit + 1;
	}
}

static const char *find_top(const struct qp_pciids *ids, const char *key)
{
	return find_top_from(ids, 0, key);
}

/* The first entry of the top level whose line starts at or after off: vendor lines,
 * and then the class lines ("C xx"); NULL at the end. */
static const char *top_at(const struct qp_pciids *ids, size_t off)
{
	const char *p = ids->text + off, *stop = ids->text + ids->len;
	if (off) {
		p = memchr(p - 1, '\n', (size_t)(stop - p + 1));
		p = p ? p + 1 : NULL;
	}
	for (; p && p < stop; p = memchr(p, '\n', (size_t)(stop - p)), p = p ? p + 1 : NULL)
		if (*p != '\t' && *p != '#' && *p != '\n' && *p != '\r' && *p != ' ')
			return p;
	return NULL;
}

/* The vendor id of a top-level line; -1 when it is not a vendor's (a class, the end). */
static int vendor_of(const struct qp_pciids *ids, const char *p)
{
	const char *stop = ids->text + ids->len;
	if (!p || p + 5 > stop || !white(p[4]))
		return -1;
	return hex(p, stop, 4);
}

/* Vendor id's line. pci.ids keeps its vendors sorted, and then the classes: a binary
 * search finds it by looking at a few lines; when the file is not in that order, the
 * search for the text finds it. */
static const char *find_vendor(const struct qp_pciids *ids, uint16_t id)
{
	/* Narrowed to 64 KiB at most before the line; then searched for from there. */
	size_t lo = 0, hi = ids->len;
	while (hi - lo > 65536) {
		size_t mid = lo + (hi - lo) / 2;
		int v = vendor_of(ids, top_at(ids, mid));
		if (v >= 0 && v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	char key[8];
	snprintf(key, sizeof(key), "%04x", id);
	const char *p = find_top_from(ids, lo ? lo - 1 : 0, key);
	if (p && vendor_of(ids, p) == id)
		return p;
	if ((p = find_top(ids, key)))
		return p;
	/* libpci reads upper-case hex too. */
	snprintf(key, sizeof(key), "%04X", id);
	return find_top(ids, key);
}

/* Class base's line ("C 03"). The classes come last in pci.ids: they are looked for
 * from the end back to the last vendor, then in the whole text. */
static const char *find_class(const struct qp_pciids *ids, uint8_t base)
{
	char key[8];
	snprintf(key, sizeof(key), "C %02x", base);
	const char *start = ids->text, *end = ids->text + ids->len;
	while (end > start) {
		const char *nl = memrchr(start, '\n', (size_t)(end - start - 1));
		const char *line = nl ? nl + 1 : start;
		if (line + 5 <= ids->text + ids->len && !memcmp(line, key, 4) && white(line[4]))
			return line;
		if (vendor_of(ids, line) >= 0)
			break;
		end = line;
		if (!nl)
			break;
	}
	return find_top(ids, key);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* The entries nested one level in the block (devices of a vendor, subclasses of a
 * class), up to the next top-level entry; the first of an id counts. */
static void index_block(const struct qp_pciids *ids, struct block *b, int digits)
{
	b->indexed = true;
	if (!b->at)
		return;
	size_t cap = 0;
	const char *stop = ids->text + ids->len;
	for (const char *p = memchr(b->at, '\n', (size_t)(stop - b->at)); p && ++p < stop;
	     p = memchr(p, '\n', (size_t)(stop - p))) {
		if (*p == '\t' && p + 1 < stop && p[1] != '\t') {
			int id = hex(p + 1, stop, digits);
			if (id < 0)
				continue;
			b->subs = qp_xgrow(b->subs, &cap, b->n_subs + 1, sizeof(*b->subs));
			b->subs[b->n_subs++] = (struct entry){ (uint16_t)id, p + 1, NULL };
			continue;
		}
		if (*p == '\t')
			continue;  /* a subsystem, or a programming interface */
		struct line l;
		read_line(ids, p, &l);
		if (!l.skip)
			break;  /* the next entry of the top level */
	}
	/* An insertion sort: stable, so that of equal ids the file's first stays first; the
	 * blocks are in order already. */
	for (size_t i = 1; i < b->n_subs; i++)
		for (size_t j = i; j && b->subs[j - 1].id > b->subs[j].id; j--) {
			struct entry t = b->subs[j];
			b->subs[j] = b->subs[j - 1];
			b->subs[j - 1] = t;
		}
}

static struct block *block(struct qp_pciids *ids, bool cls, uint16_t id)
{
	struct block **v = cls ? &ids->classes : &ids->vendors;
	size_t *n = cls ? &ids->n_classes : &ids->n_vendors;
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].id == id)
			return &(*v)[i];
	*v = qp_xrealloc(*v, (*n + 1) * sizeof(**v));
	struct block *b = &(*v)[(*n)++];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->at = cls ? find_class(ids, (uint8_t)id) : find_vendor(ids, id);
	if (b->at) {
		struct line l;
		read_line(ids, b->at, &l);
		int got;
		b->name = entry_name(b->at + (cls ? 2 : 0), l.end, cls ? 2 : 4, &got);
		if (!b->name)
			b->at = NULL;
	}
	return b;
}

static const char *nested(struct qp_pciids *ids, bool cls, uint16_t id, uint16_t sub_id)
{
	struct block *b = block(ids, cls, id);
	if (!b->indexed)
		index_block(ids, b, cls ? 2 : 4);
	struct entry key = { sub_id, NULL, NULL };
	struct entry *e = b->n_subs ? bsearch(&key, b->subs, b->n_subs, sizeof(*e), cmp_entry)
				    : NULL;
	/* bsearch may land on any of equal ids: the first in the file is the one before. An
	 * entry without a name is no entry (libpci refuses it), and the next one counts. */
	while (e && e > b->subs && e[-1].id == sub_id)
		e--;
	for (; e && e < b->subs + b->n_subs && e->id == sub_id; e++) {
		if (!e->name) {
			struct line l;
			read_line(ids, e->line - 1, &l);
			int got;
			e->name = entry_name(e->line, l.end, cls ? 2 : 4, &got);
		}
		if (e->name)
			return e->name;
	}
	return NULL;
}

/* --- names, as libpci makes them ------------------------------------------------- */

/* libpci's buffer of 256: a longer result ends in "...". */
static char *fitted(char *s)
{
	if (strlen(s) > NAME_MAX_LEN) {
		s[NAME_MAX_LEN] = '\0';
		memset(s + NAME_MAX_LEN - 3, '.', 3);
	}
	return s;
}

static char *copy(const char *s)
{
	return s ? fitted(qp_xstrdup(s)) : NULL;
}

char *qp_pciids_vendor_name(struct qp_pciids *ids, uint16_t vendor)
{
	return copy(block(ids, false, vendor)->name);
}

char *qp_pciids_device_name(struct qp_pciids *ids, uint16_t vendor, uint16_t device)
{
	return copy(nested(ids, false, vendor, device));
}

char *qp_pciids_name(struct qp_pciids *ids, uint16_t vendor, uint16_t device)
{
	const char *v = block(ids, false, vendor)->name;
	const char *d = nested(ids, false, vendor, device);
	if (v && d)
		return fitted(qp_xasprintf("%s %s", v, d));
	if (!v)
		return qp_xasprintf("Device %04x:%04x", vendor, device);
	return fitted(qp_xasprintf("%s Device %04x", v, device));
}

char *qp_pciids_class_name(struct qp_pciids *ids, uint16_t cls)
{
	const char *s = nested(ids, true, (uint8_t)(cls >> 8), (uint8_t)cls);
	if (s)
		return copy(s);
	const char *b = block(ids, true, (uint8_t)(cls >> 8))->name;
	if (b)
		return fitted(qp_xasprintf("%s [%04x]", b, cls));
	return qp_xasprintf("Class %04x", cls);
}
