// SPDX-License-Identifier: MIT
/* Mark sections: a registry of per-thread counters and the grace period that waits them out. */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "markers.h"

__thread struct marker *marks_self __attribute__((tls_model("initial-exec")));
int marks_need_fence = 1;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct marker *registry;
static pthread_key_t exit_key;

/* A thread that exits leaves the registry (it cannot be inside a section then). */
static void unregister(void *arg)
{
	struct marker *m = arg;

	pthread_mutex_lock(&registry_lock);
	for (struct marker **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	free(m);
}

static void init_once(void)
{
	pthread_key_create(&exit_key, unregister);
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		__atomic_store_n(&marks_need_fence, 0, __ATOMIC_RELAXED);
}

void marks_init(void)
{
	pthread_once(&once, init_once);
}

struct marker *marks_register(void)
{
	struct marker *m = calloc(1, sizeof(*m));

	/* Sixteen bytes once per thread: without them no write could be logged safely. */
	if (!m)
		abort();
	marks_init();
	pthread_mutex_lock(&registry_lock);
	m->next = registry;
	registry = m;
	pthread_mutex_unlock(&registry_lock);
	pthread_setspecific(exit_key, m);
	marks_self = m;
	return m;
}

void marks_wait(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&marks_need_fence, __ATOMIC_RELAXED))
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	pthread_mutex_lock(&registry_lock);
	for (struct marker *m = registry; m; m = m->next) {
		uint64_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);

		/* Sections are a few instructions long; a preempted writer needs its CPU back. */
		while (seq & 1 && __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE) == seq)
			sched_yield();
	}
	pthread_mutex_unlock(&registry_lock);
}
