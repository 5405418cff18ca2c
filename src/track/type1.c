// SPDX-License-Identifier: MIT
/*
 * Emulated type1 container: vfio_dma mappings, each with a pin count per page and, while
 * tracking, a dirty bitmap (drivers/vfio/vfio_iommu_type1.c's model). One mutex for all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/iova_bitmap.h>
#include <dmalog/type1.h>

#define PGSHIFT	      12
#define PGSIZE	      (1ULL << PGSHIFT)
#define PGSIZE_BITMAP ((1ULL << 12) | (1ULL << 21) | (1ULL << 30))

struct vfio_dma {
	uint64_t iova, size, vaddr;
	uint32_t prot;
	uint32_t *pins;	 /* per page */
	uint64_t *dirty; /* per page, while tracking */
};

struct dmalog_type1 {
	pthread_mutex_t lock;
	struct vfio_dma *dmas; /* sorted by iova */
	uint32_t ndmas, cap;
	bool tracking;
	bool iommu_mapped; /* a group whose device does not pin */
};

int dmalog_type1_create(struct dmalog_type1 **out)
{
	struct dmalog_type1 *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void free_dma(struct vfio_dma *d)
{
	free(d->pins);
	free(d->dirty);
}

void dmalog_type1_destroy(struct dmalog_type1 *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->ndmas; i++)
		free_dma(&c->dmas[i]);
	free(c->dmas);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void dmalog_type1_add_group(struct dmalog_type1 *c, bool pins)
{
	pthread_mutex_lock(&c->lock);
	if (!pins)
		c->iommu_mapped = true;
	pthread_mutex_unlock(&c->lock);
}

static uint64_t dma_pages(const struct vfio_dma *d)
{
	return d->size >> PGSHIFT;
}

static void set_page(uint64_t *bits, uint64_t n)
{
	bits[n / 64] |= 1ULL << (n % 64);
}

/* The dma containing @iova, or NULL. */
static struct vfio_dma *find_dma(struct dmalog_type1 *c, uint64_t iova)
{
	for (uint32_t i = 0; i < c->ndmas; i++)
		if (iova >= c->dmas[i].iova && iova - c->dmas[i].iova < c->dmas[i].size)
			return &c->dmas[i];
	return NULL;
}

static bool overlaps(struct dmalog_type1 *c, uint64_t iova, uint64_t size)
{
	for (uint32_t i = 0; i < c->ndmas; i++)
		if (c->dmas[i].iova < iova + size && iova < c->dmas[i].iova + c->dmas[i].size)
			return true;
	return false;
}

/* vfio_dma_populate_bitmap(): a fresh tracking round starts with the pinned pages. */
static void populate_pinned(struct vfio_dma *d)
{
	for (uint64_t p = 0; p < dma_pages(d); p++)
		if (d->pins[p])
			set_page(d->dirty, p);
}

static int alloc_dirty(struct vfio_dma *d)
{
	d->dirty = calloc((dma_pages(d) + 63) / 64, sizeof(uint64_t));
	if (!d->dirty)
		return -ENOMEM;
	populate_pinned(d);
	return 0;
}

static int do_map(struct dmalog_type1 *c, void *arg)
{
	const uint32_t mask =
		VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
	struct vfio_iommu_type1_dma_map map;
	struct vfio_dma d = {0};
	uint32_t pos = 0;
	int ret;

	memcpy(&map, arg, sizeof(map));
	if (map.argsz < sizeof(map) || (map.flags & ~mask))
		return -EINVAL;
	if (map.flags & VFIO_DMA_MAP_FLAG_VADDR) {
		/* Update the vaddr of an existing mapping, matched exactly. */
		struct vfio_dma *old = find_dma(c, map.iova);

		if ((map.flags & ~VFIO_DMA_MAP_FLAG_VADDR) || !old || old->iova != map.iova ||
		    old->size != map.size || (map.vaddr & (PGSIZE - 1)))
			return -EINVAL;
		old->vaddr = map.vaddr;
		return 0;
	}
	d.prot = map.flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
	if (!d.prot || !map.size || ((map.size | map.iova | map.vaddr) & (PGSIZE - 1)))
		return -EINVAL;
	if (map.iova + map.size - 1 < map.iova || map.vaddr + map.size - 1 < map.vaddr)
		return -EINVAL;
	if (overlaps(c, map.iova, map.size))
		return -EEXIST;
	d.iova = map.iova;
	d.size = map.size;
	d.vaddr = map.vaddr;
	d.pins = calloc(dma_pages(&d), sizeof(*d.pins));
	if (!d.pins)
		return -ENOMEM;
	if (c->tracking && (ret = alloc_dirty(&d))) {
		free_dma(&d);
		return ret;
	}
	if (c->ndmas == c->cap) {
		uint32_t cap = c->cap ? 2 * c->cap : 8;
		struct vfio_dma *n = realloc(c->dmas, cap * sizeof(*n));

		if (!n) {
			free_dma(&d);
			return -ENOMEM;
		}
		c->dmas = n;
		c->cap = cap;
	}
	while (pos < c->ndmas && c->dmas[pos].iova < d.iova)
		pos++;
	memmove(&c->dmas[pos + 1], &c->dmas[pos], (c->ndmas - pos) * sizeof(d));
	c->dmas[pos] = d;
	c->ndmas++;
	return 0;
}

/* verify_bitmap_size(): the caller's buffer must hold npages bits, within the maximum. */
static int verify_bitmap_size(uint64_t npages, uint64_t bitmap_size)
{
	if (!npages || !bitmap_size || bitmap_size > DMALOG_TYPE1_DIRTY_BITMAP_SIZE_MAX ||
	    bitmap_size < (npages + 63) / 64 * 8)
		return -EINVAL;
	return 0;
}

/*
 * update_user_bitmap(): report one dma into the caller's bitmap based at @base; everything
 * if an IOMMU-backed device is present, else its dirty pages; then start the next round with
 * the pages still pinned.
 */
static void report_dma(struct dmalog_type1 *c, struct vfio_dma *d, struct dmalog_iova_bitmap *bm)
{
	if (c->iommu_mapped)
		dmalog_iova_bitmap_set(bm, d->iova, d->size);
	else
		dmalog_iova_bitmap_set_from(bm, d->iova, PGSHIFT, d->dirty, dma_pages(d));
	memset(d->dirty, 0, (dma_pages(d) + 63) / 64 * 8);
	populate_pinned(d);
}

/* Neither end of [iova, iova + size) may fall inside a dma (a v2 container's rule). */
static bool bisects(struct dmalog_type1 *c, uint64_t iova, uint64_t size)
{
	struct vfio_dma *d = find_dma(c, iova);

	if (d && d->iova != iova)
		return true;
	d = find_dma(c, iova + size - 1);
	return d && d->iova + d->size != iova + size;
}

static int report_range(struct dmalog_type1 *c, uint64_t iova, uint64_t size,
			const struct vfio_bitmap *ub)
{
	struct dmalog_iova_bitmap bm;
	int ret;

	if (bisects(c, iova, size))
		return -EINVAL;
	if (!ub->data)
		return -EFAULT;
	ret = dmalog_iova_bitmap_init(&bm, iova, size, PGSIZE, ub->data, 0);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < c->ndmas; i++) {
		struct vfio_dma *d = &c->dmas[i];

		if (d->iova >= iova && d->iova + d->size - 1 <= iova + size - 1)
			report_dma(c, d, &bm);
	}
	return 0;
}

