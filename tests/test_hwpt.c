// SPDX-License-Identifier: MIT
/*
 * The iommufd dirty uAPI, mirroring the kernel's iommufd selftest (kernel-notes section 4):
 * the buffer-size variants with and without huge pages, bitmaps page aligned and at +2048 and
 * +0xff1, the every-other-PTE pattern, a second read empty after a clearing read and unchanged
 * after a NO_CLEAR one, enforce_dirty, set_dirty_tracking and device_dirty_capability; plus the
 * errnos of each command. Behaviours 98 and 101.
 */
#include <errno.h>
#include <string.h>

#include "helpers.h"

#define PAGE	   2048ULL /* bitmap granularity, as the selftest's MOCK_PAGE_SIZE */
#define APERTURE   (1ULL << 24)
#define BITMAP_MAX ((128ULL << 20) / PAGE / 8 + 8192) /* + offsets and guard bytes */

struct fixture {
	struct dmalog_iommufd *ictx;
	uint32_t dev_id, ioas_id;
	uint8_t *buffer;
	uint8_t *bitmap;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dmalog_iommufd_device_caps caps = {.dirty_tracking = true};
	struct iommu_ioas_alloc alloc = {.size = sizeof(alloc)};

	assert_int_equal(dmalog_iommufd_create(&f->ictx), 0);
	assert_int_equal(dmalog_iommufd_bind(f->ictx, &caps, &f->dev_id), 0);
	assert_int_equal(dmalog_iommufd_ioctl(f->ictx, IOMMU_IOAS_ALLOC, &alloc), 0);
	f->ioas_id = alloc.out_ioas_id;
	f->buffer = aligned_alloc(SZ_2M, 128ULL << 20);
	f->bitmap = aligned_alloc(4096, BITMAP_MAX);
	assert_non_null(f->buffer);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_iommufd_destroy(f->ictx);
	free(f->buffer);
	free(f->bitmap);
	free(f);
	return 0;
}

static int ioctl_(struct fixture *f, unsigned long req, void *arg)
{
	return dmalog_iommufd_ioctl(f->ictx, req, arg);
}

static int map_fixed(struct fixture *f, void *va, uint64_t length, uint64_t iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = f->ioas_id,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova,
	};

	return ioctl_(f, IOMMU_IOAS_MAP, &m);
}

static int hwpt_alloc(struct fixture *f, uint32_t dev_id, uint32_t flags, uint32_t *hwpt)
{
	struct iommu_hwpt_alloc a = {
		.size = sizeof(a), .flags = flags, .dev_id = dev_id, .pt_id = f->ioas_id};
	int ret = ioctl_(f, IOMMU_HWPT_ALLOC, &a);

	*hwpt = a.out_hwpt_id;
	return ret;
}

static int set_tracking(struct fixture *f, uint32_t hwpt, bool on)
{
	struct iommu_hwpt_set_dirty_tracking s = {.size = sizeof(s),
						  .flags =
							  on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
						  .hwpt_id = hwpt};

	return ioctl_(f, IOMMU_HWPT_SET_DIRTY_TRACKING, &s);
}

static int get_bitmap(struct fixture *f, uint32_t hwpt, uint64_t iova, uint64_t length,
		      uint64_t page, void *bitmap, uint32_t flags)
{
	struct iommu_hwpt_get_dirty_bitmap g = {
		.size = sizeof(g),
		.hwpt_id = hwpt,
		.flags = flags,
		.iova = iova,
		.length = length,
		.page_size = page,
		.data = (uintptr_t)bitmap,
	};

	return ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, &g);
}

/* A device write through the page table (what the selftest's DIRTY test op fakes). */
static void dma_write(struct dmalog_iopt *iopt, uint64_t iova, uint8_t byte)
{
	struct dmalog_iopt_dma *dma;
	uint64_t pa, room;

	assert_int_equal(dmalog_iopt_dma_create(iopt, &dma), 0);
	assert_int_equal(dmalog_iopt_dma_begin(dma, iova, true, &pa, &room), 0);
	*(volatile uint8_t *)(uintptr_t)pa = byte;
	dmalog_iopt_dma_end(dma);
	dmalog_iopt_dma_destroy(dma);
}

