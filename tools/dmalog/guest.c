// SPDX-License-Identifier: MIT
/*
 * The emulated guest that `dmalog migrate` moves: RAM laid out in guest-physical space like a
 * PC's (low RAM, the PCI hole below 4 GiB, then two high slots with a gap between them), a
 * CPU that writes all of RAM and logs into its own software dirty log as KVM does, and
 * devices behind an IOMMU (iommufd, or a type1 container) that DMA into RAM.
 *
 * Guest-physical addresses are what devices and the IOMMU see (IOVA = GPA, no vIOMMU); the
 * stream and the CPU log use RAM offsets, as QEMU's ram_addr does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define SZ_2M (2ULL << 20)
#define SZ_1G (1ULL << 30)
#define SZ_4G (4ULL << 30)

/* Low RAM up to 2 GiB at 0; the rest above 4 GiB in two slots with a 1 GiB hole between. */
static void lay_out_ram(struct guest *g)
{
	uint64_t low = g->ram_bytes / 2, rest, hi1;

	if (low > 2 * SZ_1G)
		low = 2 * SZ_1G;
	low &= ~(SZ_2M - 1);
	rest = g->ram_bytes - low;
	hi1 = (rest / 2) & ~(SZ_2M - 1);
	g->slots[g->nslots++] = (struct dmalog_ram_region){.host = g->ram, .gpa = 0, .length = low};
	if (hi1)
		g->slots[g->nslots++] = (struct dmalog_ram_region){
			.host = g->ram + low, .gpa = SZ_4G, .length = hi1, .ram_offset = low};
	g->slots[g->nslots++] = (struct dmalog_ram_region){.host = g->ram + low + hi1,
							   .gpa = SZ_4G + hi1 + SZ_1G,
							   .length = rest - hi1,
							   .ram_offset = low + hi1};
}

static void cpu_log_write(void *tracker, uint64_t iova, uint64_t length)
{
	dmalog_swtrack_log_write(tracker, iova, length);
}

static int make_cpu(struct guest *g, const struct mig_options *o)
{
	struct dmalog_device_desc desc = {.name = "cpu", .log_ops = dmalog_swtrack_log_ops()};
	struct dmalog_dma_config dma = {
		.mem = g->ram,
		.mem_bytes = g->ram_bytes,
		.log_write = cpu_log_write,
		.workload = o->workload,
		.rate = o->cpu_rate,
		.tag = GUEST_CPU_TAG,
		.seed = o->seed,
	};
	int ret = dmalog_swtrack_create(&g->cpu_log);

	if (ret)
		return ret;
	desc.priv = g->cpu_log;
	dma.tracker = g->cpu_log;
	ret = dmalog_device_create(&desc, &g->cpu_logdev);
	if (!ret)
		ret = dmalog_dma_engine_create(&dma, &g->cpu);
	return ret ? ret : dmalog_dma_engine_start(g->cpu);
}

/*
 * iommufd: one IOAS with every RAM slot at its GPA, one HWPT all devices attach to. Unless
 * asked for huge IOPTEs, the IOAS maps 4 KiB leaves: the IOMMU's dirty bit is per leaf, so a
 * 64-byte DMA write under a 2 MiB leaf would dirty 512 pages.
 */
static int make_iommufd(struct guest *g, bool huge, uint32_t *dev_ids)
{
	struct iommu_option opt = {
		.size = sizeof(opt),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_SET,
		.val64 = huge,
	};
	struct iommu_ioas_alloc ioas = {.size = sizeof(ioas)};
	struct iommu_hwpt_alloc hwpt = {.size = sizeof(hwpt)};
	struct dmalog_iommufd_device_caps caps = {.dirty_tracking = true};
	int ret = dmalog_iommufd_create(&g->iommufd);

	if (!ret)
		ret = dmalog_iommufd_ioctl(g->iommufd, IOMMU_IOAS_ALLOC, &ioas);
	if (ret)
		return ret;
	g->ioas_id = ioas.out_ioas_id;
	opt.object_id = g->ioas_id;
	ret = dmalog_iommufd_ioctl(g->iommufd, IOMMU_OPTION, &opt);
	for (uint32_t i = 0; i < g->nslots && !ret; i++) {
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
				 IOMMU_IOAS_MAP_READABLE,
			.ioas_id = g->ioas_id,
			.user_va = (uintptr_t)(g->ram + g->slots[i].ram_offset),
			.length = g->slots[i].length,
			.iova = g->slots[i].gpa,
		};

		ret = dmalog_iommufd_ioctl(g->iommufd, IOMMU_IOAS_MAP, &map);
	}
	for (uint32_t i = 0; i < g->ndevices && !ret; i++)
		ret = dmalog_iommufd_bind(g->iommufd, &caps, &dev_ids[i]);
	if (ret)
		return ret;
	hwpt.flags = g->iommu_dirty ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0;
	hwpt.dev_id = dev_ids[0];
	hwpt.pt_id = g->ioas_id;
	ret = dmalog_iommufd_ioctl(g->iommufd, IOMMU_HWPT_ALLOC, &hwpt);
	g->hwpt_id = hwpt.out_hwpt_id;
	for (uint32_t i = 0; i < g->ndevices && !ret; i++) {
		uint32_t pt = g->hwpt_id;

		ret = dmalog_iommufd_attach(g->iommufd, dev_ids[i], &pt);
	}
	return ret;
}

