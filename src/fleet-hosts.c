/* The fleet's hosts file: strict YAML, bounded, with messages naming file, line and key. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "refit/fleet.h"
#include "refit/yamlfile.h"
#include "refit/fsutil.h"

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A host name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
static bool name_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= FLEET_MAX_NAME && s[0] != '.' && s[0] != '-' && s[0] != '_' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

/* A token: 16..4096 printable ASCII characters without spaces. */
static bool token_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 16 || len > FLEET_MAX_TOKEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

bool fleet_url_valid(const char *url)
{
	const char *p, *host, *end;
	size_t len = strlen(url);

	if (len > FLEET_MAX_URL)
		return false;
	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return false;
	if (*host == '[') { /* [IPv6] */
		end = strchr(host, ']');
		if (!end || end == host + 1 || strspn(host + 1, "0123456789abcdefABCDEF:.") != (size_t)(end - host - 1))
			return false;
		p = end + 1;
	} else {
		size_t n = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");

		if (n == 0 || n > 253 || host[0] == '.' || host[0] == '-')
			return false;
		p = host + n;
	}
	if (*p == ':') {
		long port = 0;
		size_t n = strspn(p + 1, "0123456789");

		if (n == 0 || n > 5)
			return false;
		for (size_t i = 0; i < n; i++)
			port = port * 10 + (p[1 + i] - '0');
		if (port < 1 || port > 65535)
			return false;
		p += 1 + n;
	}
	if (*p == '\0')
		return true;
	if (*p != '/')
		return false;
	/* a path prefix (a reverse proxy's): no query, fragment, spaces or escapes */
	for (; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-~", *p))
			return false;
	return true;
}

/* A positive integer in MIN..MAX from a plain scalar, or -1. */
static long seconds(const char *s, long min, long max)
{
	long v = 0;
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 6 || s[n] != '\0')
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v < min || v > max ? -1 : v;
}

static void host_free(struct fleet_host *h)
{
	free(h->name);
	free(h->url);
	if (h->token) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	free(h->token_file);
	free(h->ca_file);
	memset(h, 0, sizeof(*h));
}

void fleet_hosts_free(struct fleet_hosts *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		host_free(&h->v[i]);
	free(h->v);
	free(h->file);
	memset(h, 0, sizeof(*h));
}

static const char *const host_keys[] = { "name", "url", "token", "token_file", "ca_file", "timeout",
					 "connect_timeout", NULL };

/* One entry of hosts: (a mapping) into H. */
static int parse_host(yaml_document_t *doc, yaml_node_t *map, size_t idx, const char *file, struct fleet_host *h,
		      struct refit_err *e)
{
	unsigned long line = yfile_line(map);

	h->line = line;
	if (map->type != YAML_MAPPING_NODE)
		return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu]: expected a mapping (name, url, token or token_file)",
			       file, line, idx);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
		const char *k = scalar(kn), *v = scalar(vn);
		unsigned long kl = yfile_line(kn);
		int which = -1;

		if (!k)
			return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu]: keys must be plain words", file, kl, idx);
		for (int i = 0; host_keys[i] && which < 0; i++)
			if (strcmp(k, host_keys[i]) == 0)
				which = i;
		if (which < 0)
			return err_set(e, ERR_USAGE,
				       "%s:%lu: hosts[%zu].%.64s: unknown key (name, url, token, token_file, ca_file, timeout, connect_timeout)",
				       file, kl, idx, k);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
			if (scalar(yaml_document_get_node(doc, q->key)) &&
			    strcmp(scalar(yaml_document_get_node(doc, q->key)), k) == 0)
				return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].%s: given twice", file, kl, idx, k);
		if (!v || !*v)
			return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].%s: expected a value", file, kl, idx, k);
		if (strlen(v) > FLEET_MAX_PATH + 16)
			return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].%s: value too long", file, kl, idx, k);
		switch (which) {
		case 0:
			if (!name_valid(v))
				return err_set(e, ERR_USAGE,
					       "%s:%lu: hosts[%zu].name: \"%.64s\" is not a host name ([A-Za-z0-9_.-], at most 64)",
					       file, kl, idx, v);
			h->name = strdup(v);
			break;
		case 1:
			if (!fleet_url_valid(v))
				return err_set(e, ERR_USAGE,
					       "%s:%lu: hosts[%zu].url: \"%.128s\" is not http(s)://HOST[:PORT][/PATH] (no user, query or fragment)",
					       file, kl, idx, v);
			h->url = strdup(v);
			if (h->url) /* one form for joining paths */
				for (size_t n = strlen(h->url); n > 0 && h->url[n - 1] == '/'; n--)
					h->url[n - 1] = '\0';
			break;
		case 2:
			if (!token_valid(v))
				return err_set(e, ERR_USAGE,
					       "%s:%lu: hosts[%zu].token: expected 16 to 4096 printable characters without spaces",
					       file, kl, idx);
			h->token = strdup(v);
			break;
		case 3:
		case 4:
			if (strlen(v) > FLEET_MAX_PATH || strchr(v, '\n'))
				return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].%s: not a file name", file, kl, idx, k);
			if (which == 3) {
				h->token_file = strdup(v);
				h->token_file_line = kl;
			} else {
				h->ca_file = strdup(v);
				h->ca_file_line = kl;
			}
			break;
		default: {
			long max = which == 5 ? 86400 : 300, s = seconds(v, 1, max);

			if (s < 0)
				return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].%s: expected whole seconds 1..%ld, got \"%.32s\"",
					       file, kl, idx, k, max, v);
			if (which == 5)
				h->timeout = s;
			else
				h->connect_timeout = s;
		}
		}
		if ((which == 0 && !h->name) || (which == 1 && !h->url) || (which == 2 && !h->token) ||
		    (which == 3 && !h->token_file) || (which == 4 && !h->ca_file))
			return err_set(e, ERR_FAILED, "out of memory");
	}
	if (!h->name)
		return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu]: name is missing", file, line, idx);
	if (!h->url)
		return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu] (%s): url is missing", file, line, idx, h->name);
	if (!h->token == !h->token_file)
		return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu] (%s): give exactly one of token and token_file", file,
			       line, idx, h->name);
	if (h->ca_file && strncmp(h->url, "https://", 8) != 0)
		return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].ca_file: only for an https url", file, h->ca_file_line,
			       idx);
	return 0;
}

