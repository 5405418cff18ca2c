// SPDX-License-Identifier: MIT
/*
 * The served PCI function (dmalog_vfu_device) through dmalog's vfio-user client, and raw
 * messages for every refusal:
 *  - regions: config space, BAR0 registers, BAR2 with its fd and sparse mmap area (the
 *    client's mapping and REGION_READ/WRITE are one memory), bounds, and the kernel's -EIO
 *    for a BAR while memory decoding is off;
 *  - interrupts: MSI-X eventfds signalled by the doorbell, INTx automasked until UNMASK (then
 *    the pending one fires), a client-triggered interrupt, disable-all, and SET_IRQS checked
 *    as vfio_set_irqs_validate_and_prepare() checks it (-EINVAL) with -ENOTTY for an action a
 *    type has no handler for;
 *  - low power (behaviours 113 and 114 of the digest, and vfio_pci_core's runtime PM): the
 *    client's mappings fault until LOW_POWER_EXIT, no DMA in low power, a region access wakes
 *    the device (and, after WITH_WAKEUP, signals once and leaves low power), EXIT idempotent
 *    and signalling when it is itself the wake, a host that keeps the device out of low
 *    power never signals, and a client that leaves takes low power off;
 *  - DMA into the client's memory only once bus mastering is on, every write reported;
 *  - DMA by message to maps without an fd: DMA_READ/DMA_WRITE answered by the client (split
 *    at its transfer size), the server's own checks, the device's No_reply writes applied
 *    before the STOP arc's reply and all reported; a hostile server's DMA commands refused
 *    by the client with EFAULT / EINVAL / ENOTSUP, a stray reply ending the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define TIMEOUT_MS 4000
#define MEM_BYTES  (2u << 20)

struct fx {
	struct dmalog_vfu_device *d;
	int fds[2]; /* [0] the client's end, [1] the server's */
	pthread_t thread;
	int ret;
	struct dmalog_vfu_client *c;
	struct dmalog_handle *h;
};

static void *serve_thread(void *arg)
{
	struct fx *f = arg;

	f->ret = dmalog_vfu_server_serve(dmalog_vfu_device_server(f->d), f->fds[1]);
	return NULL;
}

static void fx_connect(struct fx *f)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->fds), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, serve_thread, f), 0);
	assert_int_equal(dmalog_vfu_client_connect(f->fds[0], TIMEOUT_MS, &f->c), 0);
	assert_int_equal(dmalog_handle_from_vfu_client(f->c, "nic", &f->h), 0);
}

static void fx_disconnect(struct fx *f)
{
	dmalog_handle_destroy(f->h);
	dmalog_vfu_client_destroy(f->c);
	close(f->fds[0]);
	pthread_join(f->thread, NULL);
	close(f->fds[1]);
	assert_int_equal(f->ret, 0);
}

static void fx_start(struct fx *f, uint64_t dma_rate, bool no_runtime_pm)
{
	struct dmalog_vfu_device_config c = {.size = sizeof(c),
					     .kind = "nic",
					     .dma_rate = dma_rate,
					     .seed = 7,
					     .timeout_ms = TIMEOUT_MS,
					     .no_runtime_pm = no_runtime_pm};

	memset(f, 0, sizeof(*f));
	assert_int_equal(dmalog_vfu_device_create(&c, &f->d), 0);
	fx_connect(f);
}

static void fx_end(struct fx *f)
{
	fx_disconnect(f);
	dmalog_vfu_device_destroy(f->d);
}

