/*
 * libdevvm (hosted): a server's client threads.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libdevvm/threads.h"

int devvm_threads_start(struct devvm_threads *t, struct devvm_thread *th,
                        void *(*fn)(void *), void *arg)
{
    int ret;

    th->finished = 0;
    pthread_mutex_lock(&t->lock);
    ret = pthread_create(&th->tid, NULL, fn, arg);
    if (!ret) {
        th->next = t->list;
        t->list = th;
        t->count++;
    }
    pthread_mutex_unlock(&t->lock);
    return -ret;
}

void devvm_thread_finished(struct devvm_thread *th)
{
    __atomic_store_n(&th->finished, 1, __ATOMIC_RELEASE);
}

int devvm_thread_is_finished(struct devvm_thread *th)
{
    return __atomic_load_n(&th->finished, __ATOMIC_ACQUIRE);
}

unsigned devvm_threads_count(struct devvm_threads *t)
{
    unsigned n;

    pthread_mutex_lock(&t->lock);
    n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

unsigned devvm_threads_reap(struct devvm_threads *t, int all,
                            void (*reaped)(struct devvm_thread *th,
                                           void *opaque),
                            void *opaque)
{
    struct devvm_thread **pp, *th;
    unsigned left = 0;

    pthread_mutex_lock(&t->lock);
    pp = &t->list;
    while ((th = *pp)) {
        if (!all && !devvm_thread_is_finished(th)) {
            pp = &th->next;
            left++;
            continue;
        }
        *pp = th->next;
        t->count--;
        pthread_mutex_unlock(&t->lock);
        pthread_join(th->tid, NULL);
        reaped(th, opaque);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return left;
}
