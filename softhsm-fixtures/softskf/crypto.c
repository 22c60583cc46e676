/*
 * Cryptography of libsoftskf over OpenSSL 3 libcrypto: PIN hashing (PBKDF2), key generation
 * and storage (PKCS#8 PEM), public key blobs, SM2 and RSA signatures.
 *
 * SM2 signing follows SKF_ECCSignData's contract: the caller passes e = SM3(Z || M), already
 * "SM2-preprocessed" (GM/T 0009); EVP_PKEY_sign on an SM2 key signs the bytes it is given as
 * that e, the same as `openssl pkeyutl -sign` without -rawin.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "internal.h"

int pin_hash(const char *pin, const unsigned char *salt, unsigned long iterations,
             unsigned char out[HASH_LEN])
{
    if (iterations == 0 || iterations > 10000000UL)
        return -1;
    return PKCS5_PBKDF2_HMAC(pin, (int)strlen(pin), salt, SALT_LEN, (int)iterations,
                             EVP_sha256(), HASH_LEN, out) == 1
               ? 0
               : -1;
}

int random_bytes(unsigned char *out, size_t len)
{
    while (len > 0) {
        int chunk = len > 4096 ? 4096 : (int)len;
        if (RAND_bytes(out, chunk) != 1)
            return -1;
        out += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

EVP_PKEY *key_generate(enum key_kind kind, unsigned bits)
{
    if (kind == KEY_SM2)
        return EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
    if (kind == KEY_RSA)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    return NULL;
}

static int group_is_sm2(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len)
        != 1)
        return 0;
    return strcmp(group, "SM2") == 0;
}

enum key_kind key_kind_of(const EVP_PKEY *key)
{
    if (key == NULL)
        return KEY_NONE;
    if (EVP_PKEY_is_a(key, "SM2"))
        return group_is_sm2(key) ? KEY_SM2 : KEY_NONE;
    if (EVP_PKEY_is_a(key, "RSA"))
        return KEY_RSA;
    return KEY_NONE;
}

int key_rsa_bits(const EVP_PKEY *key)
{
    return EVP_PKEY_get_bits(key);
}

/* An EC key on the SM2 curve that OpenSSL typed "EC" (e.g. from a traditional
 * "EC PRIVATE KEY" PEM): rebuild it as an "SM2" key so that signing is SM2, not ECDSA. */
static EVP_PKEY *ec_to_sm2(EVP_PKEY *ec)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *sm2 = NULL;
    if (EVP_PKEY_todata(ec, EVP_PKEY_KEYPAIR, &params) != 1)
        goto done;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &sm2, EVP_PKEY_KEYPAIR, params) != 1)
        sm2 = NULL;
done:
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return sm2;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* never prompt: an encrypted key is refused */
}

EVP_PKEY *key_from_pem(const unsigned char *pem, size_t len)
{
    if (len == 0 || len > MAX_PEM_LEN)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (key == NULL)
        return NULL;
    if (EVP_PKEY_is_a(key, "EC") && group_is_sm2(key)) {
        EVP_PKEY *sm2 = ec_to_sm2(key);
        EVP_PKEY_free(key);
        key = sm2;
    }
    enum key_kind kind = key_kind_of(key);
    if (kind == KEY_RSA) {
        int bits = key_rsa_bits(key);
        if (bits != 1024 && bits != 2048)
            kind = KEY_NONE;
    }
    if (kind == KEY_NONE) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int key_to_pem(const EVP_PKEY *key, unsigned char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return -1;
    int rc = -1;
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long size = BIO_get_mem_data(bio, &data);
        if (size > 0 && (*pem = OPENSSL_malloc((size_t)size)) != NULL) {
            memcpy(*pem, data, (size_t)size);
            *len = (size_t)size;
            rc = 0;
        }
    }
    BIO_free(bio);
    return rc;
}

/* a non-negative BIGNUM, big-endian, right-aligned in out[size] */
static int bn_param(const EVP_PKEY *key, const char *name, unsigned char *out, size_t size)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
        return -1;
    int rc = BN_num_bytes(bn) <= (int)size && BN_bn2binpad(bn, out, (int)size) == (int)size ? 0
                                                                                            : -1;
    BN_free(bn);
    return rc;
}