static uint32_t reg32(struct fx *f, uint32_t region, uint64_t off)
{
	uint8_t b[4];

	assert_int_equal(dmalog_vfu_client_region_read(f->c, region, off, b, 4), 0);
	return (uint32_t)b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static int write32(struct fx *f, uint32_t region, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	return dmalog_vfu_client_region_write(f->c, region, off, b, 4);
}

static int command(struct fx *f, uint16_t cmd)
{
	uint8_t b[2] = {(uint8_t)cmd, (uint8_t)(cmd >> 8)};

	return dmalog_vfu_client_region_write(f->c, VFIO_PCI_CONFIG_REGION_INDEX,
					      DMALOG_VFU_CFG_COMMAND, b, 2);
}

/* Whether @fd becomes readable within @ms; its count is consumed. */
static bool signalled(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return false;
	return read(fd, &n, sizeof(n)) == sizeof(n) && n > 0;
}

static off_t fd_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

/* ---- raw messages, straight into the server's dispatcher ---- */

/* One command (@fds dup'ed: the server takes what it is given); the reply's errno. */
static int raw(struct dmalog_vfu_server *s, uint16_t cmd, const void *payload, size_t len,
	       const int *fds, unsigned int nfds, const uint8_t **body, size_t *body_len)
{
	uint8_t msg[512];
	struct dmalog_vfu_hdr h = {.id = 9, .command = cmd, .size = (uint32_t)(16 + len)}, r;
	int dups[8];
	const void *reply;
	size_t reply_len;

	assert_true(len <= sizeof(msg) - 16 && nfds <= 8);
	memcpy(msg, &h, 16);
	memcpy(msg + 16, payload, len);
	for (unsigned int i = 0; i < nfds; i++)
		dups[i] = dup(fds[i]);
	assert_int_equal(dmalog_vfu_server_handle(s, msg, 16 + len, dups, nfds, &reply, &reply_len),
			 0);
	assert_true(reply_len >= 16);
	memcpy(&r, reply, 16);
	assert_int_equal(r.size, reply_len);
	if (body) {
		*body = (const uint8_t *)reply + 16;
		*body_len = reply_len - 16;
	}
	return r.flags & DMALOG_VFU_ERROR ? (int)r.error : 0;
}

static struct dmalog_vfu_device *raw_device(bool no_runtime_pm)
{
	struct dmalog_vfu_device_config c = {
		.size = sizeof(c), .kind = "storage", .no_runtime_pm = no_runtime_pm};
	struct dmalog_vfu_device *d;
	uint8_t v[4] = {0};

	assert_int_equal(dmalog_vfu_device_create(&c, &d), 0);
	assert_int_equal(
		raw(dmalog_vfu_device_server(d), DMALOG_VFU_VERSION, v, 4, NULL, 0, NULL, NULL), 0);
	return d;
}

/* ---- regions ---- */

static void regions_and_sparse_mmap(void **state)
{
	struct dmalog_vfu_region r;
	struct fx f;
	uint8_t buf[8];
	uint8_t *bar2;

	fx_start(&f, 0, false);
	/* Config space: the IDs, the interrupt pin; BAR sizing reads the size back. */
	assert_int_equal(reg32(&f, VFIO_PCI_CONFIG_REGION_INDEX, 0),
			 DMALOG_VFU_DEVICE_VENDOR | DMALOG_VFU_DEVICE_ID << 16);
	assert_int_equal(write32(&f, VFIO_PCI_CONFIG_REGION_INDEX, 0x10, 0xffffffff), 0);
	assert_int_equal(reg32(&f, VFIO_PCI_CONFIG_REGION_INDEX, 0x10),
			 ~(uint32_t)(DMALOG_VFU_BAR0_SIZE - 1));
	/* BAR0: registers by message only. */
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_BAR0_REGION_INDEX, &r), 0);
	assert_int_equal(r.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
	assert_int_equal(r.size, DMALOG_VFU_BAR0_SIZE);
	assert_int_equal(r.fd, -1);
	assert_int_equal(reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_ID),
			 DMALOG_VFU_ID_VALUE);
	assert_int_equal(write32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_SCRATCH, 0xabcd),
			 0);
	assert_int_equal(reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_SCRATCH), 0xabcd);
	/* A read-only register ignores writes. */
	assert_int_equal(write32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_ID, 0), 0);
	assert_int_equal(reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_ID),
			 DMALOG_VFU_ID_VALUE);
	/* BAR2: an fd, and a sparse area past its first page. */
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_BAR2_REGION_INDEX, &r), 0);
	assert_int_equal(r.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
					  VFIO_REGION_INFO_FLAG_MMAP);
	assert_int_equal(r.size, DMALOG_VFU_BAR2_SIZE);
	assert_int_equal(r.nareas, 1);
	assert_int_equal(r.areas[0].offset, DMALOG_VFU_BAR2_TRAPPED);
	assert_int_equal(r.areas[0].size, DMALOG_VFU_BAR2_SIZE - DMALOG_VFU_BAR2_TRAPPED);
	assert_true(r.fd >= 0);
	bar2 = mmap(NULL, DMALOG_VFU_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd,
		    (off_t)r.fd_offset);
	assert_true(bar2 != MAP_FAILED);
	memcpy(bar2 + 0x3000, "mappable", 8);
	assert_int_equal(
		dmalog_vfu_client_region_read(f.c, VFIO_PCI_BAR2_REGION_INDEX, 0x3000, buf, 8), 0);
	assert_memory_equal(buf, "mappable", 8);
	assert_int_equal(dmalog_vfu_client_region_write(f.c, VFIO_PCI_BAR2_REGION_INDEX, 0x10,
							"trapped!", 8),
			 0);
	assert_memory_equal(bar2 + 0x10, "trapped!", 8);
	munmap(bar2, DMALOG_VFU_BAR2_SIZE);
	close(r.fd);
	/* A BAR the device does not have: size 0, no flags; past the last region: -EINVAL. */
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_BAR1_REGION_INDEX, &r), 0);
	assert_int_equal(r.size, 0);
	assert_int_equal(r.flags, 0);
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_NUM_REGIONS, &r), -EINVAL);
	/* Out of bounds, or over the transfer size: -EINVAL before anything is sent. */
	assert_int_equal(dmalog_vfu_client_region_read(f.c, VFIO_PCI_BAR0_REGION_INDEX,
						       DMALOG_VFU_BAR0_SIZE - 4, buf, 8),
			 -EINVAL);
	assert_int_equal(dmalog_vfu_client_region_read(f.c, VFIO_PCI_BAR1_REGION_INDEX, 0, buf, 4),
			 -EINVAL);
	/* Memory decoding off: a BAR is -EIO (vfio_pci_bar_rw()), config space still answers. */
	assert_int_equal(command(&f, 0), 0);
	assert_int_equal(dmalog_vfu_client_region_read(f.c, VFIO_PCI_BAR0_REGION_INDEX, 0, buf, 4),
			 -EIO);
	assert_int_equal(reg32(&f, VFIO_PCI_CONFIG_REGION_INDEX, 0) & 0xffff,
			 DMALOG_VFU_DEVICE_VENDOR);
	assert_int_equal(command(&f, DMALOG_VFU_CMD_MEMORY), 0);
	assert_int_equal(reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, 0), DMALOG_VFU_ID_VALUE);
	fx_end(&f);
}

