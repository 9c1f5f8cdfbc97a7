/* Swaps: journaled engine steps shared by every strategy, and the dispatch between them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/handover.h"
#include "refit/journal-record.h"
#include "refit/base.h"
#include "refit/engine-spec.h"
#include "refit/events.h"
#include "refit/imageref.h"
#include "refit/log.h"
#include "refit/select.h"
#include "refit/waited.h"
#include "swap-internal.h"

#define DRAIN_SECONDS 2

int swap_step(struct swap *s, const char *step, struct refit_err *e)
{
	if (journal_step(s->j, s->rec, step, e) < 0) {
		err_prefix(e, "step %s not taken: ", step);
		return -1;
	}
	s->written = true;
	log_debug("%s: %s", s->name, step);
	return 0;
}

int swap_aside_names(struct swap *s, char aside[300], char temp[300], struct refit_err *e)
{
	snprintf(aside, 300, "%s-refit-old-%.8s", s->name, swap_get(s, JR_ID));
	snprintf(temp, 300, "%s-refit-new-%.8s", s->name, swap_get(s, JR_ID));
	if (swap_note(s, JR_TEMP_NAME, aside, e) < 0 || swap_note(s, JR_NEW_TEMP_NAME, temp, e) < 0 ||
	    swap_step(s, "creating", e) < 0)
		return -1;
	return 0;
}

int swap_note(struct swap *s, const char *key, const char *value, struct refit_err *e)
{
	if (json_object_set_new(s->rec, key, value ? json_string(value) : json_null()) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

const char *swap_get(struct swap *s, const char *key)
{
	return json_string_value(json_object_get(s->rec, key));
}

int swap_find(struct swap *s, const char *name, char id[65], struct refit_err *e)
{
	json_t *ins = NULL;
	const char *v, *op;
	struct refit_err ie = { 0 };
	int rc = engine_container_inspect(s->en, name, &ins, &ie);

	if (rc <= 0) {
		if (rc < 0)
			*e = ie;
		return rc; /* 0: none of that name */
	}
	v = json_string_value(json_object_get(ins, "Id"));
	op = json_string_value(json_object_get(json_object_get(json_object_get(ins, "Config"), "Labels"), "refit.operation"));
	snprintf(id, 65, "%s", v ? v : "");
	rc = !v ? 0 : op && swap_get(s, JR_ID) && strcmp(op, swap_get(s, JR_ID)) == 0 ? 2 : 1;
	json_decref(ins);
	return rc;
}

/*
 * Move every endpoint's Aliases out of OUT into the record's "join" (network
 * -> full endpoint config), so the replacement answers to the shared names
 * only once swap_join gives them back.
 */
static int hold_aliases(struct swap *s, struct spec_output *out, struct refit_err *e)
{
	json_t *eps = json_object_get(json_object_get(out->create, "NetworkingConfig"), "EndpointsConfig");
	json_t *join = json_object(), *ep, *c;
	const char *net;
	size_t i;

	if (!join)
		return err_set(e, ERR_FAILED, "out of memory");
	json_object_foreach(eps, net, ep) {
		if (json_object_get(ep, "Aliases")) {
			json_object_set_new(join, net, json_deep_copy(ep));
			json_object_del(ep, "Aliases");
		}
	}
	json_array_foreach(out->connect, i, c) {
		const char *cn = json_string_value(json_object_get(c, "Network"));

		ep = json_object_get(c, "EndpointConfig");
		if (cn && json_object_get(ep, "Aliases")) {
			json_object_set_new(join, cn, json_deep_copy(ep));
			json_object_del(ep, "Aliases");
		}
	}
	json_object_set_new(s->rec, JR_JOIN, join);
	return 0;
}

int swap_join(struct swap *s, struct refit_err *e)
{
	json_t *join = json_object_get(s->rec, JR_JOIN), *ep;
	const char *net, *id = swap_get(s, JR_NEW_ID);

	json_object_foreach(join, net, ep) {
		json_t *off = json_pack("{s:s, s:b}", "Container", id ? id : "", "Force", 0);
		json_t *on = json_pack("{s:s, s:O}", "Container", id ? id : "", "EndpointConfig", ep);
		char path[512], *esc = engine_escape(s->en, net);
		int rc = -1;

		snprintf(path, sizeof(path), "/networks/%s/disconnect", esc ? esc : "");
		if (off && on && engine_call(s->en, "POST", path, off, 0, NULL, NULL, e) == 0) {
			snprintf(path, sizeof(path), "/networks/%s/connect", esc ? esc : "");
			rc = engine_call(s->en, "POST", path, on, 0, NULL, NULL, e);
		}
		free(esc);
		json_decref(off);
		json_decref(on);
		if (rc < 0) {
			err_prefix(e, "give the replacement its aliases on %s: ", net);
			return -1;
		}
	}
	return 0;
}

