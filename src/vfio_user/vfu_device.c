// SPDX-License-Identifier: MIT
/*
 * An emulated PCI function served over vfio-user (see <dmalog/vfu_device.h>): the migratable
 * emulated device, its config space, BAR0 registers and BAR2 memory, its interrupts, and its
 * DMA into the client's memory. Everything here runs on the server's thread (its hooks) but
 * the DMA engines and the thread that DMAs by message, which have their own; the write count
 * and the state hash may be read from any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <dmalog/dma.h>
#include <dmalog/emudev.h>
#include <dmalog/vfu_device.h>

#define MAX_ENGINES 16
#define CONFIG_SIZE 256

/* Config space offsets (PCI 3.0 type 0 header). */
#define CFG_COMMAND    0x04
#define CFG_CLASS      0x09
#define CFG_BAR0       0x10
#define CFG_BAR2       0x18
#define CFG_INTR_LINE  0x3c
#define CFG_INTR_PIN   0x3d
#define CMD_MEMORY     0x0002
#define CMD_BUS_MASTER 0x0004
#define CMD_INTX_OFF   0x0400

struct dmalog_vfu_device {
	struct dmalog_emudev *emu;
	struct dmalog_vfu_server *server;
	uint64_t rate;
	uint64_t seed;

	/*
	 * DMA: an engine per writable map, writing while every condition lets it. The server's
	 * thread changes the table; lock lets any thread count the writes meanwhile.
	 */
	pthread_mutex_t lock;
	struct {
		uint64_t iova, size;
		struct dmalog_dma_engine *e;
	} engines[MAX_ENGINES];
	unsigned int nengines;
	uint64_t writes_gone; /* writes of engines since destroyed, and by message */
	bool running;	      /* the device may DMA now (atomic: the message thread reads it) */

	/*
	 * Writable maps without an fd, reached by DMA_WRITE messages from a thread of their own.
	 * gate is held from the check of running to the write's log entry: pausing takes it, so
	 * no message leaves once the device has stopped.
	 */
	struct {
		uint64_t iova, size;
	} nofd[MAX_ENGINES];
	unsigned int nnofd;
	pthread_mutex_t gate;
	pthread_t msg_thread;
	bool msg_thread_started;
	int stop_msg;	 /* atomic */
	bool state_runs; /* the migration state lets the device DMA */
	bool suspended;	 /* in low power */

	uint8_t config[CONFIG_SIZE], config_wmask[CONFIG_SIZE];
	uint32_t ctrl;
	uint64_t scratch;

	void (*trace)(void *opaque, const char *line);
	void *trace_opaque;

	int bar2_fd;	     /* the memfd behind BAR2 */
	uint8_t *bar2;	     /* its mapping here */
	uint8_t *bar2_saved; /* its contents while the memfd is empty (low power allowed) */
};

static uint16_t command(const struct dmalog_vfu_device *d)
{
	return (uint16_t)(d->config[CFG_COMMAND] | d->config[CFG_COMMAND + 1] << 8);
}

/* Every engine writing or paused, as the conditions now say. */
static void dma_update(struct dmalog_vfu_device *d)
{
	bool run = d->state_runs && !d->suspended && command(d) & CMD_BUS_MASTER &&
		   d->ctrl & DMALOG_VFU_CTRL_DMA;

	if (run == d->running)
		return;
	pthread_mutex_lock(&d->gate);
	__atomic_store_n(&d->running, run, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&d->gate);
	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < d->nengines; i++) {
		if (run)
			dmalog_dma_engine_resume(d->engines[i].e);
		else
			dmalog_dma_engine_pause(d->engines[i].e);
	}
	pthread_mutex_unlock(&d->lock);
}

static void log_write(void *emu, uint64_t iova, uint64_t len)
{
	dmalog_emudev_log_write(emu, iova, len);
}

