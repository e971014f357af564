/*
 * libdevvm (hosted): a server's client threads, one per connection.  A
 * server embeds a struct devvm_thread in its per-client state, starts
 * the thread with devvm_threads_start(), has it call
 * devvm_thread_finished() last, and joins the finished ones with
 * devvm_threads_reap() (or all of them when it stops).  Process-mode
 * devices and devvm-gateway both keep their clients this way.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_THREADS_H
#define LIBDEVVM_THREADS_H

#include <pthread.h>
#include <stddef.h>

struct devvm_thread {
    pthread_t tid;
    int finished;                   /* atomic */
    struct devvm_thread *next;      /* the list's lock */
};

struct devvm_threads {
    pthread_mutex_t lock;
    struct devvm_thread *list;
    unsigned count;                 /* started, not reaped yet (lock) */
};

#define DEVVM_THREADS_INITIALIZER { PTHREAD_MUTEX_INITIALIZER, NULL, 0 }

/* The @type that embeds @th as its @member. */
#define devvm_thread_owner(th, type, member) \
    ((type *)((char *)(th) - offsetof(type, member)))

/*
 * Start @fn(@arg) on a new thread for @th, which stays on @t's list
 * until it is reaped.  0 or a negative errno (@th is then not listed).
 */
int devvm_threads_start(struct devvm_threads *t, struct devvm_thread *th,
                        void *(*fn)(void *), void *arg);

/* The last thing a thread started on @th does. */
void devvm_thread_finished(struct devvm_thread *th);

/* Whether @th's thread called devvm_thread_finished(). */
int devvm_thread_is_finished(struct devvm_thread *th);

/* How many threads of @t have not been reaped. */
unsigned devvm_threads_count(struct devvm_threads *t);

/*
 * Join the threads of @t that finished (with @all, every one: the
 * caller told them to stop first), then call @reaped(@th, @opaque) for
 * each, without @t's lock, to free what it holds.  Returns how many are
 * left.
 */
unsigned devvm_threads_reap(struct devvm_threads *t, int all,
                            void (*reaped)(struct devvm_thread *th,
                                           void *opaque),
                            void *opaque);

#endif /* LIBDEVVM_THREADS_H */
