# shellcheck shell=bash
# Sourced by the scripts: installs what a fresh Debian 12 machine lacks (when run as root).

dmalog_need() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "dmalog: please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
		return 1
	fi
	echo "dmalog: installing ${missing[*]}" >&2
	apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# dmalog_build DIR [meson options...]: configure once, then build.
dmalog_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >&2
	fi
	ninja -C "$dir" >&2
}

# librsvg2-bin: the tests render --plot's SVG to check it is a picture. libjson-c-dev: the
# vfio-user server's VERSION capabilities. libxxhash-dev: XXH3 for the proof's page digests.
DMALOG_BASE_PACKAGES=(gcc meson ninja-build pkg-config libcmocka-dev python3 libgnutls28-dev
	libjson-c-dev librsvg2-bin libxxhash-dev)