/*
 * _test_mock_dirty_bitmaps: dirty every other PTE, read: whole PTEs set, the others clear;
 * read again: the same with NO_CLEAR, nothing without. Bytes past the bitmap stay untouched.
 */
static void mock_dirty_bitmaps(struct fixture *f, uint32_t hwpt, struct dmalog_iopt *iopt,
			       uint64_t length, uint64_t pte_size, uint8_t *bitmap, uint32_t flags)
{
	uint64_t nbits = length / PAGE, npte = pte_size / PAGE, pteset = 2 * npte;
	uint64_t nbytes = (nbits + 7) / 8;

	for (uint64_t i = 0; i < nbits; i += pteset)
		dma_write(iopt, APERTURE + i * PAGE, (uint8_t)i);
	for (int pass = 0; pass < 2; pass++) {
		memset(bitmap, 0, nbytes);
		memset(bitmap + nbytes, 0x5a, 64);
		assert_int_equal(get_bitmap(f, hwpt, APERTURE, length, PAGE, bitmap, flags), 0);
		for (uint64_t i = 0; i < nbits; i++) {
			bool want = (pass == 0 || (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) &&
				    i % pteset < npte;

			if (test_bit(bitmap, i) != want)
				fail_msg("bit %llu: %d, want %d (pass %d)", (unsigned long long)i,
					 test_bit(bitmap, i), want, pass);
		}
		for (int i = 0; i < 64; i++)
			assert_int_equal(bitmap[nbytes + i], 0x5a);
	}
	/* Leave it clean for the next round. */
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, length, PAGE, bitmap, 0), 0);
}

struct variant {
	const char *name;
	uint64_t buffer_size;
	bool huge;
};

static const struct variant variants[] = {
	{"domain_dirty8k", 8 << 10, false},	    {"domain_dirty16k", 16 << 10, false},
	{"domain_dirty64k", 64 << 10, false},	    {"domain_dirty128k", 128 << 10, false},
	{"domain_dirty320k", 320 << 10, false},	    {"domain_dirty64M", 64 << 20, false},
	{"domain_dirty64M_huge", 64 << 20, true},   {"domain_dirty128M", 128 << 20, false},
	{"domain_dirty128M_huge", 128 << 20, true},
};

/* get_dirty_bitmap and get_dirty_bitmap_no_clear, for every variant and bitmap offset. */
static void get_dirty_bitmap_variants(void **state)
{
	struct fixture *f = *state;

	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		const struct variant *var = &variants[v];
		struct iommu_option opt = {.size = sizeof(opt),
					   .option_id = IOMMU_OPTION_HUGE_PAGES,
					   .op = IOMMU_OPTION_OP_SET,
					   .object_id = f->ioas_id,
					   .val64 = var->huge};
		struct iommu_ioas_unmap unmap = {.size = sizeof(unmap),
						 .ioas_id = f->ioas_id,
						 .iova = 0,
						 .length = UINT64_MAX};
		struct iommu_destroy destroy = {.size = sizeof(destroy)};
		uint32_t hwpt, pt;
		struct dmalog_iopt *iopt;
		uint64_t pte_size = var->huge ? SZ_2M : SZ_4K, leaf;

		print_message("# %s\n", var->name);
		assert_int_equal(ioctl_(f, IOMMU_OPTION, &opt), 0);
		assert_int_equal(map_fixed(f, f->buffer, var->buffer_size, APERTURE), 0);
		assert_int_equal(hwpt_alloc(f, f->dev_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt),
				 0);
		pt = hwpt;
		assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
		iopt = dmalog_iommufd_device_iopt(f->ictx, f->dev_id);
		assert_non_null(iopt);
		dmalog_iopt_read_pte(iopt, APERTURE, &leaf);
		assert_int_equal(leaf, var->buffer_size < pte_size ? SZ_4K : pte_size);
		assert_int_equal(set_tracking(f, hwpt, true), 0);
		for (uint32_t flags = 0; flags <= IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR; flags++) {
			mock_dirty_bitmaps(f, hwpt, iopt, var->buffer_size, pte_size, f->bitmap,
					   flags);
			mock_dirty_bitmaps(f, hwpt, iopt, var->buffer_size, pte_size,
					   f->bitmap + 2048, flags);
			mock_dirty_bitmaps(f, hwpt, iopt, var->buffer_size, pte_size,
					   f->bitmap + 0xff1, flags);
		}
		assert_int_equal(set_tracking(f, hwpt, false), 0);
		/* Tear down: the attached device keeps the HWPT busy until moved away. */
		destroy.id = hwpt;
		assert_int_equal(ioctl_(f, IOMMU_DESTROY, &destroy), -EBUSY);
		pt = f->ioas_id;
		assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
		assert_int_equal(ioctl_(f, IOMMU_DESTROY, &destroy), 0);
		assert_int_equal(ioctl_(f, IOMMU_IOAS_UNMAP, &unmap), 0);
		assert_int_equal(unmap.length, var->buffer_size);
		/* The device now sits on its own page table over the IOAS: busy, like the IOAS. */
		destroy.id = pt;
		assert_int_equal(ioctl_(f, IOMMU_DESTROY, &destroy), -EBUSY);
		destroy.id = f->ioas_id;
		assert_int_equal(ioctl_(f, IOMMU_DESTROY, &destroy), -EBUSY);
	}
}

