/*
 * libdevvm (hosted): dropping privileges after set-up, for the host
 * programs that run device code or face a device VM (devvm-gateway, the
 * SDK's process runner): started by root, they listen first, then run
 * as an unprivileged uid (devvm-coordinator's --device-uids).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_RUNAS_H
#define LIBDEVVM_RUNAS_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Parse "UID:GID" (decimal, neither 0 nor -1) into @uid and @gid.
 * Returns 0, or -DEVVM_EINVAL.
 */
int devvm_run_as_parse(const char *spec, uid_t *uid, gid_t *gid);

/*
 * Become @uid:@gid with no supplementary group but @gid, and check that
 * root cannot be regained.  The parent-death signal, which Linux clears
 * when the credentials change, is set again (and raised at once when
 * the parent is already gone).  Returns 0, or a negative errno; @what is
 * then the step that failed.
 */
int devvm_run_as(uid_t uid, gid_t gid, const char **what);

/*
 * Whether the peer of the UNIX socket @fd may talk to this program: it
 * runs as this program's (effective) uid, or as @starter, the uid that
 * started it before devvm_run_as() (root: a QEMU started with
 * "-run-with user=" connects before it drops).
 */
bool devvm_peer_allowed(int fd, uid_t starter);

#endif /* LIBDEVVM_RUNAS_H */
