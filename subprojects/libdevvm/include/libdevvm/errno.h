/*
 * libdevvm: errno values for code that has no <errno.h>: the
 * freestanding core, device models on the SDK, device VM images.
 *
 * They are Linux's numbers, which is also what the wire carries in error
 * replies and completion statuses; hosted code checks at build time that
 * they equal <errno.h>'s.  The error rule of the whole library
 * (docs/devvm/libdevvm.rst, "Errors"): functions return 0 (or a count)
 * on success and a negative value on failure, either a negative errno
 * (-DEVVM_EINVAL, or any -errno from the system or the peer) or a
 * negative enum devvm_err (libdevvm/wire.h), whose values lie below
 * -DEVVM_ERR_BASE so that the two cannot be confused.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_ERRNO_H
#define LIBDEVVM_ERRNO_H

#define DEVVM_EPERM         1
#define DEVVM_ENOENT        2
#define DEVVM_EIO           5
#define DEVVM_E2BIG         7
#define DEVVM_EAGAIN        11
#define DEVVM_ENOMEM        12
#define DEVVM_EFAULT        14
#define DEVVM_EBUSY         16
#define DEVVM_EEXIST        17
#define DEVVM_ENODEV        19
#define DEVVM_EINVAL        22
#define DEVVM_ENOSPC        28
#define DEVVM_ERANGE        34
#define DEVVM_EUSERS        87
#define DEVVM_ENOTSUP       95
#define DEVVM_ETIMEDOUT     110

/* Every errno is above -DEVVM_ERR_BASE (Linux's MAX_ERRNO is 4095). */
#define DEVVM_ERR_BASE      4096

#endif /* LIBDEVVM_ERRNO_H */