/* type1: every slot mapped; each device's group joins, and none of them pins. */
static int make_type1(struct guest *g)
{
	int ret = dmalog_type1_create(&g->type1);

	for (uint32_t i = 0; i < g->nslots && !ret; i++) {
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)(g->ram + g->slots[i].ram_offset),
			.iova = g->slots[i].gpa,
			.size = g->slots[i].length,
		};

		ret = dmalog_type1_ioctl(g->type1, VFIO_IOMMU_MAP_DMA, &map);
	}
	for (uint32_t i = 0; i < g->ndevices && !ret; i++)
		dmalog_type1_add_group(g->type1, false);
	return ret;
}

/* Bus mastering on for the vfio-user device @i: a config-space write, as a driver's. */
static int remote_bus_master(struct guest *g, uint32_t i)
{
	uint8_t cmd[2];
	int ret = dmalog_vfu_client_region_read(g->vfu[i], VFIO_PCI_CONFIG_REGION_INDEX,
						DMALOG_VFU_CFG_COMMAND, cmd, 2);

	cmd[0] |= DMALOG_VFU_CMD_BUS_MASTER;
	return ret ? ret
		   : dmalog_vfu_client_region_write(g->vfu[i], VFIO_PCI_CONFIG_REGION_INDEX,
						    DMALOG_VFU_CFG_COMMAND, cmd, 2);
}

/*
 * A device served by another process: connect, negotiate, share every RAM slot through the
 * memfd (IOVA = GPA), and drive it through the same handle as an in-process one. Its DMA is
 * not behind this guest's IOMMU, so it always logs its own.
 */
static int make_remote_device(struct guest *g, const struct mig_options *o, uint32_t i)
{
	char err[200];
	int ret;

	g->vfu_fd[i] = socket_connect(o->vfu_paths[i], (int)o->timeout_ms, err, sizeof(err));
	if (g->vfu_fd[i] < 0) {
		fprintf(stderr, "dmalog migrate: device %u: %s\n", i, err);
		return g->vfu_fd[i];
	}
	ret = dmalog_vfu_client_connect(g->vfu_fd[i], o->timeout_ms, &g->vfu[i]);
	for (uint32_t s = 0; s < g->nslots && !ret; s++)
		ret = dmalog_vfu_client_dma_map(g->vfu[i], g->slots[s].gpa, g->slots[s].length,
						g->ram_fd, g->slots[s].ram_offset,
						DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE);
	if (!ret)
		ret = dmalog_handle_from_vfu_client(g->vfu[i], "vfio-user", &g->dev[i]);
	/*
	 * The source's guest has a driver that lets it DMA. The destination's stays quiet, as
	 * the demo destination guest does: its VMM would restore config space only after.
	 */
	if (!ret && g->source)
		ret = remote_bus_master(g, i);
	if (ret)
		fprintf(stderr, "dmalog migrate: device %u: the vfio-user server refused (%s)\n", i,
			strerror(-ret));
	g->dev_tag[i] = DMALOG_VFU_DEVICE_DMA_TAG;
	g->dev_logging[i] = g->source;
	return ret;
}

static int make_device(struct guest *g, const struct mig_options *o, uint32_t i,
		       struct dmalog_iopt *iopt)
{
	bool nic = g->kinds[i] == MIG_DEV_NIC;
	/* The NIC's receive ring sits in low RAM, the disk's buffers in the last high slot. */
	const struct dmalog_ram_region *slot = &g->slots[nic ? 0 : g->nslots - 1];
	struct dmalog_emudev_config cfg = {
		.name = nic ? "nic" : "storage",
		.migration_flags =
			VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
		.dev_mem_bytes = nic ? 1 << 20 : 2 << 20,
		.devtrack_caps = DMALOG_DEVTRACK_CAPS_DEFAULT,
		.seed = o->seed + 101 * (i + 1),
	};
	int ret;