static int do_unmap(struct dmalog_type1 *c, void *arg)
{
	const uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL |
			      VFIO_DMA_UNMAP_FLAG_VADDR;
	const size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, data);
	struct vfio_iommu_type1_dma_unmap unmap;
	struct vfio_bitmap bitmap = {0};
	bool all, get;
	uint64_t last, unmapped = 0;
	int ret;

	memcpy(&unmap, arg, minsz);
	if (unmap.argsz < minsz || (unmap.flags & ~mask))
		return -EINVAL;
	all = unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL;
	get = unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	if (get && (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)))
		return -EINVAL;
	if (get) {
		if (unmap.argsz < minsz + sizeof(bitmap))
			return -EINVAL;
		memcpy(&bitmap, (uint8_t *)arg + minsz, sizeof(bitmap));
		if (!bitmap.pgsize)
			return -EINVAL;
		ret = verify_bitmap_size(unmap.size >> __builtin_ctzll(bitmap.pgsize), bitmap.size);
		if (ret)
			return ret;
	}
	if (unmap.flags & VFIO_DMA_UNMAP_FLAG_VADDR)
		return -EINVAL; /* invalidating vaddrs is not modelled */
	if (unmap.iova & (PGSIZE - 1))
		return -EINVAL;
	if (all) {
		if (unmap.iova || unmap.size)
			return -EINVAL;
		last = UINT64_MAX;
	} else {
		if (!unmap.size || (unmap.size & (PGSIZE - 1)) ||
		    unmap.iova + unmap.size - 1 < unmap.iova)
			return -EINVAL;
		last = unmap.iova + unmap.size - 1;
	}
	/* With tracking on, a bitmap comes only at the smallest page size. */
	if (get && (!c->tracking || bitmap.pgsize != PGSIZE))
		return -EINVAL;
	if (!all && bisects(c, unmap.iova, unmap.size))
		return -EINVAL;
	if (get) {
		ret = report_range(c, unmap.iova, unmap.size, &bitmap);
		if (ret)
			return ret;
	}
	for (uint32_t i = 0; i < c->ndmas;) {
		struct vfio_dma *d = &c->dmas[i];

		if (d->iova < unmap.iova || d->iova > last) {
			i++;
			continue;
		}
		unmapped += d->size;
		free_dma(d);
		memmove(d, d + 1, (c->ndmas - i - 1) * sizeof(*d));
		c->ndmas--;
	}
	unmap.size = unmapped;
	memcpy(arg, &unmap, minsz);
	return 0;
}

