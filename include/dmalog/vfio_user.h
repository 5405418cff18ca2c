/* SPDX-License-Identifier: MIT */
/*
 * vfio-user: the VFIO uAPI as messages on a UNIX socket, so that a device can live in another
 * process than the VMM that drives it (canonical spec: QEMU's docs/interop/vfio-user.rst).
 * This header has the wire layout (host-endian, every size and offset asserted) and a server
 * that serves one struct dmalog_device to one client at a time.
 *
 * Every message is a 16-byte header and a payload; commands carry an argsz where the spec
 * says so, and a reply to a command that failed is a header alone with the Error bit and an
 * errno. What the server does with each command:
 *  - VERSION (first, once): major 0, minor up to DMALOG_VFU_MINOR; the capabilities object
 *    (JSON, parsed and written with json-c) negotiates max_msg_fds, max_data_xfer_size,
 *    pgsizes, max_dma_maps and migration.{pgsize,max_bitmap_size};
 *  - DMA_MAP / DMA_UNMAP: client memory, mmap()ed when an fd comes with it; a map over an
 *    existing one is EEXIST, an unmap must match a map exactly;
 *  - DEVICE_GET_INFO; DEVICE_GET_REGION_INFO (the fd of a mappable region with the reply, a
 *    sparse mmap capability), REGION_READ / REGION_WRITE; DEVICE_GET_IRQ_INFO,
 *    DEVICE_SET_IRQS (eventfds as SCM_RIGHTS), and the device raising interrupts;
 *    DEVICE_RESET;
 *  - DEVICE_FEATURE: every feature the device has, through dmalog_device_ioctl() with the
 *    kernel's errnos: MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE, DMA_LOGGING_START (ranges
 *    inline; none means every DMA map), DMA_LOGGING_STOP, DMA_LOGGING_REPORT (the bitmap
 *    comes back inline in the reply);
 *  - the low-power features (LOW_POWER_ENTRY, _WITH_WAKEUP, _EXIT) with vfio_pci_core's
 *    semantics;
 *  - MIG_DATA_READ / MIG_DATA_WRITE: the device's migration data stream, in place of the
 *    kernel's data_fd;
 *  - DMA_READ / DMA_WRITE to the client, for the device's access to maps without an fd.
 * A client that goes away leaves the server as the spec asks: its maps and fds dropped, DMA
 * logging stopped, the device state kept.
 */
#ifndef DMALOG_VFIO_USER_H
#define DMALOG_VFIO_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/device.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_VFU_MAJOR 0
#define DMALOG_VFU_MINOR 2

enum dmalog_vfu_command {
	DMALOG_VFU_VERSION = 1,
	DMALOG_VFU_DMA_MAP = 2,
	DMALOG_VFU_DMA_UNMAP = 3,
	DMALOG_VFU_DEVICE_GET_INFO = 4,
	DMALOG_VFU_DEVICE_GET_REGION_INFO = 5,
	DMALOG_VFU_DEVICE_GET_REGION_IO_FDS = 6,
	DMALOG_VFU_DEVICE_GET_IRQ_INFO = 7,
	DMALOG_VFU_DEVICE_SET_IRQS = 8,
	DMALOG_VFU_REGION_READ = 9,
	DMALOG_VFU_REGION_WRITE = 10,
	DMALOG_VFU_DMA_READ = 11,
	DMALOG_VFU_DMA_WRITE = 12,
	DMALOG_VFU_DEVICE_RESET = 13,
	DMALOG_VFU_REGION_WRITE_MULTI = 15,
	DMALOG_VFU_DEVICE_FEATURE = 16,
	DMALOG_VFU_MIG_DATA_READ = 17,
	DMALOG_VFU_MIG_DATA_WRITE = 18,
};

/* Header flags: bits 0-3 the type, then No_reply and Error. */
#define DMALOG_VFU_TYPE_MASK	0xfu
#define DMALOG_VFU_TYPE_COMMAND 0u
#define DMALOG_VFU_TYPE_REPLY	1u
#define DMALOG_VFU_NO_REPLY	(1u << 4)
#define DMALOG_VFU_ERROR	(1u << 5)

struct dmalog_vfu_hdr {
	uint16_t id;
	uint16_t command;
	uint32_t size; /* the whole message, header included */
	uint32_t flags;
	uint32_t error;
};

