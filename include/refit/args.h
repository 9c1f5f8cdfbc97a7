/*
 * The one command-line scanner: `refit` and `refit fleet` both read their
 * words through it, each with its own table of long options.
 */
#ifndef REFIT_ARGS_H
#define REFIT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct arg_opt {
	const char *name; /* without the leading "--" */
	bool value;       /* takes a value: --name VALUE or --name=VALUE */
	int id;           /* returned for it; > 0 */
	const char *alias; /* another spelling ("-h" for help), or NULL */
};

enum {
	ARG_DONE = 0,       /* no words left */
	ARG_WORD = -1,      /* *VAL is a word that is no option (a command, a name, or anything after "--") */
	ARG_UNKNOWN = -2,   /* *VAL is an option the table does not have */
	ARG_NO_VALUE = -3,  /* *VAL is an option given without the value it takes */
	ARG_BAD_VALUE = -4, /* *VAL is a flag given a value ("--json=1") */
};

struct args {
	int argc;
	char **argv;
	int next;     /* the next word's index */
	bool no_more; /* "--" was seen: every later word is a word */
	const char *word; /* the last word returned, as written (the option, not its value) */
};

/* Scan ARGC/ARGV from word FIRST. */
void args_init(struct args *a, int argc, char **argv, int first);

/*
 * The next word: an option's id from TABLE (N entries), with *VAL its value
 * (or how it was written, for a flag), or one of ARG_*.
 */
int args_next(struct args *a, const struct arg_opt *table, size_t n, const char **val);

/* The words not scanned yet (after the last one returned): their count, and ARGV from there. */
int args_rest(const struct args *a, char ***argv);

#endif
