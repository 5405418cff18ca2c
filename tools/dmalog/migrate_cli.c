// SPDX-License-Identifier: MIT
/*
 * dmalog migrate: options, and the two processes. With neither --listen nor --connect it
 * forks its own destination, which listens on a socket in a private directory.
 */
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static const struct mig_options defaults = {
	.mem_bytes = 1ULL << 30,
	.devices = {MIG_DEV_NIC, MIG_DEV_STORAGE},
	.ndevices = 2,
	.workload = DMALOG_WORKLOAD_RANDOM,
	.dma_rate = 50000,
	.cpu_rate = 100000,
	.tracker = MIG_TRACK_ALL,
	.downtime_limit_ms = 300,
	.max_rounds = 30,
	.timeout_ms = 30000,
	.downtime_cap_ms = 10000,
	.inject_round = 2,
	.seed = 1,
	/* Both ends must agree, so not the machine's core count: 2 beat 1 on 2 cores (README). */
	.channels = 2,
};

void mig_options_default(struct mig_options *o)
{
	*o = defaults;
}

static const char *const usage_lines[] = {
	"usage: dmalog migrate [options]",
	"",
	"Live-migrate an emulated guest whose devices keep writing its memory by DMA, then",
	"prove that nothing was lost: every page and device state is compared.",
	"With neither --listen nor --connect, the destination is a second process on a",
	"private UNIX socket.",
	"",
	"guest:",
	"  --mem SIZE             guest RAM, a multiple of 2M (default 1G); laid out as low",
	"                         RAM, the PCI hole, and two high slots with a hole between",
	"  --devices LIST         comma-separated nic|storage, or none (default nic,storage):",
	"                         a nic logs its own DMA (mlx5-like tracker, 2 ranges), a",
	"                         storage device DMAs through the IOMMU",
	"  --device SPEC          a device, repeatable, in place of --devices: nic, storage,",
	"                         or vfio-user:PATH, a device served on the UNIX socket PATH",
	"                         by another process (dmalog serve, say): guest RAM is then",
	"                         shared with it, it DMAs by itself and always logs its own",
	"                         DMA; its state travels as MIG_DATA_READ/WRITE messages",
	"  --dest-device vfio-user:PATH",
	"                         without --listen/--connect: the destination's server for",
	"                         each vfio-user device, in order (another process than the",
	"                         source's: a device cannot be migrated into itself)",
	"  --workload W           sequential|random|hotcold|bursty, for the CPU and every",
	"                         device (default random)",
	"  --dma-rate N           writes per second per device, 0 = unthrottled (default 50000)",
	"  --cpu-rate N           CPU writes per second, 0 = unthrottled (default 100000)",
	"  --seed N               randomness of the workloads (default 1)",
	"  --zero-pages PCT       percent of guest pages that start all zero (default 0):",
	"                         they go as zero-page markers, with no data",
	"",
	"migration:",
	"  --tracker T            how device DMA is tracked (the CPU always has its own log):",
	"                         all    device DMA logging where devices have it, plus",
	"                                iommufd dirty tracking, ORed (default)",
	"                         device every device logs its DMA (VFIO DMA logging)",
	"                         iommu  iommufd dirty tracking only",
	"                         type1  a type1 container: all mapped memory is dirty",
	"  --iommu-pages 4k|huge  IOPTE size for guest RAM: huge leaves (2M/1G) make",
	"                         the IOMMU report whole leaves dirty (default 4k)",
	"  --downtime-limit MS    switch over once the remaining pages and device state",
	"                         would take this long at the measured bandwidth (default 300)",
	"  --max-rounds N         then switch over anyway (default 30), or see below",
	"  --on-no-converge P     at --max-rounds without fitting the limit: switchover",
	"                         (default) or abort (roll back, exit 6)",
	"  --no-auto-converge     do not throttle the CPU; by default, once the guest",
	"                         dirties memory faster than it is sent for two rounds in a",
	"                         row, its CPU runs only part of the time, more each round",
	"                         (devices cannot be throttled), as QEMU's cpu-throttle",
	"  --cpu-throttle-initial N  first throttle, percent (default 20)",
	"  --cpu-throttle-increment N  added per round (default 10)",
	"  --cpu-throttle-max N   at most (default 99)",
	"  --channels N           connections the pages are sharded over, each sent and",
	"                         received on a thread of its own, as QEMU's multifd",
	"                         channels (1-16, default 2; both ends the same)",
	"  --max-bandwidth RATE   bytes per second the stream may use while the guest runs,",
	"                         with k/M/G suffixes (default: no cap), as QEMU's",
	"                         max-bandwidth",
	"  --timeout S            give up on the other end after S seconds of silence on",
	"                         any read or write, or of a connection not taken (default",
	"                         30); after the final state is sent, giving up leaves the",
	"                         guest paused (exit 4)",
	"  --downtime-cap S       the guest may stay stopped at most S seconds (default 10):",
	"                         a final round that does not fit fails and rolls back; an",
	"                         answer that does not come in time leaves it paused (exit 4)",
	"  --listen ADDR          be the destination: host:port (TCP; port 0 picks one and",
	"                         prints it) or a socket path (created mode 0600)",
	"  --connect ADDR         be the source and migrate to a destination at ADDR",
	"                         (these two must match on both ends: --mem, --devices,",
	"                         --psk; the destination refuses another shape at once)",
	"  --psk FILE             TLS with a pre-shared key (one line 'identity:hexkey', as",
	"                         QEMU's keys.psk): only a peer with the same key can take",
	"                         part, and the stream is encrypted. Without it TCP is",
	"                         neither authenticated nor encrypted: use it on a trusted",
	"                         network only, or a UNIX socket",
	"",
	"output:",
	"  --quiet                no progress: only the summary",
	"  --json                 the summary as one JSON object (progress goes to stderr),",
	"                         with a \"qemu\" object in query-migrate's names; a",
	"                         --listen destination prints its result as JSON too",
	"  --csv FILE             per-round figures",
	"  --events FILE|-        JSON lines as it happens, with QMP-style timestamps:",
	"                         setup, active, round (per round), device (the guest is",
	"                         stopped), then completed, failed or cancelled",
	"  --plot FILE.svg        pages sent and bandwidth per round",
	"",
	"failures, for testing a consumer's error paths:",
	"  --inject F[@ROUND]     at precopy round ROUND (default 2; precopy lasts at least",
	"                         that long) make one thing fail:",
	"                         corrupt-stream    a page is damaged after its checksum",
	"                         kill-destination  SIGKILL the destination (not with --connect)",
	"                         tracker-fault     a device tracker's REPORT fails (the",
	"                                           IOMMU's GET_DIRTY_BITMAP without one)",
	"                         device-state      device 0's state is damaged in transit",
	"                         lose-page         a page of the final round arrives stale",
	"                                           (frame intact): the proof must catch it",
	"                         device-mismatch   the last device changes after its state was",
	"                                           saved: the proof must catch it",
	"                         corrupt-channel   a page on page channel 2 (1 with --channels",
	"                                           2) is damaged after its checksum",
	"                         drop-channel      page channel 1 is shut mid-round",
	"                                           (both need --channels 2 or more)",
	"",
	"A switchover that does not fit the limit (max rounds, or a slow final round) is",
	"reported: converged false, the reason, the expected and the measured downtime,",
	"and a warning when the measured downtime exceeded the limit; the status stays 0.",
	"",
	"Exit status: 0 migrated and verified; 1 failed (the source rolled back and runs);",
	"2 usage; 3 migrated but not verified (mismatches, or the proof did not finish);",
	"4 outcome unknown: the final state was sent but the destination never answered,",
	"so the guest is left paused on the source (it may be running at the destination);",
	"5 could not start (no guest touched: bad address, refused connection, too little",
	"memory); 6 did not converge with --on-no-converge abort (rolled back, runs);",
	"7 cancelled by SIGINT, SIGTERM or SIGHUP (rolled back, runs; after the final",
	"state was sent a signal cannot cancel: the hand-off rule decides).",
	"A destination (--listen) exits 0 verified, 3 running but unverified, 1 refused,",
	"5 could not start, 7 cancelled (also while it still waits for its source).",
};