/* DMA_READ / DMA_WRITE (server to client): then the data (a read's reply, a write's request). */
struct dmalog_vfu_dma_rw {
	uint64_t address;
	uint64_t count;
};

/*
 * DMA_WRITE's reply as the spec's table has it: the count in 4 bytes (its request has 8). A
 * reply with an 8-byte count is taken too.
 */
struct dmalog_vfu_dma_write_reply {
	uint64_t address;
	uint32_t count;
} __attribute__((packed));

/* VERSION: then optional NUL-terminated JSON, {"capabilities": {...}}. */
struct dmalog_vfu_version {
	uint16_t major;
	uint16_t minor;
};

#define DMALOG_VFU_DMA_READABLE	 (1u << 0)
#define DMALOG_VFU_DMA_WRITEABLE (1u << 1)

struct dmalog_vfu_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset; /* into the fd that comes with the message */
	uint64_t addr;
	uint64_t size;
};

struct dmalog_vfu_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
};

struct dmalog_vfu_device_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI */
	uint32_t num_regions;
	uint32_t num_irqs;
};

/* DEVICE_FEATURE: struct vfio_device_feature's argsz and flags, then the feature's data. */
struct dmalog_vfu_feature {
	uint32_t argsz;
	uint32_t flags;
};

/* DMA_LOGGING_START's data: the ranges follow inline (struct
 * vfio_device_feature_dma_logging_range). */
struct dmalog_vfu_logging_start {
	uint64_t page_size;
	uint32_t num_ranges;
	uint32_t reserved;
};

/* DMA_LOGGING_REPORT's data: the bitmap follows inline in the reply. */
struct dmalog_vfu_logging_report {
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
};

/* DEVICE_GET_REGION_INFO: struct vfio_region_info's layout; capabilities follow in the reply. */
struct dmalog_vfu_region_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_REGION_INFO_FLAG_* */
	uint32_t index;
	uint32_t cap_offset; /* from the start of this struct; 0: none */
	uint64_t size;
	uint64_t offset; /* for mmap() of the fd that comes with the reply */
};

/* REGION_READ / REGION_WRITE: then the data (in a read's reply, a write's request). */
struct dmalog_vfu_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
};

/* DEVICE_GET_IRQ_INFO: struct vfio_irq_info's layout. */
struct dmalog_vfu_irq_info {
	uint32_t argsz;
	uint32_t flags; /* VFIO_IRQ_INFO_* */
	uint32_t index;
	uint32_t count;
};

/*
 * DEVICE_SET_IRQS: struct vfio_irq_set's layout; DATA_BOOL's bytes follow, DATA_EVENTFD's fds
 * come as SCM_RIGHTS (as many as @count; none de-assigns).
 */
struct dmalog_vfu_irq_set {
	uint32_t argsz;
	uint32_t flags; /* one VFIO_IRQ_SET_DATA_* and one VFIO_IRQ_SET_ACTION_* */
	uint32_t index;
	uint32_t start;
	uint32_t count;
};

/*
 * LOW_POWER_ENTRY_WITH_WAKEUP's data over vfio-user: struct
 * vfio_device_low_power_entry_with_wakeup, whose wakeup_eventfd is the index of the eventfd
 * among the fds that come with the message (an fd number means nothing in another process).
 */
struct dmalog_vfu_low_power_wakeup {
	int32_t wakeup_eventfd;
	uint32_t reserved;
};

/* MIG_DATA_READ / MIG_DATA_WRITE: then the data. */
struct dmalog_vfu_mig_data {
	uint32_t argsz;
	uint32_t size;
};

