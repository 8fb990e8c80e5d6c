/*
 * Placeholder until the user-mode network (branch netuser: libslirp in the
 * bootvm-net-user helper) lands: that branch's net_user.c replaces this file.
 */
#include "backends/net_user.h"

#include "util/log.h"

struct net_backend *net_user_start(const struct vm_net_config *cfg)
{
	(void)cfg;
	log_error("--net user: user-mode networking is not available in this build "
		  "(use --net tap=NAME)");
	return NULL;
}