/* Point reference IMAGE (a tag) at image ID: 0, or -1 with E. */
static int tag_to(struct swap *s, const char *image, const char *id, struct refit_err *e)
{
	struct imageref ref = { 0 };
	char *repo = NULL;
	int rc = -1;

	if (imageref_parse(image, &ref, e) < 0 || !ref.tag || ref.digest)
		goto out;
	if (!(repo = imageref_repository(&ref))) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	rc = engine_image_tag(s->en, id, repo, ref.tag, e);
out:
	free(repo);
	imageref_free(&ref);
	return rc;
}

/*
 * A network_mode follower keeps its image: only its namespace changes. It
 * is created from its reference, which may name another image by now
 * (pulled, or built on this host, since it started), and its old container
 * cannot run again once its provider is gone: the reference is pointed at
 * the follower's image WANT for the create, and back after (unpin_tag).
 * The ID to put back (malloc'd), or NULL when the reference names WANT.
 */
static char *pin_tag(struct swap *s, const char *image, const char *want)
{
	struct refit_err e = { 0 };
	json_t *img = NULL;
	const char *now;
	char *back = NULL;

	if (!image || !want || engine_image_inspect(s->en, image, &img, &e) != 1)
		return NULL;
	now = json_string_value(json_object_get(img, "Id"));
	if (now && strcmp(now, want) != 0 && (back = strdup(now)) && tag_to(s, image, want, &e) < 0) {
		log_warn("%s: %s names %.19s, not its image %.19s, and cannot be pointed back: %s", s->name, image, now,
			 want, e.msg);
		free(back);
		back = NULL;
	}
	json_decref(img);
	return back;
}

static void unpin_tag(struct swap *s, const char *image, char *back)
{
	struct refit_err e = { 0 };

	if (back && tag_to(s, image, back, &e) < 0)
		log_error("%s: %s could not be pointed back at %.19s: %s", s->name, image, back, e.msg);
	free(back);
}

