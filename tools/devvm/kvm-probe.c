/*
 * devvm-kvm-probe: is KVM on this host worth using?
 *
 * Opening /dev/kvm is not enough: on some hosts (nested or emulated
 * virtualisation) guest code under KVM runs orders of magnitude slower
 * than under TCG.  This probe creates a VM with one vCPU, runs a tight
 * 16-bit loop of a million iterations and times it.  Natively that takes
 * well under a millisecond; the probe calls KVM usable when it finishes
 * within --limit-ms (default 200).
 *
 *   devvm-kvm-probe [--device=PATH] [--limit-ms=N] [--quiet]
 *
 * Exit status: 0 usable, 1 unusable (the reason on stdout), 2 bad usage.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOOP_ITERATIONS 1000000

/* mov ecx, LOOP_ITERATIONS; 1: dec ecx; jnz 1b; hlt  (16-bit real mode) */
static const uint8_t guest_code[] = {
    0x66, 0xb9,
    LOOP_ITERATIONS & 0xff, (LOOP_ITERATIONS >> 8) & 0xff,
    (LOOP_ITERATIONS >> 16) & 0xff, (LOOP_ITERATIONS >> 24) & 0xff,
    0x66, 0x49,
    0x75, 0xfc,
    0xf4,
};

static bool quiet;

static void on_alarm(int sig)
{
    (void)sig;  /* only interrupts KVM_RUN */
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int unusable(const char *fmt, const char *what, int err)
{
    printf("kvm: unusable: ");
    printf(fmt, what);
    if (err) {
        printf(": %s", strerror(err));
    }
    printf("\n");
    return 1;
}

static int probe(const char *device, long limit_ms)
{
    struct kvm_userspace_memory_region region = { 0 };
    struct kvm_sregs sregs;
    struct kvm_regs regs = { 0 };
    struct sigaction sa = { 0 };
    struct itimerval it = { 0 };
    struct kvm_run *run;
    double start, elapsed;
    int kvm, vm, vcpu, mmap_size;
    void *mem;

    kvm = open(device, O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        return unusable("cannot open %s", device, errno);
    }
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        return unusable("%s speaks an unexpected KVM API version", device, 0);
    }
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        return unusable("%s", "KVM_CREATE_VM failed", errno);
    }
    mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return unusable("%s", "mmap of guest memory failed", errno);
    }
    memcpy(mem, guest_code, sizeof(guest_code));
    region.memory_size = 0x1000;
    region.userspace_addr = (uintptr_t)mem;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return unusable("%s", "KVM_SET_USER_MEMORY_REGION failed", errno);
    }
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu < 0 || mmap_size <= 0) {
        return unusable("%s", "KVM_CREATE_VCPU failed", errno);
    }
    run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        return unusable("%s", "mmap of the vCPU run area failed", errno);
    }
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        return unusable("%s", "KVM_GET_SREGS failed", errno);
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    regs.rip = 0;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 ||
        ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        return unusable("%s", "setting the vCPU registers failed", errno);
    }

    /* Bound the run: SIGALRM makes KVM_RUN return EINTR. */
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    it.it_value.tv_sec = limit_ms / 1000;
    it.it_value.tv_usec = (limit_ms % 1000) * 1000;
    it.it_interval.tv_usec = 10000;     /* keep kicking if one is missed */

    start = now_ms();
    setitimer(ITIMER_REAL, &it, NULL);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR && now_ms() - start >= limit_ms) {
                printf("kvm: unusable: a %d-iteration guest loop did not "
                       "finish in %ld ms (natively it takes under 1 ms)\n",
                       LOOP_ITERATIONS, limit_ms);
                return 1;
            }
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return unusable("%s", "KVM_RUN failed", errno);
        }
        if (run->exit_reason == KVM_EXIT_HLT) {
            break;
        }
        if (run->exit_reason != KVM_EXIT_INTR) {
            printf("kvm: unusable: unexpected exit reason %u\n",
                   run->exit_reason);
            return 1;
        }
    }
    elapsed = now_ms() - start;
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    if (!quiet) {
        printf("kvm: usable: a %d-iteration guest loop took %.2f ms\n",
               LOOP_ITERATIONS, elapsed);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *device = "/dev/kvm";
    long limit_ms = 200;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--device=", 9)) {
            device = argv[i] + 9;
        } else if (!strncmp(argv[i], "--limit-ms=", 11)) {
            char *end;

            limit_ms = strtol(argv[i] + 11, &end, 10);
            if (*end || limit_ms <= 0 || limit_ms > 60000) {
                fprintf(stderr, "devvm-kvm-probe: bad --limit-ms\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = true;
        } else {
            fprintf(stderr, "usage: devvm-kvm-probe [--device=PATH] "
                    "[--limit-ms=N] [--quiet]\n");
            return 2;
        }
    }
    return probe(device, limit_ms);
}