#ifndef __cplusplus
_Static_assert(sizeof(struct dmalog_vfu_hdr) == 16, "header");
_Static_assert(offsetof(struct dmalog_vfu_hdr, size) == 4, "");
_Static_assert(offsetof(struct dmalog_vfu_hdr, error) == 12, "");
_Static_assert(sizeof(struct dmalog_vfu_dma_map) == 32, "dma_map");
_Static_assert(offsetof(struct dmalog_vfu_dma_map, addr) == 16, "");
_Static_assert(sizeof(struct dmalog_vfu_dma_unmap) == 24, "dma_unmap");
_Static_assert(sizeof(struct dmalog_vfu_device_info) == 16, "device_info");
_Static_assert(sizeof(struct dmalog_vfu_logging_start) == 16, "logging_start");
_Static_assert(sizeof(struct dmalog_vfu_logging_report) == 24, "logging_report");
_Static_assert(sizeof(struct dmalog_vfu_mig_data) == 8, "mig_data");
_Static_assert(sizeof(struct dmalog_vfu_region_info) == 32, "region_info");
_Static_assert(sizeof(struct dmalog_vfu_dma_rw) == 16, "dma_rw");
_Static_assert(sizeof(struct dmalog_vfu_dma_write_reply) == 12, "dma_write_reply");
_Static_assert(offsetof(struct dmalog_vfu_region_info, offset) == 24, "");
_Static_assert(sizeof(struct dmalog_vfu_region_access) == 16, "region_access");
_Static_assert(sizeof(struct dmalog_vfu_irq_info) == 16, "irq_info");
_Static_assert(sizeof(struct dmalog_vfu_irq_set) == 20, "irq_set");
_Static_assert(sizeof(struct dmalog_vfu_low_power_wakeup) == 8, "low_power_wakeup");
#endif

/* What the server offers; a client may ask for less. */
#define DMALOG_VFU_MAX_MSG_FDS	    8
#define DMALOG_VFU_MAX_DATA_XFER    (1u << 20)
#define DMALOG_VFU_MAX_DMA_MAPS	    1024
#define DMALOG_VFU_MAX_BITMAP_BYTES (64u << 20) /* a REPORT's bitmap: 2 TiB at 4 KiB */

#define DMALOG_VFU_MAX_REGIONS	    16
#define DMALOG_VFU_MAX_IRQ_TYPES    8
#define DMALOG_VFU_MAX_IRQS	    64 /* interrupts of one type */
#define DMALOG_VFU_MAX_SPARSE_AREAS 8

/**
 * struct dmalog_vfu_region - one region of the served device (its index is its place in the
 *	table: VFIO_PCI_BAR0_REGION_INDEX ... VFIO_PCI_CONFIG_REGION_INDEX for a PCI device)
 * @flags: VFIO_REGION_INFO_FLAG_READ, _WRITE, _MMAP; 0 with @size 0: the device has no such
 *	region
 * @nareas: with _MMAP, the parts the client may map (a sparse mmap capability in the
 *	reply); 0: all of it
 * @size: bytes
 * @fd: with _MMAP, what the client maps (a dup goes with each GET_REGION_INFO reply; the
 *	caller keeps it open while serving)
 * @fd_offset: where the region begins in @fd (the reply's offset)
 * @areas: offset and size of each mappable part, inside the region
 */
struct dmalog_vfu_region {
	uint32_t flags;
	uint32_t nareas;
	uint64_t size;
	int fd;
	uint64_t fd_offset;
	struct vfio_region_sparse_mmap_area areas[DMALOG_VFU_MAX_SPARSE_AREAS];
};

/**
 * struct dmalog_vfu_irq_type - one interrupt type of the served device (its index is its
 *	place in the table: VFIO_PCI_INTX_IRQ_INDEX ...)
 * @flags: VFIO_IRQ_INFO_EVENTFD, _MASKABLE, _AUTOMASKED, _NORESIZE
 * @count: interrupts of this type (at most DMALOG_VFU_MAX_IRQS; 0: none)
 */
struct dmalog_vfu_irq_type {
	uint32_t flags;
	uint32_t count;
};

struct dmalog_vfu_server;

/**
 * struct dmalog_vfu_server_config - what to serve
 * @size: sizeof(struct dmalog_vfu_server_config)
 * @dev: the device (not owned; it must outlive the server)
 * @timeout_ms: a message that has begun must be read whole, and a reply written, within
 *	this (0: 30000); between messages a client may stay silent as long as it likes
 * @trace: optional: a line per message handled (command, size, result), already escaped
 * @opaque: passed to every hook
 * @dma_map: optional: the client mapped [@iova, @iova + @size) of its memory at @host in this
 *	process (NULL when it came without an fd) with DMALOG_VFU_DMA_* @flags: the device may
 *	DMA into it
 * @dma_unmap: optional: that map goes (at DMA_UNMAP, or when the client leaves); the device
 *	must have stopped touching it when this returns, as the reply says it has
 * @state_changed: optional: called before each MIG_DEVICE_STATE arc or reset reaches the device
 *	(@done false, @state the state asked for: what must not outlive the old state stops
 *	here, DMA before the device is STOP) and after it (@done true, @state the state the
 *	device is in now, the old one if the arc failed)
 * @regions: optional: the device's regions (at most DMALOG_VFU_MAX_REGIONS), copied
 * @nregions: how many (DEVICE_GET_INFO's num_regions)
 * @region_access: with regions: REGION_READ / REGION_WRITE of @count bytes at @offset of
 *	region @index, already checked against its size and flags: 0 or -errno (the kernel's:
 *	-EIO for a BAR while memory decoding is off, say)
 * @irqs: optional: the device's interrupt types (at most DMALOG_VFU_MAX_IRQ_TYPES), copied
 * @nirqs: how many (DEVICE_GET_INFO's num_irqs)
 * @no_runtime_pm: the host keeps the device out of low power: LOW_POWER_ENTRY is accepted
 *	but the device never enters it (as with runtime PM disabled on a kernel host)
 * @power: optional: low power changed: @engaged the client allowed it (the client's mmaps of
 *	the device's regions must fault until it is off again, as the kernel zaps them),
 *	@suspended the device is in it now (no DMA, no interrupts)
 */