int swap_create(struct swap *s, const char *name, const char *extra_alias, bool hold, struct refit_err *e)
{
	bool from_spec = json_is_object(json_object_get(s->rec, JR_SPEC_INSPECT));
	struct spec_input in = {
		.container = json_object_get(s->rec, from_spec ? JR_SPEC_INSPECT : JR_OLD_INSPECT),
		.old_image = json_object_get(s->rec, from_spec ? "spec_image_inspect" : "old_image_inspect"),
		.image = swap_get(s, JR_IMAGE),
		.image_id = swap_get(s, JR_NEW_IMAGE_ID),
		.api_version = engine_api_version(s->en),
		.extra_alias = extra_alias,
	};
	struct spec_output out = { 0 };
	const char *want = swap_get(s, JR_NEW_IMAGE_ID), *got;
	json_t *ans = NULL, *ins = NULL;
	char path[512], *esc, *back = NULL;
	size_t i;
	json_t *c;
	int rc = -1;

	if (json_is_null(in.old_image))
		in.old_image = NULL;
	if (spec_build(&in, &out, e) < 0)
		return -1;
	if (hold && hold_aliases(s, &out, e) < 0)
		goto out;
	/* Mark what this operation creates, so an undo never removes anything else. */
	{
		json_t *labels = json_object_get(out.create, "Labels"); /* the create body is a flat Config */

		if (!json_is_object(labels)) {
			labels = json_object();
			if (!labels || json_object_set_new(out.create, "Labels", labels) < 0) {
				err_set(e, ERR_FAILED, "out of memory");
				goto out;
			}
		}
		if (json_object_set_new(labels, "refit.operation", json_string(swap_get(s, JR_ID))) < 0) {
			err_set(e, ERR_FAILED, "out of memory");
			goto out;
		}
	}
	esc = engine_escape(s->en, name);
	snprintf(path, sizeof(path), "/containers/create?name=%s", esc ? esc : "");
	free(esc);
	if (strcmp(jr_str(s->rec, JR_KIND) ?: "", "follow") == 0)
		back = pin_tag(s, in.image, want);
	rc = engine_call(s->en, "POST", path, out.create, 0, &ans, NULL, e);
	unpin_tag(s, in.image, back);
	if (rc < 0) {
		err_prefix(e, "create %s: ", name);
		goto out;
	}
	rc = -1;
	got = json_string_value(json_object_get(ans, "Id"));
	if (!got || swap_note(s, JR_NEW_ID, got, e) < 0) {
		if (!got)
			err_set(e, ERR_FAILED, "create %s: the engine gave no Id", name);
		goto out;
	}
	json_array_foreach(out.connect, i, c) {
		const char *net = json_string_value(json_object_get(c, "Network"));
		json_t *body = json_pack("{s:s, s:O}", "Container", swap_get(s, JR_NEW_ID), "EndpointConfig",
					 json_object_get(c, "EndpointConfig"));

		esc = net ? engine_escape(s->en, net) : NULL;
		snprintf(path, sizeof(path), "/networks/%s/connect", esc ? esc : "");
		free(esc);
		if (!body || engine_call(s->en, "POST", path, body, 0, NULL, NULL, e) < 0) {
			json_decref(body);
			err_prefix(e, "connect %s to %s: ", name, net ? net : "?");
			goto out;
		}
		json_decref(body);
	}
	/* The replacement must run exactly the image the check found. */
	if (engine_container_inspect(s->en, swap_get(s, JR_NEW_ID), &ins, e) <= 0)
		goto out;
	got = json_string_value(json_object_get(ins, "Image"));
	if (want && (!got || strcmp(got, want) != 0)) {
		err_set(e, ERR_FAILED, "create %s: it runs image %.80s, not %.80s (the tag moved meanwhile)", name,
			got ? got : "?", want);
		goto out;
	}
	rc = 0;
out:
	json_decref(ans);
	json_decref(ins);
	spec_output_free(&out);
	return rc;
}

int swap_start(struct swap *s, const char *id, struct refit_err *e)
{
	char path[128];

	snprintf(path, sizeof(path), "/containers/%s/start", id);
	if (engine_call(s->en, "POST", path, NULL, 0, NULL, NULL, e) < 0) {
		err_prefix(e, "start: ");
		return -1;
	}
	return 0;
}

/* The stop timeout: the container's own, else the configuration's. */
static long stop_timeout(struct swap *s)
{
	json_t *t = json_object_get(json_object_get(json_object_get(s->rec, JR_OLD_INSPECT), "Config"), "StopTimeout");

	return json_is_integer(t) && json_integer_value(t) >= 0 && json_integer_value(t) <= 3600 ?
		       (long)json_integer_value(t) : s->cfg->stop_timeout;
}

int swap_stop(struct swap *s, const char *id, struct refit_err *e)
{
	json_t *labels = json_object_get(json_object_get(json_object_get(s->rec, JR_OLD_INSPECT), "Config"), "Labels");
	const char *sig = label_get(labels, "stop-signal");
	long t = stop_timeout(s);
	char path[160];

	if (sig) {
		size_t n = strlen(sig);

		if (n == 0 || n > 16 || strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+") != n)
			return err_set(e, ERR_FAILED, "label stop-signal: expected a signal name or number, got \"%.20s\"", sig);
		snprintf(path, sizeof(path), "/containers/%s/kill?signal=%s", id, sig);
		if (engine_call(s->en, "POST", path, NULL, 0, NULL, NULL, e) == 0) {
			/* Give it its stop timeout to exit on that signal; SIGKILL after. */
			for (long waited = 0; waited <= t * 4; waited++) {
				json_t *ins = NULL;

				if (engine_container_inspect(s->en, id, &ins, e) <= 0)
					return -1;
				if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running"))) {
					json_decref(ins);
					return 0;
				}
				json_decref(ins);
				waited_sleep_ms(250);
			}
			t = 0;
		}
	}
	snprintf(path, sizeof(path), "/containers/%s/stop?t=%ld", id, t);
	if (engine_call(s->en, "POST", path, NULL, t + 60, NULL, NULL, e) < 0) {
		err_prefix(e, "stop: ");
		return -1;
	}
	return 0;
}

