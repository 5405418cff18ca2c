// SPDX-License-Identifier: MIT
/*
 * VERSION's capabilities, read and written with json-c: a peer's JSON is untrusted text, so
 * nothing here is parsed by hand.
 */
#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "vfu.h"

void vfu_caps_default(struct vfu_caps *c)
{
	memset(c, 0, sizeof(*c));
	c->max_msg_fds = 1;
	c->max_data_xfer_size = 1u << 20;
	c->pgsizes = 4096;
	c->max_dma_maps = 65535;
	c->migration_pgsize = 4096;
	c->max_bitmap_size = 256u << 20;
}

/* An integer member @name of @obj in [@min, @max] into *@v; absent leaves it. 0 or -EINVAL. */
static int get_uint(struct json_object *obj, const char *name, uint64_t min, uint64_t max,
		    uint64_t *v)
{
	struct json_object *m;
	int64_t x;

	if (!json_object_object_get_ex(obj, name, &m))
		return 0;
	if (!json_object_is_type(m, json_type_int))
		return -EINVAL;
	x = json_object_get_int64(m);
	/* json-c saturates what does not fit an int64; such a value is out of range anyway. */
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return -EINVAL;
	*v = (uint64_t)x;
	return 0;
}

static bool power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int parse_caps(struct json_object *caps, struct vfu_caps *c)
{
	uint64_t fds = c->max_msg_fds, maps = c->max_dma_maps;
	struct json_object *mig;
	int ret;

	if (!json_object_is_type(caps, json_type_object))
		return -EINVAL;
	ret = get_uint(caps, "max_msg_fds", 0, 1024, &fds) ?:
	      get_uint(caps, "max_data_xfer_size", 1, UINT32_MAX, &c->max_data_xfer_size) ?:
	      get_uint(caps, "pgsizes", 1, UINT64_MAX >> 1, &c->pgsizes) ?:
	      get_uint(caps, "max_dma_maps", 1, UINT32_MAX, &maps);
	if (ret)
		return ret;
	c->max_msg_fds = (uint32_t)fds;
	c->max_dma_maps = (uint32_t)maps;
	if (!json_object_object_get_ex(caps, "migration", &mig))
		return 0;
	if (!json_object_is_type(mig, json_type_object))
		return -EINVAL;
	c->migration = true;
	ret = get_uint(mig, "pgsize", 1, 1ULL << 40, &c->migration_pgsize)
		      ?: get_uint(mig, "max_bitmap_size", 1, UINT64_MAX >> 1, &c->max_bitmap_size);
	if (!ret && !power_of_two(c->migration_pgsize))
		ret = -EINVAL;
	return ret;
}

int vfu_caps_parse(const char *json, size_t len, struct vfu_caps *c)
{
	struct json_tokener *tok;
	struct json_object *root, *caps;
	int ret = -EINVAL;

	vfu_caps_default(c);
	/* Exactly one NUL, at the end: the JSON text is what precedes it. */
	if (!len || json[len - 1] || memchr(json, 0, len - 1) || len - 1 > INT32_MAX)
		return -EINVAL;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, json, (int)(len - 1));
	if (root && json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == len - 1 &&
	    json_object_is_type(root, json_type_object)) {
		ret = 0;
		if (json_object_object_get_ex(root, "capabilities", &caps))
			ret = parse_caps(caps, c);
	}
	json_object_put(root);
	json_tokener_free(tok);
	return ret;
}

int vfu_caps_write(const struct vfu_caps *ours, char *out, size_t cap)
{
	struct json_object *root = json_object_new_object(), *caps = json_object_new_object();
	const char *text;
	size_t len;
	int ret = -ENOMEM;

	if (!root || !caps) {
		json_object_put(caps);
		json_object_put(root);
		return -ENOMEM;
	}
	/* From here on root owns caps (and mig): putting root frees them all. */
	json_object_object_add(root, "capabilities", caps);
	json_object_object_add(caps, "max_msg_fds", json_object_new_int64(ours->max_msg_fds));
	json_object_object_add(caps, "max_data_xfer_size",
			       json_object_new_int64((int64_t)ours->max_data_xfer_size));
	json_object_object_add(caps, "pgsizes", json_object_new_int64((int64_t)ours->pgsizes));
	json_object_object_add(caps, "max_dma_maps", json_object_new_int64(ours->max_dma_maps));
	if (ours->migration) {
		struct json_object *mig = json_object_new_object();

		if (!mig)
			goto out;
		json_object_object_add(caps, "migration", mig);
		json_object_object_add(mig, "pgsize",
				       json_object_new_int64((int64_t)ours->migration_pgsize));
		json_object_object_add(mig, "max_bitmap_size",
				       json_object_new_int64((int64_t)ours->max_bitmap_size));
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	len = text ? strlen(text) + 1 : 0;
	ret = !text ? -ENOMEM : len > cap ? -ENOSPC : (int)len;
	if (ret > 0)
		memcpy(out, text, len);
out:
	json_object_put(root);
	return ret;
}
