// SPDX-License-Identifier: MIT
/*
 * dmalog bench migrate: the same guest and workload migrated with each tracker, measured in
 * one run. The value is bytes sent per guest byte; the baseline is type1, the straightforward
 * tracker that resends everything mapped; the limit is the machine's read bandwidth, against
 * which the first round's send rate (copy, checksum, socket, apply) is put.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "cli.h"

static const enum mig_tracker order[] = {MIG_TRACK_TYPE1, MIG_TRACK_IOMMU, MIG_TRACK_DEVICE,
					 MIG_TRACK_ALL};

static double first_round_rate(const struct mig_result *r)
{
	return r->nrounds && r->rounds[0].ms > 0
		       ? (double)r->rounds[0].bytes / (r->rounds[0].ms / 1e3)
		       : 0;
}

int bench_migrate(const struct bench_opts *bo)
{
	double bandwidth = bench_read_bandwidth(), baseline = 0;
	struct mig_options o;
	int failed = 0;

	/* The defaults' devices and rates, on a smaller guest with a hot/cold workload. */
	mig_options_default(&o);
	o.mem_bytes = bo->quick ? 64ULL << 20 : 512ULL << 20;
	o.workload = DMALOG_WORKLOAD_HOTCOLD;
	o.max_rounds = 10;
	o.quiet = true;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct mig_result r;
		double ratio, rate;

		o.tracker = order[i];
		migrate_run(&o, &r);
		ratio = (double)r.bytes_sent / (double)r.guest_bytes;
		rate = first_round_rate(&r);
		if (order[i] == MIG_TRACK_TYPE1)
			baseline = ratio;
		failed |= !r.verified;
		if (bo->json)
			printf("{\"bench\":\"migrate\",\"case\":\"%s\",\"value\":%.4g,"
			       "\"unit\":\"bytes_per_guest_byte\",\"baseline\":%.4g,\"limit\":null,"
			       "\"ratio_to_limit\":null,\"verified\":%s,\"rounds\":%u,"
			       "\"downtime_ms\":%.1f,\"total_ms\":%.1f,\"guest_bytes\":%llu,"
			       "\"send_rate\":%.4g,\"read_bandwidth\":%.4g,"
			       "\"send_ratio_to_bandwidth\":%.3f}\n",
			       mig_tracker_name(order[i]), ratio, baseline,
			       r.verified ? "true" : "false", r.nrounds, r.downtime_ms, r.total_ms,
			       (unsigned long long)r.guest_bytes, rate, bandwidth,
			       bandwidth > 0 ? rate / bandwidth : 0);
		else
			printf("migrate  %-7s %6.2f x guest sent (type1 %.2f)  %2u rounds  "
			       "downtime "
			       "%6.1f ms  total %7.1f ms  first round %5.0f MB/s = %4.1f%% of read "
			       "bandwidth  %s\n",
			       mig_tracker_name(order[i]), ratio, baseline, r.nrounds,
			       r.downtime_ms, r.total_ms, rate / 1e6,
			       bandwidth > 0 ? 100 * rate / bandwidth : 0,
			       r.verified ? "verified" : r.error);
		fflush(stdout);
		free(r.rounds);
	}
	return failed;
}
