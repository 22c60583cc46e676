/*
 * softp11sm2 — a PKCS#11 module for tests: SoftHSM2 with ONE vendor-defined SM2 mechanism.
 *
 * No free PKCS#11 module can hold SM2 keys or sign with a vendor's SM2 mechanism (SoftHSM
 * 2.6 has no SM2), so this test double stands in for a Chinese vendor's module. It loads a
 * private copy of SoftHSM2 (see load_inner) and hands out SoftHSM's function list with these
 * entries replaced:
 *
 *  - SM2 keys: C_CreateObject with CKA_KEY_TYPE = CKK_SOFTP11SM2_SM2 (a private key from
 *    CKA_VALUE = d, or a public key from CKA_EC_POINT) stores the key as a SoftHSM data
 *    object (CKA_APPLICATION = APP_NAME, private for private keys); find, attribute reads
 *    and destroy show it as a CKO_PRIVATE_KEY / CKO_PUBLIC_KEY of that key type.
 *  - CKM_SOFTP11SM2_SM2: C_SignInit/C_Sign over a 32-byte e = SM3(Z || M) computed by the
 *    caller (like CKM_ECDSA over a hash); the signature is r || s, 64 bytes.
 *  - A user-PIN retry counter like a real key's (MAX_TRIES, then CKR_PIN_LOCKED; token flags
 *    COUNT_LOW / FINAL_TRY / LOCKED), which SoftHSM lacks, kept in $SOFTP11SM2_DIR/pins.
 *  - C_GetInfo names the double.
 *
 * Environment: SOFTP11SM2_DIR (required) holds softhsm2.conf for the inner SoftHSM and the
 * PIN counters; SOFTP11SM2_INNER overrides the SoftHSM library path.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "sm2.h"

#define EXPORT __attribute__((visibility("default")))

#define CKM_SOFTP11SM2_SM2 (CKM_VENDOR_DEFINED + 0x5301UL)
#define CKK_SOFTP11SM2_SM2 (CKK_VENDOR_DEFINED + 0x5302UL)
#define APP_NAME "softp11sm2 SM2 key"
#define MAGIC "SP11SM2\001"
#define MAGIC_LEN 8
#define MAX_ID 255
#define MAX_TRIES 6
#define DEFAULT_INNER "/usr/lib/softhsm/libsofthsm2.so"

/* DER of the SM2 curve's OID 1.2.156.10197.1.301, as CKA_EC_PARAMS */
static const unsigned char SM2_EC_PARAMS[] = {0x06, 0x08, 0x2a, 0x81, 0x1c,
                                              0xcf, 0x55, 0x01, 0x82, 0x2d};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST *inner;  /* SoftHSM's list */
static CK_FUNCTION_LIST outer;   /* ours: SoftHSM's with some entries replaced */
static char state_dir[4096];

/* ---- per-session state: a merged object search, an SM2 signing operation ---------------- */

struct session_state {
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE *found;
    CK_ULONG n_found, pos;
    int finding;
    int signing;
    unsigned char d[SM2_D_LEN];
    unsigned char point[SM2_POINT_LEN];
    struct session_state *next;
};

static struct session_state *states;

static struct session_state *state_of(CK_SESSION_HANDLE s, int create)
{
    for (struct session_state *st = states; st != NULL; st = st->next)
        if (st->session == s)
            return st;
    if (!create)
        return NULL;
    struct session_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->session = s;
    st->next = states;
    states = st;
    return st;
}

static void state_clear(struct session_state *st)
{
    free(st->found);
    st->found = NULL;
    st->n_found = st->pos = 0;
    st->finding = 0;
    st->signing = 0;
    memset(st->d, 0, sizeof st->d);
}

static void state_drop(CK_SESSION_HANDLE s, int all)
{
    struct session_state **pp = &states;
    while (*pp != NULL) {
        struct session_state *st = *pp;
        if (all || st->session == s) {
            *pp = st->next;
            state_clear(st);
            free(st);
        } else {
            pp = &st->next;
        }
    }
}