/* enforce_dirty, 98: a dirty-enforcing HWPT refuses a device without dirty tracking. */
static void b98_enforce_dirty(void **state)
{
	struct fixture *f = *state;
	struct dmalog_iommufd_device_caps none = {0};
	uint32_t hwpt, pt, nodirty;

	assert_int_equal(hwpt_alloc(f, f->dev_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0);
	pt = hwpt;
	assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
	assert_int_equal(dmalog_iommufd_bind(f->ictx, &none, &nodirty), 0);
	pt = hwpt;
	assert_int_equal(dmalog_iommufd_attach(f->ictx, nodirty, &pt), -EINVAL);
	assert_null(dmalog_iommufd_device_iopt(f->ictx, nodirty));
	assert_int_equal(hwpt_alloc(f, nodirty, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &pt), -EOPNOTSUPP);
	/* Without the flag it works, but has no dirty tracking. */
	assert_int_equal(hwpt_alloc(f, nodirty, 0, &pt), 0);
	assert_int_equal(set_tracking(f, pt, true), -EOPNOTSUPP);
	assert_int_equal(get_bitmap(f, pt, APERTURE, SZ_4K, SZ_4K, f->bitmap, 0), -EOPNOTSUPP);
}

static void set_dirty_tracking(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_set_dirty_tracking s = {.size = sizeof(s)};
	struct dmalog_iopt *iopt;
	uint32_t hwpt, pt;

	assert_int_equal(map_fixed(f, f->buffer, SZ_2M, APERTURE), 0);
	assert_int_equal(hwpt_alloc(f, f->dev_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0);
	pt = hwpt;
	assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
	iopt = dmalog_iommufd_device_iopt(f->ictx, f->dev_id);
	assert_int_equal(set_tracking(f, hwpt, true), 0);
	assert_int_equal(set_tracking(f, hwpt, true), 0);
	/* On: a device write is in the next bitmap. */
	dma_write(iopt, APERTURE + 3 * SZ_4K, 1);
	memset(f->bitmap, 0, 64);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, SZ_4K, f->bitmap, 0), 0);
	assert_true(f->bitmap[0] & (1 << 3)); /* the whole leaf, with huge IOPTEs */
	/* Off: writes are not recorded, whatever the IOTLB had cached. */
	assert_int_equal(set_tracking(f, hwpt, false), 0);
	assert_false(dmalog_iopt_dirty_tracking(iopt));
	dma_write(iopt, APERTURE + 3 * SZ_4K, 2);
	dma_write(iopt, APERTURE + 9 * SZ_4K, 2);
	memset(f->bitmap, 0, 64);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, SZ_4K, f->bitmap, 0), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(f->bitmap[i], 0);
	s.hwpt_id = hwpt;
	s.flags = 2;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_SET_DIRTY_TRACKING, &s), -EOPNOTSUPP);
	s.flags = 0;
	s.__reserved = 1;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_SET_DIRTY_TRACKING, &s), -EOPNOTSUPP);
	assert_int_equal(set_tracking(f, 999, true), -ENOENT);
	assert_int_equal(set_tracking(f, f->ioas_id, true), -ENOENT);
}

