// SPDX-License-Identifier: MIT
/* The emulated IOTLB: direct-mapped, one seqlock per entry. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "iotlb.h"

#define TAG_VALID 1ULL
#define VAL_W	  1ULL
#define VAL_D	  2ULL

struct iotlb_entry {
	uint64_t seq; /* odd while being written */
	uint64_t tag; /* pfn << 1 | TAG_VALID */
	uint64_t val; /* pa | VAL_W | VAL_D */
};

struct iotlb {
	uint32_t mask;
	struct iotlb_entry *e;
};

int iotlb_create(uint32_t entries, struct iotlb **out)
{
	struct iotlb *tlb;

	if (!entries || (entries & (entries - 1)))
		return -EINVAL;
	tlb = calloc(1, sizeof(*tlb));
	if (!tlb)
		return -ENOMEM;
	tlb->e = calloc(entries, sizeof(*tlb->e));
	if (!tlb->e) {
		free(tlb);
		return -ENOMEM;
	}
	tlb->mask = entries - 1;
	*out = tlb;
	return 0;
}

void iotlb_destroy(struct iotlb *tlb)
{
	if (!tlb)
		return;
	free(tlb->e);
	free(tlb);
}

static struct iotlb_entry *slot(struct iotlb *tlb, uint64_t pfn)
{
	return &tlb->e[(pfn ^ (pfn >> 17)) & tlb->mask];
}

bool iotlb_lookup(struct iotlb *tlb, uint64_t pfn, struct iotlb_val *v)
{
	struct iotlb_entry *e = slot(tlb, pfn);
	uint64_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE), tag, val;

	if (s1 & 1)
		return false;
	tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
	val = __atomic_load_n(&e->val, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != s1 || tag != (pfn << 1 | TAG_VALID))
		return false;
	v->pa = val & ~0xfffULL;
	v->writable = val & VAL_W;
	v->dirty = val & VAL_D;
	return true;
}

static uint64_t lock_entry(struct iotlb_entry *e)
{
	for (;;) {
		uint64_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);

		if (!(s & 1) && __atomic_compare_exchange_n(&e->seq, &s, s + 1, false,
							    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			/* Readers that see the new data must also see the odd sequence. */
			__atomic_thread_fence(__ATOMIC_RELEASE);
			return s + 1;
		}
		sched_yield();
	}
}

static void unlock_entry(struct iotlb_entry *e, uint64_t s)
{
	__atomic_store_n(&e->seq, s + 1, __ATOMIC_RELEASE);
}

void iotlb_fill(struct iotlb *tlb, uint64_t pfn, const struct iotlb_val *v, uint64_t gen,
		const uint64_t *gen_now)
{
	struct iotlb_entry *e = slot(tlb, pfn);
	uint64_t s = lock_entry(e);

	if (__atomic_load_n(gen_now, __ATOMIC_SEQ_CST) == gen) {
		__atomic_store_n(&e->tag, pfn << 1 | TAG_VALID, __ATOMIC_RELAXED);
		__atomic_store_n(&e->val,
				 v->pa | (v->writable ? VAL_W : 0) | (v->dirty ? VAL_D : 0),
				 __ATOMIC_RELAXED);
	}
	unlock_entry(e, s);
}

static bool tag_in(uint64_t tag, uint64_t first_pfn, uint64_t last_pfn)
{
	return (tag & TAG_VALID) && (tag >> 1) >= first_pfn && (tag >> 1) <= last_pfn;
}

/*
 * The caller bumped the generation first. Either we see a fill's odd sequence here and wait
 * for it under the lock, or that fill locks later and sees the new generation and gives up
 * (both sides use sequentially consistent operations: a Dekker pair).
 */
static void drop_if(struct iotlb_entry *e, uint64_t first_pfn, uint64_t last_pfn)
{
	uint64_t s = __atomic_load_n(&e->seq, __ATOMIC_SEQ_CST), tag;

	if (!(s & 1) && !tag_in(__atomic_load_n(&e->tag, __ATOMIC_RELAXED), first_pfn, last_pfn))
		return;
	s = lock_entry(e);
	tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
	if (tag_in(tag, first_pfn, last_pfn))
		__atomic_store_n(&e->tag, 0, __ATOMIC_RELAXED);
	unlock_entry(e, s);
}

void iotlb_invalidate(struct iotlb *tlb, uint64_t first_pfn, uint64_t last_pfn)
{
	/* A short range looks at its own slots; a long one sweeps the whole cache. */
	if (last_pfn - first_pfn < tlb->mask) {
		for (uint64_t pfn = first_pfn; pfn <= last_pfn; pfn++)
			drop_if(slot(tlb, pfn), first_pfn, last_pfn);
		return;
	}
	for (uint32_t i = 0; i <= tlb->mask; i++)
		drop_if(&tlb->e[i], first_pfn, last_pfn);
}
