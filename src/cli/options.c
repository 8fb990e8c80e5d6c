/* What the subcommands share about their command lines. */
#include <getopt.h>
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

int cli_option_error(const char *cmd, int c, char **argv, const struct option *longopts)
{
	/*
	 * An unknown short option inside a group ("-xv") leaves optind on its
	 * word, so argv[optind - 1] is not always the culprit: short options are
	 * named from optopt. A long option always ends its word.
	 */
	const char *word = optind > 0 ? argv[optind - 1] : "";
	bool is_long = !strncmp(word, "--", 2) && word[2];
	int len = is_long ? (int)strcspn(word, "=") : 0;
	int matches = 0;

	if (c == ':') {
		if (is_long)
			log_error("%s: option '%.*s' needs a value (see bootvm %s --help)",
				  cmd, len, word, cmd);
		else
			log_error("%s: option '-%c' needs a value (see bootvm %s --help)",
				  cmd, optopt, cmd);
		return CLI_USAGE;
	}
	if (!optopt && is_long) {
		for (const struct option *o = longopts; o->name; o++)
			matches += !strncmp(o->name, word + 2, (size_t)len - 2);
		log_error("%s: %s option '%.*s' (see bootvm %s --help)", cmd,
			  matches > 1 ? "ambiguous" : "unknown", len, word, cmd);
		return CLI_USAGE;
	}
	/* getopt_long() reports a value given to a flag with the flag's val in optopt. */
	for (const struct option *o = longopts; is_long && word[len] == '=' && o->name; o++) {
		if (o->val == optopt && o->has_arg == no_argument) {
			log_error("%s: option '%.*s' takes no value (see bootvm %s --help)",
				  cmd, len, word, cmd);
			return CLI_USAGE;
		}
	}
	if (optopt > ' ' && optopt < 0x7f)
		log_error("%s: unknown option '-%c' (see bootvm %s --help)", cmd, optopt, cmd);
	else
		log_error("%s: unknown option '%s' (see bootvm %s --help)", cmd, word, cmd);
	return CLI_USAGE;
}
