// SPDX-License-Identifier: MIT
/* dmalog: the command line. */
#include <stdio.h>
#include <string.h>

#include <dmalog/version.h>

#include "bench_util.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: dmalog <command> [options]\n"
		   "\n"
		   "commands:\n"
		   "  migrate [options]\n"
		   "      live-migrate an emulated guest with DMA-busy devices to a second\n"
		   "      process and verify every page and device (dmalog migrate --help).\n"
		   "  serve --socket PATH [--device nic|storage] [--trace]\n"
		   "      serve an emulated device to vfio-user clients (dmalog serve --help).\n"
		   "  bench bitmap [--json] [--quick]\n"
		   "      IOVA bitmap writer over a 1 TiB IOVA space (16 GiB with --quick):\n"
		   "      dense and sparse sets, 4K<->2M conversion and OR-merge, each against\n"
		   "      the same memory traffic with no logic and a word-level loop.\n"
		   "  bench report [--json] [--quick]\n"
		   "      one REPORT of 64 GiB at 4K (4 GiB with --quick) from each tracker,\n"
		   "      clean, 1%% and all dirty, caches cold: time, fraction of read\n"
		   "      bandwidth over the log, speedup over a byte-per-page tracker; and\n"
		   "      marking cost in ns per page.\n"
		   "  bench iopt [--json] [--quick]\n"
		   "      I/O page table read-and-clear over 16 GiB and 1 TiB (16 GiB only with\n"
		   "      --quick), 4K and 2M leaves, clean, dense and sparse, as page-table\n"
		   "      memory scanned per second against read bandwidth and a leaf-by-leaf\n"
		   "      walk from the root.\n"
		   "  bench devtrack [--json] [--quick]\n"
		   "      device tracker reports, dense and sparse: dirty addresses per second\n"
		   "      against one-address messages and the machine's read-modify-writes\n"
		   "      of the same pages in the same order.\n"
		   "  bench migrate [--json] [--quick]\n"
		   "      a 512 MiB guest (64 MiB with --quick) migrated with each tracker:\n"
		   "      bytes sent per guest byte against type1, rounds, downtime, total\n"
		   "      time, and the first round's send rate against a raw socket transfer\n"
		   "      of the same bytes between the same two processes.\n"
		   "  bench vfio-user [--json] [--quick]\n"
		   "      a device served over a vfio-user socket against the same device in\n"
		   "      process: round trips per second (and a bare socket ping-pong), and a\n"
		   "      64 GiB REPORT at 1%% dirty (4 GiB with --quick).\n"
		   "      --json prints one JSON object per result line.\n"
		   "  help\n"
		   "  version\n");
}

/* The tool's version and the library's it runs with (they may differ after an upgrade). */
static void print_version(void)
{
	printf("dmalog %s (libdmalog %s)\n", DMALOG_VERSION, dmalog_version());
}

static int cmd_bench(int argc, char **argv)
{
	struct bench_opts o = {0};
	const char *which = NULL;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			print_version();
			return 0;
		}
		if (!strcmp(argv[i], "--json")) {
			o.json = true;
		} else if (!strcmp(argv[i], "--quick")) {
			o.quick = true;
		} else if (argv[i][0] != '-' && !which) {
			which = argv[i];
		} else {
			fprintf(stderr, "dmalog bench: unknown option '%s' (see dmalog --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (which && !strcmp(which, "bitmap"))
		return bench_bitmap(&o);
	if (which && !strcmp(which, "report"))
		return bench_report(&o);
	if (which && !strcmp(which, "iopt"))
		return bench_iopt(&o);
	if (which && !strcmp(which, "devtrack"))
		return bench_devtrack(&o);
	if (which && !strcmp(which, "migrate"))
		return bench_migrate(&o);
	if (which && !strcmp(which, "vfio-user"))
		return bench_vfio_user(&o);
	fprintf(stderr, "dmalog bench: which benchmark? (bitmap, report, iopt, devtrack, migrate, "
			"vfio-user)\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "migrate"))
		return cmd_migrate(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		print_version();
		return 0;
	}
	fprintf(stderr, "dmalog: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
