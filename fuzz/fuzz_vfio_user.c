// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the vfio-user server's dispatcher: arbitrary messages must get a reply
 * or end the connection cleanly, never crash, leak or read past what arrived (ASan watches
 * each message in an exact-size buffer). The input is a list of messages, each a u16 length
 * and its bytes. The first input byte's bit 0 sends a valid VERSION first (so the fuzzer
 * reaches the commands after it); bit 1 keeps each message's size field as the input has it
 * (else it is set to the message's length, to get past the framing check); bit 2 serves the
 * whole PCI function (dmalog_vfu_device: regions, interrupts, low power) instead of a bare
 * device; bit 3 sends an eventfd with each message (SET_IRQS, the low-power wakeup).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <dmalog/dmalog.h>

static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8,\"migration\":{\"pgsize\":4096}}}";

static void handle(struct dmalog_vfu_server *s, const uint8_t *msg, size_t len, bool with_fd)
{
	uint8_t *copy = malloc(len ? len : 1);
	const void *reply;
	size_t reply_len;
	int fd = with_fd ? eventfd(0, EFD_CLOEXEC) : -1;

	if (!copy) {
		if (fd >= 0)
			close(fd);
		return;
	}
	memcpy(copy, msg, len);
	/* The server takes the fd: it closes it or keeps it. */
	dmalog_vfu_server_handle(s, copy, len, &fd, fd >= 0, &reply, &reply_len);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmalog_device_desc desc = {.name = "fuzz", .log_ops = dmalog_swtrack_log_ops()};
	struct dmalog_vfu_server_config cfg = {.size = sizeof(cfg), .timeout_ms = 100};
	struct dmalog_vfu_device_config pci = {
		.size = sizeof(pci), .kind = "nic", .timeout_ms = 100};
	struct dmalog_vfu_device *fn = NULL;
	struct dmalog_vfu_server *s = NULL;
	struct dmalog_device *dev = NULL;
	struct dmalog_swtrack *t = NULL;
	size_t off = 1;
	bool fds;

	if (!size || dmalog_swtrack_create(&t))
		return 0;
	fds = data[0] & 8;
	desc.priv = t;
	if (data[0] & 4) {
		if (dmalog_vfu_device_create(&pci, &fn))
			goto out;
		s = dmalog_vfu_device_server(fn);
	} else {
		if (dmalog_device_create(&desc, &dev))
			goto out;
		cfg.dev = dev;
		if (dmalog_vfu_server_create(&cfg, &s))
			goto out;
	}
	if (data[0] & 1) {
		uint8_t v[sizeof(struct dmalog_vfu_hdr) + 4 + sizeof(caps)];
		struct dmalog_vfu_hdr h = {
			.id = 1, .command = DMALOG_VFU_VERSION, .size = sizeof(v)};
		struct dmalog_vfu_version ver = {0, 0};

		memcpy(v, &h, sizeof(h));
		memcpy(v + sizeof(h), &ver, sizeof(ver));
		memcpy(v + sizeof(h) + sizeof(ver), caps, sizeof(caps));
		handle(s, v, sizeof(v), false);
	}
	while (off + 2 <= size) {
		uint16_t len;
		uint8_t *msg;

		memcpy(&len, data + off, 2);
		off += 2;
		if (len > size - off)
			len = (uint16_t)(size - off);
		msg = malloc(len ? len : 1);
		if (!msg)
			break;
		memcpy(msg, data + off, len);
		if (!(data[0] & 2) && len >= sizeof(struct dmalog_vfu_hdr)) {
			uint32_t whole = len;

			memcpy(msg + offsetof(struct dmalog_vfu_hdr, size), &whole, 4);
		}
		handle(s, msg, len, fds);
		free(msg);
		off += len;
	}
	dmalog_vfu_server_disconnect(s);
out:
	if (fn)
		dmalog_vfu_device_destroy(fn); /* its server with it */
	else
		dmalog_vfu_server_destroy(s);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	return 0;
}
