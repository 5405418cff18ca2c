/* SPDX-License-Identifier: MIT */
/*
 * A whole emulated PCI function ready to serve over vfio-user: what `dmalog serve` serves,
 * and what a VMM or a test embeds to have a device in another process.
 *
 * It is an emulated migratable device (a "nic" with its own mlx5-like DMA tracker, or a
 * "storage" device with a software log) plus what a PCI function shows a vfio-user client:
 *  - region 7, config space (256 bytes): vendor 0x1b36, device 0x10d1, the command register
 *    (memory decoding on from reset, so the registers answer at once; bus mastering off until
 *    the client turns it on, as a driver would, so a fresh device never DMAs by itself), BAR0
 *    and BAR2 with the usual sizing, the interrupt line and pin (INTA);
 *  - region 0, BAR0 (4 KiB of registers, by message only; -EIO while memory decoding is off):
 *    the DMALOG_VFU_REG_* below;
 *  - region 2, BAR2 (64 KiB of device memory in a memfd): its first 4 KiB by message only,
 *    the rest mappable (a sparse mmap capability). While low power is allowed the memfd is
 *    emptied, so the client's mmaps fault (SIGBUS) as the kernel's zapped mappings do, and
 *    its contents come back when low power is off;
 *  - interrupts: INTx (1, maskable, automasked) and MSI-X (4 vectors); the doorbell raises
 *    them;
 *  - DMA: while the device is RUNNING or PRE_COPY, awake, bus mastering and enabled (CTRL),
 *    (config space is the VMM's to migrate, as QEMU does: a destination device's bus
 *    mastering stays off until its VMM restores it),
 *    it writes each writable map of the client's that came with an fd, at random, and logs
 *    every write in its tracker (so REPORT accounts for each). Every 8-byte word written
 *    carries DMALOG_VFU_DEVICE_DMA_TAG in its top 16 bits.
 */
#ifndef DMALOG_VFU_DEVICE_H
#define DMALOG_VFU_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/vfio_user.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_VFU_DEVICE_VENDOR  0x1b36
#define DMALOG_VFU_DEVICE_ID	  0x10d1
#define DMALOG_VFU_DEVICE_DMA_TAG 0xd1a0
#define DMALOG_VFU_BAR0_SIZE	  4096
#define DMALOG_VFU_BAR2_SIZE	  65536
#define DMALOG_VFU_BAR2_TRAPPED	  4096 /* the first page of BAR2: by message only */
#define DMALOG_VFU_MSIX_VECTORS	  4

/* BAR0 registers (little-endian, any width; writes to read-only ones are ignored). */
#define DMALOG_VFU_REG_ID	  0x00 /* u32 RO: "DMLG" (0x474c4d44) */
#define DMALOG_VFU_REG_VERSION	  0x04 /* u32 RO: 1 */
#define DMALOG_VFU_REG_STATE_HASH 0x08 /* u64 RO: a digest of the device's migratable state */
#define DMALOG_VFU_REG_DMA_WRITES 0x10 /* u64 RO: DMA writes made since the device was made */
#define DMALOG_VFU_REG_CTRL	  0x18 /* u32 RW: bit 0 DMA enabled (1 from reset) */
#define DMALOG_VFU_REG_DOORBELL	  0x1c /* u32 WO: n < 4 raises MSI-X vector n, 0x100 INTx */
#define DMALOG_VFU_REG_SCRATCH	  0x20 /* u64 RW */
#define DMALOG_VFU_REG_END	  0x28

#define DMALOG_VFU_ID_VALUE	 0x474c4d44u
#define DMALOG_VFU_CTRL_DMA	 (1u << 0)
#define DMALOG_VFU_DOORBELL_INTX 0x100u

/* Config space: the command register and its bits (PCI_COMMAND_*). */
#define DMALOG_VFU_CFG_COMMAND	    0x04
#define DMALOG_VFU_CMD_MEMORY	    0x0002
#define DMALOG_VFU_CMD_BUS_MASTER   0x0004
#define DMALOG_VFU_CMD_INTX_DISABLE 0x0400

/**
 * struct dmalog_vfu_device_config - what to make
 * @size: sizeof(struct dmalog_vfu_device_config)
 * @kind: "nic" or "storage" (the device's name, which migration compares)
 * @dma_rate: DMA writes per second into each writable map (0: no DMA)
 * @seed: the device's state and DMA pattern
 * @timeout_ms: the server's (see struct dmalog_vfu_server_config; 0: 30000)
 * @no_runtime_pm: the host keeps the device out of low power (the server's)
 * @trace: optional: the server's trace lines
 * @opaque: passed to @trace
 */
struct dmalog_vfu_device_config {
	uint32_t size;
	const char *kind;
	uint64_t dma_rate;
	uint64_t seed;
	uint32_t timeout_ms;
	bool no_runtime_pm;
	void (*trace)(void *opaque, const char *line);
	void *opaque;
};

struct dmalog_vfu_device;

/** dmalog_vfu_device_create() - the device and its server: 0, -EINVAL, -ENOMEM or -errno */
DMALOG_API int dmalog_vfu_device_create(const struct dmalog_vfu_device_config *cfg,
					struct dmalog_vfu_device **out);

/** dmalog_vfu_device_server() - its server: serve clients with dmalog_vfu_server_serve() */
DMALOG_API struct dmalog_vfu_server *dmalog_vfu_device_server(struct dmalog_vfu_device *d);

/** dmalog_vfu_device_state_hash() - what DMALOG_VFU_REG_STATE_HASH reads (any thread) */
DMALOG_API uint64_t dmalog_vfu_device_state_hash(struct dmalog_vfu_device *d);

/** dmalog_vfu_device_dma_writes() - what DMALOG_VFU_REG_DMA_WRITES reads (any thread) */
DMALOG_API uint64_t dmalog_vfu_device_dma_writes(struct dmalog_vfu_device *d);

/** dmalog_vfu_device_destroy() - after its server's serve loop returned; NULL is fine */
DMALOG_API void dmalog_vfu_device_destroy(struct dmalog_vfu_device *d);

#ifdef __cplusplus
}
#endif

#endif