struct dmalog_vfu_server_config {
	uint32_t size;
	struct dmalog_device *dev;
	uint32_t timeout_ms;
	void (*trace)(void *opaque, const char *line);
	void *opaque;
	void (*dma_map)(void *opaque, uint64_t iova, uint64_t size, void *host, uint32_t flags);
	void (*dma_unmap)(void *opaque, uint64_t iova, uint64_t size);
	void (*state_changed)(void *opaque, uint32_t state, bool done);
	const struct dmalog_vfu_region *regions;
	uint32_t nregions;
	int (*region_access)(void *opaque, uint32_t index, uint64_t offset, void *buf,
			     uint32_t count, bool write);
	const struct dmalog_vfu_irq_type *irqs;
	uint32_t nirqs;
	bool no_runtime_pm;
	void (*power)(void *opaque, bool engaged, bool suspended);
};

/** dmalog_vfu_server_create() - a server for @cfg->dev: 0, -EINVAL or -ENOMEM */
DMALOG_API int dmalog_vfu_server_create(const struct dmalog_vfu_server_config *cfg,
					struct dmalog_vfu_server **out);

/**
 * dmalog_vfu_server_serve() - serve the client connected on @fd until it goes away
 * @s: the server (one client at a time)
 * @fd: a connected AF_UNIX stream socket (not closed here)
 *
 * A malformed command gets an error reply and the connection goes on; a message that breaks
 * the framing (a size under the header's, over what the server takes, a message cut short,
 * fds where none can be, a stalled reader) ends this connection. Either way the client's maps
 * and fds are dropped and DMA logging is stopped before it returns.
 * Return: 0 when the client closed the connection, -errno when it was ended for cause or by
 * dmalog_vfu_server_stop().
 */
DMALOG_API int dmalog_vfu_server_serve(struct dmalog_vfu_server *s, int fd);

/**
 * dmalog_vfu_server_handle() - handle one whole message as the serve loop does (for fuzzers
 *	and for callers with their own transport)
 * @s: the server
 * @msg: the message, header included
 * @len: its length as received
 * @fds: the fds that came with it (taken: closed or kept by the server)
 * @nfds: how many
 * @reply: the reply, header included (*reply_len 0: none, for No_reply); owned by the server,
 *	valid until the next call
 * @reply_len: its length
 *
 * Return: 0, or -errno when the message breaks the framing (the connection must end).
 */
DMALOG_API int dmalog_vfu_server_handle(struct dmalog_vfu_server *s, const void *msg, size_t len,
					const int *fds, unsigned int nfds, const void **reply,
					size_t *reply_len);

/**
 * dmalog_vfu_server_disconnect() - what a client's going away does: maps and fds dropped, DMA
 *	logging stopped, the negotiation forgotten (the serve loop calls it)
 */
DMALOG_API void dmalog_vfu_server_disconnect(struct dmalog_vfu_server *s);

/**
 * dmalog_vfu_server_irq() - the device raises interrupt @sub of type @index (any thread)
 * @s: the server
 * @index: the interrupt type
 * @sub: which of them
 *
 * The client's eventfd for it is signalled, unless the interrupt is masked: then it is left
 * pending and signalled at UNMASK (an AUTOMASKED type masks itself on each signal, as INTx
 * does).
 * Return: 0 when signalled, -EAGAIN when left pending, -ENOENT when the client has set no
 * eventfd for it, -EINVAL for an interrupt the device does not have.
 */