static int do_dirty_pages(struct dmalog_type1 *c, void *arg)
{
	const uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
			      VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	const size_t minsz = offsetof(struct vfio_iommu_type1_dirty_bitmap, data);
	struct vfio_iommu_type1_dirty_bitmap dirty;
	struct vfio_iommu_type1_dirty_bitmap_get range;

	memcpy(&dirty, arg, minsz);
	if (dirty.argsz < minsz || (dirty.flags & ~mask))
		return -EINVAL;
	/* Exactly one operation. */
	if (!dirty.flags || (dirty.flags & (dirty.flags - 1)))
		return -EINVAL;
	if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
		if (c->tracking)
			return 0;
		for (uint32_t i = 0; i < c->ndmas; i++) {
			int ret = alloc_dirty(&c->dmas[i]);

			if (ret) {
				while (i--) {
					free(c->dmas[i].dirty);
					c->dmas[i].dirty = NULL;
				}
				return ret;
			}
		}
		c->tracking = true;
		return 0;
	}
	if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
		for (uint32_t i = 0; i < c->ndmas; i++) {
			free(c->dmas[i].dirty);
			c->dmas[i].dirty = NULL;
		}
		c->tracking = false;
		return 0;
	}
	if (dirty.argsz - minsz < sizeof(range))
		return -EINVAL;
	memcpy(&range, (uint8_t *)arg + minsz, sizeof(range));
	if (range.iova + range.size < range.iova || !range.bitmap.pgsize)
		return -EINVAL;
	{
		int ret = verify_bitmap_size(range.size >> __builtin_ctzll(range.bitmap.pgsize),
					     range.bitmap.size);

		if (ret)
			return ret;
	}
	if (range.bitmap.pgsize != PGSIZE || (range.iova & (PGSIZE - 1)) || !range.size ||
	    (range.size & (PGSIZE - 1)))
		return -EINVAL;
	if (!c->tracking)
		return -EINVAL;
	return report_range(c, range.iova, range.size, &range.bitmap);
}