static void migrate_usage(FILE *f)
{
	for (size_t i = 0; i < sizeof(usage_lines) / sizeof(usage_lines[0]); i++)
		fprintf(f, "%s\n", usage_lines[i]);
}

/* "1G", "512M", "64k", "4096": bytes. No sign, no space: strtoull would wrap "-1" to 2^64-1. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -EINVAL;

	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (end == s || *end || (v << shift >> shift) != v)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return end == s || *end || errno ? -EINVAL : 0;
}

/* A finite number of seconds or milliseconds in [lo, hi]: no nan, inf or overflow. */
static int parse_real(const char *s, const char *unit, double lo, double hi, double *out)
{
	char *end;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	if (end == s || errno || (*end && strcmp(end, unit)) || !isfinite(*out) || *out < lo ||
	    *out > hi)
		return -EINVAL;
	return 0;
}

static int pick_tracker(const char *s)
{
	for (int i = 0; i < MIG_TRACKERS; i++)
		if (!strcmp(s, mig_tracker_name((enum mig_tracker)i)))
			return i;
	return -1;
}

static int pick_workload(const char *s)
{
	for (int i = 0; i < MIG_WORKLOADS; i++)
		if (!strcmp(s, mig_workload_name((enum dmalog_workload)i)))
			return i;
	return -1;
}

