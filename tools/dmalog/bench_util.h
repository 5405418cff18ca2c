/* SPDX-License-Identifier: MIT */
/* What every benchmark shares: a clock, the machine's measured limits, one output format. */
#ifndef DMALOG_BENCH_UTIL_H
#define DMALOG_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_opts {
	bool json;
	bool quick; /* smaller sizes, for smoke runs */
};

double bench_now(void);

/* Best-of-N sequential read bandwidth in bytes/s over a buffer larger than the caches. */
double bench_read_bandwidth(void);
/* The median of @n values (sorts them): the machines are noisy, benches repeat. */
double bench_median(double *v, int n);

/* xorshift64*: cheap deterministic randomness. */
uint64_t bench_rand(uint64_t *state);

/* Keep a value alive so the compiler cannot drop the work that produced it. */
void bench_sink(uint64_t v);

/*
 * One result: @value in @unit, the straightforward implementation's @baseline in the same
 * unit, and the machine @limit (0 when there is none); ratio_to_limit = value / limit.
 */
void bench_print(const struct bench_opts *o, const char *bench, const char *name, double value,
		 const char *unit, double baseline, double limit);

int bench_bitmap(const struct bench_opts *o);
int bench_report(const struct bench_opts *o);
int bench_iopt(const struct bench_opts *o);
int bench_devtrack(const struct bench_opts *o);
int bench_migrate(const struct bench_opts *o);
int bench_vfio_user(const struct bench_opts *o);

#endif