int swap_rename(struct swap *s, const char *id, const char *name, struct refit_err *e)
{
	char path[512], *esc = engine_escape(s->en, name);

	snprintf(path, sizeof(path), "/containers/%s/rename?name=%s", id, esc ? esc : "");
	free(esc);
	if (engine_call(s->en, "POST", path, NULL, 0, NULL, NULL, e) < 0) {
		err_prefix(e, "rename to %s: ", name);
		return -1;
	}
	return 0;
}

int swap_remove(struct swap *s, const char *id, bool own_volumes, struct refit_err *e)
{
	if (engine_container_remove(s->en, id, own_volumes, e) < 0) {
		err_prefix(e, "remove: ");
		return -1;
	}
	return 0;
}

/*
 * Does the network namespace of process PID hold a connection on one of its
 * listening TCP ports that is not finished (established, half-open or
 * closing with data in flight)? -1 when its tables cannot be read. Each
 * table is read once; at most 64 listening and 256 open ports are looked at.
 */
static int ns_busy(long pid)
{
	static const char *const tables[] = { "tcp", "tcp6" };
	unsigned listen[64], open_ports[256];
	size_t nlisten = 0, nopen = 0;
	int read_any = 0;

	for (size_t t = 0; t < 2; t++) {
		char path[64], line[512];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/net/%s", pid, tables[t]);
		f = fopen(path, "re");
		if (!f)
			continue;
		read_any = 1;
		/* "sl local_address rem_address st ...": ADDR:PORT in hex, state in hex */
		while (fgets(line, sizeof(line), f)) {
			char local[80];
			unsigned port, st;
			const char *colon;

			if (sscanf(line, " %*s %79s %*s %x", local, &st) != 2 || !(colon = strrchr(local, ':')) ||
			    sscanf(colon + 1, "%x", &port) != 1)
				continue;
			if (st == 0x0A && nlisten < sizeof(listen) / sizeof(listen[0]))
				listen[nlisten++] = port;
			/* ESTABLISHED, SYN_RECV, FIN_WAIT1, CLOSE_WAIT, LAST_ACK, CLOSING */
			else if ((st == 0x01 || st == 0x03 || st == 0x04 || st == 0x08 || st == 0x09 || st == 0x0B) &&
				 nopen < sizeof(open_ports) / sizeof(open_ports[0]))
				open_ports[nopen++] = port;
		}
		fclose(f);
	}
	for (size_t i = 0; i < nopen; i++)
		for (size_t k = 0; k < nlisten; k++)
			if (open_ports[i] == listen[k])
				return 1;
	return read_any ? 0 : -1;
}

/*
 * Let the old container finish what it serves: wait (up to DRAIN_SECONDS)
 * for a moment when none of its listening ports has a connection open, so
 * that leaving the network cuts no request. Without access to its network
 * tables (refit in a container of its own), wait DRAIN_SECONDS/4.
 */
static void drain_old(struct swap *s)
{
	json_t *ins = NULL;
	struct refit_err ie = { 0 };
	long pid;
	struct timespec t0, now;
	bool slot;

	if (engine_container_inspect(s->en, s->old_id, &ins, &ie) <= 0)
		return;
	pid = (long)json_integer_value(json_object_get(json_object_get(ins, "State"), "Pid"));
	json_decref(ins);
	if (pid <= 0)
		return;
	events_step(s->rec, "draining");
	slot = slot_pause(); /* a drain is waiting, not engine work */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int busy = ns_busy(pid);

		if (busy < 0) {
			waited_sleep_ms(DRAIN_SECONDS * 250);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!busy || now.tv_sec - t0.tv_sec >= DRAIN_SECONDS) {
			log_debug("%s: old container %s after %ld ms", s->name, busy ? "still busy" : "idle",
				  (long)((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000));
			break;
		}
		waited_sleep_ms(2);
	}
	slot_resume(slot);
}

int swap_disconnect_old(struct swap *s, struct refit_err *e)
{
	json_t *nets = json_object_get(json_object_get(json_object_get(s->rec, JR_OLD_INSPECT), "NetworkSettings"),
				       "Networks");
	const char *net;
	json_t *v;

	/* The replacement shares the names by now; the old one leaves between two requests. */
	drain_old(s);
	json_object_foreach(nets, net, v) {
		json_t *body;
		char path[512], *esc;

		if (strcmp(net, "bridge") == 0 || strcmp(net, "host") == 0 || strcmp(net, "none") == 0)
			continue;
		body = json_pack("{s:s, s:b}", "Container", s->old_id, "Force", 1);
		esc = engine_escape(s->en, net);
		snprintf(path, sizeof(path), "/networks/%s/disconnect", esc ? esc : "");
		free(esc);
		if (!body || engine_call(s->en, "POST", path, body, 0, NULL, NULL, e) < 0) {
			json_decref(body);
			err_prefix(e, "disconnect old from %s: ", net);
			return -1;
		}
		json_decref(body);
	}
	return 0;
}