static int parse_device(const char *s, struct mig_options *o);

/* --devices: in-process kinds only (a vfio-user path would point into this copy). */
static int parse_devices(const char *s, struct mig_options *o)
{
	char buf[256], *save = NULL;
	int ret;

	o->ndevices = 0;
	if (!strcmp(s, "none"))
		return 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strncmp(t, "vfio-user:", 10))
			return -EINVAL;
		ret = parse_device(t, o);
		if (ret)
			return ret;
	}
	return o->ndevices ? 0 : -EINVAL;
}

/* One --device: nic, storage, or vfio-user:PATH (@s must outlive the options: argv). */
static int parse_device(const char *s, struct mig_options *o)
{
	if (o->ndevices == MIG_MAX_DEVICES)
		return -E2BIG;
	if (!strcmp(s, "nic")) {
		o->devices[o->ndevices++] = MIG_DEV_NIC;
	} else if (!strcmp(s, "storage")) {
		o->devices[o->ndevices++] = MIG_DEV_STORAGE;
	} else if (!strncmp(s, "vfio-user:", 10) && s[10]) {
		o->vfu_paths[o->ndevices] = s + 10;
		o->devices[o->ndevices++] = MIG_DEV_VFIO_USER;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* How many of the devices are vfio-user ones. */
static uint32_t remote_devices(const struct mig_options *o)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < o->ndevices; i++)
		n += o->devices[i] == MIG_DEV_VFIO_USER;
	return n;
}