DMALOG_API int dmalog_vfu_server_irq(struct dmalog_vfu_server *s, uint32_t index, uint32_t sub);

/**
 * dmalog_vfu_server_dma_read() - the device reads [@iova, @iova + @len) of the client's memory
 * @s: the server
 * @iova: where
 * @buf: @len bytes
 * @len: how many
 *
 * From a map that came with an fd the bytes are copied here; from one without, they are asked
 * for with DMA_READ messages (as many as the client's max_data_xfer_size needs) and the call
 * waits for each reply, within the server's timeout. Any thread but the serve loop's; one
 * request at a time.
 * Return: 0; -EFAULT when the range is not inside one readable map; -ENOTCONN with no client;
 * -EDEADLK on the serve loop's thread; -ETIMEDOUT, -ECONNRESET, -EPROTO for a reply that is not
 * the request's, or the client's errno.
 */
DMALOG_API int dmalog_vfu_server_dma_read(struct dmalog_vfu_server *s, uint64_t iova, void *buf,
					  size_t len);

/**
 * dmalog_vfu_server_dma_write() - the device writes [@iova, @iova + @len) of the client's memory
 * @s: the server
 * @iova: where
 * @buf: @len bytes
 * @len: how many
 * @wait: for a map without an fd: wait for each DMA_WRITE's reply (false: sent with No_reply,
 *	and the client applies it, in order, before anything the server sends after)
 *
 * As dmalog_vfu_server_dma_read(), into a writable map. Without @wait it may be called on any
 * thread but the serve loop's too.
 */
DMALOG_API int dmalog_vfu_server_dma_write(struct dmalog_vfu_server *s, uint64_t iova,
					   const void *buf, size_t len, bool wait);

/** dmalog_vfu_server_stop() - make a serve loop return soon (any thread) */
DMALOG_API void dmalog_vfu_server_stop(struct dmalog_vfu_server *s);

/** dmalog_vfu_server_destroy() - free it (after its serve loop returned); NULL is fine */
DMALOG_API void dmalog_vfu_server_destroy(struct dmalog_vfu_server *s);

struct dmalog_vfu_client;
struct dmalog_handle;

/**
 * dmalog_vfu_client_connect() - negotiate with the vfio-user server connected on @fd
 * @fd: a connected AF_UNIX stream socket (not closed by the client)
 * @timeout_ms: every reply must come within this (0: 30000)
 * @out: the client
 *
 * Return: 0, -EPROTO for a server whose VERSION reply is not the protocol's (another major, a
 * newer minor, capabilities that are not JSON), its error, or the connection's -errno.
 */
DMALOG_API int dmalog_vfu_client_connect(int fd, uint32_t timeout_ms,
					 struct dmalog_vfu_client **out);

/**
 * dmalog_vfu_client_dma_map() - DMA_MAP: [@iova, @iova + @size) of the client's memory, from
 *	@offset in @fd (-1: no fd, reachable by message only), DMALOG_VFU_DMA_* @flags
 */
DMALOG_API int dmalog_vfu_client_dma_map(struct dmalog_vfu_client *c, uint64_t iova, uint64_t size,
					 int fd, uint64_t offset, uint32_t flags);

#define DMALOG_VFU_CLIENT_HOST_MAPS 64 /* maps without an fd one client serves */

/**
 * dmalog_vfu_client_dma_map_host() - DMA_MAP without an fd: [@iova, @iova + @size) is @host in
 *	this process, and the server reaches it by DMA_READ / DMA_WRITE messages, which the
 *	client serves while it waits for any reply, and in dmalog_vfu_client_serve()
 *
 * Return: 0, -ENOSPC past DMALOG_VFU_CLIENT_HOST_MAPS, or as dmalog_vfu_client_dma_map().
 */
DMALOG_API int dmalog_vfu_client_dma_map_host(struct dmalog_vfu_client *c, uint64_t iova,
					      uint64_t size, void *host, uint32_t flags);

/**
 * dmalog_vfu_client_serve() - serve the server's DMA_READ / DMA_WRITE messages that arrive
 *	within @timeout_ms (0: only those already there), as a VMM does when the socket is
 *	readable between its own requests
 *
 * Each is checked against what arrived and what was mapped (-EINVAL malformed, -EFAULT
 * outside a map that allows it, in the error reply). Return: how many were served, or the
 * connection's -errno (-EPROTO for a reply nobody asked for).
 */
