/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user server's state, shared by its pieces: the core and the DMA maps (server.c),
 * regions (regions.c), interrupts (irqs.c) and low power (power.c). Each command handler
 * returns the reply payload's length, or -errno for an error reply.
 */
#ifndef DMALOG_VFIO_USER_SERVER_PRIV_H
#define DMALOG_VFIO_USER_SERVER_PRIV_H

#include <pthread.h>

#include "vfu.h"

/* A window of client memory: mmap()ed when it came with an fd, else reachable by message. */
struct vfu_map {
	uint64_t iova, size;
	uint32_t flags;
	void *host; /* NULL without an fd */
};

/* One interrupt: the client's eventfd for it (-1: none), and whether it waits for UNMASK. */
struct vfu_irq {
	int trigger;
	bool masked, pending;
};

struct dmalog_vfu_server {
	struct dmalog_vfu_server_config cfg;
	bool negotiated;
	struct vfu_caps client; /* what the client said in VERSION */
	uint64_t max_data_xfer; /* negotiated: the smaller of both */
	struct vfu_map *maps;	/* sorted by iova, never overlapping */
	uint32_t nmaps;
	int data_fd;	     /* the device's migration data session, or -1 */
	uint32_t dev_state;  /* the state the last MIG_DEVICE_STATE set */
	uint8_t *rx, *reply; /* the message being handled and its reply */
	size_t reply_cap;
	int reply_fd; /* an fd that goes with the reply (not owned), or -1 */
	int stop;     /* atomic: dmalog_vfu_server_stop() */

	struct dmalog_vfu_region regions[DMALOG_VFU_MAX_REGIONS];
	struct dmalog_vfu_irq_type irq_types[DMALOG_VFU_MAX_IRQ_TYPES];
	/* The device raises interrupts from its own threads: irq_lock guards irqs[][]. */
	pthread_mutex_t irq_lock;
	struct vfu_irq irqs[DMALOG_VFU_MAX_IRQ_TYPES][DMALOG_VFU_MAX_IRQS];

	/*
	 * Server-to-client DMA (server_dma.c), from the device's threads: sends on the
	 * connection go under conn_lock (the serve loop's replies too); maps_lock covers maps[]
	 * for readers on other threads (the serve thread changes it under the lock); one
	 * request at a time under dma_lock, its reply handed over by the serve loop.
	 */
	pthread_mutex_t conn_lock;
	int conn_fd; /* the connection being served, or -1 */
	pthread_t serve_thread;
	pthread_mutex_t maps_lock;
	pthread_mutex_t dma_lock;
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	struct vfu_dma_wait {
		bool pending, done;
		uint16_t id, cmd;
		int err;
		uint8_t *buf; /* DMA_READ: where the data goes */
		uint64_t addr, count;
	} dma_wait;
	uint16_t dma_id;

	/* Low power, as vfio_pci_core keeps it (pm_runtime_engaged, pm_wake_eventfd_ctx). */
	bool pm_engaged;   /* the client allowed low power (LOW_POWER_ENTRY*) */
	bool pm_suspended; /* the device is in it now */
	int pm_wake_fd;	   /* LOW_POWER_ENTRY_WITH_WAKEUP's eventfd, or -1 */
};

/* The reply's payload area, grown to hold @len bytes (NULL without memory). */
uint8_t *vfu_reply_room(struct dmalog_vfu_server *s, size_t len);

/* The map that holds @iova, or the index where one starting there would go. */
uint32_t vfu_map_index(const struct dmalog_vfu_server *s, uint64_t iova);

/* server_dma.c: set up and tear down; the serve loop's connection; a DMA reply it received. */
void vfu_dma_init(struct dmalog_vfu_server *s);
void vfu_dma_destroy(struct dmalog_vfu_server *s);
void vfu_dma_connected(struct dmalog_vfu_server *s, int fd);
void vfu_dma_disconnected(struct dmalog_vfu_server *s);
int vfu_dma_reply(struct dmalog_vfu_server *s, const uint8_t *msg, size_t len);
/* Send @len bytes (and @fd when >= 0) on the connection, under conn_lock. */
int vfu_conn_send(struct dmalog_vfu_server *s, const void *buf, size_t len, int fd);

/* regions.c: DEVICE_GET_REGION_INFO, REGION_READ, REGION_WRITE. */
int vfu_cmd_region_info(struct dmalog_vfu_server *s, const uint8_t *p, size_t len);
int vfu_cmd_region_read(struct dmalog_vfu_server *s, const uint8_t *p, size_t len);
int vfu_cmd_region_write(struct dmalog_vfu_server *s, const uint8_t *p, size_t len);

/* irqs.c: DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS (@fds taken by the caller), and teardown. */
int vfu_cmd_irq_info(struct dmalog_vfu_server *s, const uint8_t *p, size_t len);
int vfu_cmd_set_irqs(struct dmalog_vfu_server *s, const uint8_t *p, size_t len, const int *fds,
		     unsigned int nfds);
void vfu_irqs_init(struct dmalog_vfu_server *s);
void vfu_irqs_release(struct dmalog_vfu_server *s); /* every eventfd closed */

/*
 * power.c: the low-power features, and what a device access does to a device in low power:
 * it is woken for the access (vfio_pci_core's runtime resume) and may go back after it.
 */
bool vfu_is_power_feature(uint32_t feature);
int vfu_power_feature(struct dmalog_vfu_server *s, uint32_t flags, uint32_t argsz, const uint8_t *d,
		      size_t len, const int *fds, unsigned int nfds);
void vfu_power_wake(struct dmalog_vfu_server *s);
void vfu_power_idle(struct dmalog_vfu_server *s);
void vfu_power_release(struct dmalog_vfu_server *s); /* low power off, without a wakeup */

#endif
