/* Unit tests: finding refit's own container in mountinfo, the handover file, and the journal's torn writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/handover.h"
#include "refit/journal.h"

#define ID1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void test_mountinfo_docker_and_podman(void **state)
{
	static const char docker[] =
		"600 500 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X\n"
		"610 600 0:54 / /proc rw,nosuid - proc proc rw\n"
		"620 600 254:1 /var/lib/docker/containers/" ID1 "/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n"
		"621 600 254:1 /var/lib/docker/containers/" ID1 "/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n";
	/* /var/lib/docker on its own file system: the root is relative to it */
	static const char own_fs[] = "621 600 254:2 /containers/" ID2 "/hostname /etc/hostname rw - xfs /dev/vdb rw";
	static const char podman[] =
		"700 600 0:30 /containers/storage/overlay-containers/" ID2
		"/userdata/hostname /etc/hostname rw,nosuid - tmpfs tmpfs rw\n";
	char out[65];

	assert_int_equal(handover_id_from_mountinfo(docker, strlen(docker), out), 0);
	assert_string_equal(out, ID1);
	assert_int_equal(handover_id_from_mountinfo(own_fs, strlen(own_fs), out), 0);
	assert_string_equal(out, ID2);
	assert_int_equal(handover_id_from_mountinfo(podman, strlen(podman), out), 0);
	assert_string_equal(out, ID2);
}

static void test_mountinfo_without_a_container(void **state)
{
	static const char host[] = "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
				   "23 22 0:5 / /dev rw - devtmpfs udev rw\n";
	/* an /etc/hostname that names no 64-hex directory, a short ID, a truncated line */
	static const char odd[] = "1 2 3:4 /etc/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
				  "1 2 3:4 /containers/0123456789ab/hostname /etc/hostname rw\n"
				  "1 2 3:4 /containers/" ID1;
	char out[65];

	assert_int_equal(handover_id_from_mountinfo(host, strlen(host), out), -1);
	assert_int_equal(handover_id_from_mountinfo(odd, strlen(odd), out), -1);
	assert_int_equal(handover_id_from_mountinfo("", 0, out), -1);
}

static void test_handover_file_is_checked(void **state)
{
	static const char good[] = "{\"from\":\"" ID1 "\",\"to\":\"" ID2 "\",\"name\":\"watchtower\","
				   "\"image\":\"127.0.0.1:5000/refit:latest\",\"digest\":\"sha256:ab\"}";
	static const char *const bad[] = {
		"",
		"[]",
		"{\"from\":\"" ID1 "\",\"to\":\"" ID1 "\",\"name\":\"w1\",\"image\":\"\",\"digest\":\"\"}",
		"{\"from\":\"" ID1 "\",\"to\":\"xyz\",\"name\":\"w1\",\"image\":\"\",\"digest\":\"\"}",
		"{\"from\":\"" ID1 "\",\"to\":\"" ID2 "\",\"name\":\"../etc\",\"image\":\"\",\"digest\":\"\"}",
		"{\"from\":\"" ID1 "\",\"to\":\"" ID2 "\",\"name\":\"w1\",\"image\":\"\"}",
		"{\"from\":\"" ID1 "\",\"from\":\"" ID1 "\",\"to\":\"" ID2 "\",\"name\":\"w1\",\"image\":\"\",\"digest\":\"\"}",
	};
	json_t *h = handover_parse(good, strlen(good));

	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "name")), "watchtower");
	json_decref(h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(handover_parse(bad[i], strlen(bad[i])));
}

static void test_handover_store_and_load(void **state)
{
	char dir[64] = "/tmp/refit-handover-XXXXXX", path[128];
	struct refit_err e = { 0 };
	json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:s}", "from", ID1, "to", ID2, "name", "w1", "image", "r:1",
			      "digest", "sha256:ab"), *back;

	assert_non_null(mkdtemp(dir));
	assert_null(handover_load(dir));
	assert_int_equal(handover_store(dir, h, &e), 0);
	back = handover_load(dir);
	assert_non_null(back);
	assert_true(json_equal(back, h));
	json_decref(back);
	snprintf(path, sizeof(path), "%s/%s", dir, HANDOVER_READY);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(ID2 "\n", f);
	fclose(f);
	assert_int_equal(handover_store(dir, NULL, &e), 0);
	assert_null(handover_load(dir));
	assert_int_equal(access(path, F_OK), -1);
	json_decref(h);
	rmdir(dir);
}

/* A writer killed between its write and its rename leaves ID.json.tmp: the next journal_open drops it. */
static void test_journal_open_drops_torn_writes(void **state)
{
	char dir[64] = "/tmp/refit-journal-XXXXXX", path[160], cmd[128];
	struct refit_err e = { 0 };
	struct journal *j = NULL;
	json_t *pending;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ops", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/ops/9b60af7a2dcb616a.json.tmp", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("{\"id\":\"9b60af7a2dcb616a\",\"kind\":\"rollback\",\"st", f);
	fclose(f);
	assert_int_equal(journal_open(&j, dir, 0, &e), 0);
	assert_int_equal(access(path, F_OK), -1);
	pending = journal_pending(j);
	assert_int_equal(json_array_size(pending), 0);
	json_decref(pending);
	journal_close(j);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo_docker_and_podman),
		cmocka_unit_test(test_mountinfo_without_a_container),
		cmocka_unit_test(test_handover_file_is_checked),
		cmocka_unit_test(test_handover_store_and_load),
		cmocka_unit_test(test_journal_open_drops_torn_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