int swap_restore_old(struct swap *s, struct refit_err *e)
{
	const char *names[] = { s->name, swap_get(s, JR_TEMP_NAME), swap_get(s, JR_NEW_NAME),
				swap_get(s, JR_NEW_TEMP_NAME) };
	const char *new_id = swap_get(s, JR_NEW_ID);
	char id[65], path[160];
	json_t *ins = NULL;
	const char *cur;

	if (new_id && strcmp(new_id, s->old_id) != 0 && swap_remove(s, new_id, true, e) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int f;

		if (!names[i])
			continue;
		f = swap_find(s, names[i], id, e);
		if (f < 0)
			return -1;
		/* Only what this operation created is removed; an unrelated container of that name stays. */
		if (f == 2 && strcmp(id, s->old_id) != 0 && swap_remove(s, id, true, e) < 0)
			return -1;
	}
	if (engine_container_inspect(s->en, s->old_id, &ins, e) <= 0) {
		err_prefix(e, "old container %.12s: ", s->old_id);
		return -1;
	}
	cur = json_string_value(json_object_get(ins, "Name"));
	if (cur && *cur == '/')
		cur++;
	if ((!cur || strcmp(cur, s->name) != 0) && swap_rename(s, s->old_id, s->name, e) < 0) {
		json_decref(ins);
		return -1;
	}
	if (s->was_running && !json_is_true(json_object_get(json_object_get(ins, "State"), "Running")) &&
	    swap_start(s, s->old_id, e) < 0) {
		json_decref(ins);
		return -1;
	}
	/* Networks the old one was taken out of (blue-green, alias) are given back. */
	{
		json_t *had = json_object_get(json_object_get(json_object_get(s->rec, JR_OLD_INSPECT), "NetworkSettings"),
					      "Networks");
		json_t *now = json_object_get(json_object_get(ins, "NetworkSettings"), "Networks");
		const char *net;
		json_t *ep;

		json_object_foreach(had, net, ep) {
			json_t *body;
			char *esc;

			if (json_object_get(now, net) || strcmp(net, "host") == 0 || strcmp(net, "none") == 0)
				continue;
			body = json_pack("{s:s, s:{s:O*, s:O*}}", "Container", s->old_id, "EndpointConfig", "Aliases",
					 json_object_get(ep, "Aliases"), "IPAMConfig", json_object_get(ep, "IPAMConfig"));
			esc = engine_escape(s->en, net);
			snprintf(path, sizeof(path), "/networks/%s/connect", esc ? esc : "");
			free(esc);
			if (!body || engine_call(s->en, "POST", path, body, 0, NULL, NULL, e) < 0) {
				json_decref(body);
				json_decref(ins);
				err_prefix(e, "reconnect old to %s: ", net);
				return -1;
			}
			json_decref(body);
		}
	}
	json_decref(ins);
	return 1;
}

int swap_complete(struct swap *s, const char *final_name, struct refit_err *e)
{
	const char *new_id = swap_get(s, JR_NEW_ID);
	char id[65];
	json_t *ins = NULL;
	const char *cur;

	if (!new_id)
		return err_set(e, ERR_FAILED, "journal has no new container id");
	if (swap_remove(s, s->old_id, false, e) < 0)
		return -1;
	if (engine_container_inspect(s->en, new_id, &ins, e) <= 0)
		return -1;
	cur = json_string_value(json_object_get(ins, "Name"));
	if (cur && *cur == '/')
		cur++;
	if (!cur || strcmp(cur, final_name) != 0) {
		int f = swap_find(s, final_name, id, e);

		if (f < 0 || (f == 2 && strcmp(id, new_id) != 0 && swap_remove(s, id, true, e) < 0) ||
		    swap_rename(s, new_id, final_name, e) < 0) {
			json_decref(ins);
			return -1;
		}
	}
	if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running")) && swap_start(s, new_id, e) < 0) {
		json_decref(ins);
		return -1;
	}
	json_decref(ins);
	return 0;
}