static void region_refusals(void **state)
{
	struct dmalog_vfu_device *d = raw_device(false);
	struct dmalog_vfu_server *s = dmalog_vfu_device_server(d);
	struct dmalog_vfu_region_info info = {.argsz = sizeof(info), .index = 2};
	struct dmalog_vfu_region_access a = {.offset = 0, .region = 0, .count = 4};
	uint8_t w[sizeof(a) + 8];
	const uint8_t *body;
	size_t len;

	/* Capabilities that do not fit: the size needed, no capability, the fd all the same. */
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_GET_REGION_INFO, &info, sizeof(info), NULL, 0,
			     &body, &len),
			 0);
	assert_int_equal(len, sizeof(info));
	memcpy(&info, body, sizeof(info));
	assert_int_equal(info.argsz, sizeof(info) + 16 + 16);
	assert_int_equal(info.cap_offset, 0);
	assert_true(info.flags & VFIO_REGION_INFO_FLAG_CAPS);
	/* Short or long requests; argsz under the struct. */
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_GET_REGION_INFO, &info, 16, NULL, 0, NULL, NULL),
			 EINVAL);
	info.argsz = 8;
	assert_int_equal(
		raw(s, DMALOG_VFU_DEVICE_GET_REGION_INFO, &info, sizeof(info), NULL, 0, NULL, NULL),
		EINVAL);
	/* A read whose count is past the region, a write whose count is not what came. */
	a.offset = DMALOG_VFU_BAR0_SIZE - 2;
	assert_int_equal(raw(s, DMALOG_VFU_REGION_READ, &a, sizeof(a), NULL, 0, NULL, NULL),
			 EINVAL);
	a.offset = UINT64_MAX - 1; /* no wrap past the end */
	assert_int_equal(raw(s, DMALOG_VFU_REGION_READ, &a, sizeof(a), NULL, 0, NULL, NULL),
			 EINVAL);
	a.offset = 0;
	a.count = 8;
	memcpy(w, &a, sizeof(a));
	assert_int_equal(raw(s, DMALOG_VFU_REGION_WRITE, w, sizeof(a) + 4, NULL, 0, NULL, NULL),
			 EINVAL);
	assert_int_equal(raw(s, DMALOG_VFU_REGION_WRITE, w, sizeof(a) + 8, NULL, 0, NULL, NULL), 0);
	a.count = DMALOG_VFU_MAX_DATA_XFER + 1;
	assert_int_equal(raw(s, DMALOG_VFU_REGION_READ, &a, sizeof(a), NULL, 0, NULL, NULL),
			 EINVAL);
	a.region = 99;
	a.count = 4;
	assert_int_equal(raw(s, DMALOG_VFU_REGION_READ, &a, sizeof(a), NULL, 0, NULL, NULL),
			 EINVAL);
	dmalog_vfu_device_destroy(d);
}

/* ---- interrupts ---- */

/* SET_IRQS of INTx with no data: @action (MASK, UNMASK or TRIGGER). */
static int intx_action(struct fx *f, uint32_t action)
{
	return dmalog_vfu_client_set_irqs(f->c, VFIO_PCI_INTX_IRQ_INDEX,
					  VFIO_IRQ_SET_DATA_NONE | action, 0, 1, NULL, NULL);
}

