/* Dashboard login sessions: random ids, a CSRF token each, server-side expiry, a bounded table. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/base.h"
#include "daemon-ui-internal.h"

struct session {
	bool used;
	unsigned char id_hash[32]; /* SHA-256 of the id: the table never holds the cookie itself */
	char csrf[SESSION_ID_LEN + 1];
	time_t expires;            /* monotonic seconds */
};

struct sessions {
	pthread_mutex_t lock;
	struct session v[SESSIONS_MAX];
};

static void id_hash(const char *id, unsigned char out[32])
{
	unsigned int n = 0;

	EVP_Digest(id, strlen(id), out, &n, EVP_sha256(), NULL);
}

/* 32 random bytes as 64 hex digits; -1 when the generator fails. */
static int random_hex(char out[SESSION_ID_LEN + 1])
{
	unsigned char raw[SESSION_ID_LEN / 2];
	static const char hex[] = "0123456789abcdef";

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[SESSION_ID_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

struct sessions *sessions_new(void)
{
	struct sessions *s = calloc(1, sizeof(*s));

	if (s)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}

void sessions_free(struct sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	OPENSSL_cleanse(s->v, sizeof(s->v));
	free(s);
}

int sessions_create(struct sessions *s, long ttl, char id[SESSION_ID_LEN + 1], char csrf[SESSION_ID_LEN + 1])
{
	time_t now = mono_s();
	struct session *slot = NULL;

	if (random_hex(id) < 0 || random_hex(csrf) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < SESSIONS_MAX && !slot; i++)
		if (!s->v[i].used || s->v[i].expires <= now)
			slot = &s->v[i];
	if (!slot) { /* full: the one closest to its end goes */
		slot = &s->v[0];
		for (size_t i = 1; i < SESSIONS_MAX; i++)
			if (s->v[i].expires < slot->expires)
				slot = &s->v[i];
	}
	slot->used = true;
	id_hash(id, slot->id_hash);
	memcpy(slot->csrf, csrf, sizeof(slot->csrf));
	slot->expires = now + ttl;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The live session of ID (under the lock), or NULL. */
static struct session *lookup(struct sessions *s, const char *id)
{
	unsigned char h[32];
	time_t now = mono_s();
	struct session *found = NULL;

	if (strlen(id) != SESSION_ID_LEN || strspn(id, "0123456789abcdef") != SESSION_ID_LEN)
		return NULL;
	id_hash(id, h);
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		struct session *v = &s->v[i];

		if (v->used && v->expires <= now) /* expired: forgotten */
			*v = (struct session){ 0 };
		if (v->used && CRYPTO_memcmp(v->id_hash, h, sizeof(h)) == 0)
			found = v;
	}
	return found;
}

bool sessions_find(struct sessions *s, const char *id, char csrf[SESSION_ID_LEN + 1])
{
	struct session *v;

	pthread_mutex_lock(&s->lock);
	v = lookup(s, id);
	if (v && csrf)
		memcpy(csrf, v->csrf, SESSION_ID_LEN + 1);
	pthread_mutex_unlock(&s->lock);
	return v != NULL;
}

void sessions_drop(struct sessions *s, const char *id)
{
	struct session *v;

	pthread_mutex_lock(&s->lock);
	v = lookup(s, id);
	if (v)
		*v = (struct session){ 0 };
	pthread_mutex_unlock(&s->lock);
}

void sessions_clear(struct sessions *s)
{
	pthread_mutex_lock(&s->lock);
	memset(s->v, 0, sizeof(s->v));
	pthread_mutex_unlock(&s->lock);
}

unsigned sessions_count(struct sessions *s)
{
	time_t now = mono_s();
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < SESSIONS_MAX; i++)
		n += s->v[i].used && s->v[i].expires > now;
	pthread_mutex_unlock(&s->lock);
	return n;
}
