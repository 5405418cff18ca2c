// SPDX-License-Identifier: MIT
/*
 * The handle's built-in backends: the emulated device, iommufd and type1 container of this
 * library, and a real kernel fd. Each is a thin adapter: the bytes are the kernel's either
 * way.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include <dmalog/device.h>
#include <dmalog/handle.h>
#include <dmalog/hwpt.h>
#include <dmalog/type1.h>

static int device_ioctl(void *priv, unsigned long request, void *arg)
{
	return dmalog_device_ioctl(priv, request, arg);
}

static int device_data_ioctl(void *priv, int data_fd, unsigned long request, void *arg)
{
	return dmalog_device_data_ioctl(priv, data_fd, request, arg);
}

static const struct dmalog_handle_ops device_ops = {
	.ioctl = device_ioctl,
	.data_ioctl = device_data_ioctl,
};

int dmalog_handle_from_device(struct dmalog_device *dev, struct dmalog_handle **out)
{
	if (!dev)
		return -EINVAL;
	return dmalog_handle_create(&device_ops, dev, dmalog_device_name(dev), out);
}

static int iommufd_ioctl(void *priv, unsigned long request, void *arg)
{
	return dmalog_iommufd_ioctl(priv, request, arg);
}

static const struct dmalog_handle_ops iommufd_ops = {.ioctl = iommufd_ioctl};

int dmalog_handle_from_iommufd(struct dmalog_iommufd *ifd, struct dmalog_handle **out)
{
	if (!ifd)
		return -EINVAL;
	return dmalog_handle_create(&iommufd_ops, ifd, "iommufd", out);
}

static int type1_ioctl(void *priv, unsigned long request, void *arg)
{
	return dmalog_type1_ioctl(priv, request, arg);
}

static const struct dmalog_handle_ops type1_ops = {.ioctl = type1_ioctl};

int dmalog_handle_from_type1(struct dmalog_type1 *c, struct dmalog_handle **out)
{
	if (!c)
		return -EINVAL;
	return dmalog_handle_create(&type1_ops, c, "type1", out);
}

static int fd_ioctl(void *priv, unsigned long request, void *arg)
{
	int ret = ioctl((int)(intptr_t)priv, request, arg);

	return ret < 0 ? -errno : ret;
}

/* data_ioctl, data_read and data_write default to the plain system calls on the data fd. */
static const struct dmalog_handle_ops fd_ops = {.ioctl = fd_ioctl};

int dmalog_handle_from_fd(int fd, const char *name, struct dmalog_handle **out)
{
	if (fd < 0)
		return -EBADF;
	return dmalog_handle_create(&fd_ops, (void *)(intptr_t)fd, name, out);
}
