/* SPDX-License-Identifier: MIT */
/*
 * Mark sections: what lets a page log's writers mark with no lock and no locked instruction
 * of their own (the OR into the log is the only one), while a taker retires a half of the log
 * and STOP frees it.
 *
 * A writer thread brackets its marks with marks_enter() / marks_exit(): plain stores to a
 * counter of its own (odd while inside). marks_wait() returns once every writer that was
 * inside when it was called has left, so whatever it may have read before (which half is
 * current, whether the log is alive) it no longer uses. Between a writer's announcement and
 * its reads sits only a compiler barrier; the waiter makes up for the missing hardware fence
 * with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on every CPU
 * running a thread of this process (userspace RCU's "memb" flavour). Where the kernel lacks
 * it, writers fall back to a full fence of their own.
 */
#ifndef DMALOG_MARKERS_H
#define DMALOG_MARKERS_H

#include <stdint.h>

struct marker {
	uint64_t seq;	     /* odd while inside a mark section */
	int in_use;	     /* a thread owns it */
	struct marker *next; /* set once, before the marker is published */
};

/* initial-exec: a writer reaches its marker without a call into the dynamic linker. */
extern __thread struct marker *marks_self __attribute__((tls_model("initial-exec")));
extern int marks_need_fence;

/* The calling thread's marker, registered on first use. */
struct marker *marks_register(void);

static inline struct marker *marks_enter(void)
{
	struct marker *m = marks_self ? marks_self : marks_register();

	__atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&marks_need_fence, __ATOMIC_RELAXED))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	else
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return m;
}

static inline void marks_exit(struct marker *m)
{
	/* Release: the marks made inside happen before a waiter that sees us gone. */
	__atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
}

/* Call once before any log is used: picks membarrier or the fallback. */
void marks_init(void);

/*
 * Publish what the caller changed (with seq_cst stores) to every writer, then wait until
 * every writer inside a mark section has left it.
 */
void marks_wait(void);

#endif
