/* SPDX-License-Identifier: MIT */
/*
 * dmalog migrate: what its parts share. The guest (guest.c) is memory, a CPU writer and
 * devices with their trackers; the dirty sync (dirty_sync.c) ORs every tracker into one
 * bitmap; the link (link.c) carries frames; the source (migrate_source.c) and destination
 * (migrate_dest.c) run the migration; the report (migrate_report.c) prints what happened.
 */
#ifndef DMALOG_TOOL_MIGRATE_H
#define DMALOG_TOOL_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <dmalog/dmalog.h>

#define MIG_PAGE_SHIFT	12
#define MIG_PAGE_SIZE	(1ULL << MIG_PAGE_SHIFT)
#define MIG_MAX_DEVICES 8
#define MIG_MAX_SLOTS	3

enum mig_tracker {
	MIG_TRACK_ALL,	  /* device logging where a device has it, plus IOMMU dirty bits */
	MIG_TRACK_DEVICE, /* every device logs its own DMA (VFIO DMA logging) */
	MIG_TRACK_IOMMU,  /* iommufd dirty tracking only */
	MIG_TRACK_TYPE1,  /* the type1 container: everything mapped is dirty */
};

enum mig_device_kind {
	MIG_DEV_NIC,	 /* device DMA logging (an mlx5-like tracker), receive ring in low RAM */
	MIG_DEV_STORAGE, /* no tracker of its own; DMA through the IOMMU into high RAM */
};

enum mig_inject {
	MIG_INJECT_NONE,
	MIG_INJECT_CORRUPT_STREAM, /* flip a byte of a page after its checksum */
	MIG_INJECT_KILL_DEST,	   /* SIGKILL the destination process */
	MIG_INJECT_TRACKER_FAULT,  /* a device tracker's REPORT (else the IOMMU's read) fails */
	MIG_INJECT_DEVICE_STATE,   /* flip a byte of device 0's migration data */
};

struct mig_options {
	uint64_t mem_bytes;
	enum mig_device_kind devices[MIG_MAX_DEVICES];
	uint32_t ndevices;
	enum dmalog_workload workload;
	uint64_t dma_rate; /* writes per second per device */
	uint64_t cpu_rate; /* writes per second of the CPU */
	enum mig_tracker tracker;
	bool iommu_huge; /* map guest RAM with huge IOPTEs (dirty bits per 2M/1G leaf) */
	double downtime_limit_ms;
	uint32_t max_rounds;
	const char *listen;  /* be a destination on this address */
	const char *connect; /* be a source and connect here */
	bool json;
	bool quiet; /* no progress lines (bench) */
	const char *csv;
	const char *plot;
	enum mig_inject inject;
	uint32_t inject_round;
	uint64_t seed;
};

/* ---- the guest ---- */

/* A RAM slot: guest-physical [gpa, gpa + len) backed by ram[ram_off, ram_off + len). */
struct guest_slot {
	uint64_t gpa, ram_off, len;
};

struct guest {
	bool source;
	enum mig_tracker tracker;
	uint8_t *ram;
	uint64_t ram_bytes;
	struct guest_slot slots[MIG_MAX_SLOTS];
	uint32_t nslots;

	/* The CPU: a writer over all of RAM logging into a KVM-like log in RAM-offset space. */
	struct dmalog_swtrack *cpu_log;
	struct dmalog_device *cpu_logdev;
	struct dmalog_dma_engine *cpu;

	struct dmalog_iommufd *iommufd;
	uint32_t ioas_id, hwpt_id;
	struct dmalog_iopt *iopt; /* the HWPT's page table, which device DMA goes through */
	bool iommu_dirty;	  /* the HWPT tracks dirty pages */
	struct dmalog_type1 *type1;

	uint32_t ndevices;
	enum mig_device_kind kinds[MIG_MAX_DEVICES];
	struct dmalog_emudev *emu[MIG_MAX_DEVICES];
	struct dmalog_device *dev[MIG_MAX_DEVICES];
	bool dev_logging[MIG_MAX_DEVICES]; /* this device tracks its DMA itself */
	uint16_t dev_tag[MIG_MAX_DEVICES];
};

/* Words of untouched guest memory carry this tag and their own index. */
#define GUEST_INIT_TAG 0xd0d0
#define GUEST_CPU_TAG  0xc0c0

int guest_create(const struct mig_options *o, bool source, struct guest **out);
void guest_destroy(struct guest *g);

/* VFIO_DEVICE_FEATURE MIG_DEVICE_STATE SET; *data_fd gets a new fd or -1. */
int guest_set_state(struct dmalog_device *dev, uint32_t state, int *data_fd);
/* The device's current migration state, or -errno. */
int guest_get_state(struct dmalog_device *dev);
/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE. */
int guest_data_size(struct dmalog_device *dev, uint64_t *bytes);

