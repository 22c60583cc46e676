/*
 * SM2 key arithmetic of softp11sm2, over OpenSSL 3. Signing reuses libsoftskf's
 * key_sm2_sign (../softskf/crypto.c): EVP_PKEY_sign on an SM2 key signs the bytes it is
 * given as e, the contract of SKF_ECCSignData and of a vendor's raw SM2 mechanism.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "../softskf/internal.h"
#include "sm2.h"

int sm2_point_of(const unsigned char d[SM2_D_LEN], unsigned char point[SM2_POINT_LEN])
{
    int rc = -1;
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_sm2);
    BIGNUM *k = BN_bin2bn(d, SM2_D_LEN, NULL);
    BIGNUM *limit = BN_new();
    EC_POINT *p = NULL;
    if (group == NULL || k == NULL || limit == NULL)
        goto done;
    /* SM2 private keys lie in 1..n-2 (GM/T 0003.1, 6.1) */
    if (BN_copy(limit, EC_GROUP_get0_order(group)) == NULL || !BN_sub_word(limit, 1)
        || BN_is_zero(k) || BN_cmp(k, limit) >= 0)
        goto done;
    p = EC_POINT_new(group);
    if (p == NULL || EC_POINT_mul(group, p, k, NULL, NULL, NULL) != 1)
        goto done;
    if (EC_POINT_point2oct(group, p, POINT_CONVERSION_UNCOMPRESSED, point, SM2_POINT_LEN, NULL)
        == SM2_POINT_LEN)
        rc = 0;
done:
    EC_POINT_free(p);
    BN_free(limit);
    BN_clear_free(k);
    EC_GROUP_free(group);
    return rc;
}

static EVP_PKEY *sm2_key(const unsigned char d[SM2_D_LEN], const unsigned char point[SM2_POINT_LEN])
{
    EVP_PKEY *key = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *k = BN_bin2bn(d, SM2_D_LEN, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (k == NULL || bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, k) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, SM2_POINT_LEN)
               != 1)
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
        key = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(k);
    return key;
}

int sm2_sign_e(const unsigned char d[SM2_D_LEN], const unsigned char point[SM2_POINT_LEN],
               const unsigned char e[32], unsigned char sig[SM2_SIG_LEN])
{
    ECCSIGNATUREBLOB blob;
    EVP_PKEY *key = sm2_key(d, point);
    int rc = -1;
    if (key != NULL && key_sm2_sign(key, e, &blob) == 0) {
        /* 256-bit values sit right-aligned in the blob's 64-byte fields */
        memcpy(sig, blob.r + 32, 32);
        memcpy(sig + 32, blob.s + 32, 32);
        rc = 0;
    }
    EVP_PKEY_free(key);
    return rc;
}
