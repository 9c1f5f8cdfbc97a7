/* `refit reload PID`: make the daemon PID reload its configuration and say whether it took it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "refit/daemon.h"

#define RELOAD_WAIT_SECONDS 60 /* the daemon reads and checks the file at once; it never waits for a pass */

static int run_reload(struct refit_config *cfg)
{
	union sigval ask = { .sival_int = RELOAD_ASK };
	struct timespec left = { .tv_sec = RELOAD_WAIT_SECONDS };
	sigset_t set;
	siginfo_t si;
	char *end;
	long pid;

	(void)cfg; /* the daemon reads the configuration; a broken file is its to refuse */
	if (opts.nargs != 1) {
		fprintf(stderr, "refit reload: name the daemon's process id (ExecReload=refit reload $MAINPID)\n");
		return ERR_USAGE;
	}
	errno = 0;
	pid = strtol(opts.args[0], &end, 10);
	if (errno || end == opts.args[0] || *end || pid <= 1 || pid > 0x3fffffff) {
		fprintf(stderr, "refit reload: '%.32s' is not a process id\n", opts.args[0]);
		return ERR_USAGE;
	}
	/* The answer is a SIGUSR1 from PID: blocked first, so it waits for sigtimedwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (sigqueue((pid_t)pid, SIGHUP, ask) < 0) {
		fprintf(stderr, "refit reload: cannot signal process %ld: %s\n", pid, strerror(errno));
		return ERR_FAILED;
	}
	for (;;) {
		struct timespec t0, t1;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		sig = sigtimedwait(&set, &si, &left);
		if (sig < 0 && errno == EINTR) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			left.tv_sec -= t1.tv_sec - t0.tv_sec;
			if (left.tv_sec > 0)
				continue;
		}
		if (sig < 0) {
			fprintf(stderr, "refit reload: process %ld did not answer within %d s (is it refit daemon?)\n",
				pid, RELOAD_WAIT_SECONDS);
			return ERR_FAILED;
		}
		if (si.si_pid != (pid_t)pid || si.si_code != SI_QUEUE)
			continue; /* not the daemon's answer */
		break;
	}
	if (si.si_value.sival_int != RELOAD_APPLIED) {
		fprintf(stderr, "refit reload: the daemon refused the new configuration and keeps the running one "
				"(the reason is in its log and in systemctl status)\n");
		return ERR_USAGE;
	}
	printf("configuration reloaded (taking over now, or when the running pass ends)\n");
	return 0;
}

const struct command cmd_reload = {
	.name = "reload",
	.run = run_reload,
	.takes_names = true,
	.options = 0,
	.usage = "refit reload PID",
	.help = "Make refit daemon (process PID) reload its configuration and wait for its answer:\n"
		"exit 0 when it took the new configuration (at once, or when the running pass\n"
		"ends), 2 when it refused it (the running one is kept; the reason is in its log and\n"
		"its systemd STATUS=). The unit's ExecReload runs it, so that `systemctl reload`\n"
		"fails on a refused configuration. No configuration is read here.\n",
	.no_config = true,
};