static void device_dirty_capability(void **state)
{
	struct fixture *f = *state;
	struct dmalog_iommufd_device_caps none = {0};
	uint8_t data[16];
	struct iommu_hw_info info = {.size = sizeof(info), .dev_id = f->dev_id};
	uint32_t nodirty, hwpt;

	assert_int_equal(hwpt_alloc(f, f->dev_id, 0, &hwpt), 0);
	assert_int_equal(ioctl_(f, IOMMU_GET_HW_INFO, &info), 0);
	assert_true(info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	assert_int_equal(info.out_data_type, IOMMU_HW_INFO_TYPE_NONE);
	assert_int_equal(dmalog_iommufd_bind(f->ictx, &none, &nodirty), 0);
	memset(data, 0xff, sizeof(data));
	info = (struct iommu_hw_info){.size = sizeof(info),
				      .dev_id = nodirty,
				      .data_len = sizeof(data),
				      .data_uptr = (uintptr_t)data};
	assert_int_equal(ioctl_(f, IOMMU_GET_HW_INFO, &info), 0);
	assert_int_equal(info.out_capabilities, 0);
	assert_int_equal(info.data_len, 0);
	for (size_t i = 0; i < sizeof(data); i++)
		assert_int_equal(data[i], 0);
	info.flags = 1;
	assert_int_equal(ioctl_(f, IOMMU_GET_HW_INFO, &info), -EOPNOTSUPP);
	info.flags = 0;
	info.dev_id = 4242;
	assert_int_equal(ioctl_(f, IOMMU_GET_HW_INFO, &info), -ENOENT);
	/* A caller with the 6.6 struct (no out_capabilities) still gets an answer. */
	info = (struct iommu_hw_info){.size = 32, .dev_id = f->dev_id, .out_capabilities = 77};
	assert_int_equal(ioctl_(f, IOMMU_GET_HW_INFO, &info), 0);
	assert_int_equal(info.out_capabilities, 77);
}

/* iommufd_ucmd and GET_DIRTY_BITMAP's range checks. */
static void get_dirty_bitmap_errors(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_get_dirty_bitmap g[2];
	uint32_t hwpt;

	assert_int_equal(map_fixed(f, f->buffer, SZ_2M, APERTURE), 0);
	assert_int_equal(hwpt_alloc(f, f->dev_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0);
	assert_int_equal(set_tracking(f, hwpt, true), 0);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, SZ_4K, f->bitmap, 0), 0);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, SZ_4K, f->bitmap, 2), -EOPNOTSUPP);
	assert_int_equal(get_bitmap(f, 77, APERTURE, SZ_2M, SZ_4K, f->bitmap, 0), -ENOENT);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, 0, SZ_4K, f->bitmap, 0), -EINVAL);
	assert_int_equal(
		get_bitmap(f, hwpt, UINT64_MAX - SZ_4K + 1, 2 * SZ_4K, SZ_4K, f->bitmap, 0),
		-EOVERFLOW);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE + 2048, SZ_4K, 2048, f->bitmap, 0), -EINVAL);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, 0, f->bitmap, 0), -EINVAL);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, 3 * SZ_4K, f->bitmap, 0), -EINVAL);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_4K, SZ_2M, f->bitmap, 0), -EINVAL);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, SZ_2M, SZ_4K, NULL, 0), -EFAULT);
	/* A range running past the mapping. */
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, 2 * SZ_2M, SZ_4K, f->bitmap, 0), -EINVAL);
	/* Extensible structs: too short, and unknown trailing bytes. */
	memset(g, 0, sizeof(g));
	g[0] = (struct iommu_hwpt_get_dirty_bitmap){
		.size = 40, .hwpt_id = hwpt, .iova = APERTURE, .length = SZ_4K, .page_size = SZ_4K};
	assert_int_equal(ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, g), -EINVAL);
	g[0].size = sizeof(g);
	g[0].data = (uintptr_t)f->bitmap;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, g), 0);
	((uint8_t *)&g[1])[5] = 1;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, g), -E2BIG);
	/* A non-zero reserved field in the struct the call really reads is refused. */
	((uint8_t *)&g[1])[5] = 0;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, g), 0);
	g[0].__reserved = 1;
	assert_int_equal(ioctl_(f, IOMMU_HWPT_GET_DIRTY_BITMAP, g), -EOPNOTSUPP);
	g[0].__reserved = 0;
	assert_int_equal(dmalog_iommufd_ioctl(f->ictx, VFIO_DEVICE_FEATURE, g), -ENOTTY);
}

