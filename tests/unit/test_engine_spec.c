/* Unit tests: the replacement container's create request from real inspect output (src/engine-spec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/engine-spec.h"

/* Captured from dockerd 20.10 (API 1.41), the *-1.52 ones written from them by moby's
 * api/docs/CHANGELOG.md (see fixtures/engine-spec/README.md); tests run from the repository root, as `make unit` does. */
#define FIXTURES "tests/unit/fixtures/engine-spec/"
#define IMAGE "registry.example:5000/app:2"

#define RICH_ANON "5d1f64f22170671c4c5070c417cb49c677e1814ce26a884424d1f4fc1d21e70e"
#define RICH_DATA "85e171a97b639cd47b2601b090eb89fe299e583c6f5c00cff3620f0fbe2bdc74"
#define LEGACY_M "ddd0234a21d801acf35a97b2c0aa4de8cf22080c9b8f2ce858080d59058ee35f"
#define LEGACY_DATA "93e67ab29c551d8855874976abb2cb5a25f2363be4449df9f16f982904f070d8"

/* A fixture file parsed; the test fails when it cannot be read. */
static json_t *fixture(const char *name)
{
	char path[256];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), FIXTURES "%s", name);
	j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("cannot load %s (run from the repository root): %s", path, je.text);
	return j;
}