/* Pause and resume every writer of guest memory (CPU and device DMA). */
void guest_pause_writers(struct guest *g);
void guest_resume_writers(struct guest *g);
uint64_t guest_writes(struct guest *g);

/*
 * Check that every word of guest memory is either untouched or written by one of the guest's
 * writers (no stray or torn write): the count of bad words, 0 when intact. Writers must be
 * paused.
 */
uint64_t guest_stray_words(struct guest *g);

/* ---- dirty tracking across every tracker ---- */

struct sync_stats {
	uint64_t syncs;
	uint64_t tracker_errors; /* reports that failed: everything was marked dirty */
};

int tracking_start(struct guest *g);
void tracking_stop(struct guest *g);
/*
 * OR what every tracker saw since the last sync into @bitmap (one bit per RAM page) and clear
 * the trackers. A tracker whose report fails has everything marked dirty and is restarted.
 */
int tracking_sync(struct guest *g, uint64_t *bitmap, struct sync_stats *st);

/* ---- the connection ---- */

/* Queued bytes past which a sender should flush: a few frames per write. */
#define LINK_FLUSH_BYTES (4u << 20)

struct link {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	uint64_t bytes;	 /* bytes written to the connection */
	uint64_t frames; /* frames queued */
	char error[160];
};

/* "host:port" (TCP) or a path / "unix:path" (UNIX). Returns a listening fd or -errno. */
int link_listen(const char *addr, char *err, size_t errlen);
int link_accept(int lfd, char *err, size_t errlen);
int link_connect(const char *addr, char *err, size_t errlen);

void link_init(struct link *l, int fd);
void link_fini(struct link *l);
/* Queue a frame (nothing is sent before link_flush); fill its payload, then seal it. */
uint8_t *link_frame_begin(struct link *l, uint32_t length);
void link_frame_seal(struct link *l, uint16_t type);
int link_frame(struct link *l, uint16_t type, const void *payload, uint32_t length);
/* Send what is queued. -EPIPE and friends when the peer is gone. */
int link_flush(struct link *l);
/*
 * Read one frame from the peer within @timeout_ms (-1 forever, 0 only if one is waiting):
 * 0 and the frame, -EAGAIN for nothing yet, -ECONNRESET at EOF, -EBADMSG for garbage.
 */
int link_read_frame(struct link *l, int timeout_ms, uint16_t *type, uint8_t *payload, uint32_t max,
		    uint32_t *length);

/* ---- the two ends and the report ---- */

struct mig_round {
	uint32_t round;
	uint64_t pages;	       /* guest pages sent */
	uint64_t device_bytes; /* device data sent */
	uint64_t bytes;	       /* bytes on the wire */
	double ms;	       /* time the round took */
	double dirty_rate;     /* pages dirtied per second, measured at its sync */
	double sync_ms;
};

struct mig_result {
	bool completed; /* the destination resumed and answered */
	bool verified;	/* ... and every page and device matched */
	char error[256];
	struct mig_round *rounds;
	uint32_t nrounds;
	uint64_t pages_compared, pages_mismatched;
	uint32_t devices_compared, devices_mismatched;
	uint64_t bytes_sent, guest_bytes;
	double downtime_ms, total_ms;
	uint64_t tracker_errors;
	bool source_running; /* after a failure: rolled back, running, memory intact */
	double bandwidth;    /* bytes per second, measured over the whole migration */
};

/* The source end over a connected fd; @dest_pid (or 0) is the destination to kill on demand. */
int migrate_source(const struct mig_options *o, int fd, int dest_pid, struct mig_result *r);
/* The destination end over a connected fd. */
int migrate_dest(const struct mig_options *o, int fd);

/* Run a whole migration as the options say (spawning the destination unless --connect). */
int migrate_run(const struct mig_options *o, struct mig_result *r);

void report_progress(const struct mig_options *o, const struct mig_round *rd, uint64_t guest_pages,
		     bool final);
void report_summary(const struct mig_options *o, const struct mig_result *r, FILE *f);
int report_csv(const struct mig_result *r, const char *path);
int report_plot(const struct mig_result *r, const char *path);

#define MIG_TRACKERS  4
#define MIG_WORKLOADS 4
/* The names options and reports use for each tracker and workload. */
const char *mig_tracker_name(enum mig_tracker t);
const char *mig_workload_name(enum dmalog_workload w);

/* The options `dmalog migrate` runs with when given none. */
void mig_options_default(struct mig_options *o);
int cmd_migrate(int argc, char **argv);

#endif