/* IOAS map/unmap: overlap, splits, automatic IOVA, unmap all; DMA lands at user_va. */
static void ioas_map_unmap(void **state)
{
	struct fixture *f = *state;
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = f->ioas_id,
		.user_va = (uintptr_t)f->buffer + SZ_2M,
		.length = SZ_2M,
	};
	struct iommu_ioas_unmap u = {.size = sizeof(u), .ioas_id = f->ioas_id};
	uint32_t pt = f->ioas_id;
	struct dmalog_iopt *iopt;

	assert_int_equal(map_fixed(f, f->buffer, SZ_2M, APERTURE), 0);
	assert_int_equal(map_fixed(f, f->buffer, SZ_4K, APERTURE + SZ_2M - SZ_4K), -EEXIST);
	assert_int_equal(map_fixed(f, f->buffer + 1, SZ_4K, APERTURE + SZ_2M), -EINVAL);
	assert_int_equal(ioctl_(f, IOMMU_IOAS_MAP, &m), 0); /* automatic IOVA */
	assert_true(m.iova >= APERTURE + SZ_2M);
	/* Attaching to the IOAS gives the device a page table with both mappings. */
	assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
	assert_int_not_equal(pt, f->ioas_id);
	iopt = dmalog_iommufd_device_iopt(f->ictx, f->dev_id);
	dma_write(iopt, APERTURE + 100, 0xab);
	dma_write(iopt, m.iova + 5, 0xcd);
	assert_int_equal(f->buffer[100], 0xab);
	assert_int_equal(f->buffer[SZ_2M + 5], 0xcd);
	/* Unmapping must take whole mappings. */
	u.iova = APERTURE;
	u.length = SZ_4K;
	assert_int_equal(ioctl_(f, IOMMU_IOAS_UNMAP, &u), -ENOENT);
	u.length = SZ_2M;
	assert_int_equal(ioctl_(f, IOMMU_IOAS_UNMAP, &u), 0);
	assert_int_equal(u.length, SZ_2M);
	assert_int_equal(dmalog_iopt_read_pte(iopt, APERTURE, NULL), 0);
	assert_int_equal(ioctl_(f, IOMMU_IOAS_UNMAP, &u), -ENOENT);
	m.flags = 0;
	assert_int_equal(ioctl_(f, IOMMU_IOAS_MAP, &m), -EINVAL);
	m.flags = 1 << 7;
	assert_int_equal(ioctl_(f, IOMMU_IOAS_MAP, &m), -EOPNOTSUPP);
	m.flags = IOMMU_IOAS_MAP_READABLE;
	m.ioas_id = 999;
	assert_int_equal(ioctl_(f, IOMMU_IOAS_MAP, &m), -ENOENT);
}

/* 101 through the uAPI: a dirty 2 MiB leaf reads as 512 bits at 4 KiB. */
static void b101_huge_pte_via_uapi(void **state)
{
	struct fixture *f = *state;
	uint32_t hwpt, pt;
	uint64_t *bm = (uint64_t *)f->bitmap;

	assert_int_equal(map_fixed(f, f->buffer, 2 * SZ_2M, APERTURE), 0);
	assert_int_equal(hwpt_alloc(f, f->dev_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0);
	pt = hwpt;
	assert_int_equal(dmalog_iommufd_attach(f->ictx, f->dev_id, &pt), 0);
	assert_int_equal(set_tracking(f, hwpt, true), 0);
	dma_write(dmalog_iommufd_device_iopt(f->ictx, f->dev_id), APERTURE + SZ_2M + 9, 1);
	memset(bm, 0, 16 * 8);
	assert_int_equal(get_bitmap(f, hwpt, APERTURE, 2 * SZ_2M, SZ_4K, bm, 0), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(bm[i], i >= 8 ? ~0ULL : 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(get_dirty_bitmap_variants), T(b98_enforce_dirty),	  T(set_dirty_tracking),
		T(device_dirty_capability),   T(get_dirty_bitmap_errors), T(ioas_map_unmap),
		T(b101_huge_pte_via_uapi),
	};

	return cmocka_run_group_tests_name("hwpt", tests, NULL, NULL);
}
