/* SPDX-License-Identifier: MIT */
/*
 * dmalog migrate, the tool around the library's engine: the demo guest (guest.c: RAM laid out
 * like a PC's, a CPU writer, NIC and storage devices with their trackers), sockets
 * (socket.c), the two ends wired to the engine with fault injection through its hooks
 * (migrate_ends.c), the options (migrate_cli.c) and what is printed (migrate_report.c).
 */
#ifndef DMALOG_TOOL_CLI_H
#define DMALOG_TOOL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <dmalog/dmalog.h>

#define MIG_PAGE_SHIFT	 DMALOG_RAM_PAGE_SHIFT
#define MIG_MAX_DEVICES	 8
#define MIG_MAX_SLOTS	 3
#define MIG_MAX_TRACKERS (MIG_MAX_DEVICES + 2)

enum mig_tracker {
	MIG_TRACK_ALL,	  /* device logging where a device has it, plus IOMMU dirty bits */
	MIG_TRACK_DEVICE, /* every device logs its own DMA (VFIO DMA logging) */
	MIG_TRACK_IOMMU,  /* iommufd dirty tracking only */
	MIG_TRACK_TYPE1,  /* the type1 container: everything mapped is dirty */
};

enum mig_device_kind {
	MIG_DEV_NIC,	   /* device DMA logging (an mlx5-like tracker), receive ring in low RAM */
	MIG_DEV_STORAGE,   /* no tracker of its own; DMA through the IOMMU into high RAM */
	MIG_DEV_VFIO_USER, /* in another process (dmalog serve, say): logs its own DMA */
};

enum mig_inject {
	MIG_INJECT_NONE,
	MIG_INJECT_CORRUPT_STREAM,  /* flip a byte of a page after its checksum */
	MIG_INJECT_KILL_DEST,	    /* SIGKILL the destination process */
	MIG_INJECT_TRACKER_FAULT,   /* a device tracker's REPORT (else the IOMMU's read) fails */
	MIG_INJECT_DEVICE_STATE,    /* flip a byte of device 0's migration data */
	MIG_INJECT_LOSE_PAGE,	    /* a final-round page arrives stale, its frame intact */
	MIG_INJECT_DEVICE_MISMATCH, /* the last device changes after its state was saved */
	MIG_INJECT_CORRUPT_CHANNEL, /* a page on page channel 2 (1 with two) damaged in transit */
	MIG_INJECT_DROP_CHANNEL,    /* page channel 1 is shut at the source mid-round */
};

struct mig_options {
	uint64_t mem_bytes;
	enum mig_device_kind devices[MIG_MAX_DEVICES];
	uint32_t ndevices;
	/* MIG_DEV_VFIO_USER: this end's server socket; the one-command mode's destination's. */
	const char *vfu_paths[MIG_MAX_DEVICES];
	const char *dest_vfu_paths[MIG_MAX_DEVICES];
	uint32_t ndest_vfu_paths;
	enum dmalog_workload workload;
	uint64_t dma_rate; /* writes per second per device */
	uint64_t cpu_rate; /* writes per second of the CPU */
	uint32_t zero_pct; /* percent of guest pages that start all zero */
	enum mig_tracker tracker;
	bool iommu_huge; /* map guest RAM with huge IOPTEs (dirty bits per 2M/1G leaf) */
	double downtime_limit_ms;
	uint32_t max_rounds;
	uint32_t timeout_ms;	  /* the longest silence tolerated from the other end */
	uint32_t downtime_cap_ms; /* the longest the guest may stay stopped */
	const char *psk;	  /* TLS-PSK key file: authenticate and encrypt the link */
	bool no_auto_converge;
	uint32_t throttle_initial, throttle_increment, throttle_max;
	bool abort_if_not_converged; /* --on-no-converge abort */
	uint64_t max_bandwidth;	     /* bytes per second, 0: no cap */
	uint32_t channels;	     /* connections: the main one and page channels */
	const char *listen;	     /* be a destination on this address */
	const char *connect;	     /* be a source and connect here */
	bool json;
	bool quiet; /* no progress lines (bench) */
	const char *csv;
	const char *events; /* JSON lines of state changes and rounds, or "-" for stdout */
	const char *plot;
	enum mig_inject inject;
	uint32_t inject_round;
	uint64_t seed;
};