int fleet_hosts_parse(const char *text, size_t len, const char *file, struct fleet_hosts *ret, struct refit_err *e)
{
	yaml_document_t doc;
	yaml_node_t *root, *list = NULL;
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	if (!(ret->file = strdup(file)))
		return err_set(e, ERR_FAILED, "out of memory");
	if (yfile_load(text, len, FLEET_MAX_FILE, file, &doc, e) < 0) {
		fleet_hosts_free(ret);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		rc = err_set(e, ERR_USAGE, "%s:%lu: expected a mapping with the key hosts", file, yfile_line(root));
		goto out;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
		const char *k = scalar(kn);

		if (!k || strcmp(k, "hosts") != 0) {
			rc = err_set(e, ERR_USAGE, "%s:%lu: %.64s: unknown key (expected hosts)", file, yfile_line(kn),
				     k ? k : "(not a word)");
			goto out;
		}
		if (list) {
			rc = err_set(e, ERR_USAGE, "%s:%lu: hosts: given twice", file, yfile_line(kn));
			goto out;
		}
		list = yaml_document_get_node(&doc, p->value);
	}
	if (!list || list->type != YAML_SEQUENCE_NODE ||
	    list->data.sequence.items.top == list->data.sequence.items.start) {
		rc = err_set(e, ERR_USAGE, "%s:%lu: hosts: expected a list of at least one host", file,
			     yfile_line(list ? list : root));
		goto out;
	}
	if (list->data.sequence.items.top - list->data.sequence.items.start > FLEET_MAX_HOSTS) {
		rc = err_set(e, ERR_USAGE, "%s:%lu: hosts: more than %d hosts", file, yfile_line(list), FLEET_MAX_HOSTS);
		goto out;
	}
	ret->v = calloc((size_t)(list->data.sequence.items.top - list->data.sequence.items.start), sizeof(*ret->v));
	if (!ret->v) {
		rc = err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
		struct fleet_host *h = &ret->v[ret->n++];

		if ((rc = parse_host(&doc, yaml_document_get_node(&doc, *it), ret->n - 1, file, h, e)) < 0)
			goto out;
		for (size_t k = 0; k + 1 < ret->n; k++)
			if (strcmp(ret->v[k].name, h->name) == 0) {
				rc = err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].name: %s is already the name of the host on line %lu",
					     file, h->line, ret->n - 1, h->name, ret->v[k].line);
				goto out;
			}
	}
out:
	yaml_document_delete(&doc);
	if (rc < 0)
		fleet_hosts_free(ret);
	return rc;
}

int fleet_hosts_load_tokens(struct fleet_hosts *hs, struct refit_err *e)
{
	for (size_t i = 0; i < hs->n; i++) {
		struct fleet_host *h = &hs->v[i];
		char buf[FLEET_MAX_TOKEN + 2];
		ssize_t n;
		int fd;

		if (h->ca_file && access(h->ca_file, R_OK) < 0)
			return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].ca_file: %s: %s", hs->file, h->ca_file_line, i,
				       h->ca_file, strerror(errno));
		if (!h->token_file)
			continue;
		fd = open(h->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (n < 0) {
			int err = errno;

			if (fd >= 0)
				close(fd);
			return err_set(e, ERR_USAGE, "%s:%lu: hosts[%zu].token_file: cannot read %s: %s", hs->file,
				       h->token_file_line, i, h->token_file, strerror(err));
		}
		close(fd);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0'; /* the first line, as the daemon reads api.token_file */
		n = (ssize_t)strlen(buf);
		while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
			buf[--n] = '\0';
		if (!token_valid(buf)) {
			explicit_bzero(buf, sizeof(buf));
			return err_set(e, ERR_USAGE,
				       "%s:%lu: hosts[%zu].token_file: %s: its first line must be a token of 16 to 4096 printable characters",
				       hs->file, h->token_file_line, i, h->token_file);
		}
		h->token = strdup(buf);
		explicit_bzero(buf, sizeof(buf));
		if (!h->token)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

int fleet_hosts_load(const char *path, struct fleet_hosts *ret, struct refit_err *e)
{
	char *buf;
	size_t len;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (fs_read_file(path, FLEET_MAX_FILE, &buf, &len, e) < 0)
		return -1;
	rc = fleet_hosts_parse(buf, len, path, ret, e);
	free(buf);
	if (rc == 0 && (rc = fleet_hosts_load_tokens(ret, e)) < 0)
		fleet_hosts_free(ret);
	return rc;
}