static void interrupts_signal_eventfds(void **state)
{
	struct dmalog_vfu_irq_type t;
	int efd[DMALOG_VFU_MSIX_VECTORS], intx = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct fx f;

	fx_start(&f, 0, false);
	assert_int_equal(dmalog_vfu_client_irq_info(f.c, VFIO_PCI_INTX_IRQ_INDEX, &t), 0);
	assert_int_equal(t.flags,
			 VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED);
	assert_int_equal(t.count, 1);
	assert_int_equal(dmalog_vfu_client_irq_info(f.c, VFIO_PCI_MSIX_IRQ_INDEX, &t), 0);
	assert_int_equal(t.flags, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
	assert_int_equal(t.count, DMALOG_VFU_MSIX_VECTORS);
	assert_int_equal(dmalog_vfu_client_irq_info(f.c, VFIO_PCI_NUM_IRQS, &t), -EINVAL);
	/* MSI-X: an eventfd per vector; the doorbell signals exactly the one rung. */
	for (int i = 0; i < DMALOG_VFU_MSIX_VECTORS; i++)
		efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_int_equal(
		dmalog_vfu_client_set_irqs(f.c, VFIO_PCI_MSIX_IRQ_INDEX,
					   VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					   0, DMALOG_VFU_MSIX_VECTORS, efd, NULL),
		0);
	assert_int_equal(write32(&f, 0, DMALOG_VFU_REG_DOORBELL, 2), 0);
	assert_true(signalled(efd[2], 2000));
	for (int i = 0; i < DMALOG_VFU_MSIX_VECTORS; i++)
		assert_false(signalled(efd[i], 0));
	/* The client raising vector 1 itself (DATA_BOOL: only where the byte says). */
	assert_int_equal(
		dmalog_vfu_client_set_irqs(f.c, VFIO_PCI_MSIX_IRQ_INDEX,
					   VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
					   2, NULL, (const uint8_t[]){0, 1}),
		0);
	assert_true(signalled(efd[1], 2000));
	assert_false(signalled(efd[0], 0));
	/* MSI-X has no masking: the kernel's -ENOTTY. */
	assert_int_equal(
		dmalog_vfu_client_set_irqs(f.c, VFIO_PCI_MSIX_IRQ_INDEX,
					   VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 0, 1,
					   NULL, NULL),
		-ENOTTY);
	/* TRIGGER, NONE, no range: every vector off; the doorbell signals nothing. */
	assert_int_equal(
		dmalog_vfu_client_set_irqs(f.c, VFIO_PCI_MSIX_IRQ_INDEX,
					   VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
					   0, NULL, NULL),
		0);
	assert_int_equal(write32(&f, 0, DMALOG_VFU_REG_DOORBELL, 2), 0);
	assert_false(signalled(efd[2], 50));
	/* INTx: automasked after each signal; a second one waits for UNMASK. */
	assert_int_equal(
		dmalog_vfu_client_set_irqs(f.c, VFIO_PCI_INTX_IRQ_INDEX,
					   VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					   0, 1, &intx, NULL),
		0);
	assert_int_equal(write32(&f, 0, DMALOG_VFU_REG_DOORBELL, DMALOG_VFU_DOORBELL_INTX), 0);
	assert_true(signalled(intx, 2000));
	assert_int_equal(write32(&f, 0, DMALOG_VFU_REG_DOORBELL, DMALOG_VFU_DOORBELL_INTX), 0);
	assert_false(signalled(intx, 50));
	assert_int_equal(intx_action(&f, VFIO_IRQ_SET_ACTION_UNMASK), 0);
	assert_true(signalled(intx, 2000));
	/* Masked by the client: pending until unmasked. */
	assert_int_equal(intx_action(&f, VFIO_IRQ_SET_ACTION_UNMASK), 0);
	assert_int_equal(intx_action(&f, VFIO_IRQ_SET_ACTION_MASK), 0);
	assert_int_equal(
		dmalog_vfu_server_irq(dmalog_vfu_device_server(f.d), VFIO_PCI_INTX_IRQ_INDEX, 0),
		-EAGAIN);
	assert_false(signalled(intx, 50));
	assert_int_equal(intx_action(&f, VFIO_IRQ_SET_ACTION_UNMASK), 0);
	assert_true(signalled(intx, 2000));
	/* An interrupt the device does not have; one with no eventfd. */
	assert_int_equal(
		dmalog_vfu_server_irq(dmalog_vfu_device_server(f.d), VFIO_PCI_MSIX_IRQ_INDEX, 4),
		-EINVAL);
	assert_int_equal(
		dmalog_vfu_server_irq(dmalog_vfu_device_server(f.d), VFIO_PCI_MSIX_IRQ_INDEX, 0),
		-ENOENT);
	fx_end(&f);
	for (int i = 0; i < DMALOG_VFU_MSIX_VECTORS; i++)
		close(efd[i]);
	close(intx);
}

/* SET_IRQS refused as the kernel refuses struct vfio_irq_set, by raw message. */
static void set_irqs_refusals(void **state)
{
	struct dmalog_vfu_device *d = raw_device(false);
	struct dmalog_vfu_server *s = dmalog_vfu_device_server(d);
	struct dmalog_vfu_irq_set set = {.argsz = sizeof(set),
					 .flags = VFIO_IRQ_SET_DATA_EVENTFD |
						  VFIO_IRQ_SET_ACTION_TRIGGER,
					 .index = VFIO_PCI_MSIX_IRQ_INDEX,
					 .count = 2};
	int efd[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
	uint8_t msg[sizeof(set) + 4];

	/* Fewer fds than the range: refused (none would de-assign). */
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), efd, 1, NULL, NULL),
			 EINVAL);
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), efd, 2, NULL, NULL),
			 0);
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 0);
	/* Past the type's count; start + count wrapping; an index past the types. */
	set.start = 3;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	set.start = 1;
	set.count = UINT32_MAX;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	set.start = 0;
	set.count = 1;
	set.index = VFIO_PCI_NUM_IRQS;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	/* A type with no interrupts (MSI): start 0 is already past its count. */
	set.index = VFIO_PCI_MSI_IRQ_INDEX;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	/* Two data types, an unknown flag, argsz under the struct. */
	set.index = VFIO_PCI_MSIX_IRQ_INDEX;
	set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER | (1u << 6);
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	set.argsz = 16;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	/* BOOL with its bytes missing; NONE with bytes after it. */
	set.argsz = sizeof(set);
	set.flags = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 EINVAL);
	set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	memcpy(msg, &set, sizeof(set));
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, msg, sizeof(msg), NULL, 0, NULL, NULL),
			 EINVAL);
	/* No action, or two: no handler, -ENOTTY; masking INTx by eventfd is not offered. */
	set.flags = VFIO_IRQ_SET_DATA_NONE;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 ENOTTY);
	set.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK;
	set.index = VFIO_PCI_INTX_IRQ_INDEX;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), NULL, 0, NULL, NULL),
			 ENOTTY);
	set.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_SET_IRQS, &set, sizeof(set), efd, 1, NULL, NULL),
			 ENOTTY);
	close(efd[0]);
	close(efd[1]);
	dmalog_vfu_device_destroy(d);
}

