// SPDX-License-Identifier: MIT
/*
 * Emulated iommufd: the object table (devices, IOAS, HWPT), the extensible-struct rules of
 * iommufd_ucmd, and the dirty-tracking commands over each HWPT's I/O page table. One mutex
 * serialises commands; DMA translates through the page tables without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/hwpt.h>

#define IOVA_ALIGN 4096ULL

enum obj_type { OBJ_FREE, OBJ_DEVICE, OBJ_IOAS, OBJ_HWPT };

struct mapping {
	uint64_t iova;
	uint64_t length;
	uint64_t va;
	unsigned int prot;
};

struct obj {
	enum obj_type type;
	/* OBJ_DEVICE */
	bool dirty_cap;
	uint32_t hwpt; /* attached page table, 0 when detached */
	/* OBJ_IOAS: mappings sorted by iova */
	struct mapping *maps;
	uint32_t nmaps, cap_maps;
	bool no_huge;
	/* OBJ_HWPT */
	uint32_t ioas;
	bool dirty; /* allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING */
	struct dmalog_iopt *iopt;
};

struct dmalog_iommufd {
	pthread_mutex_t lock;
	struct obj *objs; /* indexed by id; id 0 is never used */
	uint32_t nobjs;
};

int dmalog_iommufd_create(struct dmalog_iommufd **out)
{
	struct dmalog_iommufd *ictx = calloc(1, sizeof(*ictx));

	if (!ictx)
		return -ENOMEM;
	pthread_mutex_init(&ictx->lock, NULL);
	*out = ictx;
	return 0;
}

static void free_obj(struct obj *o)
{
	free(o->maps);
	dmalog_iopt_destroy(o->iopt);
	memset(o, 0, sizeof(*o));
}

void dmalog_iommufd_destroy(struct dmalog_iommufd *ictx)
{
	if (!ictx)
		return;
	for (uint32_t id = 1; id < ictx->nobjs; id++)
		free_obj(&ictx->objs[id]);
	free(ictx->objs);
	pthread_mutex_destroy(&ictx->lock);
	free(ictx);
}

static int alloc_obj(struct dmalog_iommufd *ictx, enum obj_type type, uint32_t *id)
{
	uint32_t i;

	for (i = 1; i < ictx->nobjs && ictx->objs[i].type != OBJ_FREE; i++)
		;
	if (i >= ictx->nobjs) {
		uint32_t n = ictx->nobjs ? 2 * ictx->nobjs : 16;
		struct obj *objs = realloc(ictx->objs, n * sizeof(*objs));

		if (!objs)
			return -ENOMEM;
		memset(objs + ictx->nobjs, 0, (n - ictx->nobjs) * sizeof(*objs));
		ictx->objs = objs;
		i = ictx->nobjs ? ictx->nobjs : 1;
		ictx->nobjs = n;
	}
	ictx->objs[i].type = type;
	*id = i;
	return 0;
}

static struct obj *get_obj(struct dmalog_iommufd *ictx, uint32_t id, enum obj_type type)
{
	if (!id || id >= ictx->nobjs || ictx->objs[id].type != type)
		return NULL;
	return &ictx->objs[id];
}

/*
 * iommufd_ucmd: the struct starts with its size; shorter than @min_size is -EINVAL, bytes
 * past what we know must be zero (-E2BIG).
 */
static int ucmd_in(void *arg, void *cmd, size_t cmd_size, size_t min_size)
{
	const uint8_t *user = arg;
	uint32_t size;

	if (!arg)
		return -EFAULT;
	memcpy(&size, arg, sizeof(size));
	if (size < min_size)
		return -EINVAL;
	memset(cmd, 0, cmd_size);
	memcpy(cmd, arg, size < cmd_size ? size : cmd_size);
	for (size_t i = cmd_size; i < size; i++)
		if (user[i])
			return -E2BIG;
	return 0;
}

