// SPDX-License-Identifier: MIT
/* The type1 container's dirty page tracking: seed-digest behaviours 83-93, and map/unmap. */
#include <errno.h>
#include <string.h>

#include "helpers.h"

#define MEM (64 * SZ_4K)

struct fixture {
	struct dmalog_type1 *c;
	uint8_t *mem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(dmalog_type1_create(&f->c), 0);
	f->mem = aligned_alloc(4096, MEM);
	memset(f->mem, 0, MEM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_type1_destroy(f->c);
	free(f->mem);
	free(f);
	return 0;
}

static int map(struct fixture *f, uint64_t iova, uint64_t size, uint64_t off)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)f->mem + off,
		.iova = iova,
		.size = size,
	};

	return dmalog_type1_ioctl(f->c, VFIO_IOMMU_MAP_DMA, &m);
}

static int dirty_op(struct fixture *f, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap d = {.argsz = sizeof(d), .flags = flags};

	return dmalog_type1_ioctl(f->c, VFIO_IOMMU_DIRTY_PAGES, &d);
}

static int get_bitmap(struct fixture *f, uint64_t iova, uint64_t size, uint64_t pgsize,
		      uint64_t bytes, uint64_t *data)
{
	uint64_t buf[(sizeof(struct vfio_iommu_type1_dirty_bitmap) +
		      sizeof(struct vfio_iommu_type1_dirty_bitmap_get)) /
		     8];
	struct vfio_iommu_type1_dirty_bitmap *d = (void *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get g = {
		.iova = iova,
		.size = size,
		.bitmap = {.pgsize = pgsize, .size = bytes, .data = (__u64 *)data}};

	d->argsz = sizeof(buf);
	d->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	memcpy(d->data, &g, sizeof(g));
	if (data)
		memset(data, 0, bytes < 64 ? bytes : 64);
	return dmalog_type1_ioctl(f->c, VFIO_IOMMU_DIRTY_PAGES, d);
}

/* 83, 84, 85: one operation at a time; START and STOP idempotent; GET needs tracking. */
static void b83_b85_operations(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[8];
	struct vfio_iommu_type1_dirty_bitmap d = {.argsz = 4,
						  .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START};

	assert_int_equal(map(f, 0, MEM, 0), 0);
	assert_int_equal(
		dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP),
		-EINVAL);
	assert_int_equal(dirty_op(f, 0), -EINVAL);
	assert_int_equal(dirty_op(f, 1 << 3), -EINVAL);
	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_IOMMU_DIRTY_PAGES, &d), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), -EINVAL); /* 85 */
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), -EINVAL);
}

/* 86, 87: page size, alignment and bitmap size checks. */
static void b86_b87_get_checks(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[8];

	assert_int_equal(map(f, 0, MEM, 0), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_2M, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM, 0, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0x800, MEM, SZ_4K, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM - 0x800, SZ_4K, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, 0, SZ_4K, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 7, bm), -EINVAL); /* 64 pages: 8 bytes */
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 0, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, DMALOG_TYPE1_DIRTY_BITMAP_SIZE_MAX + 8, bm),
			 -EINVAL);
	assert_int_equal(get_bitmap(f, UINT64_MAX - SZ_4K + 1, 2 * SZ_4K, SZ_4K, 8, bm), -EINVAL);
	/* Bisecting a mapping. */
	assert_int_equal(get_bitmap(f, SZ_4K, MEM - SZ_4K, SZ_4K, 8, bm), -EINVAL);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, NULL), -EFAULT);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
}

/* 88: a device that does not pin makes every mapped page dirty, every time. */
static void b88_non_pinning_group_all_dirty(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[2];

	dmalog_type1_add_group(f->c, true);
	dmalog_type1_add_group(f->c, false);
	assert_int_equal(map(f, SZ_1G, MEM / 2, 0), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get_bitmap(f, SZ_1G, MEM, SZ_4K, 16, bm), 0);
		assert_int_equal(bm[0], 0xffffffffULL);
		assert_int_equal(bm[1], 0);
	}
}

/* 89, 90: pinned pages every time (and once after unpinning); written pages once. */
static void b89_b90_pinned_and_written(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[1];
	char data[16] = "written";

	dmalog_type1_add_group(f->c, true);
	assert_int_equal(map(f, 0, MEM, 0), 0);
	assert_int_equal(dmalog_type1_pin_pages(f->c, SZ_4K, 1), 0);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(dmalog_type1_pin_pages(f->c, 5 * SZ_4K, 1), 0);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], (1 << 1) | (1 << 5));
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], (1 << 1) | (1 << 5));
	assert_int_equal(dmalog_type1_unpin_pages(f->c, 5 * SZ_4K, 1), 0);
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], (1 << 1) | (1 << 5));
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], 1 << 1);
	/* 90 */
	assert_int_equal(dmalog_type1_dma_rw(f->c, 9 * SZ_4K + 100, data, sizeof(data), true), 0);
	assert_string_equal((char *)f->mem + 9 * SZ_4K + 100, "written");
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], (1 << 1) | (1 << 9));
	assert_int_equal(get_bitmap(f, 0, MEM, SZ_4K, 8, bm), 0);
	assert_int_equal(bm[0], 1 << 1);
	assert_int_equal(dmalog_type1_pin_pages(f->c, SZ_1G, 1), -EINVAL);
	assert_int_equal(dmalog_type1_dma_rw(f->c, SZ_1G, data, 1, true), -EFAULT);
}

