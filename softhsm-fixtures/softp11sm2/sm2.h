/* SM2 for softp11sm2: the key arithmetic, over softskf's crypto.c (OpenSSL 3 libcrypto). */
#ifndef SOFTP11SM2_SM2_H
#define SOFTP11SM2_SM2_H

#define SM2_D_LEN 32
#define SM2_POINT_LEN 65 /* 04 || x || y */
#define SM2_SIG_LEN 64   /* r || s */

/* The public point of the private scalar d; 0, or -1 when d is not in 1..n-2. */
__attribute__((visibility("hidden"))) int sm2_point_of(const unsigned char d[SM2_D_LEN],
                                                       unsigned char point[SM2_POINT_LEN]);

/* Signs the 32 bytes e (= SM3(Z || M), computed by the caller) with d; r || s. 0 or -1. */
__attribute__((visibility("hidden"))) int sm2_sign_e(const unsigned char d[SM2_D_LEN],
                                                     const unsigned char point[SM2_POINT_LEN],
                                                     const unsigned char e[32],
                                                     unsigned char sig[SM2_SIG_LEN]);

#endif