/* ---- SM2 key records: the CKA_VALUE of a SoftHSM data object ------------------------------
 * MAGIC (8) | class (1: 0 public, 1 private) | id length (1) | id | point (65) | d (32, private)
 */

struct record {
    int is_private;
    CK_BBOOL token, private_obj;
    unsigned char id[MAX_ID];
    size_t id_len;
    char label[256];
    size_t label_len;
    unsigned char point[SM2_POINT_LEN];
    unsigned char d[SM2_D_LEN];
};

static size_t record_encode(const struct record *r, unsigned char *out)
{
    size_t n = 0;
    memcpy(out, MAGIC, MAGIC_LEN);
    n += MAGIC_LEN;
    out[n++] = (unsigned char)r->is_private;
    out[n++] = (unsigned char)r->id_len;
    memcpy(out + n, r->id, r->id_len);
    n += r->id_len;
    memcpy(out + n, r->point, SM2_POINT_LEN);
    n += SM2_POINT_LEN;
    if (r->is_private) {
        memcpy(out + n, r->d, SM2_D_LEN);
        n += SM2_D_LEN;
    }
    return n;
}

static int record_decode(const unsigned char *in, size_t len, struct record *r)
{
    if (len < MAGIC_LEN + 2 || memcmp(in, MAGIC, MAGIC_LEN) != 0)
        return -1;
    size_t n = MAGIC_LEN;
    r->is_private = in[n++] != 0;
    r->id_len = in[n++];
    size_t want = MAGIC_LEN + 2 + r->id_len + SM2_POINT_LEN + (r->is_private ? SM2_D_LEN : 0);
    if (len != want)
        return -1;
    memcpy(r->id, in + n, r->id_len);
    n += r->id_len;
    memcpy(r->point, in + n, SM2_POINT_LEN);
    n += SM2_POINT_LEN;
    if (r->is_private)
        memcpy(r->d, in + n, SM2_D_LEN);
    return 0;
}

/* 1 and *r filled when obj is one of our SM2 keys, 0 when it is another object, or a CK_RV
 * error (negated) when the object cannot be read. */
