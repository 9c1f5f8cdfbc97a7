/* The command-line scanner of args.h. */
#include <string.h>

#include "refit/args.h"

void args_init(struct args *a, int argc, char **argv, int first)
{
	a->argc = argc;
	a->argv = argv;
	a->next = first;
	a->no_more = false;
	a->word = NULL;
}

int args_next(struct args *a, const struct arg_opt *table, size_t n, const char **val)
{
	const char *w, *eq;
	size_t len;

	for (;;) {
		if (a->next >= a->argc)
			return ARG_DONE;
		w = a->argv[a->next++];
		*val = w;
		a->word = w;
		if (a->no_more || w[0] != '-' || strcmp(w, "-") == 0)
			return ARG_WORD;
		if (strcmp(w, "--") != 0)
			break;
		a->no_more = true;
	}
	for (size_t i = 0; i < n; i++)
		if (table[i].alias && strcmp(w, table[i].alias) == 0)
			return table[i].id;
	if (strncmp(w, "--", 2) != 0)
		return ARG_UNKNOWN;
	eq = strchr(w + 2, '=');
	len = eq ? (size_t)(eq - (w + 2)) : strlen(w + 2);
	for (size_t i = 0; i < n; i++) {
		if (strlen(table[i].name) != len || strncmp(table[i].name, w + 2, len) != 0)
			continue;
		if (!table[i].value)
			return eq ? ARG_BAD_VALUE : table[i].id;
		if (eq) {
			*val = eq + 1;
		} else if (a->next < a->argc) {
			*val = a->argv[a->next++];
		} else {
			return ARG_NO_VALUE;
		}
		return table[i].id;
	}
	return ARG_UNKNOWN;
}

int args_rest(const struct args *a, char ***argv)
{
	*argv = a->argv + a->next;
	return a->argc - a->next;
}
