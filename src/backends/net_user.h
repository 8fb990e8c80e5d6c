/*
 * User-mode networking: libslirp in a helper process, bootvm-net-user
 * (src/backends/net_user_helper.c), or passt, reached over a stream socket.
 */
#pragma once

#include "backends/net.h"
#include "vmm/config.h"

/*
 * Start the helper for cfg and wait until its forwards are bound:
 *  - VM_NET_USER (hostfwd rules, restrict): $BOOTVM_NET_USER if set, else
 *    bootvm-net-user next to our own executable;
 *  - VM_NET_PASST (hostfwd rules): $BOOTVM_PASST if set, else passt in $PATH,
 *    with --net user's addresses (guest 10.0.2.15/24, gateway 10.0.2.2).
 * NULL with one line naming --net user/passt and why (helper missing, a host
 * port taken, the helper died or hung). Destroying the backend closes the socket,
 * on which the helper exits, and reaps it.
 *
 * Call it from a thread that outlives the VM (the main thread): the helper
 * dies with the thread that started it (PR_SET_PDEATHSIG).
 */
struct net_backend *net_user_start(const struct vm_net_config *cfg);