static void on_dma_map(void *opaque, uint64_t iova, uint64_t size, void *host, uint32_t flags)
{
	struct dmalog_vfu_device *d = opaque;
	struct dmalog_dma_config c = {
		.mem = host,
		.mem_bytes = size,
		.iova_base = iova,
		.log_write = log_write,
		.tracker = d->emu,
		.workload = DMALOG_WORKLOAD_RANDOM,
		.rate = d->rate,
		.tag = DMALOG_VFU_DEVICE_DMA_TAG,
		.seed = d->seed ^ iova ^ size,
	};
	struct dmalog_dma_engine *e;

	if (!(flags & DMALOG_VFU_DMA_WRITEABLE) || !d->rate)
		return;
	/* Without an fd: the message thread's (maps beyond MAX_ENGINES get no DMA). */
	if (!host) {
		pthread_mutex_lock(&d->lock);
		if (d->nnofd < MAX_ENGINES) {
			d->nofd[d->nnofd].iova = iova;
			d->nofd[d->nnofd++].size = size;
		}
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (d->nengines == MAX_ENGINES || dmalog_dma_engine_create(&c, &e))
		return;
	/* Born paused: it writes only while every condition lets the device DMA. */
	dmalog_dma_engine_pause(e);
	if (dmalog_dma_engine_start(e)) {
		dmalog_dma_engine_destroy(e);
		return;
	}
	if (d->running)
		dmalog_dma_engine_resume(e);
	pthread_mutex_lock(&d->lock);
	d->engines[d->nengines].iova = iova;
	d->engines[d->nengines].size = size;
	d->engines[d->nengines++].e = e;
	pthread_mutex_unlock(&d->lock);
}

static uint64_t engine_writes(struct dmalog_dma_engine *e)
{
	struct dmalog_dma_stats st;

	dmalog_dma_engine_get_stats(e, &st);
	return st.writes;
}

static void on_dma_unmap(void *opaque, uint64_t iova, uint64_t size)
{
	struct dmalog_vfu_device *d = opaque;

	pthread_mutex_lock(&d->lock);
	/* (A DMA_WRITE already sent to it reaches the client before the unmap's reply.) */
	for (unsigned int i = 0; i < d->nnofd; i++) {
		if (d->nofd[i].iova == iova && d->nofd[i].size == size) {
			d->nofd[i] = d->nofd[--d->nnofd];
			break;
		}
	}
	for (unsigned int i = 0; i < d->nengines; i++) {
		if (d->engines[i].iova != iova || d->engines[i].size != size)
			continue;
		/* Stopped and gone before the reply: nothing touches the map after it. */
		dmalog_dma_engine_stop(d->engines[i].e);
		d->writes_gone += engine_writes(d->engines[i].e);
		dmalog_dma_engine_destroy(d->engines[i].e);
		d->engines[i] = d->engines[--d->nengines];
		break;
	}
	pthread_mutex_unlock(&d->lock);
}

/*
 * DMA into maps without an fd, by DMA_WRITE messages (No_reply: the client applies them in
 * order), 64 bytes of tagged words each, at the device's rate: written, then logged, all
 * under the gate.
 */
static void *msg_dma_thread(void *arg)
{
	struct dmalog_vfu_device *d = arg;
	struct timespec gap = {0, 1000000000L / (long)(d->rate < 1000000 ? d->rate : 1000000)};
	struct timespec idle = {0, 10 * 1000000L};
	uint64_t rng = d->seed * 2654435761u + 1, seq = 0;
	bool have = false;

	while (!__atomic_load_n(&d->stop_msg, __ATOMIC_ACQUIRE)) {
		uint64_t words[8], iova = 0;

		/* Nothing to write to, or not allowed to: look again in 10 ms. */
		nanosleep(have ? &gap : &idle, NULL);
		have = false;
		pthread_mutex_lock(&d->gate);
		if (__atomic_load_n(&d->running, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&d->lock);
			if (d->nnofd) {
				unsigned int m;

				rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
				m = (unsigned int)(rng % d->nnofd);
				iova = d->nofd[m].iova + (rng >> 8) % (d->nofd[m].size / 64) * 64;
				have = true;
			}
			pthread_mutex_unlock(&d->lock);
		}
		if (have) {
			for (int i = 0; i < 8; i++)
				words[i] = (uint64_t)DMALOG_VFU_DEVICE_DMA_TAG << 48 | ++seq;
			if (!dmalog_vfu_server_dma_write(d->server, iova, words, sizeof(words),
							 false)) {
				dmalog_emudev_log_write(d->emu, iova, sizeof(words));
				pthread_mutex_lock(&d->lock);
				d->writes_gone++;
				pthread_mutex_unlock(&d->lock);
			}
		}
		pthread_mutex_unlock(&d->gate);
	}
	return NULL;
}

/*
 * DMA while RUNNING or PRE_COPY, as the device's own engine would: paused before an arc out
 * of them reaches the device (no write may land once it says STOP), resumed once it is back.
 */
static void on_state(void *opaque, uint32_t state, bool done)
{
	struct dmalog_vfu_device *d = opaque;
	bool run = state == VFIO_DEVICE_STATE_RUNNING || state == VFIO_DEVICE_STATE_PRE_COPY;

	if (!done && run)
		return;
	d->state_runs = run;
	dma_update(d);
}

/*
 * Low power allowed: the memfd is emptied so that the client's mappings of BAR2 fault, as the
 * kernel zaps them, until low power is off; in it, no DMA.
 */
static void on_power(void *opaque, bool engaged, bool suspended)
{
	struct dmalog_vfu_device *d = opaque;

	if (engaged && !d->bar2_saved) {
		d->bar2_saved = malloc(DMALOG_VFU_BAR2_SIZE);
		if (d->bar2_saved) {
			memcpy(d->bar2_saved, d->bar2, DMALOG_VFU_BAR2_SIZE);
			munmap(d->bar2, DMALOG_VFU_BAR2_SIZE);
			d->bar2 = NULL;
			if (ftruncate(d->bar2_fd, 0)) {
				/* Still mappable, then; nothing is lost. */
			}
		}
	} else if (!engaged && d->bar2_saved) {
		if (!ftruncate(d->bar2_fd, DMALOG_VFU_BAR2_SIZE)) {
			d->bar2 = mmap(NULL, DMALOG_VFU_BAR2_SIZE, PROT_READ | PROT_WRITE,
				       MAP_SHARED, d->bar2_fd, 0);
			if (d->bar2 == MAP_FAILED)
				d->bar2 = NULL;
		}
		if (d->bar2)
			memcpy(d->bar2, d->bar2_saved, DMALOG_VFU_BAR2_SIZE);
		free(d->bar2_saved);
		d->bar2_saved = NULL;
	}
	d->suspended = suspended;
	dma_update(d);
}

static void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Whether [@off, @off + @count) touches the register at @reg of @bytes. */
static bool touches(uint64_t off, uint32_t count, uint64_t reg, unsigned int bytes)
{
	return off < reg + bytes && reg < off + count;
}

/*
 * The registers as an image, those the access touches filled in: the state hash digests the
 * device's whole memory, not to be paid for a read of another register.
 */
static void regs_image(struct dmalog_vfu_device *d, uint64_t off, uint32_t count, uint8_t *img)
{
	memset(img, 0, DMALOG_VFU_REG_END);
	put_le(img + DMALOG_VFU_REG_ID, DMALOG_VFU_ID_VALUE, 4);
	put_le(img + DMALOG_VFU_REG_VERSION, 1, 4);
	if (touches(off, count, DMALOG_VFU_REG_STATE_HASH, 8))
		put_le(img + DMALOG_VFU_REG_STATE_HASH, dmalog_vfu_device_state_hash(d), 8);
	if (touches(off, count, DMALOG_VFU_REG_DMA_WRITES, 8))
		put_le(img + DMALOG_VFU_REG_DMA_WRITES, dmalog_vfu_device_dma_writes(d), 8);
	put_le(img + DMALOG_VFU_REG_CTRL, d->ctrl, 4);
	put_le(img + DMALOG_VFU_REG_SCRATCH, d->scratch, 8);
}

/* BAR0: registers read as an image; writes land byte by byte in the writable ones. */
static int bar0_access(struct dmalog_vfu_device *d, uint64_t off, uint8_t *buf, uint32_t count,
		       bool write)
{
	uint8_t img[DMALOG_VFU_REG_END];

	regs_image(d, off, count, img);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t at = off + i;

		if (!write) {
			buf[i] = at < DMALOG_VFU_REG_END ? img[at] : 0;
			continue;
		}
		if (at >= DMALOG_VFU_REG_CTRL && at < DMALOG_VFU_REG_CTRL + 4)
			img[at] = buf[i];
		else if (at >= DMALOG_VFU_REG_SCRATCH && at < DMALOG_VFU_REG_END)
			img[at] = buf[i];
	}
	if (!write)
		return 0;
	d->ctrl = (uint32_t)get_le(img + DMALOG_VFU_REG_CTRL, 4);
	d->scratch = get_le(img + DMALOG_VFU_REG_SCRATCH, 8);
	dma_update(d);
	/* The doorbell rings on a write of all its four bytes. */
	if (off <= DMALOG_VFU_REG_DOORBELL && off + count >= DMALOG_VFU_REG_DOORBELL + 4) {
		uint32_t v = (uint32_t)get_le(buf + (DMALOG_VFU_REG_DOORBELL - off), 4);

		if (v < DMALOG_VFU_MSIX_VECTORS)
			dmalog_vfu_server_irq(d->server, VFIO_PCI_MSIX_IRQ_INDEX, v);
		else if (v == DMALOG_VFU_DOORBELL_INTX && !(command(d) & CMD_INTX_OFF))
			dmalog_vfu_server_irq(d->server, VFIO_PCI_INTX_IRQ_INDEX, 0);
	}
	return 0;
}

