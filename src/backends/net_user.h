/*
 * User-mode networking: libslirp in a helper process, bootvm-net-user
 * (src/backends/net_user_helper.c), reached over a stream socket.
 */
#pragma once

#include "backends/net.h"
#include "vmm/config.h"

/*
 * Start the helper for cfg (a VM_NET_USER interface: its hostfwd rules and
 * restrict) and wait until its forwards are bound. The helper is
 * $BOOTVM_NET_USER if set, else bootvm-net-user next to our own executable.
 * NULL with one line naming --net user and why (helper missing, a host port
 * taken, the helper died or hung). Destroying the backend closes the socket,
 * on which the helper exits, and reaps it.
 *
 * Call it from a thread that outlives the VM (the main thread): the helper
 * dies with the thread that started it (PR_SET_PDEATHSIG).
 */
struct net_backend *net_user_start(const struct vm_net_config *cfg);
