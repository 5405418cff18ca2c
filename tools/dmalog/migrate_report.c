// SPDX-License-Identifier: MIT
/*
 * What `dmalog migrate` shows: a line (a bar on a terminal) per round, a closing summary or
 * its JSON, per-round CSV, and an SVG plot of dirty pages and bandwidth per round.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BAR_WIDTH 24

static const char *const tracker_names[MIG_TRACKERS] = {"all", "device", "iommu", "type1"};
static const char *const workload_names[MIG_WORKLOADS] = {"sequential", "random", "hotcold",
							  "bursty"};

const char *mig_tracker_name(enum mig_tracker t)
{
	return tracker_names[t];
}

const char *mig_workload_name(enum dmalog_workload w)
{
	return workload_names[w];
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

static double round_mbps(const struct dmalog_mig_round *rd)
{
	return rd->ms > 0 ? (double)rd->bytes / 1e6 / (rd->ms / 1e3) : 0;
}

void report_progress(const struct mig_options *o, const struct dmalog_mig_round *rd,
		     uint64_t guest_pages, bool final)
{
	FILE *f = o->json ? stderr : stdout;
	char label[16];

	if (o->quiet)
		return;
	snprintf(label, sizeof(label), final ? "final" : "round %u", rd->round);
	if (isatty(fileno(f))) {
		unsigned int fill =
			(unsigned int)((rd->pages * BAR_WIDTH + guest_pages - 1) / guest_pages);
		char bar[BAR_WIDTH * 3 + 1] = "";

		for (unsigned int i = 0; i < BAR_WIDTH; i++)
			strcat(bar, i < fill ? "\u2588" : "\u2591");
		fprintf(f, "%-8s %s %8llu pages %8.1f MiB %7.1f ms %7.0f MB/s\n", label, bar,
			(unsigned long long)rd->pages, mib(rd->bytes), rd->ms, round_mbps(rd));
	} else {
		fprintf(f,
			"%s: %llu pages, %.1f MiB device data, %.1f MiB sent in %.1f ms (%.0f "
			"MB/s)",
			label, (unsigned long long)rd->pages, mib(rd->device_bytes), mib(rd->bytes),
			rd->ms, round_mbps(rd));
		if (!final)
			fprintf(f, "; %.0f pages/s dirtied", rd->dirty_rate);
		fprintf(f, "\n");
	}
	fflush(f);
}

void report_event(FILE *f, const char *event, const char *fields)
{
	struct timespec ts;

	if (!f)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(f, "{\"timestamp\":{\"seconds\":%lld,\"microseconds\":%ld},\"event\":\"%s\"%s%s}\n",
		(long long)ts.tv_sec, ts.tv_nsec / 1000, event, fields && *fields ? "," : "",
		fields ? fields : "");
	fflush(f);
}

void json_quote(char *out, size_t len, const char *s)
{
	size_t n = 0;

	if (len < 3)
		return;
	out[n++] = '"';
	for (; *s && n + 8 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			n += (size_t)snprintf(out + n, len - n, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(out + n, len - n, "\\u%04x", c);
		else
			out[n++] = (char)c;
	}
	out[n++] = '"';
	out[n] = 0;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			fprintf(f, "\\u%04x", (unsigned char)*s); /* a byte, as a code point */
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* Text that came from the peer: control bytes escaped, and at most 300 bytes of it. */
static void print_escaped(FILE *f, const char *s)
{
	for (size_t i = 0; s[i] && i < 300; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static double last_dirty_rate(const struct mig_result *r)
{
	return r->nrounds > 1 ? r->rounds[r->nrounds - 2].dirty_rate : 0;
}

/*
 * QEMU's query-migrate, field for field, so tools written for QEMU read it unchanged: times
 * in ms, mbps in megabits per second, ram counts in bytes and pages: duplicate counts the pages
 * sent as zero-page markers, normal the pages sent with their data.
 */
static void qemu_json(const struct mig_options *o, const struct mig_result *r, FILE *f)
{
	uint64_t pages = 0, precopy = 0, final = 0;
	double secs = r->migration_ms / 1e3;

	for (uint32_t i = 0; i < r->nrounds; i++) {
		pages += r->rounds[i].pages;
		if (r->outcome == DMALOG_MIG_MIGRATED && i + 1 == r->nrounds)
			final += r->rounds[i].bytes;
		else
			precopy += r->rounds[i].bytes;
	}
	fprintf(f,
		",\"qemu\":{\"status\":\"%s\",\"total-time\":%.0f,\"setup-time\":%.0f,"
		"\"downtime\":%.0f,\"expected-downtime\":%.0f,\"ram\":{\"transferred\":%llu,"
		"\"remaining\":%llu,\"total\":%llu,\"duplicate\":%llu,\"normal\":%llu,"
		"\"normal-bytes\":%llu,\"mbps\":%.2f,\"dirty-pages-rate\":%.0f,"
		"\"dirty-sync-count\":%u,\"precopy-bytes\":%llu,\"downtime-bytes\":%llu,"
		"\"pages-per-second\":%.0f}}",
		r->cancelled			    ? "cancelled"
		: r->outcome == DMALOG_MIG_MIGRATED ? "completed"
						    : "failed",
		r->migration_ms, r->setup_ms, r->downtime_ms, r->expected_downtime_ms,
		(unsigned long long)r->bytes_sent,
		(unsigned long long)(r->outcome == DMALOG_MIG_MIGRATED ? 0 : r->guest_bytes),
		(unsigned long long)r->guest_bytes, (unsigned long long)r->zero_pages,
		(unsigned long long)(pages - r->zero_pages),
		(unsigned long long)((pages - r->zero_pages) << MIG_PAGE_SHIFT),
		r->bandwidth * 8 / 1e6, last_dirty_rate(r), r->nrounds, (unsigned long long)precopy,
		(unsigned long long) final, secs > 0 ? (double)pages / secs : 0);
}

static void summary_json(const struct mig_options *o, const struct mig_result *r, FILE *f)
{
	fprintf(f,
		"{\"verified\":%s,\"completed\":%s,\"pages_compared\":%llu,"
		"\"mismatched_pages\":%llu,\"devices_compared\":%u,\"mismatched_devices\":%u,"
		"\"rounds\":%u,\"downtime_ms\":%.3f,\"downtime_limit_ms\":%.3f,"
		"\"total_ms\":%.3f,\"migration_ms\":%.3f,\"verify_ms\":%.3f,\"prefault_ms\":%.3f,"
		"\"zero_pages\":%llu,"
		"\"bytes_sent\":%llu,"
		"\"guest_bytes\":%llu,\"tracker\":\"%s\",\"channels\":%u,"
		"\"workload\":\"%s\",\"devices\":%u,\"bandwidth_mb_s\":%.1f,"
		"\"dirty_rate_pages_s\":%.0f,\"tracker_errors\":%llu,\"pages_per_round\":[",
		r->verified ? "true" : "false",
		r->outcome == DMALOG_MIG_MIGRATED ? "true" : "false",
		(unsigned long long)r->pages_compared, (unsigned long long)r->pages_mismatched,
		r->devices_compared, r->devices_mismatched, r->nrounds, r->downtime_ms,
		o->downtime_limit_ms, r->total_ms, r->migration_ms, r->verify_ms, r->prefault_ms,
		(unsigned long long)r->zero_pages, (unsigned long long)r->bytes_sent,
		(unsigned long long)r->guest_bytes, mig_tracker_name(o->tracker), o->channels,
		mig_workload_name(o->workload), o->ndevices, r->bandwidth / 1e6, last_dirty_rate(r),
		(unsigned long long)r->tracker_errors);
	for (uint32_t i = 0; i < r->nrounds; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)r->rounds[i].pages);
	fprintf(f, "],\"sync_ms_per_round\":[");
	for (uint32_t i = 0; i < r->nrounds; i++)
		fprintf(f, "%s%.3f", i ? "," : "", r->rounds[i].sync_ms);
	fprintf(f,
		"],\"downtime_parts_ms\":{\"stop\":%.3f,\"final_sync\":%.3f,\"pages\":%.3f,"
		"\"device_state\":%.3f,\"destination\":%.3f}",
		r->downtime_parts[0], r->downtime_parts[1], r->downtime_parts[2],
		r->downtime_parts[3], r->downtime_parts[4]);
	fprintf(f, ",\"outcome\":\"%s\",\"status\":\"%s\"", dmalog_mig_outcome_name(r->outcome),
		r->cancelled			    ? "cancelled"
		: r->outcome == DMALOG_MIG_MIGRATED ? "completed"
						    : "failed");
	if (mig_error_code(r))
		fprintf(f, ",\"error_code\":\"%s\"", mig_error_code(r));
	else
		fprintf(f, ",\"error_code\":null");
	fprintf(f,
		",\"converged\":%s,\"switchover_reason\":\"%s\",\"expected_downtime_ms\":%.3f,"
		"\"downtime_exceeded\":%s,\"throttle_percent\":%u,\"not_converged_why\":",
		r->converged ? "true" : "false", dmalog_mig_switchover_name(r->switchover),
		r->expected_downtime_ms,
		r->outcome == DMALOG_MIG_MIGRATED && r->downtime_ms > o->downtime_limit_ms
			? "true"
			: "false",
		r->throttle_percent);
	if (r->not_converged_why[0])
		json_string(f, r->not_converged_why);
	else
		fprintf(f, "null");
	if (r->outcome == DMALOG_MIG_ROLLED_BACK || r->outcome == DMALOG_MIG_OUTCOME_UNKNOWN)
		fprintf(f, ",\"source_running\":%s", r->source_running ? "true" : "false");
	qemu_json(o, r, f);
	fprintf(f, ",\"error\":");
	if (r->error[0])
		json_string(f, r->error);
	else
		fprintf(f, "null");
	fprintf(f, "}\n");
}

void report_summary(const struct mig_options *o, const struct mig_result *r, FILE *f)
{
	if (o->json) {
		summary_json(o, r, f);
		return;
	}
	if (r->outcome == DMALOG_MIG_OUTCOME_UNKNOWN) {
		fprintf(f, "migration not confirmed: ");
		print_escaped(f, r->error);
		fputc('\n', f);
		fprintf(f, "source: guest left paused, devices stopped: it may be running at the "
			   "destination; resume it here only if the destination does not run it\n");
		return;
	}
	if (r->outcome == DMALOG_MIG_NOT_STARTED) {
		fprintf(f, "migration did not start: ");
		print_escaped(f, r->error);
		fprintf(f, "\nsource: the guest was never touched\n");
		return;
	}
	if (r->outcome != DMALOG_MIG_MIGRATED) {
		fprintf(f, r->cancelled ? "migration cancelled: " : "migration failed: ");
		print_escaped(f, r->error);
		fputc('\n', f);
		fprintf(f, "source: %s\n",
			r->source_running
				? "rolled back: guest running, devices RUNNING, dirty tracking "
				  "stopped, memory intact"
				: "NOT back to a clean running state");
		return;
	}
	fprintf(f, "%s: %llu pages and %u devices compared, %llu pages and %u devices mismatched\n",
		r->verified ? "migrated and verified" : "MIGRATED BUT NOT VERIFIED",
		(unsigned long long)r->pages_compared, r->devices_compared,
		(unsigned long long)r->pages_mismatched, r->devices_mismatched);
	if (!r->verified && r->error[0]) {
		fprintf(f, "  why              ");
		print_escaped(f, r->error);
		fputc('\n', f);
	}
	fprintf(f, "  rounds           %u (%u precopy + final)\n", r->nrounds, r->nrounds - 1);
	fprintf(f, "  pages per round ");
	for (uint32_t i = 0; i < r->nrounds; i++)
		fprintf(f, " %llu", (unsigned long long)r->rounds[i].pages);
	fprintf(f, "\n  dirty rate       %.0f pages/s (last precopy round)\n", last_dirty_rate(r));
	fprintf(f, "  bandwidth        %.0f MB/s\n", r->bandwidth / 1e6);
	fprintf(f, "  downtime         %.1f ms (limit %.0f ms, %.1f ms expected)\n", r->downtime_ms,
		o->downtime_limit_ms, r->expected_downtime_ms);
	if (r->outcome == DMALOG_MIG_MIGRATED) {
		const double *p = r->downtime_parts;

		fprintf(f,
			"  downtime parts   stop %.1f, final sync %.1f, pages %.1f, device state "
			"%.1f, destination %.1f ms (fixed part %.1f ms)\n",
			p[0], p[1], p[2], p[3], p[4], p[0] + p[1] + p[4]);
	}
	fprintf(f, "  switchover       %s%s", dmalog_mig_switchover_name(r->switchover),
		r->converged ? " (converged)" : " (did NOT converge)");
	if (r->throttle_percent)
		fprintf(f, ", CPU throttled to %u%%", 100 - r->throttle_percent);
	fprintf(f, "\n");
	if (!r->converged && r->not_converged_why[0])
		fprintf(f, "  why not          %s\n", r->not_converged_why);
	if (r->downtime_ms > o->downtime_limit_ms)
		fprintf(f,
			"  warning          the downtime (%.0f ms) exceeded the limit (%.0f ms)\n",
			r->downtime_ms, o->downtime_limit_ms);
	fprintf(f, "  total time       %.2f s (migration %.2f s, then the proof %.2f s)\n",
		r->total_ms / 1e3, r->migration_ms / 1e3, r->verify_ms / 1e3);
	fprintf(f,
		"  setup            guest RAM backed in %.0f ms before the clock; the engine's "
		"setup %.1f ms\n",
		r->prefault_ms, r->setup_ms);
	fprintf(f, "  bytes sent       %.1f MiB for a %.1f MiB guest (%.2fx)", mib(r->bytes_sent),
		mib(r->guest_bytes), (double)r->bytes_sent / (double)r->guest_bytes);
	if (r->zero_pages)
		fprintf(f, "; %llu zero pages sent as markers", (unsigned long long)r->zero_pages);
	fprintf(f, "\n");
	fprintf(f, "  tracker          %s, %llu report errors recovered\n",
		mig_tracker_name(o->tracker), (unsigned long long)r->tracker_errors);
	fprintf(f, "  connections      %u (pages sharded over them, a thread each per end)\n",
		o->channels);
}

int report_csv(const struct mig_result *r, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	/* One header line, with units. The final round has no dirty rate: the guest was stopped. */
	fprintf(f, "round,final,pages_sent,device_data_bytes,bytes_on_wire,round_ms,"
		   "bandwidth_MB_per_s,dirty_pages_per_s,sync_ms\n");
	for (uint32_t i = 0; i < r->nrounds; i++) {
		const struct dmalog_mig_round *rd = &r->rounds[i];
		bool final = r->outcome == DMALOG_MIG_MIGRATED && i + 1 == r->nrounds;

		fprintf(f, "%u,%d,%llu,%llu,%llu,%.3f,%.1f,", rd->round, final,
			(unsigned long long)rd->pages, (unsigned long long)rd->device_bytes,
			(unsigned long long)rd->bytes, rd->ms, round_mbps(rd));
		if (!final)
			fprintf(f, "%.0f", rd->dirty_rate);
		fprintf(f, ",%.3f\n", rd->sync_ms);
	}
	return fclose(f) ? -errno : 0;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about @n ticks up to @max. */
static double tick_step(double max, int n)
{
	double raw = max / n, p = pow(10, floor(log10(raw > 0 ? raw : 1)));

	if (raw <= p)
		return p;
	if (raw <= 2 * p)
		return 2 * p;
	return raw <= 5 * p ? 5 * p : 10 * p;
}

/* 1234567 -> "1.2M", 4500 -> "4.5k": tick labels that fit. */
static void short_number(char *out, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(out, len, "%.3gM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.3gk", v / 1e3);
	else
		snprintf(out, len, "%.3g", v);
}

/*
 * The per-round chart: pages sent as bars (left axis), the round's bandwidth as a line (right
 * axis), ticks and units on both, round numbers that stay readable at any count, a legend,
 * the switchover marked with the measured downtime against the limit, and what was migrated.
 */
int report_plot(const struct mig_options *o, const struct mig_result *r, const char *path)
{
	const double w = 760, h = 440, left = 80, right = 80, top = 78, bottom = 64;
	const double pw = w - left - right, ph = h - top - bottom;
	bool final_round = r->outcome == DMALOG_MIG_MIGRATED && r->nrounds;
	double max_pages = 1, max_bw = 1, slot, pstep, bstep;
	uint32_t every;
	char label[32];
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (uint32_t i = 0; i < r->nrounds; i++) {
		if ((double)r->rounds[i].pages > max_pages)
			max_pages = (double)r->rounds[i].pages;
		if (round_mbps(&r->rounds[i]) > max_bw)
			max_bw = round_mbps(&r->rounds[i]);
	}
	pstep = tick_step(max_pages, 5);
	bstep = tick_step(max_bw, 5);
	max_pages = ceil(max_pages / pstep) * pstep;
	max_bw = ceil(max_bw / bstep) * bstep;
	slot = pw / (r->nrounds ? r->nrounds : 1);
	every = r->nrounds > 15 ? (r->nrounds + 14) / 15 : 1; /* at most 15 round labels */
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		"viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		w, h, w, h);
	fprintf(f,
		"<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">dmalog migrate: "
		"pages sent and bandwidth per round</text>\n",
		w / 2);
	fprintf(f,
		"<text x=\"%.0f\" y=\"44\" text-anchor=\"middle\" fill=\"#555\">%llu MiB guest, "
		"%u device%s, tracker %s, workload %s, %s</text>\n",
		w / 2, (unsigned long long)(r->guest_bytes >> 20), o->ndevices,
		o->ndevices == 1 ? "" : "s", mig_tracker_name(o->tracker),
		mig_workload_name(o->workload),
		r->outcome == DMALOG_MIG_MIGRATED ? (r->verified ? "verified" : "NOT verified")
						  : "failed");
	/* Grid and left axis (pages). */
	for (double v = 0; v <= max_pages + pstep / 2; v += pstep) {
		double y = top + ph - ph * v / max_pages;

		short_number(label, sizeof(label), v);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
			"fill=\"#4477aa\">%s</text>\n",
			left, y, left + pw, y, left - 6, y + 4, label);
	}
	/* Right axis (MB/s). */
	for (double v = 0; v <= max_bw + bstep / 2; v += bstep) {
		double y = top + ph - ph * v / max_bw;

		short_number(label, sizeof(label), v);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#cc6677\">%s</text>\n",
			left + pw + 6, y + 4, label);
	}
	fprintf(f,
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n",
		left, top, left, top + ph, left + pw, top, left + pw, top + ph, left, top + ph,
		left + pw, top + ph);
	fprintf(f,
		"<text transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\" "
		"fill=\"#4477aa\">pages sent</text>\n"
		"<text transform=\"translate(%.0f %.0f) rotate(90)\" text-anchor=\"middle\" "
		"fill=\"#cc6677\">bandwidth (MB/s)</text>\n"
		"<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">round</text>\n",
		top + ph / 2, w - 18, top + ph / 2, left + pw / 2, h - 14);
	for (uint32_t i = 0; i < r->nrounds; i++) {
		double bh = ph * (double)r->rounds[i].pages / max_pages;
		double x = left + slot * i;
		bool last = final_round && i + 1 == r->nrounds;

		fprintf(f,
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"%s\"><title>round %u: %llu pages</title></rect>\n",
			x + slot * 0.15, top + ph - bh, slot * 0.7, bh,
			last ? "#ddaa33" : "#4477aa", r->rounds[i].round,
			(unsigned long long)r->rounds[i].pages);
		/* Round labels, every @every, none crowding the final one. */
		if (last || (i % every == 0 &&
			     !(final_round && (double)(r->nrounds - 1 - i) * slot < 34))) {
			snprintf(label, sizeof(label), last ? "final" : "%u", r->rounds[i].round);
			fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n",
				x + slot / 2, top + ph + 16, label);
		}
	}
	fprintf(f, "<polyline fill=\"none\" stroke=\"#cc6677\" stroke-width=\"2\" points=\"");
	for (uint32_t i = 0; i < r->nrounds; i++)
		fprintf(f, "%.1f,%.1f ", left + slot * i + slot / 2,
			top + ph - ph * round_mbps(&r->rounds[i]) / max_bw);
	fprintf(f, "\"/>\n");
	/* The switchover: where the guest stopped, and what it cost against the limit. */
	if (final_round) {
		double x = left + slot * (r->nrounds - 1);

		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#333\" "
			"stroke-dasharray=\"4 3\"/>\n"
			"<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"end\" fill=\"%s\">switchover "
			"(%s): downtime %.0f ms, limit %.0f ms</text>\n",
			x, top, x, top + ph, x - 4, top + 14,
			r->downtime_ms > o->downtime_limit_ms ? "#bb2222" : "#333",
			dmalog_mig_switchover_name(r->switchover), r->downtime_ms,
			o->downtime_limit_ms);
	}
	/* Legend. */
	fprintf(f,
		"<rect x=\"%.0f\" y=\"56\" width=\"12\" height=\"10\" fill=\"#4477aa\"/>"
		"<text x=\"%.0f\" y=\"65\">pages sent</text>\n"
		"<rect x=\"%.0f\" y=\"56\" width=\"12\" height=\"10\" fill=\"#ddaa33\"/>"
		"<text x=\"%.0f\" y=\"65\">final round</text>\n"
		"<line x1=\"%.0f\" y1=\"61\" x2=\"%.0f\" y2=\"61\" stroke=\"#cc6677\" "
		"stroke-width=\"2\"/><text x=\"%.0f\" y=\"65\">bandwidth</text>\n",
		left, left + 16, left + 110, left + 126, left + 220, left + 240, left + 244);
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}
