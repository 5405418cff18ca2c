// SPDX-License-Identifier: MIT
/* Benchmark plumbing: clock, machine limits measured in the same run, output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile uint64_t sink;

void bench_sink(uint64_t v)
{
	sink += v;
}

uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

double bench_read_bandwidth(void)
{
	const size_t bytes = 256u << 20;
	const size_t words = bytes / 8;
	uint64_t *buf = malloc(bytes);
	double best = 0;

	if (!buf)
		return 0;
	memset(buf, 1, bytes);
	for (int pass = 0; pass < 5; pass++) {
		uint64_t a = 0, b = 0, c = 0, d = 0;
		double t0 = bench_now(), dt;

		for (size_t i = 0; i < words; i += 4) {
			a += buf[i];
			b += buf[i + 1];
			c += buf[i + 2];
			d += buf[i + 3];
		}
		dt = bench_now() - t0;
		bench_sink(a + b + c + d);
		if (bytes / dt > best)
			best = bytes / dt;
	}
	free(buf);
	return best;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_print(const struct bench_opts *o, const char *bench, const char *name, double value,
		 const char *unit, double baseline, double limit)
{
	if (o->json) {
		printf("{\"bench\":\"%s\",\"case\":\"%s\",\"value\":%.4g,\"unit\":\"%s\","
		       "\"baseline\":%.4g,\"limit\":",
		       bench, name, value, unit, baseline);
		if (limit > 0)
			printf("%.4g,\"ratio_to_limit\":%.3f}\n", limit, value / limit);
		else
			printf("null,\"ratio_to_limit\":null}\n");
	} else {
		printf("%-8s %-22s %10.3f %-7s  x%-7.1f vs straightforward", bench, name, value,
		       unit, baseline > 0 ? value / baseline : 0);
		if (limit > 0)
			printf("   %5.1f%% of limit %.3f %s", 100 * value / limit, limit, unit);
		printf("\n");
	}
	fflush(stdout);
}
