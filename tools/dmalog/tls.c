// SPDX-License-Identifier: MIT
/*
 * TLS with a pre-shared key for `dmalog migrate --psk FILE`, as QEMU's tls-creds-psk: both
 * ends read the same key file ("identity:hexkey", the format of QEMU's keys.psk) and a peer
 * without the key cannot complete the handshake, read the stream or inject into it.
 *
 * The engine keeps working on a plain fd: one end of a socketpair, with a relay thread
 * moving bytes between it and the TLS session. Every wait in the relay has the engine's
 * deadline too; when either side closes, the other is told.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define RELAY_BYTES (256u << 10)

struct tls_link {
	gnutls_session_t session;
	gnutls_psk_client_credentials_t client_cred;
	gnutls_psk_server_credentials_t server_cred;
	int sock;  /* the TCP connection, non-blocking once the handshake is done */
	int plain; /* our end of the socketpair */
	int timeout_ms;
	char identity[128];
	gnutls_datum_t key;
	pthread_t thread;
};

/* "identity:hexkey" on the first line; the key at least 16 bytes. */
static int read_psk(struct tls_link *t, const char *path, char *err, size_t errlen)
{
	char line[1024], *colon;
	FILE *f = fopen(path, "r");
	size_t hexlen;

	if (!f) {
		snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	colon = strchr(line, ':');
	hexlen = colon ? strlen(colon + 1) : 0;
	if (!colon || colon == line || (size_t)(colon - line) >= sizeof(t->identity) ||
	    hexlen < 32 || hexlen % 2 || strspn(colon + 1, "0123456789abcdefABCDEF") != hexlen) {
		snprintf(err, errlen,
			 "%s: want one line 'identity:hexkey' with a key of at least 16 bytes",
			 path);
		return -EINVAL;
	}
	*colon = 0;
	snprintf(t->identity, sizeof(t->identity), "%s", line);
	t->key.size = (unsigned int)hexlen / 2;
	t->key.data = gnutls_malloc(t->key.size);
	if (!t->key.data)
		return -ENOMEM;
	for (size_t i = 0; i < t->key.size; i++)
		sscanf(colon + 1 + 2 * i, "%2hhx", &t->key.data[i]);
	return 0;
}

/* The server side: the key for the client's identity, if it is ours. */
static int server_key(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
	struct tls_link *t = gnutls_session_get_ptr(session);

	if (strcmp(username, t->identity))
		return -1;
	key->data = gnutls_malloc(t->key.size);
	if (!key->data)
		return -1;
	memcpy(key->data, t->key.data, t->key.size);
	key->size = t->key.size;
	return 0;
}

/* Wait for @fd or for TLS data already decrypted. */
static int wait_in(struct tls_link *t, struct pollfd *pfd, int n, int ms)
{
	if (gnutls_record_check_pending(t->session))
		return 1;
	return poll(pfd, (nfds_t)n, ms);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Send all of @len bytes as TLS records, each wait for room bounded by the timeout. */
static bool send_all(struct tls_link *t, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(t->session, p, len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			struct pollfd pfd = {.fd = t->sock, .events = POLLOUT};

			if (poll(&pfd, 1, t->timeout_ms) <= 0)
				return false;
			/* GnuTLS wants the same call again after AGAIN. */
			continue;
		}
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * Move bytes both ways until both directions are closed. The engine's own deadlines bound
 * how long a stalled peer is waited for: when it gives up, it closes its end, and so do we,
 * after at most one more timeout for what the peer still has to say.
 */
static void *relay(void *arg)
{
	struct tls_link *t = arg;
	uint8_t *buf = malloc(RELAY_BYTES);
	bool to_peer = true, from_peer = true;
	double last_call = 0;

	while (buf && (to_peer || from_peer)) {
		if (!to_peer && now_ms() > last_call)
			break;
		struct pollfd pfd[2] = {{.fd = t->plain, .events = to_peer ? POLLIN : 0},
					{.fd = t->sock, .events = from_peer ? POLLIN : 0}};
		ssize_t n;

		if (wait_in(t, pfd, 2, 1000) < 0 && errno != EINTR)
			break;
		if (from_peer && (pfd[1].revents || gnutls_record_check_pending(t->session))) {
			n = gnutls_record_recv(t->session, buf, RELAY_BYTES);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n <= 0 || send(t->plain, buf, (size_t)n, MSG_NOSIGNAL) != n) {
				/* The peer is done (or broke): the engine reads the end. */
				shutdown(t->plain, SHUT_WR);
				from_peer = false;
			}
		}
		if (to_peer && pfd[0].revents) {
			n = recv(t->plain, buf, RELAY_BYTES, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0 || !send_all(t, buf, (size_t)n)) {
				gnutls_bye(t->session, GNUTLS_SHUT_WR);
				shutdown(t->sock, SHUT_WR);
				to_peer = false;
				last_call = now_ms() + t->timeout_ms;
			}
		}
	}
	free(buf);
	shutdown(t->plain, SHUT_RDWR);
	return NULL;
}

static void tls_free(struct tls_link *t)
{
	if (t->session)
		gnutls_deinit(t->session);
	if (t->client_cred)
		gnutls_psk_free_client_credentials(t->client_cred);
	if (t->server_cred)
		gnutls_psk_free_server_credentials(t->server_cred);
	gnutls_free(t->key.data);
	free(t);
}

int tls_wrap(int sock, bool server, const char *psk_file, uint32_t timeout_ms,
	     struct tls_link **out, int *plain_fd, char *err, size_t errlen)
{
	struct tls_link *t = calloc(1, sizeof(*t));
	int pair[2], ret, flags;

	if (!t)
		return -ENOMEM;
	t->sock = sock;
	t->timeout_ms = (int)timeout_ms;
	ret = read_psk(t, psk_file, err, errlen);
	if (ret)
		goto fail;
	ret = gnutls_init(&t->session, server ? GNUTLS_SERVER : GNUTLS_CLIENT);
	if (!ret && server) {
		ret = gnutls_psk_allocate_server_credentials(&t->server_cred);
		if (!ret) {
			gnutls_psk_set_server_credentials_function(t->server_cred, server_key);
			ret = gnutls_credentials_set(t->session, GNUTLS_CRD_PSK, t->server_cred);
		}
	} else if (!ret) {
		ret = gnutls_psk_allocate_client_credentials(&t->client_cred);
		if (!ret)
			ret = gnutls_psk_set_client_credentials(t->client_cred, t->identity,
								&t->key, GNUTLS_PSK_KEY_RAW);
		if (!ret)
			ret = gnutls_credentials_set(t->session, GNUTLS_CRD_PSK, t->client_cred);
	}
	/*
	 * PSK key exchange only, with (EC)DHE for forward secrecy where both ends allow it; AES-GCM
	 * first (CPUs with AES instructions run it at several times ChaCha20's speed), ChaCha20
	 * for those without.
	 */
	if (!ret)
		ret = gnutls_priority_set_direct(t->session,
						 "NORMAL:-KX-ALL:+ECDHE-PSK:+DHE-PSK:+PSK:-CIPHER-"
						 "ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305",
						 NULL);
	if (ret) {
		snprintf(err, errlen, "TLS setup: %s", gnutls_strerror(ret));
		ret = -EINVAL;
		goto fail;
	}
	gnutls_session_set_ptr(t->session, t);
	gnutls_transport_set_int(t->session, sock);
	gnutls_handshake_set_timeout(t->session, timeout_ms);
	do
		ret = gnutls_handshake(t->session);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret < 0) {
		snprintf(err, errlen,
			 "TLS handshake with the peer failed: %s (is it using the same "
			 "--psk key?)",
			 gnutls_strerror(ret));
		ret = -EACCES;
		goto fail;
	}
	/* From here on no read or write of the relay may block past its poll. */
	flags = fcntl(sock, F_GETFL);
	fcntl(sock, F_SETFL, flags | O_NONBLOCK);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)) {
		ret = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	t->plain = pair[0];
	ret = -pthread_create(&t->thread, NULL, relay, t);
	if (ret) {
		close(pair[0]);
		close(pair[1]);
		snprintf(err, errlen, "cannot start the TLS relay: %s", strerror(-ret));
		goto fail;
	}
	*plain_fd = pair[1];
	*out = t;
	return 0;
fail:
	tls_free(t);
	close(sock);
	return ret;
}

void tls_finish(struct tls_link *t)
{
	if (!t)
		return;
	pthread_join(t->thread, NULL);
	close(t->plain);
	close(t->sock);
	tls_free(t);
}