/* ---- low power ---- */

static int low_power(struct fx *f, uint32_t feature, int efd)
{
	struct vfio_device_low_power_entry_with_wakeup w = {.wakeup_eventfd = efd};

	return dmalog_handle_feature(f->h, VFIO_DEVICE_FEATURE_SET | feature, efd >= 0 ? &w : NULL,
				     efd >= 0 ? sizeof(w) : 0);
}

/* DMA writes over @ms: whether any landed. */
static bool dma_goes_on(struct fx *f, int ms)
{
	uint64_t before = dmalog_vfu_device_dma_writes(f->d);

	for (int waited = 0; waited < ms; waited += 10) {
		usleep(10000);
		if (dmalog_vfu_device_dma_writes(f->d) != before)
			return true;
	}
	return false;
}

/* Behaviour 113: LOW_POWER_ENTRY, then the mapping faults until LOW_POWER_EXIT. */
static void b113_low_power_blocks_mmap_until_exit(void **state)
{
	struct dmalog_vfu_region r;
	int mem = memfd_create("guest", MFD_CLOEXEC);
	uint8_t buf[8];
	struct fx f;

	assert_int_equal(ftruncate(mem, MEM_BYTES), 0);
	fx_start(&f, 20000, false);
	assert_int_equal(
		dmalog_vfu_client_dma_map(f.c, 0, MEM_BYTES, mem, 0,
					  DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE),
		0);
	assert_int_equal(command(&f, DMALOG_VFU_CMD_MEMORY | DMALOG_VFU_CMD_BUS_MASTER), 0);
	assert_true(dma_goes_on(&f, 2000));
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_BAR2_REGION_INDEX, &r), 0);
	assert_int_equal(dmalog_vfu_client_region_write(f.c, VFIO_PCI_BAR2_REGION_INDEX, 0x2000,
							"kept  !!", 8),
			 0);
	/* PROBE says SET; GET is not a low-power operation. */
	assert_int_equal(dmalog_handle_feature(f.h,
					       VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
						       VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
					       NULL, 0),
			 0);
	assert_int_equal(dmalog_handle_feature(
				 f.h, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
				 NULL, 0),
			 -EINVAL);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, -1), 0);
	/* Its memory is gone from under every mapping (a touch is SIGBUS, as when zapped). */
	assert_int_equal(fd_size(r.fd), 0);
	/* In low power: no DMA. */
	assert_false(dma_goes_on(&f, 100));
	/* A second entry while allowed: -EINVAL. */
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, -1), -EINVAL);
	/* A region access wakes it for the access: the contents are there; then back. */
	assert_int_equal(
		dmalog_vfu_client_region_read(f.c, VFIO_PCI_BAR2_REGION_INDEX, 0x2000, buf, 8), 0);
	assert_memory_equal(buf, "kept  !!", 8);
	assert_int_equal(fd_size(r.fd), 0);
	assert_false(dma_goes_on(&f, 100));
	/* EXIT: mappable again, the contents kept, DMA back; a second EXIT is fine. */
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1), 0);
	assert_int_equal(fd_size(r.fd), DMALOG_VFU_BAR2_SIZE);
	assert_int_equal(pread(r.fd, buf, 8, 0x2000), 8);
	assert_memory_equal(buf, "kept  !!", 8);
	assert_true(dma_goes_on(&f, 2000));
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1), 0);
	close(r.fd);
	fx_end(&f);
	close(mem);
}

/* Behaviour 114: WITH_WAKEUP, but the device never entered low power: nothing signalled. */
static void b114_wakeup_not_signalled_when_never_entered(void **state)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct fx f;

	fx_start(&f, 0, true);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, efd), 0);
	assert_int_equal(reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, DMALOG_VFU_REG_ID),
			 DMALOG_VFU_ID_VALUE);
	assert_false(signalled(efd, 50));
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1), 0);
	assert_false(signalled(efd, 50));
	fx_end(&f);
	close(efd);
}