/* Copy the answer back, as much as the caller's struct holds. */
static void ucmd_out(void *arg, const void *cmd, size_t cmd_size)
{
	uint32_t size;

	memcpy(&size, arg, sizeof(size));
	memcpy(arg, cmd, size < cmd_size ? size : cmd_size);
}

#define MINSZ(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

static unsigned int map_prot(const struct obj *ioas, unsigned int prot)
{
	return prot | (ioas->no_huge ? DMALOG_IOPT_NO_HUGE : 0);
}

/* Map every mapping of @ioas into @iopt (a new HWPT over it). */
static int replay_mappings(const struct obj *ioas, struct dmalog_iopt *iopt)
{
	for (uint32_t i = 0; i < ioas->nmaps; i++) {
		const struct mapping *m = &ioas->maps[i];
		int ret = dmalog_iopt_map(iopt, m->iova, m->length, m->va, map_prot(ioas, m->prot));

		if (ret)
			return ret;
	}
	return 0;
}

static int new_hwpt(struct dmalog_iommufd *ictx, uint32_t ioas_id, bool dirty, uint32_t *id)
{
	struct dmalog_iopt *iopt;
	struct obj *o;
	int ret;

	ret = dmalog_iopt_create(NULL, &iopt);
	if (ret)
		return ret;
	ret = replay_mappings(&ictx->objs[ioas_id], iopt);
	if (!ret)
		ret = alloc_obj(ictx, OBJ_HWPT, id);
	if (ret) {
		dmalog_iopt_destroy(iopt);
		return ret;
	}
	o = &ictx->objs[*id];
	o->ioas = ioas_id;
	o->dirty = dirty;
	o->iopt = iopt;
	return 0;
}

static int cmd_destroy(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_destroy cmd;
	struct obj *o;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_destroy, id));

	if (ret)
		return ret;
	if (!cmd.id || cmd.id >= ictx->nobjs || ictx->objs[cmd.id].type == OBJ_FREE)
		return -ENOENT;
	o = &ictx->objs[cmd.id];
	/* Devices go with their VFIO file; objects in use stay. */
	if (o->type == OBJ_DEVICE)
		return -EBUSY;
	for (uint32_t i = 1; i < ictx->nobjs; i++) {
		const struct obj *u = &ictx->objs[i];

		if ((o->type == OBJ_IOAS && u->type == OBJ_HWPT && u->ioas == cmd.id) ||
		    (o->type == OBJ_HWPT && u->type == OBJ_DEVICE && u->hwpt == cmd.id))
			return -EBUSY;
	}
	free_obj(o);
	return 0;
}

static int cmd_ioas_alloc(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_ioas_alloc cmd;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_ioas_alloc, out_ioas_id));

	if (ret)
		return ret;
	if (cmd.flags)
		return -EOPNOTSUPP;
	ret = alloc_obj(ictx, OBJ_IOAS, &cmd.out_ioas_id);
	if (!ret)
		ucmd_out(arg, &cmd, sizeof(cmd));
	return ret;
}

static bool overlaps(const struct obj *ioas, uint64_t iova, uint64_t last)
{
	for (uint32_t i = 0; i < ioas->nmaps; i++) {
		const struct mapping *m = &ioas->maps[i];

		if (m->iova <= last && iova <= m->iova + m->length - 1)
			return true;
	}
	return false;
}

/* Without FIXED_IOVA: above everything mapped, aligned to 2 MiB for large mappings. */
static uint64_t pick_iova(const struct obj *ioas, uint64_t length)
{
	uint64_t align = length >= (2ULL << 20) ? 2ULL << 20 : IOVA_ALIGN, end = 1ULL << 20;

	for (uint32_t i = 0; i < ioas->nmaps; i++)
		if (ioas->maps[i].iova + ioas->maps[i].length > end)
			end = ioas->maps[i].iova + ioas->maps[i].length;
	return (end + align - 1) & ~(align - 1);
}