/* The strategies: the one list of their names (configuration and labels are checked against it). */
static const struct strategy_ops *const strategies[] = { &strategy_recreate, &strategy_blue_green, &strategy_alias,
							  &strategy_handover };

/* The strategy named NAME, or NULL. */
static const struct strategy_ops *strategy_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(strategies); i++)
		if (strcmp(strategies[i]->name, name) == 0)
			return strategies[i];
	return NULL;
}

const char *strategy_known(const char *name)
{
	const struct strategy_ops *ops = strategy_find(name);

	return ops && !ops->internal ? ops->name : NULL;
}

void strategy_names(char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(strategies) && used < len; i++) {
		int n;

		if (strategies[i]->internal)
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", strategies[i]->name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int swap_undo(struct swap *s, struct refit_err *e)
{
	struct refit_err ue = { 0 };

	if (swap_restore_old(s, &ue) < 0) {
		err_prefix(e, "restoring the old container failed too (%s) after: ", ue.msg);
		return -1;
	}
	return 1;
}

int swap_plan(const struct swap_request *rq, struct swap_plan *plan, struct refit_err *e)
{
	const struct strategy_ops *ops = strategy_find(rq->strategy);
	const char *to = rq->rename_to, *exclusive;

	memset(plan, 0, sizeof(*plan));
	if (!ops)
		return err_set(e, ERR_FAILED, "unknown strategy \"%.40s\"", rq->strategy ? rq->strategy : "");
	if (strcmp(rq->kind, "rollback") == 0 && to && strcmp(to, rq->name) != 0 && ops != &strategy_alias) {
		ops = &strategy_alias;
		plan->reason = "a renamed container goes back to its old name";
	}
	if (ops == &strategy_alias) {
		if (!to)
			return err_set(e, ERR_FAILED, "strategy alias needs the label refit.rename-to");
		if (strcmp(to, rq->name) == 0) {
			/* Already moved to its new name: later updates swap it in place. */
			ops = &strategy_blue_green;
			plan->reason = "already under its new name: swapped in place";
		} else if (!container_name_valid(to)) {
			return err_set(e, ERR_FAILED,
				       "alias strategy: refit.rename-to must name a different container ([a-zA-Z0-9][a-zA-Z0-9_.-]+), got \"%.60s\"",
				       to);
		} else {
			plan->rename_to = to;
		}
	}
	if (ops == &strategy_blue_green && (exclusive = spec_exclusive(rq->old))) {
		ops = &strategy_recreate;
		plan->reason = exclusive; /* two copies cannot run at once */
	} else if (ops == &strategy_blue_green &&
		   !json_is_true(json_object_get(json_object_get(rq->old, "State"), "Running"))) {
		ops = &strategy_recreate;
		plan->reason = "not running: nothing to keep serving";
	}
	plan->strategy = ops->name;
	plan->downtime = ops->downtime;
	return 0;
}

/* Record the outcome in the history and fill RES. */
static int swap_finish(struct swap *s, int rc, struct refit_err *e, struct swap_result *res)
{
	char now[32];
	struct refit_err je = { 0 };

	res->outcome = rc == 0 ? ENTRY_UPDATED : rc == 1 ? ENTRY_ROLLED_BACK : ENTRY_FAILED;
	snprintf(res->new_id, sizeof(res->new_id), "%s", rc == 0 && swap_get(s, JR_NEW_ID) ? swap_get(s, JR_NEW_ID) : "");
	snprintf(res->error, sizeof(res->error), "%s", rc == 0 ? "" : e->msg);
	iso_now(now);
	json_object_set_new(s->rec, JR_FINISHED, json_string(now));
	json_object_set_new(s->rec, JR_OUTCOME, json_string(entry_status_to_string(res->outcome)));
	if (rc != 0)
		json_object_set_new(s->rec, JR_ERROR, json_string(e->msg));
	if (rc < 0) {
		/*
		 * Neither finished nor undone (the engine failed us midway): the
		 * record stays in the journal, so the next run of refit finishes or
		 * undoes the swap before it does anything else.
		 */
		json_object_del(s->rec, JR_FINISHED);
		json_object_del(s->rec, JR_OUTCOME);
		if (journal_write(s->j, s->rec, &je) < 0)
			log_error("%s: %s", s->name, je.msg);
		else
			log_error("%s: the swap is left in the journal; the next run of refit finishes or undoes it",
				  s->name);
		return rc;
	}
	if (journal_finish(s->j, s->rec, &je) < 0) {
		log_error("%s: %s", s->name, je.msg);
		if (rc == 0) {
			snprintf(res->error, sizeof(res->error), "%s", je.msg);
			return 0; /* the swap itself is done; only its history line is missing */
		}
	}
	return rc;
}

/* Fill S's shared fields from its record. */
static int swap_prepare(struct swap *s, struct engine *en, struct journal *j, const struct refit_config *cfg,
			json_t *rec, struct refit_err *e)
{
	json_t *old = json_object_get(rec, JR_OLD_INSPECT);

	memset(s, 0, sizeof(*s));
	s->en = en;
	s->j = j;
	s->cfg = cfg;
	s->rec = rec;
	s->name = json_string_value(json_object_get(rec, JR_CONTAINER));
	s->old_id = json_string_value(json_object_get(rec, JR_OLD_ID));
	s->was_running = json_is_true(json_object_get(json_object_get(old, "State"), "Running"));
	if (!s->name || !s->old_id || !json_is_object(old))
		return err_set(e, ERR_FAILED, "journal record of %.60s is incomplete", s->name ? s->name : "?");
	return health_opts_from(cfg, json_object_get(json_object_get(old, "Config"), "Labels"), &s->health, e);
}

int swap_run(struct engine *en, struct journal *j, const struct refit_config *cfg, const struct swap_request *rq,
	     const struct swap_plan *plan, struct swap_result *res)
{
	const struct strategy_ops *ops = strategy_find(plan->strategy);
	struct refit_err e = { 0 };
	const char *old_id = json_string_value(json_object_get(rq->old, "Id"));
	char id[17], now[ISO_TIME_LEN];
	struct swap s;
	json_t *rec;
	int rc;

	memset(res, 0, sizeof(*res));
	res->outcome = ENTRY_FAILED;
	if (!ops || !old_id) {
		snprintf(res->error, sizeof(res->error), "%s", !ops ? "unknown strategy" : "inspect has no Id");
		return -1;
	}
	if (plan->reason && strcmp(plan->strategy, rq->strategy) != 0)
		log_info("%s: %s: using %s", rq->name, plan->reason, ops->name);
	res->strategy = ops->name;
	journal_new_id(id);
	iso_now(now);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O?, s:s?, s:s, s:s?, s:s?, s:s?, s:s}", JR_ID, id,
			JR_KIND, rq->kind, JR_CONTAINER, rq->name, JR_STRATEGY, ops->name, JR_STEP, "intent", JR_OLD_ID,
			old_id, JR_OLD_INSPECT, rq->old, JR_OLD_IMAGE_INSPECT, rq->old_image, JR_OLD_DIGEST,
			rq->old_digest, JR_IMAGE, rq->image, JR_NEW_IMAGE_ID, rq->new_image_id, JR_NEW_DIGEST,
			rq->new_digest, JR_NEW_NAME, plan->rename_to, JR_STARTED, now);
	if (rec && rq->backup)
		json_object_set_new(rec, JR_BACKUP, json_string(rq->backup));
	if (rec && rq->spec) {
		json_object_set(rec, JR_SPEC_INSPECT, rq->spec);
		json_object_set(rec, JR_SPEC_IMAGE_INSPECT, rq->spec_image ? rq->spec_image : json_null());
	}
	if (!rec) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		return -1;
	}
	if (swap_prepare(&s, en, j, cfg, rec, &e) < 0) {
		snprintf(res->error, sizeof(res->error), "%s", e.msg);
		json_decref(rec);
		return 1;
	}
	/* The record reaches the journal with the strategy's first step, before anything changes. */
	rc = ops->run(&s, &e);
	if (rc == 1 && !s.written) {
		/* Nothing was changed: refit does not touch what it cannot journal. */
		snprintf(res->error, sizeof(res->error), "%s", e.msg);
		json_decref(rec);
		return 1;
	}
	rc = swap_finish(&s, rc, &e, res);
	json_decref(rec);
	return rc;
}

