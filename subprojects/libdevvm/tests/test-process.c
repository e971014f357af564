/*
 * Process mode's device type data (sdk/process.c): devvm_main() runs the
 * device's type_init once, before its first client; every instance sees
 * the data, which is read only from then on; a failing type_init ends
 * the process with status 1 and a reason.  Each case runs devvm_main()
 * in a child process serving one end of a socket pair (--fd), whose
 * other end the test closes at once: the instance is made, then the
 * connection ends.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdevvm/sdk.h"
#include "tap.h"

#define TYPE_MAGIC  0x7e57da7au

enum { TYPE_OK, TYPE_FAILS, INIT_WRITES };

struct type_data {
    uint32_t magic;
};

/* set in the child, before devvm_main() */
static int mode;
static unsigned type_inits;

static int t_type_init(const struct devvm_device *desc, void *data)
{
    struct type_data *t = data;

    type_inits++;
    if (mode == TYPE_FAILS) {
        return -DEVVM_ERANGE;
    }
    t->magic = TYPE_MAGIC;
    return 0;
}

/* The instance's init: its result is the process's exit status. */
static int t_init(struct devvm_dev *dev)
{
    const struct type_data *t = devvm_type_data(dev);

    if (mode == INIT_WRITES) {
        ((struct type_data *)t)->magic = 0;     /* must fault */
        return 0;
    }
    return t && t->magic == TYPE_MAGIC && type_inits == 1 ? 0 : -DEVVM_EIO;
}

static struct devvm_device t_desc = {
    .name = "test-process",
    .vendor_id = 0x1af4,
    .device_id = 0x10ff,
    .type_data_size = sizeof(struct type_data),
    .type_init = t_type_init,
    .init = t_init,
};

/*
 * devvm_main() in a child in @m; its wait status, and the first line it
 * wrote on stderr in @err.
 */
static int run(int m, char *err, size_t size)
{
    int sv[2], pipefd[2], status = 0;
    size_t len = 0;
    char fd_arg[16], rest[256];
    ssize_t n;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || pipe(pipefd) < 0) {
        printf("Bail out! socketpair or pipe\n");
        exit(1);
    }
    pid = fork();
    if (pid == 0) {
        char *argv[] = { "test-process", "--fd", fd_arg, NULL };
        int null = open("/dev/null", O_WRONLY);

        close(sv[0]);
        close(pipefd[0]);
        dup2(null, STDOUT_FILENO);          /* "ready" */
        dup2(pipefd[1], STDERR_FILENO);
        snprintf(fd_arg, sizeof(fd_arg), "%d", sv[1]);
        mode = m;
        _exit(devvm_main(&t_desc, 3, argv));
    }
    close(sv[1]);
    close(pipefd[1]);
    close(sv[0]);
    while ((n = read(pipefd[0], len < size - 1 ? err + len : rest,
                     len < size - 1 ? size - 1 - len : sizeof(rest))) > 0) {
        len += len < size - 1 ? n : 0;
    }
    err[len] = '\0';
    err[strcspn(err, "\n")] = '\0';
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    return status;
}

int main(void)
{
    char err[4096];
    int st;

    st = run(TYPE_OK, err, sizeof(err));
    TAP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "type_init ran once, before the instance, which saw its "
              "data (status 0x%x)", st);

    st = run(TYPE_FAILS, err, sizeof(err));
    TAP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "a failing type_init: exit status 1 (status 0x%x)", st);
    TAP_CHECK(!strncmp(err, "test-process: the device's type_init failed: ",
                       45), "... with the reason: %s", err);

    /* SIGSEGV, or a sanitizer's report and exit or abort */
    st = run(INIT_WRITES, err, sizeof(err));
    TAP_CHECK(!WIFEXITED(st) || WEXITSTATUS(st) != 0,
              "a write to the type's data faults (status 0x%x)", st);
    return tap_done();
}