static int add_mapping(struct obj *ioas, const struct mapping *m)
{
	uint32_t pos = 0;

	if (ioas->nmaps == ioas->cap_maps) {
		uint32_t cap = ioas->cap_maps ? 2 * ioas->cap_maps : 8;
		struct mapping *maps = realloc(ioas->maps, cap * sizeof(*maps));

		if (!maps)
			return -ENOMEM;
		ioas->maps = maps;
		ioas->cap_maps = cap;
	}
	while (pos < ioas->nmaps && ioas->maps[pos].iova < m->iova)
		pos++;
	memmove(&ioas->maps[pos + 1], &ioas->maps[pos], (ioas->nmaps - pos) * sizeof(*m));
	ioas->maps[pos] = *m;
	ioas->nmaps++;
	return 0;
}

static int cmd_ioas_map(struct dmalog_iommufd *ictx, void *arg)
{
	const uint32_t known =
		IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
	struct iommu_ioas_map cmd;
	struct mapping m;
	struct obj *ioas;
	uint32_t id;
	uint64_t end;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_ioas_map, iova));

	if (ret)
		return ret;
	if ((cmd.flags & ~known) || cmd.__reserved)
		return -EOPNOTSUPP;
	ioas = get_obj(ictx, cmd.ioas_id, OBJ_IOAS);
	if (!ioas)
		return -ENOENT;
	if (!(cmd.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) || !cmd.length)
		return -EINVAL;
	if (!(cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA))
		cmd.iova = pick_iova(ioas, cmd.length);
	if (__builtin_add_overflow(cmd.iova, cmd.length, &end) ||
	    __builtin_add_overflow(cmd.user_va, cmd.length, &end))
		return -EOVERFLOW;
	/* Stricter than the kernel: user_va is page aligned too. */
	if ((cmd.iova | cmd.length | cmd.user_va) & (IOVA_ALIGN - 1))
		return -EINVAL;
	if (overlaps(ioas, cmd.iova, cmd.iova + cmd.length - 1))
		return -EEXIST;

	m = (struct mapping){
		.iova = cmd.iova,
		.length = cmd.length,
		.va = cmd.user_va,
		.prot = (cmd.flags & IOMMU_IOAS_MAP_READABLE ? DMALOG_IOPT_READ : 0) |
			(cmd.flags & IOMMU_IOAS_MAP_WRITEABLE ? DMALOG_IOPT_WRITE : 0),
	};
	for (id = 1; id < ictx->nobjs; id++) {
		struct obj *h = &ictx->objs[id];

		if (h->type != OBJ_HWPT || h->ioas != cmd.ioas_id)
			continue;
		ret = dmalog_iopt_map(h->iopt, m.iova, m.length, m.va, map_prot(ioas, m.prot));
		if (ret)
			break;
	}
	if (!ret)
		ret = add_mapping(ioas, &m);
	if (ret) {
		/* Undo the page tables mapped before the failure. */
		for (uint32_t u = 1; u < id && u < ictx->nobjs; u++)
			if (ictx->objs[u].type == OBJ_HWPT && ictx->objs[u].ioas == cmd.ioas_id)
				dmalog_iopt_unmap(ictx->objs[u].iopt, m.iova, m.length);
		return ret;
	}
	ucmd_out(arg, &cmd, sizeof(cmd));
	return 0;
}