/* Does inspect INS name a network namespace provider (HostConfig.NetworkMode container:X) that is there? -1: none named. */
static int netns_provider_there(struct engine *en, json_t *ins)
{
	const char *mode = json_string_value(json_object_get(json_object_get(ins, "HostConfig"), "NetworkMode"));
	struct refit_err e = { 0 };
	json_t *p = NULL;
	int f;

	if (!mode || strncmp(mode, "container:", 10) != 0 || !mode[10])
		return -1;
	f = engine_container_inspect(en, mode + 10, &p, &e);
	json_decref(p);
	return f == 1;
}

/*
 * The image a follower swapped again by recovery runs: the one its tag names
 * now. Its old container can never run again, so waiting for the image the
 * record names (the tag may have moved since: a pass pulled a newer one)
 * would strand it; the new image is noted in the record before the create.
 */
static int follow_onto_tag(struct swap *s, struct refit_err *e)
{
	const char *tag = swap_get(s, JR_IMAGE), *want = swap_get(s, JR_NEW_IMAGE_ID), *now;
	json_t *img = NULL;
	int rc = 0;

	if (!tag || engine_image_inspect(s->en, tag, &img, e) != 1) {
		err_clear(e);
		return 0; /* the create says what is wrong */
	}
	now = json_string_value(json_object_get(img, "Id"));
	if (now && (!want || strcmp(now, want) != 0)) {
		log_info("%s: its tag %s names %.19s now: recreated with that image", s->name, tag, now);
		rc = swap_note(s, JR_NEW_IMAGE_ID, now, e);
	}
	json_decref(img);
	return rc;
}