/* JSON from a literal written with ' for " (for legibility); the test fails on a typo. */
static json_t *parse(const char *text)
{
	char *dq = strdup(text);
	json_error_t je;
	json_t *j;

	assert_non_null(dq);
	for (char *p = dq; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(dq, JSON_DECODE_ANY, &je);
	if (!j)
		fail_msg("bad test JSON at %d: %s: %s", je.position, je.text, dq);
	free(dq);
	return j;
}

/* Build from IN, asserting success and that neither input changed. */
static struct spec_output build_in(const struct spec_input *in_)
{
	struct spec_input in = *in_;
	json_t *container = in.container, *old_image = in.old_image;
	struct spec_output out = { 0 };
	struct refit_err e = { 0 };
	json_t *c0 = json_deep_copy(container), *i0 = old_image ? json_deep_copy(old_image) : NULL;

	if (spec_build(&in, &out, &e) != 0)
		fail_msg("spec_build: %s", e.msg);
	assert_non_null(out.create);
	assert_true(json_is_array(out.connect));
	assert_true(json_equal(c0, container));
	assert_true(!old_image || json_equal(i0, old_image));
	json_decref(c0);
	json_decref(i0);
	return out;
}

/* Build from CONTAINER and OLD_IMAGE onto IMAGE, asserting success and that neither input changed. */
static struct spec_output build(json_t *container, json_t *old_image, const char *api, const char *alias)
{
	struct spec_input in = {
		.container = container, .old_image = old_image, .image = IMAGE, .api_version = api,
		.extra_alias = alias,
	};

	return build_in(&in);
}

/* Assert that V is the JSON given as TEXT. */
static void assert_json(json_t *v, const char *text)
{
	json_t *want = parse(text);

	if (!v || !json_equal(v, want)) {
		char *got = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

		fail_msg("got %s, want %s", got ? got : "(absent)", text);
	}
	json_decref(want);
}

/* The member at dotted PATH (no dots inside keys) of V, or NULL. */
static json_t *at(json_t *v, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	return v;
}

/* The endpoint config of NETWORK in the create body. */
static json_t *endpoint(struct spec_output *o, const char *network)
{
	return json_object_get(at(o->create, "NetworkingConfig.EndpointsConfig"), network);
}

/* Image defaults give way, what was set on the container stays, the ID hostname goes. */
static void test_rich_config(void **state)
{
	json_t *c = fixture("rich.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "Image"), "'" IMAGE "'");
	assert_null(at(o.create, "Hostname"));
	/* A=1 overridden on the container, USERVAR its own; PATH and B=2 the image's */
	assert_json(at(o.create, "Env"), "['A=override', 'USERVAR=u']");
	assert_null(at(o.create, "Cmd"));
	assert_null(at(o.create, "Entrypoint"));
	assert_null(at(o.create, "WorkingDir"));
	assert_null(at(o.create, "User"));
	assert_null(at(o.create, "Healthcheck"));
	assert_null(at(o.create, "OnBuild"));
	/* compose labels were set on the container: they survive; the image's do not */
	assert_json(at(o.create, "Labels"), "{'com.docker.compose.project': 'p', 'user.label': 'y'}");
	assert_json(at(o.create, "Volumes"), "{'/anon': {}}");
	/* 80/tcp is the image's, but published: the engine only publishes exposed ports */
	assert_json(at(o.create, "ExposedPorts"), "{'80/tcp': {}}");
	assert_json(at(o.create, "AttachStdout"), "true");
	assert_true(spec_fixed_host_ports(c));
	assert_string_equal(spec_network_mode(c), "default");
	spec_output_free(&o);
	assert_null(o.create);
	assert_null(o.connect);
	spec_output_free(&o);
	spec_output_free(NULL);
	json_decref(c);
	json_decref(img);
}

/* HostConfig is carried, anonymous volumes are added once by name, named ones not duplicated. */
static void test_rich_host_config(void **state)
{
	json_t *c = fixture("rich.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", NULL);
	json_t *hc = at(o.create, "HostConfig");
	const char *k;
	json_t *v;

	(void)state;
	json_object_foreach(json_object_get(c, "HostConfig"), k, v) {
		if (strcmp(k, "Mounts") != 0 && !json_equal(json_object_get(hc, k), v))
			fail_msg("HostConfig.%s changed", k);
	}
	assert_json(json_object_get(hc, "Binds"),
		    "['refit-spec-fixture-vol:/named', '/tmp/refit-spec-bind:/bind:ro']");
	assert_json(json_object_get(hc, "Mounts"),
		    "[{'Type': 'volume', 'Source': '" RICH_ANON "', 'Target': '/anon', 'ReadOnly': false},"
		    " {'Type': 'volume', 'Source': '" RICH_DATA "', 'Target': '/data', 'ReadOnly': false}]");
	assert_json(json_object_get(hc, "RestartPolicy"),
		    "{'Name': 'unless-stopped', 'MaximumRetryCount': 0}");
	assert_json(json_object_get(hc, "Memory"), "67108864");
	assert_json(json_object_get(hc, "PortBindings"),
		    "{'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '18080'}]}");
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* API 1.41: the NetworkMode network at create, the other connected after; no engine state carried. */
static void test_rich_networks_141(void **state)
{
	json_t *c = fixture("rich.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", NULL);

	(void)state;
	assert_int_equal(json_object_size(at(o.create, "NetworkingConfig.EndpointsConfig")), 1);
	assert_json(endpoint(&o, "refit-spec-fixture-net1"),
		    "{'IPAMConfig': {'IPv4Address': '172.31.250.10'}, 'Links': ['refit-spec-fixture-db:db'],"
		    " 'Aliases': ['web', 'www']}");
	assert_json(o.connect, "[{'Network': 'refit-spec-fixture-net2', 'EndpointConfig':"
			       " {'IPAMConfig': {'IPv4Address': '172.31.251.20'}, 'Aliases': ['api']}}]");
	assert_json(at(o.create, "HostConfig.NetworkMode"), "'refit-spec-fixture-net1'");
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* API 1.44 and later: every network at create, nothing to connect; EXTRA alias on each. */
static void test_rich_networks_144(void **state)
{
	static const char *const versions[] = { "1.44", "1.45", "1.100", "2.0", "1.44.1" };
	json_t *c = fixture("rich.json"), *img = fixture("image.json");

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct spec_output o = build(c, img, versions[i], "renamed");

		assert_int_equal(json_object_size(at(o.create, "NetworkingConfig.EndpointsConfig")), 2);
		assert_json(endpoint(&o, "refit-spec-fixture-net1"),
			    "{'IPAMConfig': {'IPv4Address': '172.31.250.10'},"
			    " 'Links': ['refit-spec-fixture-db:db'],"
			    " 'Aliases': ['web', 'www', 'renamed']}");
		assert_json(endpoint(&o, "refit-spec-fixture-net2"),
			    "{'IPAMConfig': {'IPv4Address': '172.31.251.20'},"
			    " 'Aliases': ['api', 'renamed']}");
		assert_int_equal(json_array_size(o.connect), 0);
		spec_output_free(&o);
	}
	json_decref(c);
	json_decref(img);
}

/*
 * Docker 29 (API 1.52), written by moby's API version history: no top-level
 * NetworkSettings addresses, Aliases without the short ID (1.45) beside
 * DNSNames, GwPriority (1.48), random engine MACs, no Config.OnBuild or
 * Config.MacAddress; the image inspect without its empty Config members.
 */
static void test_api_152(void **state)
{
	static const char *const versions[] = { "1.45", "1.48", "1.52", "1.56" };
	json_t *c = fixture("rich-1.52.json"), *img = fixture("image-1.52.json");

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct spec_output o = build(c, img, versions[i], NULL);
		char *dump = json_dumps(o.create, JSON_COMPACT);

		assert_json(at(o.create, "Env"), "['A=override', 'USERVAR=u']");
		/* absent from the image inspect is the empty default: the container's "" leaves too */
		assert_null(at(o.create, "User"));
		assert_null(at(o.create, "Entrypoint"));
		assert_null(at(o.create, "Cmd"));
		assert_null(at(o.create, "WorkingDir"));
		assert_null(at(o.create, "OnBuild"));
		assert_json(at(o.create, "Labels"), "{'com.docker.compose.project': 'p', 'user.label': 'y'}");
		assert_json(at(o.create, "Volumes"), "{'/anon': {}}");
		assert_json(endpoint(&o, "refit-spec-fixture-net1"),
			    "{'IPAMConfig': {'IPv4Address': '172.31.250.10'},"
			    " 'Links': ['refit-spec-fixture-db:db'], 'Aliases': ['web', 'www']}");
		assert_json(endpoint(&o, "refit-spec-fixture-net2"),
			    "{'IPAMConfig': {'IPv4Address': '172.31.251.20'}, 'Aliases': ['api'],"
			    " 'GwPriority': 10}");
		assert_int_equal(json_array_size(o.connect), 0);
		/* the engine's random MACs and the DNS names it derives are never pinned */
		assert_null(strstr(dump, "MacAddress"));
		assert_null(strstr(dump, "DNSNames"));
		assert_null(strstr(dump, "KernelMemory"));
		free(dump);
		spec_output_free(&o);
	}
	assert_string_equal(spec_exclusive(c), "it publishes fixed host ports");
	json_decref(c);
	json_decref(img);
}

/* An image inspect at 1.52 whose Config has nothing in it: the container's own values all stay. */
static void test_api_152_bare_image(void **state)
{
	json_t *c = fixture("rich-1.52.json"), *img = parse("{'Id': 'sha256:x', 'Config': {}}");
	struct spec_output o = build(c, img, "1.52", NULL);

	(void)state;
	assert_json(at(o.create, "Cmd"), "['/bin/busybox', 'sleep', '1000']");
	assert_json(at(o.create, "WorkingDir"), "'/w'");
	assert_int_equal(json_array_size(at(o.create, "Env")), 4);
	assert_int_equal(json_object_size(at(o.create, "Labels")), 4);
	assert_json(at(o.create, "Volumes"), "{'/anon': {}, '/data': {}}");
	assert_null(at(o.create, "User"));
	assert_null(at(o.create, "Entrypoint"));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* The engine's MAC on an endpoint is its own; only a MAC the user gave (Config.MacAddress) moves. */
static void test_mac_generated(void **state)
{
	json_t *c = fixture("mac.json"), *img = fixture("image.json");
	struct spec_output o;

	(void)state;
	json_object_set_new(json_object_get(at(c, "NetworkSettings.Networks"), "bridge"), "MacAddress",
			    json_string("9e:41:5a:03:77:10"));
	o = build(c, img, "1.52", NULL);
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"),
		    "{'bridge': {'MacAddress': '02:42:ac:11:00:99'}}");
	spec_output_free(&o);
	json_object_del(at(c, "Config"), "MacAddress");
	o = build(c, img, "1.52", NULL);
	assert_null(at(o.create, "MacAddress"));
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"), "{'bridge': {}}");
	assert_null(spec_exclusive(c));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* Older, missing or odd versions split the networks as 1.41 does. */
static void test_versions_before_144(void **state)
{
	static const char *const versions[] = { "1.41", "1.43", "1.9", "1.4", "0.99", "", "junk", NULL };
	json_t *c = fixture("rich.json");

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct spec_output o = build(c, NULL, versions[i], NULL);

		assert_int_equal(json_object_size(at(o.create, "NetworkingConfig.EndpointsConfig")), 1);
		assert_int_equal(json_array_size(o.connect), 1);
		spec_output_free(&o);
	}
	json_decref(c);
}

/* The extra alias is not doubled when the container already answers to it. */
static void test_extra_alias_once(void **state)
{
	json_t *c = fixture("rich.json");
	struct spec_output o = build(c, NULL, "1.44", "www");

	(void)state;
	assert_json(at(endpoint(&o, "refit-spec-fixture-net1"), "Aliases"), "['web', 'www']");
	assert_json(at(endpoint(&o, "refit-spec-fixture-net2"), "Aliases"), "['api', 'www']");
	spec_output_free(&o);
	o = build(c, NULL, "1.44", "");
	assert_json(at(endpoint(&o, "refit-spec-fixture-net2"), "Aliases"), "['api']");
	spec_output_free(&o);
	json_decref(c);
}

/* Without the old image nothing is taken for a default; volumes are still adopted. */
static void test_no_old_image(void **state)
{
	json_t *c = fixture("rich.json");
	struct spec_output o = build(c, NULL, "1.41", NULL);
	json_t *cfg = json_object_get(c, "Config");

	(void)state;
	assert_true(json_equal(at(o.create, "Env"), json_object_get(cfg, "Env")));
	assert_true(json_equal(at(o.create, "Cmd"), json_object_get(cfg, "Cmd")));
	assert_true(json_equal(at(o.create, "Labels"), json_object_get(cfg, "Labels")));
	assert_true(json_equal(at(o.create, "Volumes"), json_object_get(cfg, "Volumes")));
	assert_true(json_equal(at(o.create, "Healthcheck"), json_object_get(cfg, "Healthcheck")));
	assert_json(at(o.create, "WorkingDir"), "'/w'");
	assert_null(at(o.create, "Hostname"));
	assert_int_equal(json_array_size(at(o.create, "HostConfig.Mounts")), 2);
	spec_output_free(&o);
	json_decref(c);
}

/* Default bridge: links in create form, no aliases, user settings kept, --mount volumes adopted. */
static void test_legacy(void **state)
{
	json_t *c = fixture("legacy.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", "renamed");

	(void)state;
	assert_json(at(o.create, "HostConfig.Links"), "['refit-spec-fixture-bdb:db']");
	assert_json(at(o.create, "Hostname"), "'myhost'");
	assert_json(at(o.create, "Entrypoint"), "['/bin/busybox']");
	assert_json(at(o.create, "Cmd"), "['sleep', '999']");
	assert_json(at(o.create, "User"), "'1000:1000'");
	assert_json(at(o.create, "WorkingDir"), "'/other'");
	assert_json(at(o.create, "StopSignal"), "'SIGINT'");
	assert_json(at(o.create, "Healthcheck"), "{'Test': ['NONE']}");
	/* PATH=/bin overrides the image's; A=1 equals it (indistinguishable from the default) */
	assert_json(at(o.create, "Env"), "['PATH=/bin']");
	assert_json(at(o.create, "Volumes"), "{}");
	assert_json(at(o.create, "ExposedPorts"), "{}");
	/* --mount without source gets its volume's name; volumes-from's volume mounted by name too */
	assert_json(at(o.create, "HostConfig.Mounts"),
		    "[{'Type': 'volume', 'Target': '/m', 'Source': '" LEGACY_M "'},"
		    " {'Type': 'volume', 'Source': 'refit-spec-fixture-vol', 'Target': '/mv',"
		    "  'ReadOnly': true},"
		    " {'Type': 'volume', 'Source': '" LEGACY_DATA "', 'Target': '/data', 'ReadOnly': true}]");
	assert_json(at(o.create, "HostConfig.VolumesFrom"), "['refit-spec-fixture-bdb:ro']");
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"), "{'bridge': {}}");
	assert_int_equal(json_array_size(o.connect), 0);
	assert_false(spec_fixed_host_ports(c));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/*
 * docker compose v2 labels the image ID it started the service on: the
 * replacement carries the new image's ID there and every other compose
 * label unchanged; without an image ID, or on a container compose did not
 * make, nothing is added.
 */
static void test_compose_image_label(void **state)
{
	json_t *c = fixture("compose.json"), *img = fixture("image.json");
	json_t *old_labels = at(c, "Config.Labels"), *labels, *v;
	struct spec_input in = {
		.container = c, .old_image = img, .image = IMAGE, .api_version = "1.45",
		.image_id = "sha256:" RICH_DATA,
	};
	struct spec_output o;
	const char *k;

	(void)state;
	json_object_set_new(old_labels, "com.docker.compose.image", json_string("sha256:" LEGACY_DATA));
	o = build_in(&in);
	labels = at(o.create, "Labels");
	assert_json(json_object_get(labels, "com.docker.compose.image"), "'sha256:" RICH_DATA "'");
	json_object_foreach(old_labels, k, v) {
		if (strncmp(k, "com.docker.compose.", strlen("com.docker.compose.")) == 0 &&
		    strcmp(k, "com.docker.compose.image") != 0)
			assert_true(json_equal(json_object_get(labels, k), v));
	}
	spec_output_free(&o);

	in.image_id = NULL;
	o = build_in(&in);
	assert_json(json_object_get(at(o.create, "Labels"), "com.docker.compose.image"),
		    "'sha256:" LEGACY_DATA "'");
	spec_output_free(&o);

	json_object_del(old_labels, "com.docker.compose.image");
	in.image_id = "sha256:" RICH_DATA;
	o = build_in(&in);
	assert_null(json_object_get(at(o.create, "Labels"), "com.docker.compose.image"));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* A user MAC address stays container-wide before 1.44 and moves to the main endpoint from 1.44. */
static void test_mac_address(void **state)
{
	json_t *c = fixture("mac.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "MacAddress"), "'02:42:ac:11:00:99'");
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"), "{'bridge': {}}");
	/* an Entrypoint of its own: the empty Cmd is the user's, not to be filled from the image */
	assert_json(at(o.create, "Entrypoint"), "['/bin/busybox']");
	assert_json(at(o.create, "Cmd"), "[]");
	/* only the health option set on the container */
	assert_json(at(o.create, "Healthcheck"), "{'Interval': 5000000000}");
	spec_output_free(&o);

	o = build(c, img, "1.44", NULL);
	assert_null(at(o.create, "MacAddress"));
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"),
		    "{'bridge': {'MacAddress': '02:42:ac:11:00:99'}}");
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* docker-compose: its labels kept, the short-ID alias dropped, the named volume not duplicated. */
static void test_compose(void **state)
{
	json_t *c = fixture("compose.json"), *img = fixture("image.json");
	struct spec_output o = build(c, img, "1.41", NULL);
	json_t *labels = at(o.create, "Labels");

	(void)state;
	assert_int_equal(json_object_size(labels), 8);
	assert_json(json_object_get(labels, "com.docker.compose.service"), "'app'");
	assert_json(json_object_get(labels, "com.docker.compose.project"), "'refitspecfixture'");
	assert_null(json_object_get(labels, "img.label"));
	assert_json(at(o.create, "Env"), "['B=3']");
	assert_null(at(o.create, "HostConfig.Mounts"));
	assert_json(at(o.create, "HostConfig.Binds"), "['refitspecfixture_appdata:/data:rw']");
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"),
		    "{'refitspecfixture_front': {'Aliases': ['appalias', 'app']}}");
	assert_true(spec_fixed_host_ports(c));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* host, none and container: network modes have no endpoints to create or connect. */
static void test_special_network_modes(void **state)
{
	static const struct {
		const char *file, *mode;
	} cases[] = {
		{ "host.json", "host" },
		{ "none.json", "none" },
		{ "container-mode.json", "container" },
	};
	json_t *img = fixture("image.json");

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = fixture(cases[i].file);
		struct spec_output o = build(c, img, "1.44", "renamed");

		assert_string_equal(spec_network_mode(c), cases[i].mode);
		assert_null(at(o.create, "NetworkingConfig"));
		assert_int_equal(json_array_size(o.connect), 0);
		assert_true(json_equal(at(o.create, "HostConfig.NetworkMode"),
				       at(c, "HostConfig.NetworkMode")));
		assert_int_equal(json_array_size(at(o.create, "HostConfig.Mounts")), 1);
		assert_false(spec_fixed_host_ports(c));
		spec_output_free(&o);
		json_decref(c);
	}
	json_decref(img);
}

/* Host mode keeps the host's name; container mode drops what the engine refuses there. */
static void test_special_mode_hostnames(void **state)
{
	json_t *img = fixture("image.json"), *c = fixture("host.json");
	struct spec_output o = build(c, img, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "Hostname"), "'vm'");
	spec_output_free(&o);
	json_decref(c);

	/* the inspect shows the joined container's hostname; the engine answers
	 * "conflicting options: hostname and the network mode" */
	c = fixture("container-mode.json");
	o = build(c, NULL, "1.41", NULL);
	assert_null(at(o.create, "Hostname"));
	assert_null(at(o.create, "ExposedPorts"));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* A minimal container inspect around CONFIG, HOSTCONFIG, MOUNTS and NETWORKS (JSON texts). */
static json_t *container(const char *config, const char *hostconfig, const char *mounts, const char *networks)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "{'Id': '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',"
		 " 'Config': %s, 'HostConfig': %s, 'Mounts': %s, 'NetworkSettings': {'Networks': %s}}",
		 config, hostconfig, mounts, networks);
	return parse(text);
}

/* The hostname goes only when it is exactly the short ID. */
static void test_hostname_rule(void **state)
{
	static const struct {
		const char *hostname;
		bool kept;
	} cases[] = {
		{ "0123456789ab", false }, { "0123456789a", true },	{ "0123456789abc", true },
		{ "web", true },	   { "0123456789AB", true }, { "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cfg[128];
		json_t *c;
		struct spec_output o;

		snprintf(cfg, sizeof(cfg), "{'Hostname': '%s'}", cases[i].hostname);
		c = container(cfg, "{}", "[]", "{}");
		o = build(c, NULL, "1.41", NULL);
		if (cases[i].kept)
			assert_true(json_equal(at(o.create, "Hostname"), at(c, "Config.Hostname")));
		else if (cases[i].hostname[0])
			assert_null(at(o.create, "Hostname"));
		spec_output_free(&o);
		json_decref(c);
	}
}

/* Image defaults against what was set on the container, rule by rule. */
static void test_image_default_rules(void **state)
{
	json_t *img = parse("{'Config': {'Env': ['A=1', 'B=2'], 'Cmd': ['serve'], 'Entrypoint': ['/init'],"
			    " 'User': 'app', 'StopSignal': 'SIGQUIT', 'Shell': ['/bin/sh', '-c'],"
			    " 'Labels': {'a': '1', 'b': '2'}, 'Volumes': {'/v': {}},"
			    " 'ExposedPorts': {'80/tcp': {}, '443/tcp': {}},"
			    " 'Healthcheck': {'Test': ['CMD', 'check'], 'Interval': 30000000000}}}");
	json_t *c;
	struct spec_output o;

	(void)state;
	/* user Cmd kept under the image's Entrypoint; changed label value kept; own port and volume kept */
	c = container("{'Env': ['A=1', 'B=3', 'C=4'], 'Cmd': ['migrate'], 'Entrypoint': ['/init'],"
		      " 'User': 'app', 'StopSignal': 'SIGTERM', 'Shell': ['/bin/sh', '-c'],"
		      " 'Labels': {'a': '1', 'b': 'changed', 'c': '3'}, 'Volumes': {'/v': {}, '/w': {}},"
		      " 'ExposedPorts': {'80/tcp': {}, '443/tcp': {}, '8080/tcp': {}},"
		      " 'Healthcheck': {'Test': ['CMD', 'check'], 'Interval': 30000000000, 'Retries': 5}}",
		      "{'PortBindings': {'443/tcp': [{'HostIp': '', 'HostPort': ''}]}}", "[]", "{}");
	o = build(c, img, "1.41", NULL);
	assert_json(at(o.create, "Env"), "['B=3', 'C=4']");
	assert_json(at(o.create, "Cmd"), "['migrate']");
	assert_null(at(o.create, "Entrypoint"));
	assert_null(at(o.create, "User"));
	assert_null(at(o.create, "Shell"));
	assert_json(at(o.create, "StopSignal"), "'SIGTERM'");
	assert_json(at(o.create, "Labels"), "{'b': 'changed', 'c': '3'}");
	assert_json(at(o.create, "Volumes"), "{'/w': {}}");
	assert_json(at(o.create, "ExposedPorts"), "{'443/tcp': {}, '8080/tcp': {}}");
	assert_json(at(o.create, "Healthcheck"), "{'Retries': 5}");
	spec_output_free(&o);
	json_decref(c);

	/* an Entrypoint of its own keeps a Cmd equal to the image's: the engine would not fill it */
	c = container("{'Cmd': ['serve'], 'Entrypoint': ['/other']}", "{}", "[]", "{}");
	o = build(c, img, "1.41", NULL);
	assert_json(at(o.create, "Entrypoint"), "['/other']");
	assert_json(at(o.create, "Cmd"), "['serve']");
	spec_output_free(&o);
	json_decref(c);

	/* --entrypoint equal to the image's cleared Cmd: both stay so the new image's Cmd is not added */
	c = container("{'Cmd': null, 'Entrypoint': ['/init']}", "{}", "[]", "{}");
	o = build(c, img, "1.41", NULL);
	assert_json(at(o.create, "Entrypoint"), "['/init']");
	assert_json(at(o.create, "Cmd"), "null");
	spec_output_free(&o);
	json_decref(c);

	/* all defaults: everything leaves, the healthcheck too */
	c = container("{'Env': ['A=1', 'B=2'], 'Cmd': ['serve'], 'Entrypoint': ['/init'],"
		      " 'Healthcheck': {'Test': ['CMD', 'check'], 'Interval': 30000000000}}",
		      "{}", "[]", "{}");
	o = build(c, img, "1.41", NULL);
	assert_json(at(o.create, "Env"), "[]");
	assert_null(at(o.create, "Cmd"));
	assert_null(at(o.create, "Entrypoint"));
	assert_null(at(o.create, "Healthcheck"));
	spec_output_free(&o);
	json_decref(c);

	/* an image inspect without Config: no defaults known */
	json_decref(img);
	img = parse("{'Id': 'sha256:x'}");
	c = container("{'Env': ['A=1']}", "{}", "[]", "{}");
	o = build(c, img, "1.41", NULL);
	assert_json(at(o.create, "Env"), "['A=1']");
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* Links in inspect form are rewritten; create-form ones are kept as they are. */
static void test_links(void **state)
{
	json_t *c = container("{}", "{'Links': ['/db:/web/db', '/cache:/web/redis', 'db:db', 'x']}",
			      "[]", "{}");
	struct spec_output o = build(c, NULL, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "HostConfig.Links"), "['db:db', 'cache:redis', 'db:db', 'x']");
	spec_output_free(&o);
	json_decref(c);
}

/* Each anonymous volume is added once; binds and mounts (trailing slashes aside) cover theirs. */
static void test_anonymous_volumes(void **state)
{
	json_t *c = container(
		"{}",
		"{'Binds': ['named:/named/', '/host:/bind:ro', 'bare'],"
		" 'Mounts': [{'Type': 'volume', 'Source': 'x', 'Target': '/x'}]}",
		"[{'Type': 'volume', 'Name': 'named', 'Destination': '/named', 'RW': true},"
		" {'Type': 'bind', 'Source': '/host', 'Destination': '/bind', 'RW': false},"
		" {'Type': 'volume', 'Name': 'x', 'Destination': '/x', 'RW': true},"
		" {'Type': 'volume', 'Name': 'anon1', 'Destination': '/a', 'RW': true},"
		" {'Type': 'volume', 'Name': 'anon2', 'Destination': '/a', 'RW': true},"
		" {'Type': 'volume', 'Name': 'ro', 'Destination': '/ro', 'RW': false},"
		" {'Type': 'volume', 'Name': 'norw', 'Destination': '/norw'},"
		" {'Type': 'volume', 'Name': 'b', 'Destination': 'bare'},"
		" {'Type': 'tmpfs', 'Destination': '/t'}]",
		"{}");
	struct spec_output o = build(c, NULL, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "HostConfig.Mounts"),
		    "[{'Type': 'volume', 'Source': 'x', 'Target': '/x'},"
		    " {'Type': 'volume', 'Source': 'anon1', 'Target': '/a', 'ReadOnly': false},"
		    " {'Type': 'volume', 'Source': 'ro', 'Target': '/ro', 'ReadOnly': true},"
		    " {'Type': 'volume', 'Source': 'norw', 'Target': '/norw', 'ReadOnly': false}]");
	spec_output_free(&o);
	json_decref(c);
}

/* NetworkMode names the main network by name, ID or ID prefix; a stale one follows the real networks. */
static void test_primary_network(void **state)
{
	static const struct {
		const char *mode, *primary, *final_mode;
	} cases[] = {
		{ "b", "b", "b" },
		{ "bbbbbbbbbbbb1111", "b", "bbbbbbbbbbbb1111" },
		{ "bbbbbb", "b", "bbbbbb" },
		{ "gone", "a", "a" },
		{ "default", "a", "a" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char hc[128];
		json_t *c, *b;
		struct spec_output o;

		snprintf(hc, sizeof(hc), "{'NetworkMode': '%s'}", cases[i].mode);
		c = container("{}", hc, "[]",
			      "{'a': {'NetworkID': 'aaaaaaaaaaaa1111', 'Aliases': ['x']},"
			      " 'b': {'NetworkID': 'bbbbbbbbbbbb1111', 'Aliases': ['y', '0123456789ab',"
			      " '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'y']}}");
		o = build(c, NULL, "1.41", NULL);
		assert_non_null(endpoint(&o, cases[i].primary));
		assert_int_equal(json_object_size(at(o.create, "NetworkingConfig.EndpointsConfig")), 1);
		assert_int_equal(json_array_size(o.connect), 1);
		assert_string_equal(json_string_value(at(o.create, "HostConfig.NetworkMode")),
				    cases[i].final_mode);
		b = endpoint(&o, "b");
		if (!b)
			b = at(json_array_get(o.connect, 0), "EndpointConfig");
		assert_json(json_object_get(b, "Aliases"), "['y']");
		spec_output_free(&o);
		json_decref(c);
	}
}

/*
 * Podman 4.3's inspect (podman-4.3.json, a container of `podman run --cpus
 * 0.5 --device ... --ulimit ...`): what its own create refuses is written
 * the way both engines take it, and the HOSTNAME it wrote into Env goes with
 * the ID hostname.
 */
static void test_podman(void **state)
{
	json_t *c = fixture("podman-4.3.json"), *img = fixture("podman-4.3-image.json");
	struct spec_output o = build(c, img, "1.41", NULL);

	(void)state;
	assert_json(at(o.create, "HostConfig.Ulimits"),
		    "[{'Name': 'nofile', 'Hard': 4096, 'Soft': 2048}, {'Name': 'nproc', 'Hard': 4096, 'Soft': 4096}]");
	assert_json(at(o.create, "HostConfig.NanoCpus"), "500000000");
	assert_json(at(o.create, "HostConfig.CpuQuota"), "0");
	assert_json(at(o.create, "HostConfig.CpuPeriod"), "0");
	assert_json(at(o.create, "HostConfig.Devices"),
		    "[{'PathOnHost': '/dev/null', 'PathInContainer': '/dev/xnull', 'CgroupPermissions': 'rwm'}]");
	assert_json(at(o.create, "Env"), "['FOO=bar', 'TERM=xterm', 'container=podman']");
	assert_null(at(o.create, "Hostname"));
	spec_output_free(&o);
	json_decref(c);
	json_decref(img);
}

/* Only a CPU quota NanoCpus implies gives way; Ulimits are renamed only from RLIMIT_*. */
static void test_podman_rules(void **state)
{
	static const struct {
		const char *hostconfig, *want_quota, *want_period, *want_ulimits;
	} cases[] = {
		{ "{'NanoCpus': 1500000000, 'CpuQuota': 150000, 'CpuPeriod': 0}", "0", "0", NULL },
		{ "{'NanoCpus': 1000000000, 'CpuQuota': 50000, 'CpuPeriod': 50000}", "0", "0", NULL },
		{ "{'NanoCpus': 1000000000, 'CpuQuota': 90000, 'CpuPeriod': 100000}", "90000", "100000", NULL },
		{ "{'NanoCpus': 0, 'CpuQuota': 50000, 'CpuPeriod': 100000}", "50000", "100000", NULL },
		/* beyond 4096 CPUs the product would overflow: left as the engine said */
		{ "{'NanoCpus': 1000000000000000, 'CpuQuota': 1000000000, 'CpuPeriod': 1000000}", "1000000000", "1000000",
		  NULL },
		{ "{'Ulimits': [{'Name': 'nofile', 'Soft': 1, 'Hard': 2}, {'Name': 'rlimit_core', 'Soft': 0, 'Hard': 0}]}",
		  NULL, NULL, "[{'Name': 'nofile', 'Soft': 1, 'Hard': 2}, {'Name': 'core', 'Soft': 0, 'Hard': 0}]" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = container("{}", cases[i].hostconfig, "[]", "{}");
		struct spec_output o = build(c, NULL, "1.41", NULL);

		if (cases[i].want_quota) {
			assert_json(at(o.create, "HostConfig.CpuQuota"), cases[i].want_quota);
			assert_json(at(o.create, "HostConfig.CpuPeriod"), cases[i].want_period);
		}
		if (cases[i].want_ulimits)
			assert_json(at(o.create, "HostConfig.Ulimits"), cases[i].want_ulimits);
		spec_output_free(&o);
		json_decref(c);
	}
	/* a name that is RLIMIT_ and nothing, or too long, is refused, nothing built */
	for (int k = 0; k < 2; k++) {
		json_t *c = container("{}", k ? "{'Ulimits': [{'Name': 'RLIMIT_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'}]}"
					      : "{'Ulimits': [{'Name': 'RLIMIT_'}]}",
				      "[]", "{}");
		struct spec_input in = { .container = c, .image = IMAGE, .api_version = "1.41" };
		struct spec_output o = { 0 };
		struct refit_err e = { 0 };

		assert_int_equal(spec_build(&in, &o, &e), -1);
		assert_null(o.create);
		assert_non_null(strstr(e.msg, "Ulimits"));
		json_decref(c);
	}
}

/* Bridge endpoints never get aliases; empty endpoint settings are left out. */
static void test_bridge_no_aliases(void **state)
{
	json_t *c = container("{}", "{'NetworkMode': 'bridge'}", "[]",
			      "{'bridge': {'Aliases': ['0123456789ab', 'x'], 'IPAMConfig': {}, 'Links': [],"
			      " 'DriverOpts': {}, 'IPAddress': '172.17.0.2',"
			      " 'MacAddress': '02:42:ac:11:00:02'},"
			      " 'n': {'Aliases': null, 'DriverOpts': {'k': 'v'}, 'GwPriority': 10,"
			      " 'DNSNames': ['n']}}");
	struct spec_output o = build(c, NULL, "1.44", "renamed");

	(void)state;
	assert_json(at(o.create, "NetworkingConfig.EndpointsConfig"),
		    "{'bridge': {},"
		    " 'n': {'DriverOpts': {'k': 'v'}, 'GwPriority': 10, 'Aliases': ['renamed']}}");
	spec_output_free(&o);
	json_decref(c);
}

/* Fixed host ports: a non-empty HostPort other than "0" on any binding. */
static void test_fixed_host_ports(void **state)
{
	static const struct {
		const char *hostconfig;
		bool fixed;
	} cases[] = {
		{ "{}", false },
		{ "{'PortBindings': null}", false },
		{ "{'PortBindings': {}}", false },
		{ "{'PortBindings': {'80/tcp': [{'HostIp': '', 'HostPort': ''}]}}", false },
		{ "{'PortBindings': {'80/tcp': [{'HostPort': '0'}]}}", false },
		{ "{'PortBindings': {'80/tcp': null}}", false },
		{ "{'PortBindings': {'80/tcp': [{'HostPort': 8080}]}}", false },
		{ "{'PortBindings': ['80']}", false },
		{ "{'PortBindings': {'80/tcp': [{'HostPort': ''}, {'HostPort': '8080'}]}}", true },
		{ "{'PortBindings': {'53/udp': [{'HostIp': '::1', 'HostPort': '5353'}]}}", true },
		{ "{'PortBindings': {'80/tcp': [{'HostPort': '8000-8010'}]}}", true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = container("{}", cases[i].hostconfig, "[]", "{}");

		assert_int_equal(spec_fixed_host_ports(c), cases[i].fixed);
		json_decref(c);
	}
	assert_false(spec_fixed_host_ports(NULL));
}

/* Network mode classes, also for inputs that are not inspects. */
static void test_network_mode(void **state)
{
	static const struct {
		const char *hostconfig, *mode;
	} cases[] = {
		{ "{'NetworkMode': 'host'}", "host" },
		{ "{'NetworkMode': 'none'}", "none" },
		{ "{'NetworkMode': 'container:abc'}", "container" },
		{ "{'NetworkMode': 'default'}", "default" },
		{ "{'NetworkMode': 'bridge'}", "default" },
		{ "{'NetworkMode': 'mynet'}", "default" },
		{ "{'NetworkMode': 'hostile'}", "default" },
		{ "{'NetworkMode': 1}", "default" },
		{ "{}", "default" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = container("{}", cases[i].hostconfig, "[]", "{}");

		assert_string_equal(spec_network_mode(c), cases[i].mode);
		json_decref(c);
	}
	assert_string_equal(spec_network_mode(NULL), "default");
}

#define BASE "{'Id': 'abc', 'Config': {}, 'HostConfig': {}, "
#define ENDPOINT BASE "'NetworkSettings': {'Networks': {'n': "

/* Inputs not shaped as the engine gives them fail cleanly, leaving the output alone. */
static void test_malformed(void **state)
{
	static const char *const containers[] = {
		"[]",
		"'x'",
		"null",
		"{'Config': {}, 'HostConfig': {}}",
		"{'Id': 1, 'Config': {}, 'HostConfig': {}}",
		"{'Id': '', 'Config': {}, 'HostConfig': {}}",
		"{'Id': 'abc', 'HostConfig': {}}",
		"{'Id': 'abc', 'Config': [], 'HostConfig': {}}",
		"{'Id': 'abc', 'Config': {}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': 'x'}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'NetworkMode': 1}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'Links': '/a:/b/a'}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'Binds': 'a:/b'}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'Binds': [1]}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'Mounts': {}}}",
		"{'Id': 'abc', 'Config': {}, 'HostConfig': {'Mounts': ['x']}}",
		BASE "'Mounts': {}}",
		BASE "'Mounts': [1]}",
		BASE "'Mounts': [{'Type': 'volume', 'Destination': '/a'}]}",
		BASE "'Mounts': [{'Type': 'volume', 'Name': 'v'}]}",
		BASE "'NetworkSettings': []}",
		BASE "'NetworkSettings': {'Networks': []}}",
		ENDPOINT "1}}}",
		ENDPOINT "{'Aliases': 'a'}}}}",
		ENDPOINT "{'Aliases': [1]}}}}",
		ENDPOINT "{'IPAMConfig': []}}}}",
		ENDPOINT "{'Links': {}}}}}",
		ENDPOINT "{'DriverOpts': 2}}}}",
	};
	static const char *const images[] = { "[]", "'img'", "{'Config': []}", "{'Config': 1}", "1" };
	struct spec_output o = { (json_t *)1, (json_t *)2 };
	struct refit_err e = { 0 };
	json_t *good = container("{}", "{}", "[]", "{}");

	(void)state;
	for (size_t i = 0; i < sizeof(containers) / sizeof(containers[0]); i++) {
		json_t *c = parse(containers[i]);
		struct spec_input in = { c, NULL, IMAGE, "1.44", "x", NULL };

		err_clear(&e);
		if (spec_build(&in, &o, &e) != -1)
			fail_msg("accepted %s", containers[i]);
		assert_int_equal(e.kind, ERR_FAILED);
		assert_true(strlen(e.msg) > 0);
		json_decref(c);
	}
	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
		json_t *img = parse(images[i]);
		struct spec_input in = { good, img, IMAGE, "1.41", NULL, NULL };

		err_clear(&e);
		assert_int_equal(spec_build(&in, &o, &e), -1);
		assert_non_null(strstr(e.msg, "image inspect"));
		json_decref(img);
	}
	{
		struct spec_input no_ref = { good, NULL, NULL, "1.41", NULL, NULL };
		struct spec_input empty_ref = { good, NULL, "", "1.41", NULL, NULL };
		struct spec_input no_container = { NULL, NULL, IMAGE, "1.41", NULL, NULL };

		assert_int_equal(spec_build(&no_ref, &o, &e), -1);
		assert_int_equal(spec_build(&empty_ref, &o, &e), -1);
		assert_int_equal(spec_build(&no_container, &o, &e), -1);
		assert_int_equal(spec_build(NULL, &o, &e), -1);
		assert_int_equal(spec_build(&no_container, NULL, NULL), -1);
	}
	/* untouched on failure */
	assert_ptr_equal(o.create, (json_t *)1);
	assert_ptr_equal(o.connect, (json_t *)2);
	json_decref(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rich_config),
		cmocka_unit_test(test_rich_host_config),
		cmocka_unit_test(test_rich_networks_141),
		cmocka_unit_test(test_rich_networks_144),
		cmocka_unit_test(test_versions_before_144),
		cmocka_unit_test(test_api_152),
		cmocka_unit_test(test_api_152_bare_image),
		cmocka_unit_test(test_mac_generated),
		cmocka_unit_test(test_extra_alias_once),
		cmocka_unit_test(test_no_old_image),
		cmocka_unit_test(test_legacy),
		cmocka_unit_test(test_mac_address),
		cmocka_unit_test(test_compose),
		cmocka_unit_test(test_compose_image_label),
		cmocka_unit_test(test_special_network_modes),
		cmocka_unit_test(test_special_mode_hostnames),
		cmocka_unit_test(test_hostname_rule),
		cmocka_unit_test(test_image_default_rules),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_anonymous_volumes),
		cmocka_unit_test(test_primary_network),
		cmocka_unit_test(test_bridge_no_aliases),
		cmocka_unit_test(test_podman),
		cmocka_unit_test(test_podman_rules),
		cmocka_unit_test(test_fixed_host_ports),
		cmocka_unit_test(test_network_mode),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