	if (g->kinds[i] == MIG_DEV_VFIO_USER)
		return make_remote_device(g, o, i);
	/* Fewer ranges than the guest has slots: the tracker combines them. */
	if (nic)
		cfg.devtrack_caps.max_ranges = 2;
	g->dev_tag[i] = (uint16_t)(0xd100 + i);
	if (g->source) {
		g->dev_logging[i] =
			(nic && g->tracker == MIG_TRACK_ALL) || g->tracker == MIG_TRACK_DEVICE;
		cfg.tracker =
			g->dev_logging[i] ? DMALOG_EMUDEV_TRACK_DEVICE : DMALOG_EMUDEV_TRACK_NONE;
		cfg.dma = (struct dmalog_dma_config){
			.mem = g->ram,
			.mem_bytes = g->ram_bytes,
			.iova_base = slot->gpa - slot->ram_offset,
			.region_off = slot->ram_offset,
			.region_len = slot->length,
			.iopt = iopt,
			.workload = o->workload,
			.rate = o->dma_rate,
			.tag = g->dev_tag[i],
			.seed = o->seed + 7 * (i + 1),
		};
	}
	ret = dmalog_emudev_create(&cfg, &g->emu[i]);
	if (!ret)
		ret = dmalog_handle_from_device(dmalog_emudev_device(g->emu[i]), &g->dev[i]);
	return ret;
}

/* The source's trackers: the CPU log always, then whatever the --tracker choice gave. */
static int make_trackers(struct guest *g)
{
	struct dmalog_tracker **t = g->trackers;
	int ret = dmalog_handle_from_device(g->cpu_logdev, &g->cpu_log_h);

	if (!ret)
		ret = dmalog_tracker_ram_log(g->cpu_log_h, &t[g->ntrackers++]);
	for (uint32_t i = 0; i < g->ndevices && !ret; i++)
		if (g->dev_logging[i])
			ret = dmalog_tracker_vfio_log(g->dev[i], &t[g->ntrackers++]);
	if (!ret && g->iommu_dirty) {
		ret = dmalog_handle_from_iommufd(g->iommufd, &g->iommufd_h);
		if (!ret)
			ret = dmalog_tracker_iommufd(g->iommufd_h, g->hwpt_id, &t[g->ntrackers++]);
	}
	if (!ret && g->type1) {
		ret = dmalog_handle_from_type1(g->type1, &g->type1_h);
		if (!ret)
			ret = dmalog_tracker_type1(g->type1_h, &t[g->ntrackers++]);
	}
	/* A failed constructor leaves its slot NULL. */
	while (ret && g->ntrackers && !t[g->ntrackers - 1])
		g->ntrackers--;
	return ret;
}

/* Page @p of RAM starts all zero (--zero-pages): no data until a writer comes. */
static bool starts_zero(const struct guest *g, uint64_t word)
{
	return (word * 8 / 4096) % 100 < g->zero_pct;
}

static void fill_ram(struct guest *g)
{
	uint64_t *w = (uint64_t *)g->ram, n = g->ram_bytes / 8;

	for (uint64_t i = 0; i < n; i++)
		w[i] = starts_zero(g, i) ? 0 : (uint64_t)GUEST_INIT_TAG << 48 | i;
}

struct touch_part {
	uint8_t *from;
	size_t bytes;
};

static void *touch_pages(void *arg)
{
	struct touch_part *t = arg;

	/* A write of what is there (zero): the page is the process's own from here on. */
	for (size_t off = 0; off < t->bytes; off += 4096)
		__atomic_store_n(&t->from[off], t->from[off], __ATOMIC_RELAXED);
	return NULL;
}

/*
 * Back guest RAM before the clock starts, as QEMU's -mem-prealloc does: huge pages where the
 * system has them, then one write per 4 KiB page, two threads at a time. MAP_POPULATE alone is
 * not enough in a virtual machine: the first write to each page still traps to the
 * hypervisor (about 6 us a page, 1.6 s per GiB), which would land in the first round.
 */
static void prefault(uint8_t *ram, size_t bytes)
{
	struct touch_part part[2] = {{ram, bytes / 2}, {ram + bytes / 2, bytes - bytes / 2}};
	pthread_t t;

	madvise(ram, bytes, MADV_HUGEPAGE);
	if (pthread_create(&t, NULL, touch_pages, &part[1])) {
		part[0].bytes = bytes;
		touch_pages(&part[0]);
		return;
	}
	touch_pages(&part[0]);
	pthread_join(t, NULL);
}