int swap_recover(struct engine *en, struct journal *j, const struct refit_config *cfg, json_t *rec,
		 struct swap_result *res)
{
	const struct strategy_ops *ops = strategy_find(json_string_value(json_object_get(rec, JR_STRATEGY)));
	struct refit_err e = { 0 };
	const char *step, *final;
	struct swap s;
	int rc;

	memset(res, 0, sizeof(*res));
	res->outcome = ENTRY_FAILED;
	if (!ops) {
		snprintf(res->error, sizeof(res->error), "journal record has an unknown strategy");
		return -1;
	}
	res->strategy = ops->name;
	if (swap_prepare(&s, en, j, cfg, rec, &e) < 0) {
		snprintf(res->error, sizeof(res->error), "%s", e.msg);
		return -1;
	}
	json_object_set_new(rec, JR_RECOVERED, json_true());
	step = swap_get(&s, JR_STEP);
	final = ops->takes_new_name ? swap_get(&s, JR_NEW_NAME) : s.name;
	/*
	 * Past the gate (its commit step): finish; before it: put the old one
	 * back. A handover is finished by its replacement, which recovers it
	 * only once it is ready; anyone else puts the old refit back.
	 */
	if (ops == &strategy_handover) {
		const char *new_id = swap_get(&s, JR_NEW_ID);
		struct refit_err he = { 0 };

		rc = new_id && handover_is_self(new_id) ? (swap_complete(&s, s.name, &e) == 0 ? 0 : -1)
							: (swap_restore_old(&s, &e) < 0 ? -1 : 1);
		if (rc >= 0)
			handover_store(cfg->state_dir, NULL, &he);
	} else if (step && strcmp(step, ops->commit_step) == 0) {
		rc = final && swap_complete(&s, final, &e) == 0 ? 0 : -1;
	} else if (netns_provider_there(en, json_object_get(rec, JR_OLD_INSPECT)) == 0 &&
		   netns_provider_there(en, json_object_get(rec, JR_SPEC_INSPECT)) == 1) {
		/*
		 * A network_mode follower whose old provider is gone: its old
		 * container can never run again, so it is put back as it was
		 * (not started) and swapped again, onto the provider its record
		 * names, from the first step.
		 */
		bool running = s.was_running;

		log_info("%s: its old network namespace is gone: swapping it again onto the new one", s.name);
		s.was_running = false;
		rc = swap_restore_old(&s, &e) < 0 ? -1 : 0;
		s.was_running = running;
		if (rc == 0)
			rc = follow_onto_tag(&s, &e);
		if (rc == 0)
			rc = ops->run(&s, &e);
	} else {
		rc = swap_restore_old(&s, &e) < 0 ? -1 : 1;
	}
	if (rc < 0 && !final && !e.msg[0])
		err_set(&e, ERR_FAILED, "the journal record has no new name to finish under");
	if (rc == 1 && !e.msg[0])
		err_set(&e, ERR_FAILED, "interrupted at step %s; the old container was restored", step ? step : "?");
	return swap_finish(&s, rc, &e, res);
}