static int unmap(struct fixture *f, uint32_t flags, uint64_t iova, uint64_t size, uint64_t pgsize,
		 uint64_t *bm, uint64_t *unmapped)
{
	uint64_t buf[(sizeof(struct vfio_iommu_type1_dma_unmap) + sizeof(struct vfio_bitmap)) / 8];
	struct vfio_iommu_type1_dma_unmap *u = (void *)buf;
	struct vfio_bitmap b = {.pgsize = pgsize, .size = 8, .data = (__u64 *)bm};
	int ret;

	u->argsz = sizeof(buf);
	u->flags = flags;
	u->iova = iova;
	u->size = size;
	memcpy(u->data, &b, sizeof(b));
	ret = dmalog_type1_ioctl(f->c, VFIO_IOMMU_UNMAP_DMA, u);
	if (unmapped)
		*unmapped = u->size;
	return ret;
}

/* 91, 92: unmap returning the dirty bitmap of what goes away. */
static void b91_b92_unmap_with_bitmap(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[1] = {0}, n;
	char byte = 1;

	assert_int_equal(map(f, 0, MEM / 2, 0), 0);
	assert_int_equal(map(f, MEM / 2, MEM / 2, MEM / 2), 0);
	/* 92: tracking off, or with ALL or VADDR. */
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0, MEM / 2, SZ_4K, bm, &n),
			 -EINVAL);
	assert_int_equal(dirty_op(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL, 0,
			       0, SZ_4K, bm, &n),
			 -EINVAL);
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_VADDR,
			       0, MEM / 2, SZ_4K, bm, &n),
			 -EINVAL);
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0, MEM / 2, SZ_2M, bm, &n),
			 -EINVAL);
	/* 91 */
	assert_int_equal(dmalog_type1_dma_rw(f->c, 3 * SZ_4K, &byte, 1, true), 0);
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0, MEM / 2, SZ_4K, bm, &n),
			 0);
	assert_int_equal(n, MEM / 2);
	assert_int_equal(bm[0], 1 << 3);
	assert_int_equal(dmalog_type1_dma_rw(f->c, 3 * SZ_4K, &byte, 1, true), -EFAULT);
	/* With a non-pinning device present, the whole mapping comes back dirty. */
	dmalog_type1_add_group(f->c, false);
	bm[0] = 0;
	assert_int_equal(
		unmap(f, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, MEM / 2, MEM / 2, SZ_4K, bm, &n), 0);
	assert_int_equal(bm[0], 0xffffffffULL);
}

static void map_unmap_errors(void **state)
{
	struct fixture *f = *state;
	struct vfio_iommu_type1_dma_map m = {.argsz = sizeof(m), .iova = 0, .size = SZ_4K};
	uint64_t n;

	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_IOMMU_MAP_DMA, &m), -EINVAL); /* no prot */
	assert_int_equal(map(f, 0x800, SZ_4K, 0), -EINVAL);
	assert_int_equal(map(f, 0, 0, 0), -EINVAL);
	assert_int_equal(map(f, 0, 2 * SZ_4K, 0), 0);
	assert_int_equal(map(f, SZ_4K, SZ_4K, 0), -EEXIST);
	assert_int_equal(map(f, 4 * SZ_4K, 4 * SZ_4K, 0), 0);
	assert_int_equal(unmap(f, 0, SZ_4K, SZ_4K, 0, NULL, &n), -EINVAL); /* bisects */
	assert_int_equal(unmap(f, 0, 0, 5 * SZ_4K, 0, NULL, &n), -EINVAL); /* ends inside */
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_ALL, SZ_4K, 0, 0, NULL, &n), -EINVAL);
	assert_int_equal(unmap(f, 0, 0, 4 * SZ_4K, 0, NULL, &n), 0);
	assert_int_equal(n, 2 * SZ_4K);
	assert_int_equal(unmap(f, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, 0, NULL, &n), 0);
	assert_int_equal(n, 4 * SZ_4K);
	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_DEVICE_FEATURE + 100, &m), -ENOTTY);
}

/* 93: GET_INFO with the migration capability. */
static void b93_info_migration_cap(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(struct vfio_iommu_type1_info) +
		    sizeof(struct vfio_iommu_type1_info_cap_migration)];
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_cap_migration cap;

	memset(buf, 0xee, sizeof(buf));
	info->argsz = sizeof(*info);
	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->argsz, sizeof(buf)); /* asks for room for the capability */
	assert_true(info->flags & VFIO_IOMMU_INFO_CAPS);
	assert_int_equal(info->iova_pgsizes & 0xfff, 0);
	assert_true(info->iova_pgsizes & SZ_4K);
	assert_int_equal(info->cap_offset, 0);
	info->argsz = sizeof(buf);
	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->cap_offset, sizeof(*info));
	memcpy(&cap, buf + info->cap_offset, sizeof(cap));
	assert_int_equal(cap.header.id, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	assert_int_equal(cap.header.version, 1);
	assert_int_equal(cap.header.next, 0);
	assert_int_equal(cap.flags, 0);
	assert_int_equal(cap.pgsize_bitmap, SZ_4K);
	assert_int_equal(cap.max_dirty_bitmap_size, 256ULL << 20);
	/* The hole after flags is zero, not whatever was in the buffer. */
	for (size_t i = offsetof(struct vfio_iommu_type1_info_cap_migration, flags) + 4;
	     i < offsetof(struct vfio_iommu_type1_info_cap_migration, pgsize_bitmap); i++)
		assert_int_equal(buf[info->cap_offset + i], 0);
	info->argsz = 8;
	assert_int_equal(dmalog_type1_ioctl(f->c, VFIO_IOMMU_GET_INFO, info), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(b83_b85_operations),
		T(b86_b87_get_checks),
		T(b88_non_pinning_group_all_dirty),
		T(b89_b90_pinned_and_written),
		T(b91_b92_unmap_with_bitmap),
		T(map_unmap_errors),
		T(b93_info_migration_cap),
	};

	return cmocka_run_group_tests_name("type1", tests, NULL, NULL);
}