DMALOG_API int dmalog_vfu_client_serve(struct dmalog_vfu_client *c, uint32_t timeout_ms);

/** dmalog_vfu_client_dma_unmap() - DMA_UNMAP of exactly an earlier map */
DMALOG_API int dmalog_vfu_client_dma_unmap(struct dmalog_vfu_client *c, uint64_t iova,
					   uint64_t size);

/**
 * dmalog_vfu_client_region_info() - DEVICE_GET_REGION_INFO of region @index
 * @c: the client
 * @index: the region
 * @out: its flags, size, sparse mmap areas, and for a mappable region the fd to mmap() (the
 *	caller's to close) at fd_offset; -1 otherwise
 *
 * Return: 0, the server's -errno, or -EPROTO for a reply that is not one (capabilities out of
 * its bounds or in a loop, more areas than DMALOG_VFU_MAX_SPARSE_AREAS, an fd on a region that
 * is not mappable or none on one that is).
 */
DMALOG_API int dmalog_vfu_client_region_info(struct dmalog_vfu_client *c, uint32_t index,
					     struct dmalog_vfu_region *out);

/** dmalog_vfu_client_region_read() - REGION_READ of @count bytes at @offset of region @index */
DMALOG_API int dmalog_vfu_client_region_read(struct dmalog_vfu_client *c, uint32_t index,
					     uint64_t offset, void *buf, uint32_t count);

/** dmalog_vfu_client_region_write() - REGION_WRITE of @count bytes at @offset of region @index */
DMALOG_API int dmalog_vfu_client_region_write(struct dmalog_vfu_client *c, uint32_t index,
					      uint64_t offset, const void *buf, uint32_t count);

/** dmalog_vfu_client_irq_info() - DEVICE_GET_IRQ_INFO of interrupt type @index */
DMALOG_API int dmalog_vfu_client_irq_info(struct dmalog_vfu_client *c, uint32_t index,
					  struct dmalog_vfu_irq_type *out);

/**
 * dmalog_vfu_client_set_irqs() - DEVICE_SET_IRQS
 * @c: the client
 * @index: the interrupt type
 * @flags: one VFIO_IRQ_SET_DATA_* and one VFIO_IRQ_SET_ACTION_*
 * @start: the first interrupt of the range
 * @count: how many
 * @eventfds: with DATA_EVENTFD, @count eventfds (sent, not taken), or NULL to de-assign
 * @bools: with DATA_BOOL, @count bytes
 */
DMALOG_API int dmalog_vfu_client_set_irqs(struct dmalog_vfu_client *c, uint32_t index,
					  uint32_t flags, uint32_t start, uint32_t count,
					  const int *eventfds, const uint8_t *bools);

/**
 * dmalog_handle_from_vfu_client() - the device behind @c as a device handle (see
 *	<dmalog/handle.h>), so that it migrates and logs DMA as an in-process one does
 * @c: the client (it must outlive the handle)
 * @name: the handle's name (the migration HELLO compares device names)
 * @out: the handle
 *
 * VFIO_DEVICE_FEATURE goes as DEVICE_FEATURE (DMA logging ranges and the REPORT bitmap
 * inline), VFIO_DEVICE_RESET as DEVICE_RESET. An arc into a saving or resuming state gives a
 * stand-in data fd (/dev/null: poll it, close it); its reads and writes through
 * dmalog_handle_data_read() and _write() are MIG_DATA_READ and MIG_DATA_WRITE.
 * LOW_POWER_ENTRY_WITH_WAKEUP's eventfd travels with the message. VFIO_MIG_GET_PRECOPY_INFO
 * has no vfio-user equivalent: -ENOTTY.
 */
DMALOG_API int dmalog_handle_from_vfu_client(struct dmalog_vfu_client *c, const char *name,
					     struct dmalog_handle **out);

/** dmalog_vfu_client_destroy() - free it (the fd stays open); NULL is fine */
DMALOG_API void dmalog_vfu_client_destroy(struct dmalog_vfu_client *c);

/** dmalog_vfu_command_name() - "VERSION", "DMA_MAP", ...; "unknown" for anything else */
DMALOG_API const char *dmalog_vfu_command_name(uint16_t command);

#ifdef __cplusplus
}
#endif

#endif
