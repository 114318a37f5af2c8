/*
 * tests/maxrss.c - `maxrss FILE COMMAND [ARG...]`: run COMMAND, write its
 * peak resident set size in KiB (wait4's ru_maxrss) to FILE, and exit with
 * its status.  tests/cli_check.sh compares `train check`'s memory estimate
 * with what a training run really held.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: maxrss FILE COMMAND [ARG...]\n", stderr);
		return 64;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("maxrss: fork");
		return 71;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("maxrss: exec");
		_exit(127);
	}
	int status;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("maxrss: wait4");
		return 71;
	}
	FILE *f = fopen(argv[1], "w");
	if (!f || fprintf(f, "%ld\n", ru.ru_maxrss) < 0 || fclose(f)) {
		perror(argv[1]);
		return 74;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