/* WITH_WAKEUP on a device that entered: the first access signals once and ends low power. */
static void wakeup_fires_once_and_exit_may_signal(void **state)
{
	struct dmalog_vfu_region r;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct fx f;

	fx_start(&f, 0, false);
	assert_int_equal(dmalog_vfu_client_region_info(f.c, VFIO_PCI_BAR2_REGION_INDEX, &r), 0);
	/* The kernel's own check first: a negative fd never leaves the client. */
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, -5),
			 -EINVAL);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, efd), 0);
	assert_false(signalled(efd, 50));
	assert_int_equal(fd_size(r.fd), 0);
	/* The access wakes it: signalled, low power off (mappable again), single-shot. */
	reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, 0);
	assert_true(signalled(efd, 2000));
	assert_int_equal(fd_size(r.fd), DMALOG_VFU_BAR2_SIZE);
	reg32(&f, VFIO_PCI_BAR0_REGION_INDEX, 0);
	assert_false(signalled(efd, 50));
	/* Entered again, then EXIT: its own access is the wake, which signals. */
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, efd), 0);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1), 0);
	assert_true(signalled(efd, 2000));
	/* Entered again, and the client leaves: the next finds low power off, no signal. */
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, efd), 0);
	assert_int_equal(fd_size(r.fd), 0);
	fx_disconnect(&f);
	assert_int_equal(fd_size(r.fd), DMALOG_VFU_BAR2_SIZE);
	assert_false(signalled(efd, 50));
	fx_connect(&f);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, -1), 0);
	assert_int_equal(low_power(&f, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, -1), 0);
	close(r.fd);
	fx_end(&f);
	close(efd);
}

/* The wakeup eventfd by raw message: where it is among the fds, and that it is one. */
static void low_power_refusals(void **state)
{
	struct dmalog_vfu_device *d = raw_device(false);
	struct dmalog_vfu_server *s = dmalog_vfu_device_server(d);
	struct {
		struct dmalog_vfu_feature f;
		struct dmalog_vfu_low_power_wakeup w;
	} m = {{sizeof(m),
		VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP},
	       {0, 0}};
	struct dmalog_vfu_feature plain = {
		sizeof(plain), VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY};
	int efd = eventfd(0, EFD_CLOEXEC), p[2];

	assert_int_equal(pipe(p), 0);
	/* Index 0 with no fd: -EBADF; not an eventfd: -EINVAL; negative: -EINVAL. */
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_FEATURE, &m, sizeof(m), NULL, 0, NULL, NULL),
			 EBADF);
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_FEATURE, &m, sizeof(m), p, 1, NULL, NULL),
			 EINVAL);
	m.w.wakeup_eventfd = -1;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_FEATURE, &m, sizeof(m), &efd, 1, NULL, NULL),
			 EINVAL);
	/* The data missing (argsz and message both short). */
	m.w.wakeup_eventfd = 0;
	m.f.argsz = 8;
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_FEATURE, &m, 8, &efd, 1, NULL, NULL), EINVAL);
	m.f.argsz = sizeof(m);
	/* An fd on a feature that takes none; on a PROBE. */
	assert_int_equal(
		raw(s, DMALOG_VFU_DEVICE_FEATURE, &plain, sizeof(plain), &efd, 1, NULL, NULL),
		EINVAL);
	/* The right way in, then a plain entry on top: -EINVAL. */
	assert_int_equal(raw(s, DMALOG_VFU_DEVICE_FEATURE, &m, sizeof(m), &efd, 1, NULL, NULL), 0);
	/* (That command was itself the access that woke it: signalled and off, single-shot.) */
	assert_int_equal(
		raw(s, DMALOG_VFU_DEVICE_FEATURE, &plain, sizeof(plain), NULL, 0, NULL, NULL), 0);
	assert_int_equal(
		raw(s, DMALOG_VFU_DEVICE_FEATURE, &plain, sizeof(plain), NULL, 0, NULL, NULL),
		EINVAL);
	close(p[0]);
	close(p[1]);
	close(efd);
	dmalog_vfu_device_destroy(d);
}

/* ---- DMA ---- */

/*
 * Each of @pages pages of @mem that holds a word of the device's DMA has its bit in @bitmap,
 * and no other page does: how many were written.
 */
static uint32_t every_write_reported(const uint64_t *mem, const uint64_t *bitmap, uint32_t pages)
{
	uint32_t written = 0, reported = 0;

	for (uint32_t p = 0; p < pages; p++) {
		bool dirty = bitmap[p / 64] >> (p % 64) & 1, tagged = false;

		for (uint32_t i = 0; i < 512 && !tagged; i++)
			tagged = mem[p * 512 + i] >> 48 == DMALOG_VFU_DEVICE_DMA_TAG;
		assert_true(!tagged || dirty);
		written += tagged;
		reported += dirty;
	}
	assert_int_equal(written, reported);
	return written;
}