static int region_access(void *opaque, uint32_t index, uint64_t off, void *buf, uint32_t count,
			 bool write)
{
	struct dmalog_vfu_device *d = opaque;

	if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
		uint8_t *b = buf;

		for (uint32_t i = 0; i < count; i++) {
			if (!write) {
				b[i] = d->config[off + i];
				continue;
			}
			d->config[off + i] =
				(uint8_t)((d->config[off + i] & ~d->config_wmask[off + i]) |
					  (b[i] & d->config_wmask[off + i]));
		}
		if (write)
			dma_update(d); /* bus mastering may have changed */
		return 0;
	}
	/* As vfio_pci_bar_rw(): a BAR while memory decoding is off is -EIO. */
	if (!(command(d) & CMD_MEMORY))
		return -EIO;
	if (index == VFIO_PCI_BAR0_REGION_INDEX)
		return bar0_access(d, off, buf, count, write);
	/* BAR2 while its memfd is empty (low power allowed): the saved contents. */
	if (!d->bar2 && !d->bar2_saved)
		return -EIO;
	if (write)
		memcpy((d->bar2 ? d->bar2 : d->bar2_saved) + off, buf, count);
	else
		memcpy(buf, (d->bar2 ? d->bar2 : d->bar2_saved) + off, count);
	return 0;
}