static long load_record(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, struct record *r)
{
    CK_OBJECT_CLASS cls = 0;
    char app[sizeof APP_NAME];
    CK_ATTRIBUTE probe[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_RV rv = inner->C_GetAttributeValue(s, obj, probe, 1);
    if (rv != CKR_OK)
        return rv == CKR_ATTRIBUTE_TYPE_INVALID ? 0 : -(long)rv;
    if (cls != CKO_DATA)
        return 0;
    CK_ATTRIBUTE a_app[] = {{CKA_APPLICATION, app, sizeof app}};
    rv = inner->C_GetAttributeValue(s, obj, a_app, 1);
    if (rv != CKR_OK || a_app[0].ulValueLen != strlen(APP_NAME)
        || memcmp(app, APP_NAME, strlen(APP_NAME)) != 0)
        return 0;
    unsigned char value[MAGIC_LEN + 2 + MAX_ID + SM2_POINT_LEN + SM2_D_LEN];
    memset(r, 0, sizeof *r);
    CK_ATTRIBUTE attrs[] = {
        {CKA_VALUE, value, sizeof value},
        {CKA_LABEL, r->label, sizeof r->label - 1},
        {CKA_TOKEN, &r->token, sizeof r->token},
        {CKA_PRIVATE, &r->private_obj, sizeof r->private_obj},
    };
    rv = inner->C_GetAttributeValue(s, obj, attrs, 4);
    if (rv != CKR_OK)
        return -(long)rv;
    r->label_len = attrs[1].ulValueLen;
    if (record_decode(value, attrs[0].ulValueLen, r) != 0)
        return -(long)CKR_GENERAL_ERROR;
    return 1;
}

/* The value of one attribute of an SM2 key; CKR_OK, CKR_ATTRIBUTE_SENSITIVE or
 * CKR_ATTRIBUTE_TYPE_INVALID. *len is set; buf (NULL to ask the size) gets the bytes. */
static CK_RV key_attribute(const struct record *r, CK_ATTRIBUTE_TYPE type, unsigned char *buf,
                           size_t size, size_t *len)
{
    unsigned char tmp[80];
    const void *src = tmp;
    CK_ULONG ul;
    CK_BBOOL b;
    switch (type) {
    case CKA_CLASS:
        ul = r->is_private ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
        src = &ul, *len = sizeof ul;
        break;
    case CKA_KEY_TYPE:
        ul = CKK_SOFTP11SM2_SM2;
        src = &ul, *len = sizeof ul;
        break;
    case CKA_ID:
        src = r->id, *len = r->id_len;
        break;
    case CKA_LABEL:
        src = r->label, *len = r->label_len;
        break;
    case CKA_EC_PARAMS:
        src = SM2_EC_PARAMS, *len = sizeof SM2_EC_PARAMS;
        break;
    case CKA_EC_POINT: /* DER OCTET STRING of the uncompressed point */
        tmp[0] = 0x04, tmp[1] = SM2_POINT_LEN;
        memcpy(tmp + 2, r->point, SM2_POINT_LEN);
        *len = SM2_POINT_LEN + 2;
        break;
    case CKA_TOKEN:
        src = &r->token, *len = sizeof r->token;
        break;
    case CKA_PRIVATE:
        src = &r->private_obj, *len = sizeof r->private_obj;
        break;
    case CKA_SIGN:
    case CKA_SENSITIVE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_NEVER_EXTRACTABLE:
        if (!r->is_private)
            return CKR_ATTRIBUTE_TYPE_INVALID;
        b = CK_TRUE;
        src = &b, *len = sizeof b;
        break;
    case CKA_VERIFY:
        b = r->is_private ? CK_FALSE : CK_TRUE;
        src = &b, *len = sizeof b;
        break;
    case CKA_ENCRYPT:
    case CKA_DECRYPT:
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_DERIVE:
    case CKA_MODIFIABLE:
    case CKA_LOCAL:
    case CKA_EXTRACTABLE:
    case CKA_ALWAYS_AUTHENTICATE:
        b = CK_FALSE;
        src = &b, *len = sizeof b;
        break;
    case CKA_VALUE:
        return r->is_private ? CKR_ATTRIBUTE_SENSITIVE : CKR_ATTRIBUTE_TYPE_INVALID;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    if (buf != NULL) {
        if (size < *len)
            return CKR_BUFFER_TOO_SMALL;
        memcpy(buf, src, *len);
    }
    return CKR_OK;
}

static int key_matches(const struct record *r, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    unsigned char buf[300];
    for (CK_ULONG i = 0; i < count; i++) {
        size_t len = 0;
        if (key_attribute(r, tmpl[i].type, buf, sizeof buf, &len) != CKR_OK
            || len != tmpl[i].ulValueLen || (len && memcmp(buf, tmpl[i].pValue, len) != 0))
            return 0;
    }
    return 1;
}

/* ---- the inner SoftHSM -------------------------------------------------------------------- */

/* A private copy of SoftHSM: dlopen of a path already loaded in the process (python-pkcs11
 * loading SoftHSM itself, or a second copy of this double) would return that same instance,
 * sharing its C_Initialize state and its token directory. A copy in a memfd is a new file,
 * so the dynamic loader maps a new instance with its own globals. */
static CK_RV load_inner(void)
{
    if (inner != NULL)
        return CKR_OK;
    const char *path = getenv("SOFTP11SM2_INNER");
    if (path == NULL || *path == '\0')
        path = DEFAULT_INNER;
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return CKR_GENERAL_ERROR;
    int fd = memfd_create("softp11sm2-softhsm2", MFD_CLOEXEC);
    char buf[65536];
    ssize_t n = 0;
    while (fd >= 0 && (n = read(src, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    close(src);
    if (fd < 0 || n < 0) {
        if (fd >= 0)
            close(fd);
        return CKR_GENERAL_ERROR;
    }
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    void *handle = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    /* The fd stays open: the loader knows the instance by this path, and a later copy given
     * the same fd number would be taken for it. */
    if (handle == NULL) {
        close(fd);
        return CKR_GENERAL_ERROR;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    CK_FUNCTION_LIST *list = NULL;
    if (get == NULL || get(&list) != CKR_OK || list == NULL)
        return CKR_GENERAL_ERROR; /* the handle stays open: nothing to unload safely */
    inner = list;
    return CKR_OK;
}

/* ---- PIN retry counters ------------------------------------------------------------------- */

static int token_serial(CK_SLOT_ID slot, char out[17])
{
    CK_TOKEN_INFO info;
    if (inner->C_GetTokenInfo(slot, &info) != CKR_OK)
        return -1;
    size_t n = sizeof info.serialNumber;
    while (n > 0 && (info.serialNumber[n - 1] == ' ' || info.serialNumber[n - 1] == 0))
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = info.serialNumber[i];
        out[i] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? (char)c : '_';
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

static void pin_path(const char *serial, char *out, size_t size)
{
    snprintf(out, size, "%s/pins/%s", state_dir, serial);
}

static int tries_left(const char *serial)
{
    char path[4200];
    pin_path(serial, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return MAX_TRIES;
    int n = MAX_TRIES;
    if (fscanf(f, "%d", &n) != 1 || n < 0 || n > MAX_TRIES)
        n = 0; /* a damaged counter locks, as a real key would rather than reset */
    fclose(f);
    return n;
}

static void set_tries_left(const char *serial, int n)
{
    char dir[4200], path[4200], tmp[4300];
    snprintf(dir, sizeof dir, "%s/pins", state_dir);
    mkdir(dir, 0700);
    pin_path(serial, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%d\n", n);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static int session_serial(CK_SESSION_HANDLE s, char out[17])
{
    CK_SESSION_INFO info;
    if (inner->C_GetSessionInfo(s, &info) != CKR_OK)
        return -1;
    return token_serial(info.slotID, out);
}

/* After a PIN check by SoftHSM: count a wrong PIN, reset on a right one. */
static CK_RV counted(const char *serial, CK_RV rv)
{
    if (rv == CKR_PIN_INCORRECT) {
        int left = tries_left(serial) - 1;
        set_tries_left(serial, left < 0 ? 0 : left);
    } else if (rv == CKR_OK && tries_left(serial) != MAX_TRIES) {
        set_tries_left(serial, MAX_TRIES);
    }
    return rv;
}

/* ---- the replaced entries ----------------------------------------------------------------- */

static CK_RV w_Initialize(void *args)
{
    const char *dir = getenv("SOFTP11SM2_DIR");
    if (dir == NULL || *dir == '\0' || strlen(dir) >= sizeof state_dir - 64)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    snprintf(state_dir, sizeof state_dir, "%s", dir);
    char conf[4200];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", state_dir);
    /* SoftHSM reads SOFTHSM2_CONF in C_Initialize: point it at ours for that call only */
    const char *old = getenv("SOFTHSM2_CONF");
    char *saved = old ? strdup(old) : NULL;
    setenv("SOFTHSM2_CONF", conf, 1);
    CK_RV rv = inner->C_Initialize(args);
    if (saved != NULL) {
        setenv("SOFTHSM2_CONF", saved, 1);
        free(saved);
    } else {
        unsetenv("SOFTHSM2_CONF");
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV w_Finalize(void *reserved)
{
    pthread_mutex_lock(&lock);
    state_drop(0, 1);
    pthread_mutex_unlock(&lock);
    return inner->C_Finalize(reserved);
}

static void pad(CK_UTF8CHAR *field, size_t size, const char *text)
{
    size_t n = strlen(text);
    memset(field, ' ', size);
    memcpy(field, text, n < size ? n : size);
}

static CK_RV w_GetInfo(CK_INFO *info)
{
    CK_RV rv = inner->C_GetInfo(info);
    if (rv == CKR_OK) {
        pad(info->manufacturerID, sizeof info->manufacturerID, "certhelper softp11sm2 (test)");
        pad(info->libraryDescription, sizeof info->libraryDescription,
            "SoftHSM2 + SM2 test double");
    }
    return rv;
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST **list);

static CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CK_RV rv = inner->C_GetTokenInfo(slot, info);
    char serial[17];
    if (rv != CKR_OK || !(info->flags & CKF_TOKEN_INITIALIZED) || token_serial(slot, serial) != 0)
        return rv;
    int left = tries_left(serial);
    info->flags &= ~(CK_FLAGS)(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);
    if (left == 0)
        info->flags |= CKF_USER_PIN_LOCKED;
    else if (left == 1)
        info->flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
    else if (left < MAX_TRIES)
        info->flags |= CKF_USER_PIN_COUNT_LOW;
    return rv;
}

static CK_RV w_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    CK_ULONG n = 0;
    CK_RV rv = inner->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK)
        return rv;
    if (list == NULL) {
        *count = n + 1;
        return CKR_OK;
    }
    if (*count < n + 1) {
        *count = n + 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    rv = inner->C_GetMechanismList(slot, list, &n);
    if (rv != CKR_OK)
        return rv;
    list[n] = CKM_SOFTP11SM2_SM2;
    *count = n + 1;
    return CKR_OK;
}

static CK_RV w_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    if (type != CKM_SOFTP11SM2_SM2)
        return inner->C_GetMechanismInfo(slot, type, info);
    CK_SLOT_INFO slot_info;
    CK_RV rv = inner->C_GetSlotInfo(slot, &slot_info);
    if (rv != CKR_OK)
        return rv;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    info->ulMinKeySize = info->ulMaxKeySize = 256;
    info->flags = CKF_SIGN;
    return CKR_OK;
}

static CK_RV w_InitPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR *pin, CK_ULONG len)
{
    char serial[17];
    CK_RV rv = inner->C_InitPIN(s, pin, len);
    if (rv == CKR_OK && session_serial(s, serial) == 0)
        set_tries_left(serial, MAX_TRIES);
    return rv;
}

static CK_RV w_SetPIN(CK_SESSION_HANDLE s, CK_UTF8CHAR *old, CK_ULONG old_len, CK_UTF8CHAR *new_pin,
                      CK_ULONG new_len)
{
    char serial[17];
    CK_SESSION_INFO info;
    CK_RV rv = inner->C_GetSessionInfo(s, &info);
    if (rv != CKR_OK)
        return rv;
    int user = info.state != CKS_RW_SO_FUNCTIONS; /* else the SO changes their own PIN */
    if (!user || token_serial(info.slotID, serial) != 0)
        return inner->C_SetPIN(s, old, old_len, new_pin, new_len);
    if (tries_left(serial) == 0)
        return CKR_PIN_LOCKED;
    return counted(serial, inner->C_SetPIN(s, old, old_len, new_pin, new_len));
}

static CK_RV w_Login(CK_SESSION_HANDLE s, CK_USER_TYPE type, CK_UTF8CHAR *pin, CK_ULONG len)
{
    char serial[17];
    if (type != CKU_USER || session_serial(s, serial) != 0)
        return inner->C_Login(s, type, pin, len);
    if (tries_left(serial) == 0)
        return CKR_PIN_LOCKED;
    return counted(serial, inner->C_Login(s, type, pin, len));
}

static CK_RV w_CloseSession(CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&lock);
    state_drop(s, 0);
    pthread_mutex_unlock(&lock);
    return inner->C_CloseSession(s);
}

static CK_RV w_CloseAllSessions(CK_SLOT_ID slot)
{
    /* session handles do not say their slot without a call: drop every stale state */
    CK_RV rv = inner->C_CloseAllSessions(slot);
    pthread_mutex_lock(&lock);
    struct session_state **pp = &states;
    while (*pp != NULL) {
        CK_SESSION_INFO info;
        struct session_state *st = *pp;
        if (inner->C_GetSessionInfo(st->session, &info) != CKR_OK) {
            *pp = st->next;
            state_clear(st);
            free(st);
        } else {
            pp = &st->next;
        }
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

static const CK_ATTRIBUTE *find_attr(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == type)
            return &t[i];
    return NULL;
}

static int attr_ulong(const CK_ATTRIBUTE *a, CK_ULONG *out)
{
    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG))
        return -1;
    memcpy(out, a->pValue, sizeof *out);
    return 0;
}

static CK_RV w_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE *out)
{
    CK_ULONG key_type = 0, cls = 0;
    if (attr_ulong(find_attr(tmpl, n, CKA_KEY_TYPE), &key_type) != 0
        || key_type != CKK_SOFTP11SM2_SM2)
        return inner->C_CreateObject(s, tmpl, n, out);
    if (attr_ulong(find_attr(tmpl, n, CKA_CLASS), &cls) != 0
        || (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY))
        return CKR_TEMPLATE_INCONSISTENT;
    struct record r;
    memset(&r, 0, sizeof r);
    r.is_private = cls == CKO_PRIVATE_KEY;
    const CK_ATTRIBUTE *id = find_attr(tmpl, n, CKA_ID);
    const CK_ATTRIBUTE *label = find_attr(tmpl, n, CKA_LABEL);
    const CK_ATTRIBUTE *token = find_attr(tmpl, n, CKA_TOKEN);
    const CK_ATTRIBUTE *priv = find_attr(tmpl, n, CKA_PRIVATE);
    if (id != NULL) {
        if (id->ulValueLen > MAX_ID)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        memcpy(r.id, id->pValue, id->ulValueLen);
        r.id_len = id->ulValueLen;
    }
    if (r.is_private) {
        const CK_ATTRIBUTE *d = find_attr(tmpl, n, CKA_VALUE);
        if (d == NULL)
            return CKR_TEMPLATE_INCOMPLETE;
        if (d->ulValueLen != SM2_D_LEN)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        memcpy(r.d, d->pValue, SM2_D_LEN);
        if (sm2_point_of(r.d, r.point) != 0)
            return CKR_ATTRIBUTE_VALUE_INVALID;
    } else {
        const CK_ATTRIBUTE *p = find_attr(tmpl, n, CKA_EC_POINT);
        const unsigned char *v = p ? p->pValue : NULL;
        if (p == NULL)
            return CKR_TEMPLATE_INCOMPLETE;
        if (p->ulValueLen == SM2_POINT_LEN + 2 && v[0] == 0x04 && v[1] == SM2_POINT_LEN)
            v += 2; /* DER OCTET STRING around the point */
        else if (p->ulValueLen != SM2_POINT_LEN)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (v[0] != 0x04)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        memcpy(r.point, v, SM2_POINT_LEN);
    }
    unsigned char value[MAGIC_LEN + 2 + MAX_ID + SM2_POINT_LEN + SM2_D_LEN];
    size_t value_len = record_encode(&r, value);
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_BBOOL is_token = token && token->ulValueLen == 1 ? *(CK_BBOOL *)token->pValue : CK_FALSE;
    CK_BBOOL is_priv = r.is_private ? CK_TRUE
                                    : (priv && priv->ulValueLen == 1 ? *(CK_BBOOL *)priv->pValue
                                                                      : CK_FALSE);
    CK_ATTRIBUTE obj[] = {
        {CKA_CLASS, &data, sizeof data},
        {CKA_TOKEN, &is_token, sizeof is_token},
        {CKA_PRIVATE, &is_priv, sizeof is_priv},
        {CKA_APPLICATION, (void *)APP_NAME, strlen(APP_NAME)},
        {CKA_VALUE, value, value_len},
        {CKA_LABEL, label ? label->pValue : (void *)"", label ? label->ulValueLen : 0},
    };
    CK_RV rv = inner->C_CreateObject(s, obj, 6, out);
    memset(value, 0, sizeof value);
    memset(r.d, 0, sizeof r.d);
    return rv;
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl,
                                 CK_ULONG n)
{
    struct record r;
    long ours = load_record(s, obj, &r);
    if (ours == 0)
        return inner->C_GetAttributeValue(s, obj, tmpl, n);
    if (ours < 0)
        return (CK_RV)(-ours);
    CK_RV result = CKR_OK;
    for (CK_ULONG i = 0; i < n; i++) {
        size_t len = 0;
        CK_RV rv = key_attribute(&r, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen, &len);
        if (rv == CKR_OK) {
            tmpl[i].ulValueLen = len;
        } else {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            if (result == CKR_OK)
                result = rv;
        }
    }
    memset(r.d, 0, sizeof r.d);
    return result;
}

static CK_RV w_SetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl,
                                 CK_ULONG n)
{
    struct record r;
    long ours = load_record(s, obj, &r);
    memset(r.d, 0, sizeof r.d);
    if (ours == 0)
        return inner->C_SetAttributeValue(s, obj, tmpl, n);
    return ours < 0 ? (CK_RV)(-ours) : CKR_ACTION_PROHIBITED;
}

/* Collect every handle an inner search with this template finds. */
static CK_RV inner_find(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE **out, CK_ULONG *count)
{
    CK_RV rv = inner->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG cap = 0, got = 0;
    CK_OBJECT_HANDLE *all = NULL;
    for (;;) {
        if (cap - got < 64) {
            CK_OBJECT_HANDLE *more = realloc(all, (cap + 256) * sizeof *all);
            if (more == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            all = more;
            cap += 256;
        }
        CK_ULONG k = 0;
        rv = inner->C_FindObjects(s, all + got, 64, &k);
        if (rv != CKR_OK || k == 0)
            break;
        got += k;
    }
    inner->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        free(all);
        return rv;
    }
    *out = all;
    *count = got;
    return CKR_OK;
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_OBJECT_HANDLE *plain = NULL, *keys = NULL;
    CK_ULONG n_plain = 0, n_keys = 0, kt = 0;
    struct record r;
    pthread_mutex_lock(&lock);
    struct session_state *st = state_of(s, 1);
    CK_RV rv = st == NULL ? CKR_HOST_MEMORY : st->finding ? CKR_OPERATION_ACTIVE : CKR_OK;
    if (rv != CKR_OK)
        goto done;
    /* SoftHSM's own objects, without our data objects */
    int only_ours = attr_ulong(find_attr(tmpl, n, CKA_KEY_TYPE), &kt) == 0 && kt == CKK_SOFTP11SM2_SM2;
    if (!only_ours && (rv = inner_find(s, tmpl, n, &plain, &n_plain)) != CKR_OK)
        goto done;
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE ours[] = {{CKA_CLASS, &data, sizeof data},
                           {CKA_APPLICATION, (void *)APP_NAME, strlen(APP_NAME)}};
    if ((rv = inner_find(s, ours, 2, &keys, &n_keys)) != CKR_OK)
        goto done;
    st->found = calloc(n_plain + n_keys + 1, sizeof *st->found);
    if (st->found == NULL) {
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    st->n_found = st->pos = 0;
    for (CK_ULONG i = 0; i < n_plain; i++) {
        int mine = 0;
        for (CK_ULONG j = 0; j < n_keys && !mine; j++)
            mine = plain[i] == keys[j];
        if (!mine)
            st->found[st->n_found++] = plain[i];
    }
    for (CK_ULONG j = 0; j < n_keys; j++)
        if (load_record(s, keys[j], &r) == 1 && key_matches(&r, tmpl, n))
            st->found[st->n_found++] = keys[j];
    memset(r.d, 0, sizeof r.d);
    st->finding = 1;
done:
    free(plain);
    free(keys);
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV w_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out, CK_ULONG max,
                           CK_ULONG *count)
{
    pthread_mutex_lock(&lock);
    struct session_state *st = state_of(s, 0);
    CK_RV rv = CKR_OK;
    if (st == NULL || !st->finding) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
    } else if (out == NULL || count == NULL) {
        rv = CKR_ARGUMENTS_BAD;
    } else {
        CK_ULONG k = 0;
        while (k < max && st->pos < st->n_found)
            out[k++] = st->found[st->pos++];
        *count = k;
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV w_FindObjectsFinal(CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&lock);
    struct session_state *st = state_of(s, 0);
    CK_RV rv = st != NULL && st->finding ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
    if (st != NULL) {
        free(st->found);
        st->found = NULL;
        st->n_found = st->pos = 0;
        st->finding = 0;
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV w_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key)
{
    if (mech == NULL || mech->mechanism != CKM_SOFTP11SM2_SM2)
        return inner->C_SignInit(s, mech, key);
    if (mech->pParameter != NULL || mech->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_SESSION_INFO info;
    CK_RV rv = inner->C_GetSessionInfo(s, &info);
    if (rv != CKR_OK)
        return rv;
    if (info.state != CKS_RO_USER_FUNCTIONS && info.state != CKS_RW_USER_FUNCTIONS)
        return CKR_USER_NOT_LOGGED_IN;
    struct record r;
    long ours = load_record(s, key, &r);
    if (ours < 0)
        return (CK_RV)(-ours);
    if (ours == 0 || !r.is_private) {
        memset(r.d, 0, sizeof r.d);
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    pthread_mutex_lock(&lock);
    struct session_state *st = state_of(s, 1);
    rv = st == NULL ? CKR_HOST_MEMORY : st->signing ? CKR_OPERATION_ACTIVE : CKR_OK;
    if (rv == CKR_OK) {
        memcpy(st->d, r.d, SM2_D_LEN);
        memcpy(st->point, r.point, SM2_POINT_LEN);
        st->signing = 1;
    }
    pthread_mutex_unlock(&lock);
    memset(r.d, 0, sizeof r.d);
    return rv;
}

static CK_RV w_Sign(CK_SESSION_HANDLE s, CK_BYTE *data, CK_ULONG len, CK_BYTE *sig,
                    CK_ULONG *sig_len)
{
    pthread_mutex_lock(&lock);
    struct session_state *st = state_of(s, 0);
    if (st == NULL || !st->signing) {
        pthread_mutex_unlock(&lock);
        return inner->C_Sign(s, data, len, sig, sig_len);
    }
    CK_RV rv = CKR_OK;
    if (sig_len == NULL || data == NULL) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (len != 32) {
        rv = CKR_DATA_LEN_RANGE; /* the raw mechanism signs e = SM3(Z || M) only */
    } else if (sig == NULL) {
        *sig_len = SM2_SIG_LEN;
        pthread_mutex_unlock(&lock);
        return CKR_OK; /* a size query keeps the operation */
    } else if (*sig_len < SM2_SIG_LEN) {
        *sig_len = SM2_SIG_LEN;
        pthread_mutex_unlock(&lock);
        return CKR_BUFFER_TOO_SMALL;
    } else if (sm2_sign_e(st->d, st->point, data, sig) != 0) {
        rv = CKR_FUNCTION_FAILED;
    } else {
        *sig_len = SM2_SIG_LEN;
    }
    st->signing = 0;
    memset(st->d, 0, sizeof st->d);
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST **list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    CK_RV rv = load_inner();
    if (rv == CKR_OK && outer.C_Initialize == NULL) {
        outer = *inner;
        outer.C_Initialize = w_Initialize;
        outer.C_Finalize = w_Finalize;
        outer.C_GetInfo = w_GetInfo;
        outer.C_GetFunctionList = w_GetFunctionList;
        outer.C_GetTokenInfo = w_GetTokenInfo;
        outer.C_GetMechanismList = w_GetMechanismList;
        outer.C_GetMechanismInfo = w_GetMechanismInfo;
        outer.C_InitPIN = w_InitPIN;
        outer.C_SetPIN = w_SetPIN;
        outer.C_Login = w_Login;
        outer.C_CloseSession = w_CloseSession;
        outer.C_CloseAllSessions = w_CloseAllSessions;
        outer.C_CreateObject = w_CreateObject;
        outer.C_GetAttributeValue = w_GetAttributeValue;
        outer.C_SetAttributeValue = w_SetAttributeValue;
        outer.C_FindObjectsInit = w_FindObjectsInit;
        outer.C_FindObjects = w_FindObjects;
        outer.C_FindObjectsFinal = w_FindObjectsFinal;
        outer.C_SignInit = w_SignInit;
        outer.C_Sign = w_Sign;
    }
    pthread_mutex_unlock(&lock);
    if (rv == CKR_OK)
        *list = &outer;
    return rv;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    return w_GetFunctionList(list);
}