int key_ecc_blob(const EVP_PKEY *key, ECCPUBLICKEYBLOB *blob)
{
    memset(blob, 0, sizeof *blob);
    blob->BitLen = 256;
    /* 256-bit coordinates sit in the last 32 bytes of the 64-byte fields */
    if (bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, blob->XCoordinate + 32, 32) != 0
        || bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, blob->YCoordinate + 32, 32) != 0)
        return -1;
    return 0;
}

int key_rsa_blob(const EVP_PKEY *key, RSAPUBLICKEYBLOB *blob)
{
    memset(blob, 0, sizeof *blob);
    int bits = key_rsa_bits(key);
    if (bits <= 0 || bits > 8 * MAX_RSA_MODULUS_LEN)
        return -1;
    blob->AlgID = SGD_RSA;
    blob->BitLen = (ULONG)bits;
    /* big-endian, right-aligned: a 2048-bit modulus fills the field */
    if (bn_param(key, OSSL_PKEY_PARAM_RSA_N, blob->Modulus, MAX_RSA_MODULUS_LEN) != 0
        || bn_param(key, OSSL_PKEY_PARAM_RSA_E, blob->PublicExponent, MAX_RSA_EXPONENT_LEN) != 0)
        return -1;
    return 0;
}

int key_sm2_sign(EVP_PKEY *key, const unsigned char e[32], ECCSIGNATUREBLOB *sig)
{
    unsigned char der[128];
    size_t der_len = sizeof der;
    int rc = -1;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1
        || EVP_PKEY_sign(ctx, der, &der_len, e, 32) != 1)
        goto done;
    const unsigned char *p = der;
    ECDSA_SIG *parsed = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (parsed == NULL)
        goto done;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(parsed, &r, &s);
    memset(sig, 0, sizeof *sig);
    if (BN_num_bytes(r) <= 32 && BN_num_bytes(s) <= 32 && BN_bn2binpad(r, sig->r + 32, 32) == 32
        && BN_bn2binpad(s, sig->s + 32, 32) == 32)
        rc = 0;
    ECDSA_SIG_free(parsed);
done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int key_rsa_sign(EVP_PKEY *key, const unsigned char *data, size_t len, unsigned char *sig,
                 size_t *sig_len)
{
    int rc = -1;
    /* no signature digest set: PKCS#1 v1.5 type 1 padding over the bytes as given */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1
        && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
        && EVP_PKEY_sign(ctx, sig, sig_len, data, len) == 1)
        rc = 0;
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int all_zero(const unsigned char *p, size_t len)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

static EVP_PKEY *sm2_public_key(const ECCPUBLICKEYBLOB *blob)
{
    if (blob->BitLen != 256 || !all_zero(blob->XCoordinate, 32) || !all_zero(blob->YCoordinate, 32))
        return NULL;
    unsigned char point[65];
    point[0] = 0x04;
    memcpy(point + 1, blob->XCoordinate + 32, 32);
    memcpy(point + 33, blob->YCoordinate + 32, 32);
    EVP_PKEY *key = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) != 1
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto done;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return key;
}

int sm2_verify(const ECCPUBLICKEYBLOB *blob, const unsigned char e[32],
               const ECCSIGNATUREBLOB *sig)
{
    EVP_PKEY *key = sm2_public_key(blob);
    if (key == NULL)
        return -1;
    /* the point must lie on the curve: fromdata does not always check it */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int on_curve = check != NULL && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!on_curve) {
        EVP_PKEY_free(key);
        return -1;
    }
    int result = 0;
    if (!all_zero(sig->r, 32) || !all_zero(sig->s, 32)) {
        EVP_PKEY_free(key);
        return 0;
    }
    ECDSA_SIG *parsed = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig->r + 32, 32, NULL), *s = BN_bin2bn(sig->s + 32, 32, NULL);
    unsigned char *der = NULL;
    int der_len = -1;
    if (parsed != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(parsed, r, s) == 1) {
        r = s = NULL; /* owned by parsed now */
        der_len = i2d_ECDSA_SIG(parsed, &der);
    }
    if (der_len > 0) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1)
            result = EVP_PKEY_verify(ctx, der, (size_t)der_len, e, 32) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(parsed);
    EVP_PKEY_free(key);
    return result;
}