static int parse_inject(const char *s, struct mig_options *o)
{
	static const char *const names[] = {
		"",	     "corrupt-stream",	"kill-destination", "tracker-fault", "device-state",
		"lose-page", "device-mismatch", "corrupt-channel",  "drop-channel"};
	char buf[64], *at;
	uint64_t round;
	int i;

	snprintf(buf, sizeof(buf), "%s", s);
	at = strchr(buf, '@');
	if (at) {
		*at++ = 0;
		if (parse_u64(at, &round) || !round || round > 1000)
			return -EINVAL;
		o->inject_round = (uint32_t)round;
	}
	for (i = 1; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (!strcmp(buf, names[i])) {
			o->inject = (enum mig_inject)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int bad(const char *opt, const char *val)
{
	fprintf(stderr, "dmalog migrate: bad value '%s' for %s (see dmalog migrate --help)\n", val,
		opt);
	return 2;
}

/* A tracker whose report can fail: a device's own, or the IOMMU's. */
static bool has_fault_target(const struct mig_options *o)
{
	/* A vfio-user device's tracker is in its server's process, out of reach. */
	return o->ndevices > remote_devices(o) && o->tracker != MIG_TRACK_TYPE1;
}

/* Returns 0, or an exit status (2 for usage errors, 0 after --help with *done set). */
/* Every option takes a value (--opt VALUE or --opt=VALUE) but these five. */
enum { OPT_HELP = 'h', OPT_JSON = 0x100, OPT_NO_AUTO_CONVERGE, OPT_VERSION, OPT_QUIET, OPT_VALUE };

static const struct option long_options[] = {
	{"help", no_argument, NULL, OPT_HELP},
	{"json", no_argument, NULL, OPT_JSON},
	{"no-auto-converge", no_argument, NULL, OPT_NO_AUTO_CONVERGE},
	{"version", no_argument, NULL, OPT_VERSION},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"mem", required_argument, NULL, OPT_VALUE},
	{"devices", required_argument, NULL, OPT_VALUE},
	{"device", required_argument, NULL, OPT_VALUE},
	{"dest-device", required_argument, NULL, OPT_VALUE},
	{"workload", required_argument, NULL, OPT_VALUE},
	{"tracker", required_argument, NULL, OPT_VALUE},
	{"iommu-pages", required_argument, NULL, OPT_VALUE},
	{"dma-rate", required_argument, NULL, OPT_VALUE},
	{"cpu-rate", required_argument, NULL, OPT_VALUE},
	{"zero-pages", required_argument, NULL, OPT_VALUE},
	{"seed", required_argument, NULL, OPT_VALUE},
	{"downtime-limit", required_argument, NULL, OPT_VALUE},
	{"downtime-cap", required_argument, NULL, OPT_VALUE},
	{"timeout", required_argument, NULL, OPT_VALUE},
	{"on-no-converge", required_argument, NULL, OPT_VALUE},
	{"cpu-throttle-initial", required_argument, NULL, OPT_VALUE},
	{"cpu-throttle-increment", required_argument, NULL, OPT_VALUE},
	{"cpu-throttle-max", required_argument, NULL, OPT_VALUE},
	{"max-bandwidth", required_argument, NULL, OPT_VALUE},
	{"channels", required_argument, NULL, OPT_VALUE},
	{"max-rounds", required_argument, NULL, OPT_VALUE},
	{"listen", required_argument, NULL, OPT_VALUE},
	{"connect", required_argument, NULL, OPT_VALUE},
	{"psk", required_argument, NULL, OPT_VALUE},
	{"csv", required_argument, NULL, OPT_VALUE},
	{"events", required_argument, NULL, OPT_VALUE},
	{"plot", required_argument, NULL, OPT_VALUE},
	{"inject", required_argument, NULL, OPT_VALUE},
	{NULL, 0, NULL, 0},
};

static int parse(int argc, char **argv, struct mig_options *o, bool *done)
{
	bool device_given = false;
	int c, index;

	*o = defaults;
	/* getopt_long wants the command name first: dmalog migrate's arguments follow it. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc + 1, argv - 1, ":h", long_options, &index)) != -1) {
		char opt[64];
		const char *val = optarg;
		uint64_t v;
		int k;

		if (c == OPT_HELP || c == OPT_VERSION) {
			if (c == OPT_HELP)
				migrate_usage(stdout);
			else
				printf("dmalog %s (libdmalog %s)\n", DMALOG_VERSION,
				       dmalog_version());
			*done = true;
			return 0;
		}
		if (c == OPT_JSON) {
			o->json = true;
			continue;
		}
		if (c == OPT_NO_AUTO_CONVERGE) {
			o->no_auto_converge = true;
			continue;
		}
		if (c == OPT_QUIET) {
			o->quiet = true;
			continue;
		}
		if (c == ':') {
			fprintf(stderr, "dmalog migrate: %s needs a value\n", argv[optind - 2]);
			return 2;
		}
		if (c != OPT_VALUE) {
			fprintf(stderr,
				"dmalog migrate: unknown option '%s' (see dmalog migrate --help)\n",
				argv[optind - 2]);
			return 2;
		}
		snprintf(opt, sizeof(opt), "--%s", long_options[index].name);
		if (!strcmp(opt, "--mem")) {
			if (parse_size(val, &o->mem_bytes) || o->mem_bytes < (8ULL << 20) ||
			    o->mem_bytes % (2ULL << 20))
				return bad(opt, val);
		} else if (!strcmp(opt, "--devices")) {
			if (parse_devices(val, o))
				return bad(opt, val);
		} else if (!strcmp(opt, "--device")) {
			if (!device_given)
				o->ndevices = 0;
			device_given = true;
			if (parse_device(val, o))
				return bad(opt, val);
		} else if (!strcmp(opt, "--dest-device")) {
			if (strncmp(val, "vfio-user:", 10) || !val[10] ||
			    o->ndest_vfu_paths == MIG_MAX_DEVICES)
				return bad(opt, val);
			o->dest_vfu_paths[o->ndest_vfu_paths++] = val + 10;
		} else if (!strcmp(opt, "--workload")) {
			if ((k = pick_workload(val)) < 0)
				return bad(opt, val);
			o->workload = (enum dmalog_workload)k;
		} else if (!strcmp(opt, "--tracker")) {
			if ((k = pick_tracker(val)) < 0)
				return bad(opt, val);
			o->tracker = (enum mig_tracker)k;
		} else if (!strcmp(opt, "--iommu-pages")) {
			if (strcmp(val, "4k") && strcmp(val, "huge"))
				return bad(opt, val);
			o->iommu_huge = !strcmp(val, "huge");
		} else if (!strcmp(opt, "--dma-rate")) {
			if (parse_u64(val, &o->dma_rate))
				return bad(opt, val);
		} else if (!strcmp(opt, "--cpu-rate")) {
			if (parse_u64(val, &o->cpu_rate))
				return bad(opt, val);
		} else if (!strcmp(opt, "--zero-pages")) {
			uint64_t pct;

			if (parse_u64(val, &pct) || pct > 100)
				return bad(opt, val);
			o->zero_pct = (uint32_t)pct;
		} else if (!strcmp(opt, "--seed")) {
			if (parse_u64(val, &o->seed))
				return bad(opt, val);
		} else if (!strcmp(opt, "--downtime-limit")) {
			if (parse_real(val, "ms", 0, 1e7, &o->downtime_limit_ms))
				return bad(opt, val);
		} else if (!strcmp(opt, "--downtime-cap")) {
			double sec;

			if (parse_real(val, "s", 0.01, 86400, &sec))
				return bad(opt, val);
			o->downtime_cap_ms = (uint32_t)(sec * 1000);
		} else if (!strcmp(opt, "--on-no-converge")) {
			if (strcmp(val, "switchover") && strcmp(val, "abort"))
				return bad(opt, val);
			o->abort_if_not_converged = !strcmp(val, "abort");
		} else if (!strcmp(opt, "--cpu-throttle-initial") ||
			   !strcmp(opt, "--cpu-throttle-increment") ||
			   !strcmp(opt, "--cpu-throttle-max")) {
			if (parse_u64(val, &v) || !v || v > 99)
				return bad(opt, val);
			if (!strcmp(opt, "--cpu-throttle-initial"))
				o->throttle_initial = (uint32_t)v;
			else if (!strcmp(opt, "--cpu-throttle-increment"))
				o->throttle_increment = (uint32_t)v;
			else
				o->throttle_max = (uint32_t)v;
		} else if (!strcmp(opt, "--max-bandwidth")) {
			if (parse_size(val, &o->max_bandwidth) || !o->max_bandwidth)
				return bad(opt, val);
		} else if (!strcmp(opt, "--channels")) {
			if (parse_u64(val, &v) || !v || v > DMALOG_MIG_MAX_CHANNELS)
				return bad(opt, val);
			o->channels = (uint32_t)v;
		} else if (!strcmp(opt, "--max-rounds")) {
			if (parse_u64(val, &v) || !v || v > 100000)
				return bad(opt, val);
			o->max_rounds = (uint32_t)v;
		} else if (!strcmp(opt, "--timeout")) {
			double sec;

			if (parse_real(val, "s", 0.01, 86400, &sec))
				return bad(opt, val);
			o->timeout_ms = (uint32_t)(sec * 1000);
		} else if (!strcmp(opt, "--listen")) {
			if (!socket_address_valid(val))
				return bad(opt, val);
			o->listen = val;
		} else if (!strcmp(opt, "--connect")) {
			if (!socket_address_valid(val))
				return bad(opt, val);
			o->connect = val;
		} else if (!strcmp(opt, "--psk")) {
			if (access(val, R_OK)) {
				fprintf(stderr, "dmalog migrate: cannot read the key file %s: %s\n",
					val, strerror(errno));
				return 2;
			}
			o->psk = val;
		} else if (!strcmp(opt, "--events")) {
			o->events = val;
		} else if (!strcmp(opt, "--csv")) {
			o->csv = val;
		} else if (!strcmp(opt, "--plot")) {
			o->plot = val;
		} else if (!strcmp(opt, "--inject")) {
			if (parse_inject(val, o))
				return bad(opt, val);
		}
	}
	if (optind <= argc) {
		fprintf(stderr, "dmalog migrate: unexpected argument '%s'\n", argv[optind - 1]);
		return 2;
	}
	if (o->listen && o->connect) {
		fprintf(stderr, "dmalog migrate: --listen and --connect exclude each other\n");
		return 2;
	}
	if (o->inject == MIG_INJECT_KILL_DEST && (o->connect || o->listen)) {
		fprintf(stderr,
			"dmalog migrate: kill-destination needs its own destination process "
			"(no --listen or --connect); kill a remote one yourself\n");
		return 2;
	}
	if (o->inject == MIG_INJECT_TRACKER_FAULT && !has_fault_target(o)) {
		fprintf(stderr, "dmalog migrate: tracker-fault needs a device and a device or "
				"IOMMU tracker (not type1)\n");
		return 2;
	}
	if ((o->inject == MIG_INJECT_CORRUPT_CHANNEL || o->inject == MIG_INJECT_DROP_CHANNEL) &&
	    o->channels < 2) {
		fprintf(stderr, "dmalog migrate: %s needs --channels 2 or more\n",
			o->inject == MIG_INJECT_DROP_CHANNEL ? "drop-channel" : "corrupt-channel");
		return 2;
	}
	if (!o->listen && !o->connect && o->ndest_vfu_paths != remote_devices(o)) {
		fprintf(stderr, "dmalog migrate: each vfio-user device needs its destination's "
				"server (--dest-device vfio-user:PATH)\n");
		return 2;
	}
	if ((o->listen || o->connect) && o->ndest_vfu_paths) {
		fprintf(stderr, "dmalog migrate: --dest-device is for a destination this command "
				"starts; with --listen, --device is this end's\n");
		return 2;
	}
	if ((o->inject == MIG_INJECT_DEVICE_STATE || o->inject == MIG_INJECT_DEVICE_MISMATCH) &&
	    !o->ndevices) {
		fprintf(stderr, "dmalog migrate: device-state needs a device\n");
		return 2;
	}
	return 0;
}

/*
 * The connected @fd as the engine gets it: with --psk, the plain end of a TLS session (*tls
 * set, to finish after the run); without, as it is, and a warning for TCP.
 */
static int secure(const struct mig_options *o, int fd, bool server, struct tls_link **tls,
		  char *err, size_t errlen)
{
	static bool warned; /* once, not once per connection */
	const char *addr = o->listen ? o->listen : o->connect;
	int plain = -1, ret;

	*tls = NULL;
	if (!o->psk) {
		if (addr && socket_is_tcp(fd) && !warned) {
			warned = true;
			fprintf(stderr,
				"dmalog migrate: warning: the link to %s is neither "
				"authenticated nor encrypted (see --psk)\n",
				addr);
		}
		return fd;
	}
	dmalog_mig_socket_setup(fd, o->timeout_ms);
	ret = tls_wrap(fd, server, o->psk, o->timeout_ms, tls, &plain, err, errlen);
	return ret ? ret : plain;
}

/* A migration's connections (--channels of them), each secured on its own with --psk. */
struct conns {
	int fds[DMALOG_MIG_MAX_CHANNELS];
	struct tls_link *tls[DMALOG_MIG_MAX_CHANNELS];
	uint32_t n;
};

/* After the ends have closed their fds: the TLS relays finish. */
static void conns_finish(struct conns *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		tls_finish(c->tls[i]);
	c->n = 0;
}

static void conns_close(struct conns *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		close(c->fds[i]);
	conns_finish(c);
}

/*
 * Every connection, one after the other: accepted on @lfd (@addr NULL) or made to @addr, in
 * the same order on both ends (the engine checks it). 0, or -errno with @err said.
 */
static int conns_open(const struct mig_options *o, int lfd, const char *addr, struct conns *c,
		      char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	while (c->n < o->channels) {
		/* The first connection may take its time; the rest follow it at once. */
		int fd = addr ? socket_connect(addr, (int)o->timeout_ms, err, errlen)
			      : socket_accept(lfd, c->n ? (int)o->timeout_ms : -1, err, errlen);

		/* A signal that is not a cancel (SIGCHLD, say) only restarts the wait. */
		if (fd == -EINTR && !migrate_cancel_asked())
			continue;
		if (fd >= 0)
			fd = secure(o, fd, !addr, &c->tls[c->n], err, errlen);
		if (fd < 0) {
			conns_close(c);
			return fd;
		}
		c->fds[c->n++] = fd;
	}
	return 0;
}

/* Be the destination on --listen. */
static int run_destination(const struct mig_options *o)
{
	char err[200], where[128];
	struct conns c;
	struct guest *g;
	int lfd, ret;

	if (migrate_dest_guest(o, &g))
		return 5;
	lfd = socket_listen(o->listen, err, sizeof(err));
	if (lfd < 0) {
		guest_destroy(g);
		fprintf(stderr, "dmalog migrate: %s\n", err);
		return 5;
	}
	if (socket_describe(lfd, where, sizeof(where)))
		snprintf(where, sizeof(where), "%s", o->listen);
	/* With --json, stdout carries only the result object. */
	fprintf(o->json ? stderr : stdout, "destination: waiting on %s\n", where);
	fflush(NULL);
	ret = conns_open(o, lfd, NULL, &c, err, sizeof(err));
	close(lfd);
	if (ret >= 0) {
		ret = migrate_dest(o, g, c.fds);
		conns_finish(&c);
	} else {
		/* SIGINT, SIGTERM or SIGHUP before the source came: nothing to roll back. */
		fprintf(stderr, "dmalog migrate: %s\n",
			ret == -EINTR ? "cancelled before the source connected" : err);
		guest_destroy(g);
		ret = ret == -EINTR ? 7 : 5;
	}
	if (!strchr(o->listen, ':') || !strncmp(o->listen, "unix:", 5))
		unlink(!strncmp(o->listen, "unix:", 5) ? o->listen + 5 : o->listen);
	return ret;
}

int migrate_run(const struct mig_options *o, struct mig_result *r)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256], path[300], err[200];
	struct conns c;
	int lfd, ret, status;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (o->connect) {
		ret = conns_open(o, -1, o->connect, &c, err, sizeof(err));
		if (ret < 0) {
			snprintf(r->error, sizeof(r->error), "%s", err);
			return ret;
		}
		ret = migrate_source(o, c.fds, 0, r);
		conns_finish(&c);
		return ret;
	}
	/* A private directory (mode 0700) for the socket, under $TMPDIR as usual. */
	snprintf(dir, sizeof(dir), "%s/dmalog-migrate-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		snprintf(r->error, sizeof(r->error), "cannot create a private directory: %s",
			 strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/sock", dir);
	lfd = socket_listen(path, err, sizeof(err));
	if (lfd < 0) {
		snprintf(r->error, sizeof(r->error), "%s", err);
		rmdir(dir);
		return lfd;
	}
	/* No thread exists yet, so the child is a clean copy. */
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct mig_options dest = *o;
		struct guest *g;

		/* Its vfio-user devices are the --dest-device servers, in order. */
		for (uint32_t i = 0, k = 0; i < o->ndevices; i++)
			if (o->devices[i] == MIG_DEV_VFIO_USER)
				dest.vfu_paths[i] = o->dest_vfu_paths[k++];
		if (migrate_dest_guest(&dest, &g))
			_exit(5);
		ret = conns_open(&dest, lfd, NULL, &c, err, sizeof(err));
		close(lfd);
		if (ret < 0)
			_exit(5);
		ret = migrate_dest(&dest, g, c.fds);
		conns_finish(&c);
		_exit(ret);
	}
	close(lfd);
	if (pid < 0) {
		ret = -errno;
		snprintf(r->error, sizeof(r->error), "cannot start the destination: %s",
			 strerror(errno));
	} else {
		ret = conns_open(o, -1, path, &c, err, sizeof(err));
		/* Connected: the name has served, and a kill from now on leaves nothing behind. */
		unlink(path);
		rmdir(dir);
		if (ret < 0) {
			snprintf(r->error, sizeof(r->error), "%s", err);
			kill(pid, SIGKILL);
		} else {
			ret = migrate_source(o, c.fds, pid, r);
			conns_finish(&c);
		}
		waitpid(pid, &status, 0);
	}
	unlink(path);
	rmdir(dir);
	return ret;
}

/* An output file that cannot be written is refused before anything starts, not after. */
static bool writable(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "dmalog migrate: cannot write %s: %s\n", path, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* A "Name:  N kB" line of /proc/meminfo, in bytes; 0 when absent. */
static uint64_t meminfo(const char *name)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)) && sscanf(line + strlen(name), " %llu", &kb))
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