static void trace_line(void *opaque, const char *line)
{
	struct dmalog_vfu_device *d = opaque;

	d->trace(d->trace_opaque, line);
}

static void config_init(struct dmalog_vfu_device *d, bool nic)
{
	uint8_t *c = d->config, *w = d->config_wmask;

	put_le(c + 0x00, DMALOG_VFU_DEVICE_VENDOR, 2);
	put_le(c + 0x02, DMALOG_VFU_DEVICE_ID, 2);
	/* Decoding from reset, so its registers answer at once; no DMA until bus mastering. */
	put_le(c + CFG_COMMAND, CMD_MEMORY, 2);
	c[0x08] = 1; /* revision */
	/* Class: Ethernet controller, or other mass storage. */
	put_le(c + CFG_CLASS, nic ? 0x020000 : 0x018000, 3);
	put_le(c + 0x2c, DMALOG_VFU_DEVICE_VENDOR, 2);
	put_le(c + 0x2e, DMALOG_VFU_DEVICE_ID, 2);
	c[CFG_INTR_PIN] = 1; /* INTA */
	/* Writable: command's decode, bus master and INTx-disable bits, the BARs' address
	 * bits (sizing reads back the size), the interrupt line. */
	put_le(w + CFG_COMMAND, CMD_MEMORY | CMD_BUS_MASTER | CMD_INTX_OFF, 2);
	put_le(w + CFG_BAR0, ~(uint32_t)(DMALOG_VFU_BAR0_SIZE - 1), 4);
	put_le(w + CFG_BAR2, ~(uint32_t)(DMALOG_VFU_BAR2_SIZE - 1), 4);
	w[CFG_INTR_LINE] = 0xff;
}

int dmalog_vfu_device_create(const struct dmalog_vfu_device_config *cfg,
			     struct dmalog_vfu_device **out)
{
	static const struct dmalog_vfu_irq_type irqs[VFIO_PCI_NUM_IRQS] = {
		[VFIO_PCI_INTX_IRQ_INDEX] = {VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
						     VFIO_IRQ_INFO_AUTOMASKED,
					     1},
		[VFIO_PCI_MSIX_IRQ_INDEX] = {VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
					     DMALOG_VFU_MSIX_VECTORS},
	};
	struct dmalog_vfu_region regions[VFIO_PCI_NUM_REGIONS] = {
		[VFIO_PCI_BAR0_REGION_INDEX] = {.flags = VFIO_REGION_INFO_FLAG_READ |
							 VFIO_REGION_INFO_FLAG_WRITE,
						.size = DMALOG_VFU_BAR0_SIZE,
						.fd = -1},
		[VFIO_PCI_BAR2_REGION_INDEX] = {.flags = VFIO_REGION_INFO_FLAG_READ |
							 VFIO_REGION_INFO_FLAG_WRITE |
							 VFIO_REGION_INFO_FLAG_MMAP,
						.size = DMALOG_VFU_BAR2_SIZE,
						.nareas = 1,
						.areas = {{DMALOG_VFU_BAR2_TRAPPED,
							   DMALOG_VFU_BAR2_SIZE -
								   DMALOG_VFU_BAR2_TRAPPED}}},
		[VFIO_PCI_CONFIG_REGION_INDEX] = {.flags = VFIO_REGION_INFO_FLAG_READ |
							   VFIO_REGION_INFO_FLAG_WRITE,
						  .size = CONFIG_SIZE,
						  .fd = -1},
	};
	struct dmalog_vfu_server_config sc = {.size = sizeof(sc)};
	struct dmalog_emudev_config ec = {
		.migration_flags =
			VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
		.dev_mem_bytes = 1 << 20,
		.devtrack_caps = DMALOG_DEVTRACK_CAPS_DEFAULT,
	};
	struct dmalog_vfu_device *d;
	bool nic;
	int ret;