void *guest_ram_backed(size_t bytes, int fd)
{
	void *ram = fd >= 0 ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
			    : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0);

	if (ram == MAP_FAILED)
		return NULL;
	prefault(ram, bytes);
	return ram;
}

int guest_create(const struct mig_options *o, bool source, struct guest **out)
{
	uint32_t dev_ids[MIG_MAX_DEVICES] = {0};
	struct dmalog_iopt *iopt = NULL;
	struct guest *g;
	int ret = 0;

	if (!o->mem_bytes || o->mem_bytes % SZ_2M || o->ndevices > MIG_MAX_DEVICES)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->source = source;
	g->tracker = o->tracker;
	g->ram_bytes = o->mem_bytes;
	g->zero_pct = o->zero_pct;
	g->ndevices = o->ndevices;
	memcpy(g->kinds, o->devices, sizeof(g->kinds));
	/*
	 * Backed before the migration starts (prefault()): a destination that faulted in each
	 * page on arrival would measure the kernel's page zeroing, not the link.
	 */
	g->ram_fd = -1;
	for (uint32_t i = 0; i < MIG_MAX_DEVICES; i++)
		g->vfu_fd[i] = -1;
	for (uint32_t i = 0; i < g->ndevices; i++)
		if (g->kinds[i] == MIG_DEV_VFIO_USER && g->ram_fd < 0)
			g->ram_fd = memfd_create("dmalog-guest-ram", MFD_CLOEXEC);
	/* A device in another process maps RAM itself: then it is a memfd, shared. */
	if (g->ram_fd < 0 || !ftruncate(g->ram_fd, (off_t)g->ram_bytes)) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		g->ram = guest_ram_backed(g->ram_bytes, g->ram_fd);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		g->prefault_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	}
	if (!g->ram) {
		guest_destroy(g);
		return -ENOMEM;
	}
	lay_out_ram(g);
	if (source) {
		fill_ram(g);
		g->iommu_dirty = g->ndevices &&
				 (o->tracker == MIG_TRACK_ALL || o->tracker == MIG_TRACK_IOMMU);
		if (o->tracker == MIG_TRACK_TYPE1)
			ret = make_type1(g);
		else if (g->ndevices)
			ret = make_iommufd(g, o->iommu_huge, dev_ids);
		if (!ret && g->iommufd)
			iopt = g->iopt = dmalog_iommufd_device_iopt(g->iommufd, dev_ids[0]);
		if (!ret)
			ret = make_cpu(g, o);
	}
	for (uint32_t i = 0; i < g->ndevices && !ret; i++)
		ret = make_device(g, o, i, iopt);
	if (!ret && source)
		ret = make_trackers(g);
	if (ret) {
		guest_destroy(g);
		return ret;
	}
	*out = g;
	return 0;
}

void guest_destroy(struct guest *g)
{
	if (!g)
		return;
	/* Trackers stop before the handles they use go, and those before their devices. */
	for (uint32_t i = 0; i < g->ntrackers; i++)
		dmalog_tracker_destroy(g->trackers[i]);
	for (uint32_t i = 0; i < g->ndevices; i++) {
		dmalog_handle_destroy(g->dev[i]);
		/* A client that goes: its server drops the maps and stops DMA logging. */
		dmalog_vfu_client_destroy(g->vfu[i]);
		if (g->vfu_fd[i] >= 0)
			close(g->vfu_fd[i]);
	}
	dmalog_handle_destroy(g->cpu_log_h);
	dmalog_handle_destroy(g->iommufd_h);
	dmalog_handle_destroy(g->type1_h);
	/* Writers first: nothing may touch RAM or a page table once they are gone. */
	dmalog_dma_engine_destroy(g->cpu);
	for (uint32_t i = 0; i < g->ndevices; i++)
		dmalog_emudev_destroy(g->emu[i]);
	dmalog_device_destroy(g->cpu_logdev);
	dmalog_swtrack_destroy(g->cpu_log);
	dmalog_iommufd_destroy(g->iommufd);
	dmalog_type1_destroy(g->type1);
	if (g->ram)
		munmap(g->ram, g->ram_bytes);
	if (g->ram_fd >= 0)
		close(g->ram_fd);
	free(g);
}

void guest_pause_writers(struct guest *g)
{
	if (g->cpu)
		dmalog_dma_engine_pause(g->cpu);
	for (uint32_t i = 0; i < g->ndevices; i++)
		if (g->emu[i] && dmalog_emudev_dma(g->emu[i]))
			dmalog_dma_engine_pause(dmalog_emudev_dma(g->emu[i]));
}

