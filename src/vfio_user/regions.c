// SPDX-License-Identifier: MIT
/*
 * The served device's regions: DEVICE_GET_REGION_INFO (the fd to mmap() with the reply, and a
 * sparse mmap capability when only parts may be mapped) and REGION_READ / REGION_WRITE, each
 * checked against the region's size and flags before the device sees it. Every part of a
 * region is reachable by message, mappable or not, as the spec asks.
 */
#include <string.h>

#include "server_priv.h"

_Static_assert(sizeof(struct vfio_region_sparse_mmap_area) == 16, "sparse mmap area");

int vfu_cmd_region_info(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_region_info info;
	const struct dmalog_vfu_region *r;
	size_t caps = 0;
	uint8_t *out;

	if (len != sizeof(info))
		return -EINVAL;
	memcpy(&info, p, sizeof(info));
	if (info.argsz < sizeof(info) || info.index >= s->cfg.nregions)
		return -EINVAL;
	r = &s->regions[info.index];
	if (r->flags & VFIO_REGION_INFO_FLAG_MMAP && r->nareas)
		caps = sizeof(struct vfu_sparse_cap) + r->nareas * sizeof(r->areas[0]);
	info.flags = r->flags | (caps ? VFIO_REGION_INFO_FLAG_CAPS : 0);
	info.size = r->size;
	info.offset = r->fd_offset;
	info.cap_offset = 0;
	/* As the kernel: a caller whose argsz cannot hold the capabilities learns the size. */
	if (caps && info.argsz < sizeof(info) + caps) {
		info.argsz = (uint32_t)(sizeof(info) + caps);
		caps = 0;
	} else {
		info.argsz = (uint32_t)(sizeof(info) + caps);
		info.cap_offset = caps ? sizeof(info) : 0;
	}
	out = vfu_reply_room(s, sizeof(info) + caps);
	if (!out)
		return -ENOMEM;
	memcpy(out, &info, sizeof(info));
	if (caps) {
		struct vfu_sparse_cap c = {.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
					   .version = 1,
					   .nr_areas = r->nareas};

		memcpy(out + sizeof(info), &c, sizeof(c));
		memcpy(out + sizeof(info) + sizeof(c), r->areas, r->nareas * sizeof(r->areas[0]));
	}
	if (r->flags & VFIO_REGION_INFO_FLAG_MMAP)
		s->reply_fd = r->fd;
	return (int)(sizeof(info) + caps);
}

/* A region access the device may see: in a region it has, allowed, within its size. */
static int check_access(const struct dmalog_vfu_server *s, const struct dmalog_vfu_region_access *a,
			uint32_t need)
{
	const struct dmalog_vfu_region *r;

	if (a->region >= s->cfg.nregions || a->count > s->max_data_xfer)
		return -EINVAL;
	r = &s->regions[a->region];
	if (!(r->flags & need) || a->offset > r->size || a->count > r->size - a->offset)
		return -EINVAL;
	return s->cfg.region_access ? 0 : -EINVAL;
}

int vfu_cmd_region_read(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_region_access a;
	uint8_t *out;
	int ret;

	if (len != sizeof(a))
		return -EINVAL;
	memcpy(&a, p, sizeof(a));
	ret = check_access(s, &a, VFIO_REGION_INFO_FLAG_READ);
	if (ret)
		return ret;
	out = vfu_reply_room(s, sizeof(a) + a.count);
	if (!out)
		return -ENOMEM;
	ret = s->cfg.region_access(s->cfg.opaque, a.region, a.offset, out + sizeof(a), a.count,
				   false);
	if (ret)
		return ret;
	memcpy(out, &a, sizeof(a));
	return (int)(sizeof(a) + a.count);
}

int vfu_cmd_region_write(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_region_access a;
	uint8_t *out;
	int ret;

	if (len < sizeof(a))
		return -EINVAL;
	memcpy(&a, p, sizeof(a));
	/* The count must be what arrived: not a byte more or less. */
	if (a.count != len - sizeof(a))
		return -EINVAL;
	ret = check_access(s, &a, VFIO_REGION_INFO_FLAG_WRITE);
	if (ret)
		return ret;
	ret = s->cfg.region_access(s->cfg.opaque, a.region, a.offset, (void *)(p + sizeof(a)),
				   a.count, true);
	if (ret)
		return ret;
	out = vfu_reply_room(s, sizeof(a));
	if (!out)
		return -ENOMEM;
	memcpy(out, &a, sizeof(a));
	return sizeof(a);
}
