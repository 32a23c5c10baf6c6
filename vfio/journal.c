#include "vfio/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "base/files.h"
#include "base/rundir.h"
#include "base/util.h"

void qp_journal_free(struct qp_journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->e[i].driver);
		free(j->e[i].override);
	}
	free(j->e);
	free(j->nodes);
	free(j->path);
	memset(j, 0, sizeof(*j));
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A driver's name as the kernel gives one (nvidia, snd_hda_intel, vfio-pci): it ends up
 * in sysfs paths (drivers/NAME/bind) and writes, so nothing else is let through. */
static bool driver_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63 || s[0] == '.')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static int int_member(json_object *o, const char *key, int64_t max, int64_t *out)
{
	json_object *v = json_object_object_get(o, key);
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return *out >= 0 && *out <= max ? 0 : -1;
}

/* The array member key of o, and its length (0 when it is not an array). */
static json_object *array_member(json_object *o, const char *key, size_t *n)
{
	json_object *a = json_object_object_get(o, key);
	*n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
	return a;
}

/* "nodes": [{"group": 46, "uid": 0, "gid": 0}]: whose each group node was. */
static int load_nodes(json_object *root, struct qp_journal *j, struct qp_err **err)
{
	size_t n;
	json_object *nodes = array_member(root, "nodes", &n);
	j->nodes = qp_xcalloc(n ? n : 1, sizeof(*j->nodes));
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(nodes, i);
		int64_t g, u, gid;
		if (int_member(x, "group", INT32_MAX, &g) < 0 ||
		    int_member(x, "uid", UINT32_MAX - 1, &u) < 0 ||
		    int_member(x, "gid", UINT32_MAX - 1, &gid) < 0)
			return qp_err_set(err, 0, "the journal %s: node %zu has no valid group, uid "
					  "and gid", j->path, i);
		j->nodes[j->n_nodes++] = (struct qp_journal_node){ (int)g, (unsigned)u,
								   (unsigned)gid };
	}
	return 0;
}

int qp_journal_load(const char *owner, struct qp_journal *j, struct qp_err **err)
{
	memset(j, 0, sizeof(*j));
	j->path = qp_rundir_journal(owner);
	json_object *root = json_object_from_file(j->path);
	if (!root) {
		if (access(j->path, F_OK) < 0 && errno == ENOENT)
			return 0;
		qp_err_set(err, 0, "the journal %s is unreadable", j->path);
		qp_err_hint(err, "it records which driver each device had; compare it "
			    "with `qpass list --all` and fix or remove it by hand");
		goto fail;
	}
	size_t n;
	json_object *entries = array_member(root, "functions", &n);
	j->e = qp_xcalloc(n ? n : 1, sizeof(*j->e));
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(entries, i);
		const char *a = str_member(x, "address");
		struct qp_err *pe = NULL;
		if (!a || qp_parse_pci_addr(a, &j->e[j->n].addr, &pe) < 0) {
			qp_err_free(pe);
			qp_err_set(err, 0, "the journal %s: entry %zu has no valid address", j->path,
				   i);
			goto fail_json;
		}
		const char *d = str_member(x, "driver"), *o = str_member(x, "driver_override");
		const char *bad = d && !driver_name_ok(d) ? d : o && !driver_name_ok(o) ? o : NULL;
		if (bad) {
			qp_err_set(err, 0, "the journal %s: entry %zu (%s) names the driver \"%s\", "
				   "which is not a driver's name", j->path, i, a, bad);
			qp_err_hint(err, "a driver's name has only letters, digits, '_', '-' and "
				    "'.'; nothing was changed: fix the entry from `qpass list --all` "
				    "(or remove the journal) and run restore again");
			goto fail_json;
		}
		j->e[j->n].driver = d ? qp_xstrdup(d) : NULL;
		j->e[j->n].override = o ? qp_xstrdup(o) : NULL;
		j->n++;
	}
	if (load_nodes(root, j, err) < 0)
		goto fail_json;
	json_object_put(root);
	return 0;
fail_json:
	json_object_put(root);
fail:
	qp_journal_free(j);  /* a failed load owns nothing */
	return -1;
}

int qp_journal_save(const struct qp_journal *j, struct qp_err **err)
{
	qp_autofree char *dir = qp_rundir_journal(NULL);
	if (qp_rundir_mkdir("journal", err) < 0)
		return -1;
	if (!j->n && !j->n_nodes) {
		if (unlink(j->path) < 0 && errno != ENOENT)
			return qp_err_set(err, errno, "cannot remove %s", j->path);
	} else {
		json_object *root = json_object_new_object();
		json_object_object_add(root, "version", json_object_new_int(1));
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < j->n; i++) {
			char addr[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&j->e[i].addr, addr);
			json_object *x = json_object_new_object();
			json_object_object_add(x, "address", json_object_new_string(addr));
			json_object_object_add(x, "driver", j->e[i].driver ?
					       json_object_new_string(j->e[i].driver) : NULL);
			json_object_object_add(x, "driver_override", j->e[i].override ?
					       json_object_new_string(j->e[i].override) : NULL);
			json_object_array_add(a, x);
		}
		json_object_object_add(root, "functions", a);
		if (j->n_nodes) {
			json_object *na = json_object_new_array();
			for (size_t i = 0; i < j->n_nodes; i++) {
				json_object *x = json_object_new_object();
				json_object_object_add(x, "group", json_object_new_int(j->nodes[i].group));
				json_object_object_add(x, "uid", json_object_new_int64(j->nodes[i].uid));
				json_object_object_add(x, "gid", json_object_new_int64(j->nodes[i].gid));
				json_object_array_add(na, x);
			}
			json_object_object_add(root, "nodes", na);
		}
		qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
								    root, JSON_C_TO_STRING_PRETTY));
		json_object_put(root);
		/* fsync'd, then its directory: it must outlive a power cut. */
		return qp_write_atomic(j->path, text, strlen(text), 0600, true, err);
	}
	qp_autoclose int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return qp_err_set(err, errno, "cannot sync %s", dir);
	return 0;
}

struct qp_journal_entry *qp_journal_find(struct qp_journal *j, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < j->n; i++)
		if (!qp_pci_addr_cmp(&j->e[i].addr, a))
			return &j->e[i];
	return NULL;
}

bool qp_vfio_journaled(const char *owner, const struct qp_pci_addr *a)
{
	struct qp_journal j;
	if (qp_journal_load(owner, &j, NULL) < 0)
		return !a;  /* a journal there but unreadable: restore must say why */
	bool found = a ? qp_journal_find(&j, a) != NULL : j.n > 0 || j.n_nodes > 0;
	qp_journal_free(&j);
	return found;
}

char **qp_vfio_journals(void)
{
	char **v = qp_xcalloc(1, sizeof(char *));
	qp_autofree char *dir = qp_rundir_journal(NULL);
	DIR *d = opendir(dir);
	if (!d)
		return v;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 5 && !strcmp(e->d_name + n - 5, ".json"))
			qp_strv_push(&v, qp_xstrndup(e->d_name, n - 5));
	}
	closedir(d);
	size_t n = 0;
	while (v[n])
		n++;
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k && strcmp(v[k - 1], v[k]) > 0; k--) {
			char *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	return v;
}