/* ---- the guest ---- */

struct guest {
	bool source;
	enum mig_tracker tracker;
	uint8_t *ram;
	int ram_fd; /* a memfd behind RAM when a device in another process shares it, or -1 */
	uint64_t ram_bytes;
	uint32_t zero_pct;  /* page p starts all zero when p % 100 < zero_pct */
	double prefault_ms; /* backing its RAM, before any clock starts */
	/* RAM slots: guest-physical [gpa, gpa + length) at ram + ram_offset. */
	struct dmalog_ram_region slots[MIG_MAX_SLOTS];
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
	struct dmalog_emudev *emu[MIG_MAX_DEVICES]; /* NULL for a vfio-user device */
	struct dmalog_vfu_client *vfu[MIG_MAX_DEVICES];
	int vfu_fd[MIG_MAX_DEVICES];
	uint16_t dev_tag[MIG_MAX_DEVICES];
	bool dev_logging[MIG_MAX_DEVICES]; /* this device tracks its own DMA */

	/* What the engine is given: a handle per device, and (source) every tracker. */
	struct dmalog_handle *dev[MIG_MAX_DEVICES];
	struct dmalog_handle *cpu_log_h, *iommufd_h, *type1_h;
	struct dmalog_tracker *trackers[MIG_MAX_TRACKERS];
	uint32_t ntrackers;
};

/* Words of untouched guest memory carry this tag and their own index. */
#define GUEST_INIT_TAG 0xd0d0
#define GUEST_CPU_TAG  0xc0c0

int guest_create(const struct mig_options *o, bool source, struct guest **out);
/*
 * @bytes of guest RAM, backed before any clock starts (huge pages where the system has them,
 * every page written once): @fd mapped shared, or anonymous memory when @fd < 0. Also what a
 * comparison uses that must not pay what the guest does not. NULL on failure; munmap() it.
 */
void *guest_ram_backed(size_t bytes, int fd);
void guest_destroy(struct guest *g);

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

/* The engine's view of this guest: its RAM regions, device handles and trackers, on @fd. */
struct dmalog_mig_config guest_engine_config(struct guest *g, int fd);

/* What the engine's hooks do for this guest: its vCPU is the CPU writer. */
void guest_pause_vcpus(struct guest *g);
void guest_resume_vcpus(struct guest *g);
int guest_device_hash(struct guest *g, uint32_t dev, uint64_t *hash);
void guest_device_error(struct guest *g, uint32_t dev, char *buf, size_t len);
/* Whether every tracker and every device's DMA logging is off, asked of each one itself. */
bool guest_untracked(struct guest *g);

/* ---- sockets ---- */

/* "host:port" (TCP) or a path / "unix:path" (UNIX). Returns a listening fd or -errno. */
int socket_listen(const char *addr, char *err, size_t errlen);
/*
 * The next connection on @lfd, waiting at most @timeout_ms (-1: for ever). fd or -errno;
 * -EINTR when a signal came meanwhile, so that a caller can honour it.
 */
int socket_accept(int lfd, int timeout_ms, char *err, size_t errlen);
/*
 * A connection to @addr, made within @timeout_ms: fd or -errno (-ETIMEDOUT when the peer
 * never answered, -EINTR when a signal came meanwhile).
 */
int socket_connect(const char *addr, int timeout_ms, char *err, size_t errlen);
/* Whether @addr is well formed (a path of a usable length, or host:port with a real port). */
bool socket_address_valid(const char *addr);
/* Whether @fd is a TCP socket (as opposed to a UNIX one). */
bool socket_is_tcp(int fd);
/* The address a socket is bound to, as a user would type it (the real port for ":0"). */
int socket_describe(int fd, char *out, size_t len);

/* ---- TLS with a pre-shared key ---- */

struct tls_link;

/*
 * Authenticate and encrypt the connected @sock (taken over, closed by tls_finish() or on
 * failure) with the key in @psk_file (both ends the same); *plain_fd gets the fd to give the
 * engine. 0, or -errno with @err saying why (-EACCES: the peer does not have the key).
 */
