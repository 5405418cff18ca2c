/* SPDX-License-Identifier: MIT */
/* What the vfio-user server's pieces share: the socket I/O and the capabilities. */
#ifndef DMALOG_VFIO_USER_VFU_H
#define DMALOG_VFIO_USER_VFU_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dmalog/vfio_user.h>

/*
 * The most a message may carry: the largest transfer after the largest prefix (a DMA_READ
 * reply's address and count; MIG_DATA_WRITE's and REGION_WRITE's are shorter), and its header.
 */
#define VFU_MAX_MSG (sizeof(struct dmalog_vfu_hdr) + 16 + DMALOG_VFU_MAX_DATA_XFER)

/*
 * Receive one whole message into @buf (@cap bytes) with the fds that came with it (at most
 * @max_fds; *fds_lost when more came and the kernel dropped the rest). Its first byte must
 * come within @first_ms (-1: no deadline, for a server between commands), giving up when
 * *@stop is set; once it has begun, the rest must come within @timeout_ms. Returns 1 and
 * *len, 0 when the peer closed the connection between messages, or -errno: -EBADMSG for a
 * size under the header's, -EMSGSIZE over @cap, -ETIMEDOUT, -ECONNRESET when it closed
 * mid-message, -ESHUTDOWN when stopped.
 */
int vfu_recv(int fd, const int *stop, int first_ms, int timeout_ms, uint8_t *buf, size_t cap,
	     size_t *len, int *fds, unsigned int max_fds, unsigned int *nfds, bool *fds_lost);

/* Milliseconds on a monotonic clock. */
double vfu_now_ms(void);

/*
 * Wait for @events on @fd until @deadline (vfu_now_ms() time; 0: none) or *@stop (NULL: no
 * stop): 0, -ETIMEDOUT or -ESHUTDOWN.
 */
int vfu_wait(int fd, short events, double deadline, const int *stop);

/* Whether the device saves its state in @state (PRE_COPY*, STOP_COPY): MIG_DATA_READ's states. */
static inline bool vfu_saving(uint32_t state)
{
	return state == VFIO_DEVICE_STATE_PRE_COPY || state == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       state == VFIO_DEVICE_STATE_STOP_COPY;
}

/* Send @len bytes, each wait bounded by @timeout_ms: 0 or -errno. */
int vfu_send(int fd, int timeout_ms, const void *buf, size_t len);

/* The same with @nfds fds (at most DMALOG_VFU_MAX_MSG_FDS) on its first byte. */
int vfu_send_fds(int fd, int timeout_ms, const void *buf, size_t len, const int *fds,
		 unsigned int nfds);

/*
 * A DMA_LOGGING_REPORT's range, as both ends check it: pages of @page_size (a power of two)
 * covering [@iova, @iova + @length) at any ratio to the tracker's, and the bitmap's bytes in
 * whole u64 words. 0, -EINVAL for an empty or wrapping range or a bad page size, -E2BIG for a
 * bitmap over DMALOG_VFU_MAX_BITMAP_BYTES.
 */
static inline int vfu_report_size(uint64_t iova, uint64_t length, uint64_t page_size,
				  uint64_t *pages, uint64_t *bytes)
{
	if (!length || !page_size || (page_size & (page_size - 1)) || iova + length < iova)
		return -EINVAL;
	*pages = length / page_size + !!(length % page_size);
	*bytes = (*pages + 63) / 64 * 8;
	return *bytes > DMALOG_VFU_MAX_BITMAP_BYTES ? -E2BIG : 0;
}

/*
 * A GET_REGION_INFO reply's sparse mmap capability: vfio_info_cap_header, then
 * vfio_region_info_cap_sparse_mmap's count; its areas follow.
 */
struct vfu_sparse_cap {
	uint16_t id;
	uint16_t version;
	uint32_t next;
	uint32_t nr_areas;
	uint32_t reserved;
};

_Static_assert(sizeof(struct vfu_sparse_cap) == 16, "sparse mmap capability header");

/* What a VERSION's capabilities say, the defaults of the spec where they say nothing. */
struct vfu_caps {
	uint32_t max_msg_fds;
	uint64_t max_data_xfer_size;
	uint64_t pgsizes;
	uint32_t max_dma_maps;
	bool migration; /* the migration object was there */
	uint64_t migration_pgsize;
	uint64_t max_bitmap_size;
};

/*
 * A peer's VERSION data: @json is @len bytes ending in its NUL. 0, or -EINVAL for anything
 * that is not JSON, not an object, or a known capability of the wrong type or range (unknown
 * ones are ignored, as later minor versions may add them).
 */
int vfu_caps_parse(const char *json, size_t len, struct vfu_caps *c);

/* The spec's defaults, for a VERSION that carries no capabilities. */
void vfu_caps_default(struct vfu_caps *c);

/*
 * Our capabilities as the reply's JSON into @out (NUL included): the migration object only
 * when the client proposed one. Returns its length with the NUL, or -ENOSPC / -ENOMEM.
 */
int vfu_caps_write(const struct vfu_caps *ours, char *out, size_t cap);

#endif