void guest_resume_writers(struct guest *g)
{
	if (g->cpu)
		dmalog_dma_engine_resume(g->cpu);
	for (uint32_t i = 0; i < g->ndevices; i++)
		if (g->emu[i] && dmalog_emudev_dma(g->emu[i]))
			dmalog_dma_engine_resume(dmalog_emudev_dma(g->emu[i]));
}

uint64_t guest_writes(struct guest *g)
{
	struct dmalog_dma_stats st;
	uint64_t n = 0;

	if (g->cpu) {
		dmalog_dma_engine_get_stats(g->cpu, &st);
		n += st.writes;
	}
	for (uint32_t i = 0; i < g->ndevices; i++) {
		if (!g->emu[i] || !dmalog_emudev_dma(g->emu[i]))
			continue;
		dmalog_dma_engine_get_stats(dmalog_emudev_dma(g->emu[i]), &st);
		n += st.writes;
	}
	return n;
}

uint64_t guest_stray_words(struct guest *g)
{
	const uint64_t *w = (const uint64_t *)g->ram, mask = (1ULL << 48) - 1;
	uint64_t n = g->ram_bytes / 8, bad = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint16_t tag = (uint16_t)(w[i] >> 48);
		bool ok = tag == GUEST_CPU_TAG || (tag == GUEST_INIT_TAG && (w[i] & mask) == i) ||
			  (!w[i] && starts_zero(g, i));

		for (uint32_t d = 0; d < g->ndevices && !ok; d++)
			ok = tag == g->dev_tag[d];
		bad += !ok;
	}
	return bad;
}

void guest_pause_vcpus(struct guest *g)
{
	if (g->cpu)
		dmalog_dma_engine_pause(g->cpu);
}

void guest_resume_vcpus(struct guest *g)
{
	if (g->cpu)
		dmalog_dma_engine_resume(g->cpu);
}

int guest_device_hash(struct guest *g, uint32_t dev, uint64_t *hash)
{
	uint8_t le[8];
	int ret;

	if (dev >= g->ndevices)
		return -EINVAL;
	if (g->emu[dev]) {
		*hash = dmalog_emudev_state_hash(g->emu[dev]);
		return 0;
	}
	/* A served device tells its own, in a BAR0 register. */
	ret = dmalog_vfu_client_region_read(g->vfu[dev], VFIO_PCI_BAR0_REGION_INDEX,
					    DMALOG_VFU_REG_STATE_HASH, le, sizeof(le));
	*hash = 0;
	for (int i = 7; i >= 0 && !ret; i--)
		*hash = *hash << 8 | le[i];
	return ret;
}

void guest_device_error(struct guest *g, uint32_t dev, char *buf, size_t len)
{
	if (dev < g->ndevices && g->emu[dev])
		snprintf(buf, len, "%s", dmalog_emudev_resume_error(g->emu[dev]));
	else if (dev < g->ndevices)
		snprintf(buf, len, "the vfio-user device refused its state");
}

/*
 * Asked of each tracker itself, not of the engine: a DMA logging REPORT is -EINVAL while
 * logging is off, so is a type1 GET_BITMAP, and the IOMMU says whether it sets D bits.
 */
bool guest_untracked(struct guest *g)
{
	uint64_t bits[1] = {0};
	bool off = true;

	if (g->cpu_log_h)
		off &= dmalog_handle_log_report(g->cpu_log_h, 0, DMALOG_RAM_REGION_ALIGN,
						DMALOG_RAM_PAGE_SIZE, bits) == -EINVAL;
	for (uint32_t i = 0; i < g->ndevices; i++)
		if (g->dev_logging[i])
			off &= dmalog_handle_log_report(g->dev[i], g->slots[0].gpa,
							DMALOG_RAM_REGION_ALIGN,
							DMALOG_RAM_PAGE_SIZE, bits) == -EINVAL;
	if (g->type1_h)
		off &= dmalog_handle_type1_get_bitmap(g->type1_h, g->slots[0].gpa,
						      g->slots[0].length, DMALOG_RAM_PAGE_SIZE,
						      NULL, 0) == -EINVAL;
	if (g->iopt)
		off &= !dmalog_iopt_dirty_tracking(g->iopt);
	return off;
}

struct dmalog_mig_config guest_engine_config(struct guest *g, int fd)
{
	return (struct dmalog_mig_config){
		.size = sizeof(struct dmalog_mig_config),
		.fd = fd,
		.regions = g->slots,
		.nregions = g->nslots,
		.devices = g->dev,
		.ndevices = g->ndevices,
		.trackers = g->trackers,
		.ntrackers = g->ntrackers,
	};
}