/* No DMA before bus mastering; after, every page it writes is reported. */
static void dma_after_bus_master_all_reported(void **state)
{
	static const struct vfio_device_feature_dma_logging_range range = {0, MEM_BYTES};
	int mem = memfd_create("guest", MFD_CLOEXEC);
	uint64_t bitmap[MEM_BYTES / 4096 / 64] = {0};
	const uint64_t *w;
	struct fx f;

	assert_int_equal(ftruncate(mem, MEM_BYTES), 0);
	w = mmap(NULL, MEM_BYTES, PROT_READ, MAP_SHARED, mem, 0);
	assert_true(w != MAP_FAILED);
	fx_start(&f, 20000, false);
	assert_int_equal(
		dmalog_vfu_client_dma_map(f.c, 0, MEM_BYTES, mem, 0,
					  DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE),
		0);
	assert_false(dma_goes_on(&f, 100));
	assert_int_equal(dmalog_handle_log_start(f.h, &range, 1, 4096, NULL), 0);
	assert_int_equal(command(&f, DMALOG_VFU_CMD_MEMORY | DMALOG_VFU_CMD_BUS_MASTER), 0);
	assert_true(dma_goes_on(&f, 2000));
	/* CTRL's DMA bit off: quiet; then STOP for good before the report. */
	assert_int_equal(write32(&f, 0, DMALOG_VFU_REG_CTRL, 0), 0);
	assert_false(dma_goes_on(&f, 100));
	assert_int_equal(dmalog_handle_set_state(f.h, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(dmalog_handle_log_report(f.h, 0, MEM_BYTES, 4096, bitmap), 0);
	assert_true(every_write_reported(w, bitmap, MEM_BYTES / 4096) > 10);
	fx_end(&f);
	munmap((void *)w, MEM_BYTES);
	close(mem);
}

/* ---- DMA by message, to maps without an fd ---- */

struct dma_call {
	struct dmalog_vfu_server *s;
	bool write, wait;
	uint64_t iova;
	void *buf;
	size_t len;
	int ret;
	int done; /* atomic */
};

static void *dma_call_thread(void *arg)
{
	struct dma_call *d = arg;

	d->ret = d->write ? dmalog_vfu_server_dma_write(d->s, d->iova, d->buf, d->len, d->wait)
			  : dmalog_vfu_server_dma_read(d->s, d->iova, d->buf, d->len);
	__atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The device's call on a thread of its own while this one serves the client's side. */
static int dma_call(struct fx *f, bool write, uint64_t iova, void *buf, size_t len)
{
	struct dma_call d = {dmalog_vfu_device_server(f->d), write, true, iova, buf, len, 0, 0};
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, dma_call_thread, &d), 0);
	while (!__atomic_load_n(&d.done, __ATOMIC_ACQUIRE)) {
		int n = dmalog_vfu_client_serve(f->c, 10);

		if (n < 0)
			fail_msg("serve: %s", strerror(-n));
	}
	pthread_join(t, NULL);
	return d.ret;
}

static void dma_by_message_without_fd(void **state)
{
	static const struct vfio_device_feature_dma_logging_range range = {1 << 20, 1 << 20};
	uint8_t *rw = aligned_alloc(4096, 1 << 20), *ro = aligned_alloc(4096, 3 << 20);
	uint64_t bitmap[256 / 64] = {0}, *w = (uint64_t *)rw;
	uint8_t *big = malloc(3 << 20), out[16];
	struct fx f;

	memset(rw, 0, 1 << 20);
	for (size_t i = 0; i < 3 << 20; i++)
		ro[i] = (uint8_t)(i * 7 + 1);
	fx_start(&f, 20000, false);
	assert_int_equal(
		dmalog_vfu_client_dma_map_host(f.c, 1 << 20, 1 << 20, rw,
					       DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE),
		0);
	assert_int_equal(
		dmalog_vfu_client_dma_map_host(f.c, 4 << 20, 3 << 20, ro, DMALOG_VFU_DMA_READABLE),
		0);
	/* A read by message; one past the client's 1 MiB transfer size goes in three. */
	assert_int_equal(dma_call(&f, false, (4 << 20) + 8, out, 16), 0);
	assert_memory_equal(out, ro + 8, 16);
	assert_int_equal(dma_call(&f, false, 4 << 20, big, 3 << 20), 0);
	assert_memory_equal(big, ro, 3 << 20);
	/* A write, waited for; then the server's own checks: read-only, outside any map. */
	assert_int_equal(dma_call(&f, true, (1 << 20) + 64, "by message", 10), 0);
	assert_memory_equal(rw + 64, "by message", 10);
	assert_int_equal(dma_call(&f, true, 4 << 20, "no", 2), -EFAULT);
	assert_int_equal(dma_call(&f, false, (2 << 20) - 8, out, 16), -EFAULT);
	assert_int_equal(dma_call(&f, false, 8 << 20, out, 8), -EFAULT);
	memset(rw, 0, 64 + 10);
	/* The device's own DMA by message (No_reply), logged: every page written is reported. */
	assert_int_equal(dmalog_handle_log_start(f.h, &range, 1, 4096, NULL), 0);
	assert_int_equal(command(&f, DMALOG_VFU_CMD_MEMORY | DMALOG_VFU_CMD_BUS_MASTER), 0);
	for (int i = 0; i < 30; i++)
		assert_true(dmalog_vfu_client_serve(f.c, 10) >= 0);
	/* STOP: what was sent before its reply is applied on the way to it. */
	assert_int_equal(dmalog_handle_set_state(f.h, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(dmalog_vfu_client_serve(f.c, 50), 0);
	assert_int_equal(dmalog_handle_log_report(f.h, 1 << 20, 1 << 20, 4096, bitmap), 0);
	assert_true(every_write_reported(w, bitmap, 256) > 5);
	/* Unmapped: the client forgets it only once the server has said so. */
	assert_int_equal(dmalog_vfu_client_dma_unmap(f.c, 1 << 20, 1 << 20), 0);
	assert_int_equal(dma_call(&f, false, 1 << 20, out, 8), -EFAULT);
	fx_end(&f);
	free(rw);
	free(ro);
	free(big);
}

/* A hostile server's DMA commands, as the client answers them. */
struct fake {
	int fd;
	uint32_t errors[8];
	bool ro_read_ok;
};

static void fake_send(int fd, uint16_t cmd, uint16_t id, uint32_t flags, const void *p, size_t len)
{
	uint8_t buf[256];
	struct dmalog_vfu_hdr h = {
		.id = id, .command = cmd, .size = (uint32_t)(16 + len), .flags = flags};

	memcpy(buf, &h, 16);
	if (len)
		memcpy(buf + 16, p, len);
	assert_int_equal(write(fd, buf, 16 + len), (ssize_t)(16 + len));
}

/* Read one message: its header into @h and its payload into @p (at most @cap). */
static void fake_read(int fd, struct dmalog_vfu_hdr *h, uint8_t *p, size_t cap)
{
	size_t got = 0;

	while (got < 16)
		got += (size_t)read(fd, (uint8_t *)h + got, 16 - got);
	assert_true(h->size - 16 <= cap);
	for (got = 0; got < h->size - 16;)
		got += (size_t)read(fd, p + got, h->size - 16 - got);
}

static void *fake_server(void *arg)
{
	struct fake *f = arg;
	struct dmalog_vfu_hdr h;
	uint8_t p[256];
	struct {
		struct dmalog_vfu_dma_rw rw;
		uint8_t data[8];
	} wr = {{0x10000, 8}, "hostile"};

	fake_read(f->fd, &h, p, sizeof(p)); /* VERSION */
	fake_send(f->fd, h.command, h.id, DMALOG_VFU_TYPE_REPLY, "\0\0\0\0", 4);
	fake_read(f->fd, &h, p, sizeof(p)); /* DMA_MAP, no fd */
	fake_send(f->fd, h.command, h.id, DMALOG_VFU_TYPE_REPLY, NULL, 0);
	/* 1: outside the map; 2: count not what came; 3: to the read-only map's end + 1;
	 * 4: a command the client does not serve; 5: a read, fine. */
	wr.rw.address = 0x90000;
	fake_send(f->fd, DMALOG_VFU_DMA_WRITE, 1, 0, &wr, sizeof(wr));
	wr.rw.address = 0x10000;
	wr.rw.count = 9;
	fake_send(f->fd, DMALOG_VFU_DMA_WRITE, 2, 0, &wr, sizeof(wr));
	wr.rw.count = 8;
	fake_send(f->fd, DMALOG_VFU_DMA_WRITE, 3, 0, &wr, sizeof(wr));
	fake_send(f->fd, 0x77, 4, 0, NULL, 0);
	fake_send(f->fd, DMALOG_VFU_DMA_READ, 5, 0, &wr.rw, sizeof(wr.rw));
	for (int i = 0; i < 5; i++) {
		fake_read(f->fd, &h, p, sizeof(p));
		f->errors[h.id] = h.flags & DMALOG_VFU_ERROR ? h.error : 0;
		if (h.id == 5)
			f->ro_read_ok = h.size == 16 + 16 + 8 && !memcmp(p + 16, "readonly", 8);
	}
	return NULL;
}

static void client_answers_hostile_dma(void **state)
{
	struct fake f = {0};
	struct dmalog_vfu_client *c;
	uint8_t mem[4096] = "readonly";
	int sv[2];
	pthread_t t;
	int served = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, fake_server, &f), 0);
	assert_int_equal(dmalog_vfu_client_connect(sv[0], TIMEOUT_MS, &c), 0);
	assert_int_equal(dmalog_vfu_client_dma_map_host(c, 0x10000, sizeof(mem), mem,
							DMALOG_VFU_DMA_READABLE),
			 0);
	while (served < 5) {
		int n = dmalog_vfu_client_serve(c, 100);

		assert_true(n >= 0);
		served += n;
	}
	pthread_join(t, NULL);
	assert_int_equal(f.errors[1], EFAULT);
	assert_int_equal(f.errors[2], EINVAL);
	assert_int_equal(f.errors[3], EFAULT);
	assert_int_equal(f.errors[4], ENOTSUP);
	assert_int_equal(f.errors[5], 0);
	assert_true(f.ro_read_ok);
	assert_memory_equal(mem, "readonly", 8);
	/* A reply nobody asked for: out of step. */
	fake_send(sv[1], DMALOG_VFU_DMA_READ, 9, DMALOG_VFU_TYPE_REPLY, NULL, 0);
	assert_int_equal(dmalog_vfu_client_serve(c, 1000), -EPROTO);
	dmalog_vfu_client_destroy(c);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(regions_and_sparse_mmap),
		cmocka_unit_test(region_refusals),
		cmocka_unit_test(interrupts_signal_eventfds),
		cmocka_unit_test(set_irqs_refusals),
		cmocka_unit_test(b113_low_power_blocks_mmap_until_exit),
		cmocka_unit_test(b114_wakeup_not_signalled_when_never_entered),
		cmocka_unit_test(wakeup_fires_once_and_exit_may_signal),
		cmocka_unit_test(low_power_refusals),
		cmocka_unit_test(dma_after_bus_master_all_reported),
		cmocka_unit_test(dma_by_message_without_fd),
		cmocka_unit_test(client_answers_hostile_dma),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