/* What this process's cgroup (v2) still allows, or UINT64_MAX without a limit. */
static uint64_t cgroup_room(void)
{
	char rel[256] = "", path[512];
	unsigned long long max = 0, cur = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");
	bool got = false;

	/* "0::/some/path" */
	if (f) {
		got = fscanf(f, "0::%255s", rel) == 1;
		fclose(f);
	}
	if (!got)
		return UINT64_MAX;
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel);
	f = fopen(path, "r");
	got = f && fscanf(f, "%llu", &max) == 1;
	if (f)
		fclose(f);
	if (!got)
		return UINT64_MAX; /* "max", or no memory controller */
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", rel);
	f = fopen(path, "r");
	if (f && fscanf(f, "%llu", &cur) != 1)
		cur = 0;
	if (f)
		fclose(f);
	return max > cur ? max - cur : 0;
}

/*
 * Each end backs its whole guest before it starts; with no --listen or --connect both ends
 * are on this machine. Refuse with the figure rather than meet the OOM killer halfway.
 */
static int check_memory(const struct mig_options *o)
{
	uint64_t ends = o->listen || o->connect ? 1 : 2;
	uint64_t need = ends * (o->mem_bytes + (64ULL << 20));
	uint64_t avail = meminfo("MemAvailable:"), room = cgroup_room();

	if (room < avail)
		avail = room;
	if (!avail || need <= avail)
		return 0;
	fprintf(stderr,
		"dmalog migrate: a %llu MiB guest needs about %llu MiB here (%s), but only %llu "
		"MiB "
		"is available\n",
		(unsigned long long)(o->mem_bytes >> 20), (unsigned long long)(need >> 20),
		ends == 2 ? "source and destination" : "one end",
		(unsigned long long)(avail >> 20));
	return 5;
}