static int do_get_info(struct dmalog_type1 *c, void *arg)
{
	const size_t minsz = offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + sizeof(__u64);
	const size_t capsz = offsetof(struct vfio_iommu_type1_info, cap_offset) + sizeof(__u32);
	struct vfio_iommu_type1_info info = {0};
	struct vfio_iommu_type1_info_cap_migration cap;
	size_t copy = minsz;

	memcpy(&info, arg, minsz);
	if (info.argsz < minsz)
		return -EINVAL;
	if (info.argsz >= capsz) {
		copy = capsz;
		info.cap_offset = 0;
	}
	info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
	info.iova_pgsizes = PGSIZE_BITMAP;
	/* The whole struct is zeroed first: the hole after flags leaks nothing. */
	memset(&cap, 0, sizeof(cap));
	cap.header.id = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
	cap.header.version = 1;
	cap.pgsize_bitmap = PGSIZE;
	cap.max_dirty_bitmap_size = DMALOG_TYPE1_DIRTY_BITMAP_SIZE_MAX;
	if (info.argsz < sizeof(info) + sizeof(cap)) {
		info.argsz = sizeof(info) + sizeof(cap);
	} else {
		memcpy((uint8_t *)arg + sizeof(info), &cap, sizeof(cap));
		info.cap_offset = sizeof(info);
	}
	memcpy(arg, &info, copy);
	return 0;
}

int dmalog_type1_ioctl(struct dmalog_type1 *c, unsigned long request, void *arg)
{
	int ret;

	if (!arg)
		return -EFAULT;
	pthread_mutex_lock(&c->lock);
	switch (request) {
	case VFIO_IOMMU_MAP_DMA:
		ret = do_map(c, arg);
		break;
	case VFIO_IOMMU_UNMAP_DMA:
		ret = do_unmap(c, arg);
		break;
	case VFIO_IOMMU_DIRTY_PAGES:
		ret = do_dirty_pages(c, arg);
		break;
	case VFIO_IOMMU_GET_INFO:
		ret = do_get_info(c, arg);
		break;
	default:
		ret = -ENOTTY;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* Apply @fn to each page of [iova, iova + npages pages); -EINVAL if any is unmapped. */
static int for_pages(struct dmalog_type1 *c, uint64_t iova, uint64_t npages,
		     void (*fn)(struct dmalog_type1 *c, struct vfio_dma *d, uint64_t page))
{
	for (uint64_t i = 0; i < npages; i++)
		if (!find_dma(c, iova + i * PGSIZE))
			return -EINVAL;
	for (uint64_t i = 0; i < npages; i++) {
		struct vfio_dma *d = find_dma(c, iova + i * PGSIZE);

		fn(c, d, (iova + i * PGSIZE - d->iova) >> PGSHIFT);
	}
	return 0;
}

static void pin_one(struct dmalog_type1 *c, struct vfio_dma *d, uint64_t page)
{
	d->pins[page]++;
	if (c->tracking)
		set_page(d->dirty, page);
}

static void unpin_one(struct dmalog_type1 *c, struct vfio_dma *d, uint64_t page)
{
	/* An unpinned page stays dirty until reported once more. */
	if (d->pins[page])
		d->pins[page]--;
}

int dmalog_type1_pin_pages(struct dmalog_type1 *c, uint64_t iova, uint64_t npages)
{
	int ret;

	if (iova & (PGSIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	ret = for_pages(c, iova, npages, pin_one);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dmalog_type1_unpin_pages(struct dmalog_type1 *c, uint64_t iova, uint64_t npages)
{
	int ret;

	if (iova & (PGSIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	ret = for_pages(c, iova, npages, unpin_one);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dmalog_type1_dma_rw(struct dmalog_type1 *c, uint64_t iova, void *data, uint64_t length,
			bool write)
{
	uint64_t done = 0;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (done < length) {
		struct vfio_dma *d = find_dma(c, iova + done);
		uint64_t off, n;

		if (!d || !(d->prot & (write ? VFIO_DMA_MAP_FLAG_WRITE : VFIO_DMA_MAP_FLAG_READ))) {
			ret = -EFAULT;
			break;
		}
		off = iova + done - d->iova;
		n = d->size - off < length - done ? d->size - off : length - done;
		if (write) {
			memcpy((uint8_t *)(uintptr_t)d->vaddr + off, (uint8_t *)data + done, n);
			if (c->tracking)
				for (uint64_t p = off >> PGSHIFT; p <= (off + n - 1) >> PGSHIFT;
				     p++)
					set_page(d->dirty, p);
		} else {
			memcpy((uint8_t *)data + done, (uint8_t *)(uintptr_t)d->vaddr + off, n);
		}
		done += n;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}
