// SPDX-License-Identifier: MIT
/*
 * The device handle and the trackers over it: the helpers marshal exactly what the kernel
 * takes, each backend passes the device's errno through unchanged, and configuration structs
 * refuse reserved fields that are not zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

/* The helpers against an emulated device: logging, migration state, data size, reset. */
static void device_helpers(void **state)
{
	struct fake_mig mig = {.data_size = 12345};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev;
	struct dmalog_handle *h;
	struct dmalog_device_desc desc = {.name = "nic0",
					  .log_ops = dmalog_swtrack_log_ops(),
					  .mig_ops = &fake_mig_ops,
					  .migration_flags =
						  VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
					  .priv = NULL};
	struct vfio_device_feature_dma_logging_range range = {0, 1 << 20};
	uint64_t bitmap[4] = {0}, selected = 0, flags, bytes;
	uint32_t st;
	int fd = -2;

	assert_int_equal(dmalog_swtrack_create(&t), 0);
	/* One priv for both ops tables would be wrong: log through swtrack, migrate the fake. */
	desc.mig_ops = NULL;
	desc.migration_flags = 0;
	desc.priv = t;
	assert_int_equal(dmalog_device_create(&desc, &dev), 0);
	assert_int_equal(dmalog_handle_from_device(dev, &h), 0);
	assert_string_equal(dmalog_handle_name(h), "nic0");
	assert_int_equal(dmalog_handle_log_start(h, &range, 1, 4096, &selected), 0);
	assert_int_equal(selected, 4096);
	dmalog_swtrack_log_write(t, 5 * 4096, 1);
	assert_int_equal(dmalog_handle_log_report(h, 0, 1 << 20, 4096, bitmap), 0);
	assert_int_equal(bitmap[0], 1 << 5);
	assert_int_equal(dmalog_handle_log_stop(h), 0);
	/* The device's own errno, unchanged: REPORT without START, and no migration support. */
	assert_int_equal(dmalog_handle_log_report(h, 0, 1 << 20, 4096, bitmap), -EINVAL);
	assert_int_equal(dmalog_handle_migration_flags(h, &flags), -ENOTTY);
	assert_int_equal(dmalog_handle_feature(h, 0, bitmap, 65), -EINVAL);
	dmalog_handle_destroy(h);
	dmalog_device_destroy(dev);

	desc.log_ops = NULL;
	desc.mig_ops = &fake_mig_ops;
	desc.migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
	desc.priv = &mig;
	assert_int_equal(dmalog_device_create(&desc, &dev), 0);
	assert_int_equal(dmalog_handle_from_device(dev, &h), 0);
	assert_int_equal(dmalog_handle_migration_flags(h, &flags), 0);
	assert_int_equal(flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
	assert_int_equal(dmalog_handle_data_size(h, &bytes), 0);
	assert_int_equal(bytes, 12345);
	assert_int_equal(dmalog_handle_get_state(h, &st), 0);
	assert_int_equal(st, VFIO_DEVICE_STATE_RUNNING);
	/* RUNNING -> STOP_COPY walks RUNNING_P2P and STOP; only the last arc gives the fd. */
	assert_int_equal(dmalog_handle_set_state(h, VFIO_DEVICE_STATE_STOP_COPY, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(dmalog_handle_get_state(h, &st), 0);
	assert_int_equal(st, VFIO_DEVICE_STATE_STOP_COPY);
	assert_int_equal(dmalog_handle_set_state(h, VFIO_DEVICE_STATE_ERROR, &fd), -EINVAL);
	assert_int_equal(fd, -1);
	assert_int_equal(dmalog_handle_reset(h), 0);
	assert_int_equal(dmalog_handle_get_state(h, &st), 0);
	assert_int_equal(st, VFIO_DEVICE_STATE_RUNNING);
	dmalog_handle_destroy(h);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* A kernel fd backend is plain ioctl(): a pipe is no VFIO device, and says so. */
static void kernel_fd_backend(void **state)
{
	struct dmalog_handle *h;
	uint64_t flags = 1;
	uint8_t buf[8];
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dmalog_handle_from_fd(-1, "x", &h), -EBADF);
	assert_int_equal(dmalog_handle_from_fd(p[0], "pipe", &h), 0);
	assert_int_equal(dmalog_handle_migration_flags(h, &flags), -ENOTTY);
	assert_int_equal(flags, 0);
	assert_int_equal(dmalog_handle_reset(h), -ENOTTY);
	/* Data fds are read and written with the plain calls. */
	assert_int_equal(dmalog_handle_data_write(h, p[1], "abc", 3), 3);
	assert_int_equal(dmalog_handle_data_read(h, p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	assert_int_equal(dmalog_handle_data_read(h, p[0], buf, sizeof(buf)), -EAGAIN);
	close(p[1]);
	assert_int_equal(dmalog_handle_data_read(h, p[0], buf, sizeof(buf)), 0);
	dmalog_handle_destroy(h);
	close(p[0]);
}

static int released;

static int nothing_ioctl(void *priv, unsigned long request, void *arg)
{
	return -ENODEV;
}

/* The kernel's drained PRE_COPY fd says -ENOMSG: the handle calls it -EAGAIN, as a pipe does. */
static ssize_t drained_read(void *priv, int fd, void *buf, size_t len)
{
	return -ENOMSG;
}

static void release(void *priv)
{
	released++;
}

static const struct dmalog_handle_ops custom_ops = {
	.ioctl = nothing_ioctl,
	.data_read = drained_read,
	.release = release,
};

static void custom_backend(void **state)
{
	struct dmalog_handle *h;
	uint8_t buf[4];
	uint32_t st;

	assert_int_equal(dmalog_handle_create(NULL, NULL, NULL, &h), -EINVAL);
	assert_int_equal(dmalog_handle_create(&(struct dmalog_handle_ops){0}, NULL, NULL, &h),
			 -EINVAL);
	assert_int_equal(dmalog_handle_create(&custom_ops, NULL, NULL, &h), 0);
	assert_string_equal(dmalog_handle_name(h), "");
	assert_int_equal(dmalog_handle_get_state(h, &st), -ENODEV);
	assert_int_equal(st, VFIO_DEVICE_STATE_ERROR);
	assert_int_equal(dmalog_handle_data_read(h, 3, buf, sizeof(buf)), -EAGAIN);
	released = 0;
	dmalog_handle_destroy(h);
	assert_int_equal(released, 1);
	dmalog_handle_destroy(NULL);
}

/* iommufd and type1 handles: the dirty-tracking helpers reach the emulated objects. */
static void iommu_helpers(void **state)
{
	struct dmalog_iommufd *ifd;
	struct dmalog_type1 *c;
	struct dmalog_handle *h;
	uint64_t bitmap[1];

	assert_int_equal(dmalog_iommufd_create(&ifd), 0);
	assert_int_equal(dmalog_handle_from_iommufd(ifd, &h), 0);
	/* No such HWPT: the emulated iommufd's -ENOENT comes back unchanged. */
	assert_int_equal(dmalog_handle_hwpt_set_dirty(h, 77, true), -ENOENT);
	assert_int_equal(dmalog_handle_hwpt_get_dirty(h, 77, 0, 4096, 4096, 0, bitmap), -ENOENT);
	dmalog_handle_destroy(h);
	dmalog_iommufd_destroy(ifd);

	assert_int_equal(dmalog_type1_create(&c), 0);
	assert_int_equal(dmalog_handle_from_type1(c, &h), 0);
	/* GET_BITMAP while not tracking is -EINVAL, as the kernel's. */
	assert_int_equal(dmalog_handle_type1_get_bitmap(h, 0, 4096, 4096, bitmap, 8), -EINVAL);
	assert_int_equal(dmalog_handle_type1_dirty(h, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(dmalog_handle_type1_dirty(h, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
	dmalog_handle_destroy(h);
	dmalog_type1_destroy(c);
}

/* RAM maps: regions back to back in RAM-offset order, each a whole number of bitmap words. */
static void ram_map(void **state)
{
	uint8_t *ram = test_malloc(4 * DMALOG_RAM_REGION_ALIGN);
	struct dmalog_ram_region r[3] = {
		{.host = ram, .gpa = 1ULL << 32, .length = DMALOG_RAM_REGION_ALIGN},
		{.host = ram + DMALOG_RAM_REGION_ALIGN,
		 .gpa = 0,
		 .length = 2 * DMALOG_RAM_REGION_ALIGN},
		{.host = ram + 3 * DMALOG_RAM_REGION_ALIGN,
		 .gpa = 1ULL << 40,
		 .length = DMALOG_RAM_REGION_ALIGN},
	};
	struct dmalog_ram_map map;

	assert_int_equal(dmalog_ram_map_init(&map, r, 3), 0);
	assert_int_equal(map.bytes, 4 * DMALOG_RAM_REGION_ALIGN);
	assert_int_equal(r[1].ram_offset, DMALOG_RAM_REGION_ALIGN);
	assert_int_equal(r[2].ram_offset, 3 * DMALOG_RAM_REGION_ALIGN);
	assert_int_equal(dmalog_ram_map_pages(&map), 4 * 64);
	assert_int_equal(dmalog_ram_map_init(&map, r, 0), -EINVAL);
	r[2].gpa = (1ULL << 32) + 4096; /* overlaps region 0 */
	assert_int_equal(dmalog_ram_map_init(&map, r, 3), -EINVAL);
	r[2].gpa = -4096ULL; /* wraps */
	assert_int_equal(dmalog_ram_map_init(&map, r, 3), -EINVAL);
	r[2].gpa = 1ULL << 40;
	r[2].length = 4096; /* not a whole bitmap word */
	assert_int_equal(dmalog_ram_map_init(&map, r, 3), -EINVAL);
	r[2].length = DMALOG_RAM_REGION_ALIGN;
	r[2].gpa += 512; /* not page-aligned */
	assert_int_equal(dmalog_ram_map_init(&map, r, 3), -EINVAL);
	r[2].gpa -= 512;
	r[2].host = NULL;
	assert_int_equal(dmalog_ram_map_init(&map, r, 3), -EINVAL);
	test_free(ram);
}

/* A tracker of ours: the object keeps start/stop state and restarts after a failed sync. */
struct counting {
	int starts, stops, syncs, fail_next;
};

static int c_start(void *priv, const struct dmalog_ram_map *ram)
{
	((struct counting *)priv)->starts++;
	return 0;
}

static int c_sync(void *priv, const struct dmalog_ram_map *ram, uint64_t *bitmap)
{
	struct counting *c = priv;

	c->syncs++;
	bitmap[0] |= 1;
	return c->fail_next ? -EIO : 0;
}

static void c_stop(void *priv, const struct dmalog_ram_map *ram)
{
	((struct counting *)priv)->stops++;
}

static const struct dmalog_tracker_ops counting_ops = {
	.start = c_start,
	.sync = c_sync,
	.stop = c_stop,
};

static void tracker_object(void **state)
{
	uint8_t *ram = test_malloc(DMALOG_RAM_REGION_ALIGN);
	struct dmalog_ram_region r = {.host = ram, .length = DMALOG_RAM_REGION_ALIGN};
	struct counting c = {0};
	struct dmalog_ram_map map;
	struct dmalog_tracker *t;
	uint64_t bitmap[1] = {0};

	assert_int_equal(dmalog_ram_map_init(&map, &r, 1), 0);
	assert_int_equal(dmalog_tracker_create(&(struct dmalog_tracker_ops){0}, &c, "x", &t),
			 -EINVAL);
	assert_int_equal(dmalog_tracker_create(&counting_ops, &c, "counting", &t), 0);
	assert_string_equal(dmalog_tracker_name(t), "counting");
	assert_int_equal(dmalog_tracker_sync(t, bitmap), -EINVAL);
	assert_int_equal(dmalog_tracker_start(t, &map), 0);
	assert_int_equal(dmalog_tracker_start(t, &map), -EBUSY);
	assert_true(dmalog_tracker_started(t));
	assert_int_equal(dmalog_tracker_sync(t, bitmap), 0);
	assert_int_equal(bitmap[0], 1);
	c.fail_next = 1;
	assert_int_equal(dmalog_tracker_sync(t, bitmap), -EIO);
	c.fail_next = 0;
	assert_int_equal(dmalog_tracker_restart(t), 0);
	assert_int_equal(c.starts, 2);
	assert_int_equal(c.stops, 1);
	dmalog_tracker_stop(t);
	assert_false(dmalog_tracker_started(t));
	dmalog_tracker_stop(t); /* a stopped tracker is left alone */
	assert_int_equal(c.stops, 2);
	dmalog_tracker_destroy(t);
	assert_int_equal(c.stops, 2);
	test_free(ram);
}

/* Reserved fields of configuration structs must be zero: later versions will use them. */
static void reserved_fields_refused(void **state)
{
	struct dmalog_device_desc desc = {.log_ops = dmalog_swtrack_log_ops(), .reserved = {0, 1}};
	struct dmalog_devtrack_caps caps = DMALOG_DEVTRACK_CAPS_DEFAULT;
	struct dmalog_iopt_config icfg = {.reserved32 = 1};
	struct dmalog_emudev_config ecfg = {.migration_flags = VFIO_MIGRATION_STOP_COPY,
					    .reserved = {1}};
	uint8_t mem[4096];
	struct dmalog_dma_config dcfg = {
		.mem = mem, .mem_bytes = sizeof(mem), .reserved = {0, 0, 1}};
	struct dmalog_device *dev;
	struct dmalog_devtrack *dt;
	struct dmalog_iopt *iopt;
	struct dmalog_emudev *ed;
	struct dmalog_dma_engine *e;

	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	caps.reserved[1] = 1;
	assert_int_equal(dmalog_devtrack_create(&caps, &dt), -EINVAL);
	assert_int_equal(dmalog_iopt_create(&icfg, &iopt), -EINVAL);
	assert_int_equal(dmalog_emudev_create(&ecfg, &ed), -EINVAL);
	assert_int_equal(dmalog_dma_engine_create(&dcfg, &e), -EINVAL);
}

static void version(void **state)
{
	assert_string_equal(dmalog_version(), DMALOG_VERSION_STRING);
	assert_int_equal(dmalog_version_number(), DMALOG_VERSION_NUMBER);
	assert_int_equal(DMALOG_VERSION_NUMBER >> 16, DMALOG_VERSION_MAJOR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(device_helpers),
		cmocka_unit_test(kernel_fd_backend),
		cmocka_unit_test(custom_backend),
		cmocka_unit_test(iommu_helpers),
		cmocka_unit_test(ram_map),
		cmocka_unit_test(tracker_object),
		cmocka_unit_test(reserved_fields_refused),
		cmocka_unit_test(version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
