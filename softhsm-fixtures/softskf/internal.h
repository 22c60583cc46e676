/* Internal interfaces of libsoftskf (not exported). */
#ifndef SOFTSKF_INTERNAL_H
#define SOFTSKF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "skf.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* ---- limits ---------------------------------------------------------------------------- */
#define SOFTSKF_DIR_ENV "SOFTSKF_DIR"
#define MAX_NAME 64          /* bytes of a device, application or container name */
#define MAX_APP_NAME 32      /* bytes of an application name */
#define MAX_NAMES 64         /* entries in one listing */
#define MIN_PIN_LEN 6
#define MAX_PIN_LEN 16
#define MAX_PIN_RETRIES 15
#define MAX_CERT_LEN 8192    /* SKF_MAX_CERTIFICATE_SIZE in GmSSL's skf_ext.h */
#define MAX_PEM_LEN 65536
#define MAX_CONTAINERS 16
#define MAX_RANDOM_LEN 65536
#define PBKDF2_ITERATIONS 10000
#define SALT_LEN 16
#define HASH_LEN 32

/* ---- key = value files (store.c) --------------------------------------------------------- */
#define KV_MAX_ENTRIES 32
#define KV_MAX_KEY 32
#define KV_MAX_VALUE 256
#define KV_MAX_FILE 16384

struct kv_entry {
    char key[KV_MAX_KEY];
    char value[KV_MAX_VALUE];
};

struct kv {
    size_t count;
    struct kv_entry e[KV_MAX_ENTRIES];
};

/* 0 on success, -1 with errno set (EINVAL: malformed file, EFBIG: too large) */
HIDDEN int kv_load(const char *path, struct kv *kv);
HIDDEN const char *kv_get(const struct kv *kv, const char *key);
HIDDEN int kv_set(struct kv *kv, const char *key, const char *value);
HIDDEN int kv_set_ulong(struct kv *kv, const char *key, unsigned long value);
/* *out = the value if it is a decimal in [min, max]; -1 otherwise */
HIDDEN int kv_get_ulong(const struct kv *kv, const char *key, unsigned long min,
                        unsigned long max, unsigned long *out);
HIDDEN int kv_save(const char *path, const struct kv *kv, const char *header);

/* whole files: read at most max bytes (malloc'd, caller frees); write via temp + rename */
HIDDEN int file_read(const char *path, size_t max, unsigned char **data, size_t *len);
HIDDEN int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
HIDDEN int path_join(char *out, size_t size, const char *a, const char *b);
HIDDEN int is_regular_file(const char *path);
HIDDEN int is_directory(const char *path);
HIDDEN int remove_tree(const char *path);

/* a valid object name: 1..max bytes, no '/', no control characters, not starting with '.' */
HIDDEN int name_valid(const char *name, size_t max);

struct names {
    size_t count;
    char v[MAX_NAMES][MAX_NAME + 1];
};
/* entries of dir that are directories holding `marker` (a regular file), sorted */
HIDDEN int list_dirs_with(const char *dir, const char *marker, struct names *out);

HIDDEN int hex_encode(const unsigned char *in, size_t len, char *out, size_t out_size);
HIDDEN int hex_decode(const char *in, unsigned char *out, size_t len);

/* ---- cryptography over OpenSSL 3 (crypto.c) ------------------------------------------------ */
enum key_kind { KEY_NONE = 0, KEY_RSA = 1, KEY_SM2 = 2 };

HIDDEN int pin_hash(const char *pin, const unsigned char *salt, unsigned long iterations,
                    unsigned char out[HASH_LEN]);
HIDDEN int random_bytes(unsigned char *out, size_t len);
HIDDEN EVP_PKEY *key_generate(enum key_kind kind, unsigned bits);
/* NULL when the PEM is no unencrypted SM2 or RSA 1024/2048 private key */
HIDDEN EVP_PKEY *key_from_pem(const unsigned char *pem, size_t len);
HIDDEN enum key_kind key_kind_of(const EVP_PKEY *key);
HIDDEN int key_to_pem(const EVP_PKEY *key, unsigned char **pem, size_t *len);
HIDDEN int key_rsa_bits(const EVP_PKEY *key);
HIDDEN int key_ecc_blob(const EVP_PKEY *key, ECCPUBLICKEYBLOB *blob);
HIDDEN int key_rsa_blob(const EVP_PKEY *key, RSAPUBLICKEYBLOB *blob);
HIDDEN int key_sm2_sign(EVP_PKEY *key, const unsigned char e[32], ECCSIGNATUREBLOB *sig);
HIDDEN int key_rsa_sign(EVP_PKEY *key, const unsigned char *data, size_t len, unsigned char *sig,
                        size_t *sig_len);
/* 1 valid, 0 invalid signature, -1 bad public key */
HIDDEN int sm2_verify(const ECCPUBLICKEYBLOB *blob, const unsigned char e[32],
                      const ECCSIGNATUREBLOB *sig);

#endif