static int cmd_ioas_unmap(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_ioas_unmap cmd;
	struct obj *ioas;
	uint64_t last, unmapped = 0;
	bool found = false;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_ioas_unmap, length));

	if (ret)
		return ret;
	ioas = get_obj(ictx, cmd.ioas_id, OBJ_IOAS);
	if (!ioas)
		return -ENOENT;
	if (cmd.iova == 0 && cmd.length == UINT64_MAX) {
		last = UINT64_MAX;
	} else {
		if (!cmd.length)
			return -EINVAL;
		if (__builtin_add_overflow(cmd.iova, cmd.length - 1, &last))
			return -EOVERFLOW;
	}
	/* The range must hold whole mappings: splitting one is refused. */
	for (uint32_t i = 0; i < ioas->nmaps; i++) {
		const struct mapping *m = &ioas->maps[i];
		uint64_t m_last = m->iova + m->length - 1;

		if (m->iova > last || m_last < cmd.iova)
			continue;
		if (m->iova < cmd.iova || m_last > last)
			return -ENOENT;
		found = true;
	}
	if (!found)
		return -ENOENT;
	for (uint32_t i = 0; i < ioas->nmaps;) {
		struct mapping m = ioas->maps[i];

		if (m.iova < cmd.iova || m.iova > last) {
			i++;
			continue;
		}
		for (uint32_t id = 1; id < ictx->nobjs; id++)
			if (ictx->objs[id].type == OBJ_HWPT && ictx->objs[id].ioas == cmd.ioas_id)
				dmalog_iopt_unmap(ictx->objs[id].iopt, m.iova, m.length);
		unmapped += m.length;
		memmove(&ioas->maps[i], &ioas->maps[i + 1], (ioas->nmaps - i - 1) * sizeof(m));
		ioas->nmaps--;
	}
	cmd.length = unmapped;
	ucmd_out(arg, &cmd, sizeof(cmd));
	return 0;
}

static int cmd_option(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_option cmd;
	struct obj *ioas;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_option, val64));

	if (ret)
		return ret;
	if (cmd.__reserved || cmd.option_id != IOMMU_OPTION_HUGE_PAGES ||
	    (cmd.op != IOMMU_OPTION_OP_SET && cmd.op != IOMMU_OPTION_OP_GET))
		return -EOPNOTSUPP;
	ioas = get_obj(ictx, cmd.object_id, OBJ_IOAS);
	if (!ioas)
		return -ENOENT;
	if (cmd.op == IOMMU_OPTION_OP_GET) {
		cmd.val64 = !ioas->no_huge;
		ucmd_out(arg, &cmd, sizeof(cmd));
		return 0;
	}
	if (cmd.val64 > 1)
		return -EINVAL;
	ioas->no_huge = !cmd.val64;
	return 0;
}

static int cmd_hwpt_alloc(struct dmalog_iommufd *ictx, void *arg)
{
	const uint32_t known = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	struct iommu_hwpt_alloc cmd;
	struct obj *dev;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_hwpt_alloc, __reserved));

	if (ret)
		return ret;
	if ((cmd.flags & ~known) || cmd.__reserved)
		return -EOPNOTSUPP;
	if (cmd.data_type == IOMMU_HWPT_DATA_NONE && (cmd.data_len || cmd.data_uptr))
		return -EINVAL;
	if (cmd.data_type != IOMMU_HWPT_DATA_NONE)
		return -EOPNOTSUPP;
	dev = get_obj(ictx, cmd.dev_id, OBJ_DEVICE);
	if (!dev)
		return -ENOENT;
	if (get_obj(ictx, cmd.pt_id, OBJ_HWPT))
		return -EOPNOTSUPP; /* nesting: this IOMMU has no stage 1 */
	if (!get_obj(ictx, cmd.pt_id, OBJ_IOAS))
		return -ENOENT;
	/* No nesting parents here; dirty tracking needs a capable IOMMU. */
	if ((cmd.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) ||
	    ((cmd.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !dev->dirty_cap))
		return -EOPNOTSUPP;
	ret = new_hwpt(ictx, cmd.pt_id, cmd.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		       &cmd.out_hwpt_id);
	if (!ret)
		ucmd_out(arg, &cmd, sizeof(cmd));
	return ret;
}