int tls_wrap(int sock, bool server, const char *psk_file, uint32_t timeout_ms,
	     struct tls_link **out, int *plain_fd, char *err, size_t errlen);
/* Wait for the relay to finish (after the engine closed its fd) and free it; NULL is fine. */
void tls_finish(struct tls_link *t);

/* ---- the two ends and the report ---- */

struct mig_result {
	enum dmalog_mig_outcome outcome;
	bool verified;
	char error[400];
	struct dmalog_mig_round *rounds; /* a copy, freed by the caller */
	uint32_t nrounds;
	uint64_t pages_compared, pages_mismatched;
	uint32_t devices_compared, devices_mismatched;
	uint64_t bytes_sent, guest_bytes;
	double downtime_ms, total_ms;
	uint64_t tracker_errors;
	bool source_running; /* after a rollback: checked running, untracked, memory intact */
	bool converged;
	enum dmalog_mig_switchover switchover;
	double expected_downtime_ms;
	uint32_t throttle_percent;
	bool not_converged; /* refused to switch over (--on-no-converge abort) */
	bool cancelled;	    /* SIGINT, SIGTERM or SIGHUP stopped it */
	double setup_ms;
	double migration_ms; /* to the destination's RUNNING, QEMU's total-time */
	double verify_ms;    /* the proof after it */
	uint64_t zero_pages; /* sent as zero-page markers */
	double prefault_ms;  /* the source's guest RAM backed, before the engine's clock */
	/* stop, final sync, last pages, device state, destination's answer (ms) */
	double downtime_parts[5];
	char not_converged_why[200];
	int engine_error; /* the engine's -errno, for the error code */
	double bandwidth; /* bytes per second, measured over the precopy rounds */
};

/*
 * The source end over o->channels connected fds (the main one first; all closed after);
 * @dest_pid (or 0) is the destination to kill on demand.
 */
int migrate_source(const struct mig_options *o, const int *fds, int dest_pid, struct mig_result *r);
/* The destination end over a connected fd: 0 verified, 3 resumed unverified, 1 refused. */
/*
 * The destination's guest, made before the connection is taken (as QEMU's -incoming
 * allocates guest RAM first): its prefault never lands in the first round. 0 or -errno, said.
 */
int migrate_dest_guest(const struct mig_options *o, struct guest **g);
/*
 * The destination end over o->channels connected fds (in the order they were accepted; all
 * closed after), with the guest from migrate_dest_guest() (freed).
 */
int migrate_dest(const struct mig_options *o, struct guest *g, const int *fds);

/* Run a whole migration as the options say (spawning the destination unless --connect). */
/* dmalog serve: an emulated device on a vfio-user socket. */
int cmd_serve(int argc, char **argv);

int migrate_run(const struct mig_options *o, struct mig_result *r);

/* From a signal handler: cancel the migration under way (or the one about to start). */
void migrate_cancel_from_signal(void);
/* Whether a signal has asked for that. */
bool migrate_cancel_asked(void);

/* --events: one JSON line (QMP-style timestamp, "event", then @fields, already JSON). */
void report_event(FILE *f, const char *event, const char *fields);
/* JSON-escape @s into @out (at most @len bytes, quotes included). */
void json_quote(char *out, size_t len, const char *s);

/* A stable name for what went wrong ("stream-corrupt", "timeout", ...), NULL when nothing. */
const char *mig_error_code(const struct mig_result *r);

/* The exit status for a result: 0, 1, 3 or 4 (see --help). */
int mig_exit_status(const struct mig_result *r);

void report_progress(const struct mig_options *o, const struct dmalog_mig_round *rd,
		     uint64_t guest_pages, bool final);
void report_summary(const struct mig_options *o, const struct mig_result *r, FILE *f);
int report_csv(const struct mig_result *r, const char *path);
int report_plot(const struct mig_options *o, const struct mig_result *r, const char *path);

#define MIG_TRACKERS  4
#define MIG_WORKLOADS 4
/* The names options and reports use for each tracker and workload. */
const char *mig_tracker_name(enum mig_tracker t);
const char *mig_workload_name(enum dmalog_workload w);

/* The options `dmalog migrate` runs with when given none. */
void mig_options_default(struct mig_options *o);
int cmd_migrate(int argc, char **argv);

#endif
