/*
 * libdevvm (hosted): dropping privileges (runas.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "libdevvm/errno.h"
#include "libdevvm/runas.h"
#include "libdevvm/sock.h"

static int runas_id(const char *s, const char **end, unsigned long *v)
{
    char *e;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    *v = strtoul(s, &e, 10);
    *end = e;
    return errno || *v == 0 || *v >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

int devvm_run_as_parse(const char *spec, uid_t *uid, gid_t *gid)
{
    unsigned long u, g;
    const char *end;

    if (runas_id(spec, &end, &u) || *end != ':' ||
        runas_id(end + 1, &end, &g) || *end) {
        return -DEVVM_EINVAL;
    }
    *uid = u;
    *gid = g;
    return 0;
}

int devvm_run_as(uid_t uid, gid_t gid, const char **what)
{
    pid_t parent = getppid();
    int pdeath = 0;

    prctl(PR_GET_PDEATHSIG, &pdeath);
    if (setgroups(1, &gid) < 0) {
        *what = "setgroups";
        return -errno;
    }
    if (setgid(gid) < 0) {
        *what = "setgid";
        return -errno;
    }
    if (setuid(uid) < 0) {
        *what = "setuid";
        return -errno;
    }
    if (setuid(0) == 0) {
        *what = "dropping root (setuid(0) still works)";
        return -EPERM;
    }
    if (pdeath) {
        prctl(PR_SET_PDEATHSIG, pdeath);
        if (getppid() != parent) {
            raise(pdeath);
        }
    }
    return 0;
}

bool devvm_peer_allowed(int fd, uid_t starter)
{
    uid_t uid;

    return !devvm_sock_peer_uid(fd, &uid) &&
           (uid == geteuid() || uid == starter);
}