static int cmd_get_hw_info(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_hw_info cmd;
	struct obj *dev;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_hw_info, __reserved));

	if (ret)
		return ret;
	if (cmd.flags || cmd.__reserved)
		return -EOPNOTSUPP;
	dev = get_obj(ictx, cmd.dev_id, OBJ_DEVICE);
	if (!dev)
		return -ENOENT;
	/* No type-specific data: a caller's buffer is zeroed and data_len says 0. */
	if (cmd.data_len && cmd.data_uptr)
		memset((void *)(uintptr_t)cmd.data_uptr, 0, cmd.data_len);
	cmd.data_len = 0;
	cmd.out_data_type = IOMMU_HW_INFO_TYPE_NONE;
	cmd.out_capabilities = dev->dirty_cap ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
	ucmd_out(arg, &cmd, sizeof(cmd));
	return 0;
}

static struct obj *dirty_hwpt(struct dmalog_iommufd *ictx, uint32_t id, int *ret)
{
	struct obj *h = get_obj(ictx, id, OBJ_HWPT);

	*ret = !h ? -ENOENT : !h->dirty ? -EOPNOTSUPP : 0;
	return *ret ? NULL : h;
}

static int cmd_set_dirty_tracking(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_hwpt_set_dirty_tracking cmd;
	struct obj *h;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd),
			  MINSZ(struct iommu_hwpt_set_dirty_tracking, __reserved));

	if (ret)
		return ret;
	if ((cmd.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) || cmd.__reserved)
		return -EOPNOTSUPP;
	h = dirty_hwpt(ictx, cmd.hwpt_id, &ret);
	if (!h)
		return ret;
	return dmalog_iopt_set_dirty_tracking(h->iopt,
					      cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
}

/* [iova, last] lies wholly in mapped IOVA (mappings are sorted). */
static bool fully_mapped(const struct obj *ioas, uint64_t iova, uint64_t last)
{
	uint64_t cur = iova;

	for (uint32_t i = 0; i < ioas->nmaps; i++) {
		const struct mapping *m = &ioas->maps[i];
		uint64_t m_last = m->iova + m->length - 1;

		if (m_last < cur)
			continue;
		if (m->iova > cur)
			return false;
		if (m_last >= last)
			return true;
		cur = m_last + 1;
	}
	return false;
}

struct dirty_window {
	struct dmalog_iopt *iopt;
	unsigned int flags;
};

static int read_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length, void *o)
{
	struct dirty_window *w = o;

	return dmalog_iopt_read_and_clear_dirty(w->iopt, iova, length, w->flags, bm);
}

static int cmd_get_dirty_bitmap(struct dmalog_iommufd *ictx, void *arg)
{
	struct iommu_hwpt_get_dirty_bitmap cmd;
	struct dmalog_iova_bitmap bm;
	struct dirty_window w;
	struct obj *h;
	uint64_t last;
	int ret = ucmd_in(arg, &cmd, sizeof(cmd), MINSZ(struct iommu_hwpt_get_dirty_bitmap, data));

	if (ret)
		return ret;
	if ((cmd.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) || cmd.__reserved)
		return -EOPNOTSUPP;
	h = dirty_hwpt(ictx, cmd.hwpt_id, &ret);
	if (!h)
		return ret;
	/* iommufd_check_iova_range(), plus a zero length and a non-power-of-two page size. */
	if (!cmd.length)
		return -EINVAL;
	if (__builtin_add_overflow(cmd.iova, cmd.length - 1, &last))
		return -EOVERFLOW;
	if ((cmd.iova | (last + 1)) & (IOVA_ALIGN - 1))
		return -EINVAL;
	if (!cmd.page_size || (cmd.page_size & (cmd.page_size - 1)))
		return -EINVAL;
	if ((cmd.iova | (last + 1)) & (cmd.page_size - 1))
		return -EINVAL;
	if (!cmd.data)
		return -EFAULT;
	if (!fully_mapped(&ictx->objs[h->ioas], cmd.iova, last))
		return -EINVAL;
	/* Plain ORs, as the kernel's: commands on one context run one at a time. */
	ret = dmalog_iova_bitmap_init(&bm, cmd.iova, cmd.length, cmd.page_size,
				      (void *)(uintptr_t)cmd.data, 0);
	if (ret)
		return ret;
	w.iopt = h->iopt;
	w.flags = cmd.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR ? DMALOG_IOPT_NO_CLEAR : 0;
	return dmalog_iova_bitmap_for_each(&bm, DMALOG_IOVA_BITMAP_WINDOW_BITS, read_window, &w);
}

