// SPDX-License-Identifier: MIT
/* Mark sections: a registry of per-thread counters and the grace period that waits them out. */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "markers.h"

__thread struct marker *marks_self __attribute__((tls_model("initial-exec")));
int marks_need_fence = 1;

static pthread_once_t once = PTHREAD_ONCE_INIT;
/*
 * Every marker a thread ever had, pushed lock-free and never freed: a thread that exits hands
 * its marker back (in_use 0) for the next thread to take. Neither registering nor waiting takes
 * a lock, so a busy reporter can never keep a writer from starting.
 */
static struct marker *registry;
static pthread_key_t exit_key;

static void hand_back(void *arg)
{
	struct marker *m = arg;

	/* Outside any section (seq even) by now: waiters pass it by. */
	__atomic_store_n(&m->in_use, 0, __ATOMIC_RELEASE);
}

/*
 * In a child after fork() only the forking thread lives on: a marker another thread held,
 * perhaps inside a section, must not be waited for there.
 */
static void after_fork_in_child(void)
{
	for (struct marker *m = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); m; m = m->next) {
		if (m == marks_self)
			continue;
		if (m->seq & 1)
			m->seq++;
		m->in_use = 0;
	}
}

static void init_once(void)
{
	pthread_key_create(&exit_key, hand_back);
	pthread_atfork(NULL, NULL, after_fork_in_child);
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		__atomic_store_n(&marks_need_fence, 0, __ATOMIC_RELAXED);
}

void marks_init(void)
{
	pthread_once(&once, init_once);
}

struct marker *marks_register(void)
{
	struct marker *m;

	marks_init();
	for (m = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); m; m = m->next) {
		int free_one = 0;

		if (__atomic_compare_exchange_n(&m->in_use, &free_one, 1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			break;
	}
	if (!m) {
		/* Sixteen bytes once per thread: without them no write could be logged safely. */
		m = calloc(1, sizeof(*m));
		if (!m)
			abort();
		m->in_use = 1;
		m->next = __atomic_load_n(&registry, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(&registry, &m->next, m, true, __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED))
			;
	}
	pthread_setspecific(exit_key, m);
	marks_self = m;
	return m;
}

void marks_wait(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&marks_need_fence, __ATOMIC_RELAXED))
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	for (struct marker *m = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); m; m = m->next) {
		uint64_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);

		/* Sections are a few instructions long; a preempted writer needs its CPU back. */
		while (seq & 1 && __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE) == seq)
			sched_yield();
	}
}
