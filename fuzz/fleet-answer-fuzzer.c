/* libFuzzer target: the API answers the fleet reads (operation records, health, container lists, errors). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every string kept from an answer is printable ASCII. */
static void printable(const char *s)
{
	for (; s && *s; s++)
		if (*s < ' ' || *s > '~')
			__builtin_trap();
}

static void check_op(const struct fleet_op *op)
{
	if (op->changed + op->failed > op->n || op->n > FLEET_MAX_CONTAINERS)
		__builtin_trap();
	printable(op->error);
	for (size_t i = 0; i < op->n; i++) {
		if (!op->v[i].name || !op->v[i].status)
			__builtin_trap();
		printable(op->v[i].name);
		printable(op->v[i].status);
		printable(op->v[i].image);
		printable(op->v[i].old_digest);
		printable(op->v[i].new_digest);
		printable(op->v[i].error);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct fleet_op op;
	char id[17], version[64], msg[128];
	struct refit_err er = { 0 };
	char *err = er.msg;
	bool paused;

	for (int rb = 0; rb < 2; rb++) {
		if (fleet_parse_op(body, size, rb, &op, &er) == 0) {
			check_op(&op);
			fleet_op_free(&op);
		} else if (!err[0] || op.v || op.n) {
			__builtin_trap();
		}
	}
	if (fleet_parse_containers(body, size, &op, &er) == 0) {
		check_op(&op);
		fleet_op_free(&op);
	}
	if (fleet_parse_accepted(body, size, id) == 0 && (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16))
		__builtin_trap();
	if (fleet_parse_health(body, size, version, sizeof(version), &paused, &er) < 0)
		printable(err);
	printable(version);
	fleet_parse_error(body, size, msg, sizeof(msg));
	printable(msg);
	return 0;
}