int dmalog_iommufd_ioctl(struct dmalog_iommufd *ictx, unsigned long request, void *arg)
{
	int ret;

	pthread_mutex_lock(&ictx->lock);
	switch (request) {
	case IOMMU_DESTROY:
		ret = cmd_destroy(ictx, arg);
		break;
	case IOMMU_IOAS_ALLOC:
		ret = cmd_ioas_alloc(ictx, arg);
		break;
	case IOMMU_IOAS_MAP:
		ret = cmd_ioas_map(ictx, arg);
		break;
	case IOMMU_IOAS_UNMAP:
		ret = cmd_ioas_unmap(ictx, arg);
		break;
	case IOMMU_OPTION:
		ret = cmd_option(ictx, arg);
		break;
	case IOMMU_HWPT_ALLOC:
		ret = cmd_hwpt_alloc(ictx, arg);
		break;
	case IOMMU_GET_HW_INFO:
		ret = cmd_get_hw_info(ictx, arg);
		break;
	case IOMMU_HWPT_SET_DIRTY_TRACKING:
		ret = cmd_set_dirty_tracking(ictx, arg);
		break;
	case IOMMU_HWPT_GET_DIRTY_BITMAP:
		ret = cmd_get_dirty_bitmap(ictx, arg);
		break;
	default:
		ret = -ENOTTY;
	}
	pthread_mutex_unlock(&ictx->lock);
	return ret;
}

int dmalog_iommufd_bind(struct dmalog_iommufd *ictx, const struct dmalog_iommufd_device_caps *caps,
			uint32_t *dev_id)
{
	int ret;

	pthread_mutex_lock(&ictx->lock);
	ret = alloc_obj(ictx, OBJ_DEVICE, dev_id);
	if (!ret)
		ictx->objs[*dev_id].dirty_cap = caps && caps->dirty_tracking;
	pthread_mutex_unlock(&ictx->lock);
	return ret;
}

int dmalog_iommufd_attach(struct dmalog_iommufd *ictx, uint32_t dev_id, uint32_t *pt_id)
{
	struct obj *dev, *h;
	int ret = 0;

	pthread_mutex_lock(&ictx->lock);
	dev = get_obj(ictx, dev_id, OBJ_DEVICE);
	if (!dev) {
		ret = -ENOENT;
	} else if (get_obj(ictx, *pt_id, OBJ_IOAS)) {
		/* An IOAS: the device gets a page table of its own over it. */
		ret = new_hwpt(ictx, *pt_id, false, pt_id);
		if (!ret)
			ictx->objs[dev_id].hwpt = *pt_id;
	} else if ((h = get_obj(ictx, *pt_id, OBJ_HWPT))) {
		/* A HWPT that enforces dirty tracking refuses an IOMMU without it. */
		if (h->dirty && !dev->dirty_cap)
			ret = -EINVAL;
		else
			dev->hwpt = *pt_id;
	} else {
		ret = -ENOENT;
	}
	pthread_mutex_unlock(&ictx->lock);
	return ret;
}

struct dmalog_iopt *dmalog_iommufd_device_iopt(struct dmalog_iommufd *ictx, uint32_t dev_id)
{
	struct dmalog_iopt *iopt = NULL;
	struct obj *dev;

	pthread_mutex_lock(&ictx->lock);
	dev = get_obj(ictx, dev_id, OBJ_DEVICE);
	if (dev && dev->hwpt)
		iopt = ictx->objs[dev->hwpt].iopt;
	pthread_mutex_unlock(&ictx->lock);
	return iopt;
}