	if (!cfg || !out || cfg->size < sizeof(*cfg) || !cfg->kind ||
	    (strcmp(cfg->kind, "nic") && strcmp(cfg->kind, "storage")))
		return -EINVAL;
	nic = !strcmp(cfg->kind, "nic");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->gate, NULL);
	d->bar2_fd = -1;
	d->rate = cfg->dma_rate;
	d->seed = cfg->seed;
	d->ctrl = DMALOG_VFU_CTRL_DMA;
	d->state_runs = true;
	config_init(d, nic);
	d->bar2_fd = memfd_create("dmalog-bar2", MFD_CLOEXEC);
	if (d->bar2_fd < 0 || ftruncate(d->bar2_fd, DMALOG_VFU_BAR2_SIZE)) {
		ret = -errno;
		goto fail;
	}
	d->bar2 =
		mmap(NULL, DMALOG_VFU_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->bar2_fd, 0);
	if (d->bar2 == MAP_FAILED) {
		d->bar2 = NULL;
		ret = -errno;
		goto fail;
	}
	ec.name = cfg->kind;
	ec.seed = cfg->seed;
	ec.tracker = nic ? DMALOG_EMUDEV_TRACK_DEVICE : DMALOG_EMUDEV_TRACK_SOFTWARE;
	ret = dmalog_emudev_create(&ec, &d->emu);
	if (ret)
		goto fail;
	regions[VFIO_PCI_BAR2_REGION_INDEX].fd = d->bar2_fd;
	sc.dev = dmalog_emudev_device(d->emu);
	sc.timeout_ms = cfg->timeout_ms;
	d->trace = cfg->trace;
	d->trace_opaque = cfg->opaque;
	sc.trace = cfg->trace ? trace_line : NULL;
	sc.opaque = d;
	sc.dma_map = on_dma_map;
	sc.dma_unmap = on_dma_unmap;
	sc.state_changed = on_state;
	sc.regions = regions;
	sc.nregions = VFIO_PCI_NUM_REGIONS;
	sc.region_access = region_access;
	sc.irqs = irqs;
	sc.nirqs = VFIO_PCI_NUM_IRQS;
	sc.no_runtime_pm = cfg->no_runtime_pm;
	sc.power = on_power;
	ret = dmalog_vfu_server_create(&sc, &d->server);
	if (!ret && d->rate) {
		ret = -pthread_create(&d->msg_thread, NULL, msg_dma_thread, d);
		d->msg_thread_started = !ret;
	}
	if (ret)
		goto fail;
	*out = d;
	return 0;
fail:
	dmalog_vfu_device_destroy(d);
	return ret;
}

struct dmalog_vfu_server *dmalog_vfu_device_server(struct dmalog_vfu_device *d)
{
	return d->server;
}

uint64_t dmalog_vfu_device_state_hash(struct dmalog_vfu_device *d)
{
	return dmalog_emudev_state_hash(d->emu);
}

uint64_t dmalog_vfu_device_dma_writes(struct dmalog_vfu_device *d)
{
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->writes_gone;
	for (unsigned int i = 0; i < d->nengines; i++)
		n += engine_writes(d->engines[i].e);
	pthread_mutex_unlock(&d->lock);
	return n;
}

void dmalog_vfu_device_destroy(struct dmalog_vfu_device *d)
{
	if (!d)
		return;
	if (d->msg_thread_started) {
		__atomic_store_n(&d->stop_msg, 1, __ATOMIC_RELEASE);
		pthread_join(d->msg_thread, NULL);
	}
	/* The server drops the client's maps (and so the engines) before the device goes. */
	dmalog_vfu_server_destroy(d->server);
	for (unsigned int i = 0; i < d->nengines; i++) {
		dmalog_dma_engine_stop(d->engines[i].e);
		dmalog_dma_engine_destroy(d->engines[i].e);
	}
	dmalog_emudev_destroy(d->emu);
	if (d->bar2)
		munmap(d->bar2, DMALOG_VFU_BAR2_SIZE);
	free(d->bar2_saved);
	if (d->bar2_fd >= 0)
		close(d->bar2_fd);
	pthread_mutex_destroy(&d->gate);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