static void on_signal(int sig)
{
	migrate_cancel_from_signal();
}

/* SIGINT, SIGTERM and SIGHUP cancel cleanly (no SA_RESTART: waits wake up and notice). */
static void catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int cmd_migrate(int argc, char **argv)
{
	struct mig_options o;
	struct mig_result r;
	bool done = false;
	int ret = parse(argc, argv, &o, &done);

	if (ret || done)
		return ret;
	if ((o.csv && !writable(o.csv)) || (o.plot && !writable(o.plot)) ||
	    (o.events && strcmp(o.events, "-") && !writable(o.events)))
		return 2;
	ret = check_memory(&o);
	if (ret)
		return ret;
	catch_signals();
	if (o.listen)
		return run_destination(&o);
	if (!o.json && !o.quiet) {
		printf("dmalog migrate: %llu MiB guest, %u device%s, workload %s, tracker %s, "
		       "downtime limit %.0f ms\n",
		       (unsigned long long)(o.mem_bytes >> 20), o.ndevices,
		       o.ndevices == 1 ? "" : "s", mig_workload_name(o.workload),
		       mig_tracker_name(o.tracker), o.downtime_limit_ms);
		fflush(stdout);
	}
	migrate_run(&o, &r);
	report_summary(&o, &r, stdout);
	if (o.csv && report_csv(&r, o.csv))
		fprintf(stderr, "dmalog migrate: cannot write %s\n", o.csv);
	if (o.plot && report_plot(&o, &r, o.plot))
		fprintf(stderr, "dmalog migrate: cannot write %s\n", o.plot);
	free(r.rounds);
	return mig_exit_status(&r);
}
