// SPDX-License-Identifier: MIT
/*
 * Embedding dmalog's migration engine: a guest with 16 MiB of RAM in two regions and one
 * emulated NIC that keeps writing it by DMA, migrated over a socketpair to a destination in
 * a second thread. A VMM does the same with its own RAM, its device handles (a kernel fd:
 * dmalog_handle_from_fd()) and its own trackers (its CPU's dirty log among them).
 *
 * Build: cc embed.c $(pkg-config --cflags --libs dmalog)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dmalog/dmalog.h>

#define RAM_BYTES (16u << 20)

struct vm {
	uint8_t *ram;
	struct dmalog_ram_region regions[2];
	struct dmalog_emudev *nic;
	struct dmalog_handle *dev;
	struct dmalog_tracker *tracker;
};

/* Low RAM at 0 and the rest above 4 GiB; on the source the NIC writes low RAM by DMA. */
static int vm_create(struct vm *vm, bool source)
{
	struct dmalog_emudev_config cfg = {
		.name = "nic",
		.migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
		.tracker = source ? DMALOG_EMUDEV_TRACK_DEVICE : DMALOG_EMUDEV_TRACK_NONE,
	};
	int ret;

	vm->ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->ram == MAP_FAILED)
		return -1;
	vm->regions[0] = (struct dmalog_ram_region){.host = vm->ram, .length = RAM_BYTES / 2};
	vm->regions[1] = (struct dmalog_ram_region){
		.host = vm->ram + RAM_BYTES / 2, .gpa = 4ULL << 30, .length = RAM_BYTES / 2};
	if (source)
		cfg.dma = (struct dmalog_dma_config){.mem = vm->ram,
						     .mem_bytes = RAM_BYTES,
						     .region_len = RAM_BYTES / 2,
						     .workload = DMALOG_WORKLOAD_RANDOM,
						     .rate = 50000,
						     .tag = 0xd1,
						     .seed = 1};
	ret = dmalog_emudev_create(&cfg, &vm->nic);
	if (!ret)
		ret = dmalog_handle_from_device(dmalog_emudev_device(vm->nic), &vm->dev);
	if (!ret && source)
		ret = dmalog_tracker_vfio_log(vm->dev, &vm->tracker);
	return ret;
}

static void vm_destroy(struct vm *vm)
{
	dmalog_tracker_destroy(vm->tracker);
	dmalog_handle_destroy(vm->dev);
	dmalog_emudev_destroy(vm->nic);
	munmap(vm->ram, RAM_BYTES);
}

static int nic_hash(void *opaque, uint32_t dev, uint64_t *hash)
{
	*hash = dmalog_emudev_state_hash(((struct vm *)opaque)->nic);
	return 0;
}

static void progress(void *opaque, const struct dmalog_mig_round *rd, bool final)
{
	printf("%s %u: %llu pages, %.1f ms\n", final ? "final" : "round", rd->round,
	       (unsigned long long)rd->pages, rd->ms);
}

static const struct dmalog_mig_hooks src_hooks = {
	.size = sizeof(src_hooks), .round_done = progress, .device_hash = nic_hash};
static const struct dmalog_mig_hooks dst_hooks = {.size = sizeof(dst_hooks),
						  .device_hash = nic_hash};

static struct dmalog_mig_config config(struct vm *vm, int fd, const struct dmalog_mig_hooks *h)
{
	struct dmalog_mig_config c = {
		.size = sizeof(c),
		.fd = fd,
		.regions = vm->regions,
		.nregions = 2,
		.devices = &vm->dev,
		.ndevices = 1,
		.trackers = vm->tracker ? &vm->tracker : NULL,
		.ntrackers = vm->tracker ? 1 : 0,
		.downtime_limit_ms = 100,
		.hooks = h,
		.opaque = vm,
	};

	return c;
}

int main(void)
{
	struct vm src = {0}, dst = {0};
	struct dmalog_mig *out = NULL, *in = NULL;
	struct dmalog_mig_config cs, cd;
	const struct dmalog_mig_result *r;
	int fds[2], ok;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) || vm_create(&src, true) ||
	    vm_create(&dst, false))
		return 1;
	cs = config(&src, fds[0], &src_hooks);
	cd = config(&dst, fds[1], &dst_hooks);
	if (dmalog_mig_source_create(&cs, &out) || dmalog_mig_dest_create(&cd, &in) ||
	    dmalog_mig_start(in))
		return 1;
	dmalog_mig_run(out);
	dmalog_mig_wait(in);
	r = dmalog_mig_get_result(out);
	ok = r->outcome == DMALOG_MIG_MIGRATED && r->verified;
	printf("libdmalog %s: %s, %u rounds, %.1f ms downtime, %llu pages compared, %llu "
	       "mismatched%s%s\n",
	       dmalog_version(), dmalog_mig_outcome_name(r->outcome), r->nrounds, r->downtime_ms,
	       (unsigned long long)r->pages_compared, (unsigned long long)r->pages_mismatched,
	       r->message[0] ? ": " : "", r->message);
	dmalog_mig_destroy(out);
	dmalog_mig_destroy(in);
	vm_destroy(&src);
	vm_destroy(&dst);
	close(fds[0]);
	close(fds[1]);
	return ok ? 0 : 1;
}
