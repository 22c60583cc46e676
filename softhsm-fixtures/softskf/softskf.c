/*
 * libsoftskf: a soft GM/T 0016-2012 (SKF) USB key for tests and demos.
 *
 * Devices are subdirectories of $SOFTSKF_DIR; see softhsm-fixtures/README.md for the
 * directory format. Adding or removing a device directory is insertion or removal.
 *
 * Design:
 *   - handles are small integers (an index into a table plus a sequence number), never
 *     pointers, so a stale or made-up handle is refused with SAR_INVALIDHANDLEERR;
 *   - one process-wide mutex serialises the API (a real key is serial too), except
 *     SKF_WaitForDevEvent, which waits on its own lock and condition;
 *   - a handle remembers the inode of its device directory: once that directory is gone or
 *     replaced, every call on the handle returns SAR_DEVICE_REMOVED;
 *   - PIN records hold a PBKDF2 hash and retry counters; every read-modify-write happens
 *     under flock(2) on the application's lock file and is written via temp file + rename,
 *     so that processes sharing a device count wrong PINs consistently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

#define API __attribute__((visibility("default")))

#define DEVICE_FILE "device.conf"
#define APPS_DIR "apps"
#define APP_FILE "app.conf"
#define LOCK_FILE ".lock"
#define CONTAINERS_DIR "containers"
#define CONTAINER_FILE "container.conf"
#define POLL_MS 100

static const char *const KEY_FILE[2] = {"enc.key.pem", "sign.key.pem"};
static const char *const CERT_FILE[2] = {"enc.cer", "sign.cer"};

/* ---- handles ------------------------------------------------------------------------------ */

enum htype { H_FREE = 0, H_DEV, H_APP, H_CON };

struct dev {
    char name[MAX_NAME + 1];
    char path[PATH_MAX];
    dev_t st_dev;
    ino_t st_ino;
    int removed; /* seen gone once: stays gone, as a re-plugged key needs a new connection */
};

struct app {
    char name[MAX_APP_NAME + 1];
    char path[PATH_MAX];
    int user_logged_in;
    int admin_logged_in;
};

struct cached_key {
    EVP_PKEY *key;
    dev_t st_dev;
    ino_t st_ino;
    off_t size;
    struct timespec mtime;
};

struct con {
    char name[MAX_NAME + 1];
    char path[PATH_MAX];
    struct cached_key keys[2]; /* [0] encryption, [1] signing */
};

struct slot {
    uint32_t id;
    enum htype type;
    uint32_t parent;
    void *obj;
};

#define MAX_HANDLES 1024 /* a power of two: the low bits of an id are its index */
static struct slot g_slots[MAX_HANDLES];
static uint32_t g_seq;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void obj_free(struct slot *slot)
{
    if (slot->type == H_CON) {
        struct con *con = slot->obj;
        for (int i = 0; i < 2; i++)
            EVP_PKEY_free(con->keys[i].key);
    }
    if (slot->obj != NULL)
        OPENSSL_cleanse(slot->obj, slot->type == H_DEV   ? sizeof(struct dev)
                                   : slot->type == H_APP ? sizeof(struct app)
                                                         : sizeof(struct con));
    free(slot->obj);
    memset(slot, 0, sizeof *slot);
}

static uint32_t handle_new(enum htype type, uint32_t parent, void *obj)
{
    for (uint32_t i = 0; i < MAX_HANDLES; i++) {
        if (g_slots[i].type != H_FREE)
            continue;
        g_seq = (g_seq + 1) & 0x1FFFFF;
        if (g_seq == 0)
            g_seq = 1;
        g_slots[i].id = g_seq << 10 | i;
        g_slots[i].type = type;
        g_slots[i].parent = parent;
        g_slots[i].obj = obj;
        return g_slots[i].id;
    }
    return 0;
}

static struct slot *handle_get(HANDLE handle, enum htype type)
{
    uintptr_t value = (uintptr_t)handle;
    if (value == 0 || value > UINT32_MAX)
        return NULL;
    struct slot *slot = &g_slots[value & (MAX_HANDLES - 1)];
    if (slot->id != (uint32_t)value || slot->type != type)
        return NULL;
    return slot;
}

static void handle_close(uint32_t id)
{
    for (uint32_t i = 0; i < MAX_HANDLES; i++)
        if (g_slots[i].type != H_FREE && g_slots[i].parent == id)
            handle_close(g_slots[i].id);
    struct slot *slot = &g_slots[id & (MAX_HANDLES - 1)];
    if (slot->id == id)
        obj_free(slot);
}

__attribute__((destructor)) static void softskf_unload(void)
{
    for (uint32_t i = 0; i < MAX_HANDLES; i++)
        if (g_slots[i].type != H_FREE)
            obj_free(&g_slots[i]);
}

/* ---- devices ------------------------------------------------------------------------------ */

static int root_dir(char *out, size_t size)
{
    const char *dir = getenv(SOFTSKF_DIR_ENV);
    if (dir == NULL || dir[0] == 0)
        return -1;
    int n = snprintf(out, size, "%s", dir);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int list_devices(struct names *names, char *root, size_t root_size)
{
    names->count = 0;
    if (root_dir(root, root_size) != 0) {
        root[0] = 0;
        return 0; /* no directory configured: no device */
    }
    return list_dirs_with(root, DEVICE_FILE, names);
}

static int dev_alive(struct dev *dev)
{
    struct stat st;
    char conf[PATH_MAX];
    if (dev->removed)
        return 0;
    if (stat(dev->path, &st) != 0 || st.st_ino != dev->st_ino || st.st_dev != dev->st_dev
        || path_join(conf, sizeof conf, dev->path, DEVICE_FILE) != 0 || !is_regular_file(conf)) {
        dev->removed = 1;
        return 0;
    }
    return 1;
}

/* after a failed file operation: was it the device that went away? */
static ULONG io_error(struct dev *dev, ULONG otherwise)
{
    return dev_alive(dev) ? otherwise : SAR_DEVICE_REMOVED;
}

static ULONG get_dev(DEVHANDLE handle, struct slot **out)
{
    struct slot *slot = handle_get(handle, H_DEV);
    if (slot == NULL)
        return SAR_INVALIDHANDLEERR;
    if (!dev_alive(slot->obj))
        return SAR_DEVICE_REMOVED;
    *out = slot;
    return SAR_OK;
}

static ULONG get_app(HAPPLICATION handle, struct slot **app, struct dev **dev)
{
    struct slot *slot = handle_get(handle, H_APP), *dev_slot;
    if (slot == NULL)
        return SAR_INVALIDHANDLEERR;
    ULONG rv = get_dev((HANDLE)(uintptr_t)slot->parent, &dev_slot);
    if (rv != SAR_OK)
        return rv;
    char conf[PATH_MAX];
    struct app *obj = slot->obj;
    if (path_join(conf, sizeof conf, obj->path, APP_FILE) != 0 || !is_regular_file(conf))
        return io_error(dev_slot->obj, SAR_INVALIDHANDLEERR);
    *app = slot;
    *dev = dev_slot->obj;
    return SAR_OK;
}

static ULONG get_con(HCONTAINER handle, struct con **con, struct app **app, struct dev **dev)
{
    struct slot *slot = handle_get(handle, H_CON), *app_slot;
    if (slot == NULL)
        return SAR_INVALIDHANDLEERR;
    ULONG rv = get_app((HANDLE)(uintptr_t)slot->parent, &app_slot, dev);
    if (rv != SAR_OK)
        return rv;
    char conf[PATH_MAX];
    struct con *obj = slot->obj;
    if (path_join(conf, sizeof conf, obj->path, CONTAINER_FILE) != 0 || !is_regular_file(conf))
        return io_error(*dev, SAR_INVALIDHANDLEERR); /* deleted container */
    *con = obj;
    *app = app_slot->obj;
    return SAR_OK;
}

/* the standard's multi-string: "a\0b\0\0"; an empty list is "\0\0" (2 bytes) */
static ULONG put_names(const struct names *names, LPSTR buf, ULONG *size)
{
    if (size == NULL)
        return SAR_INVALIDPARAMERR;
    size_t need = names->count == 0 ? 2 : 1;
    for (size_t i = 0; i < names->count; i++)
        need += strlen(names->v[i]) + 1;
    if (buf == NULL) {
        *size = (ULONG)need;
        return SAR_OK;
    }
    if (*size < need) {
        *size = (ULONG)need;
        return SAR_BUFFER_TOO_SMALL;
    }
    size_t at = 0;
    for (size_t i = 0; i < names->count; i++) {
        size_t len = strlen(names->v[i]) + 1;
        memcpy(buf + at, names->v[i], len);
        at += len;
    }
    memset(buf + at, 0, need - at);
    *size = (ULONG)need;
    return SAR_OK;
}

/* copy UTF-8 text into a fixed CHAR field: NUL-padded, cut on a character boundary */
static void put_text(CHAR *field, size_t size, const char *text)
{
    memset(field, 0, size);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    if (len > size) {
        len = size;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(field, text, len);
}

/* ---- device events ------------------------------------------------------------------------ */

static pthread_mutex_t g_event_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_snapshot_valid;
static char g_snapshot_root[PATH_MAX];
static struct names g_snapshot;

/* Take the device list as the starting point of SKF_WaitForDevEvent, unless one is held for
 * this directory already (events are changes against what the library last reported). */
static void event_baseline(const char *root, const struct names *names)
{
    pthread_mutex_lock(&g_event_lock);
    if (!g_snapshot_valid || strcmp(g_snapshot_root, root) != 0) {
        snprintf(g_snapshot_root, sizeof g_snapshot_root, "%s", root);
        g_snapshot = *names;
        g_snapshot_valid = 1;
    }
    pthread_mutex_unlock(&g_event_lock);
}

static int names_contain(const struct names *names, const char *name)
{
    for (size_t i = 0; i < names->count; i++)
        if (strcmp(names->v[i], name) == 0)
            return 1;
    return 0;
}

#ifndef SOFTSKF_NO_DEV_EVENTS
static pthread_cond_t g_event_cond;
static pthread_once_t g_event_once = PTHREAD_ONCE_INIT;
static unsigned long g_cancel_generation;

static void event_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_event_cond, &attr);
    pthread_condattr_destroy(&attr);
}

API ULONG SKF_WaitForDevEvent(LPSTR szDevName, ULONG *pulDevNameLen, ULONG *pulEvent)
{
    if (szDevName == NULL || pulDevNameLen == NULL || pulEvent == NULL)
        return SAR_INVALIDPARAMERR;
    struct names *now = malloc(sizeof *now);
    char *root = malloc(PATH_MAX);
    if (now == NULL || root == NULL) {
        free(now);
        free(root);
        return SAR_MEMORYERR;
    }
    pthread_once(&g_event_once, event_init);
    pthread_mutex_lock(&g_event_lock);
    unsigned long generation = g_cancel_generation;
    ULONG rv;
    for (;;) {
        if (g_cancel_generation != generation) {
            rv = SAR_NOT_EVENTERR; /* SKF_CancelWaitForDevEvent */
            break;
        }
        if (list_devices(now, root, PATH_MAX) != 0)
            now->count = 0; /* unreadable directory: every device is gone */
        if (!g_snapshot_valid || strcmp(g_snapshot_root, root) != 0) {
            snprintf(g_snapshot_root, sizeof g_snapshot_root, "%s", root);
            g_snapshot = *now;
            g_snapshot_valid = 1;
        } else {
            const char *name = NULL;
            ULONG event = 0;
            for (size_t i = 0; i < now->count && name == NULL; i++)
                if (!names_contain(&g_snapshot, now->v[i]))
                    name = now->v[i], event = SKF_DEV_EVENT_INSERTED;
            for (size_t i = 0; i < g_snapshot.count && name == NULL; i++)
                if (!names_contain(now, g_snapshot.v[i]))
                    name = g_snapshot.v[i], event = SKF_DEV_EVENT_REMOVED;
            if (name != NULL) {
                size_t need = strlen(name) + 1;
                if (*pulDevNameLen < need) {
                    *pulDevNameLen = (ULONG)need; /* the event stays pending */
                    rv = SAR_BUFFER_TOO_SMALL;
                    break;
                }
                memcpy(szDevName, name, need);
                *pulDevNameLen = (ULONG)need;
                *pulEvent = event;
                if (event == SKF_DEV_EVENT_INSERTED) {
                    if (g_snapshot.count < MAX_NAMES)
                        strcpy(g_snapshot.v[g_snapshot.count++], szDevName);
                } else {
                    for (size_t i = 0; i < g_snapshot.count; i++)
                        if (strcmp(g_snapshot.v[i], szDevName) == 0) {
                            g_snapshot.v[i][0] = 0;
                            memmove(g_snapshot.v[i], g_snapshot.v[g_snapshot.count - 1],
                                    sizeof g_snapshot.v[0]);
                            g_snapshot.count--;
                            break;
                        }
                }
                rv = SAR_OK;
                break;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_event_cond, &g_event_lock, &until);
    }
    pthread_mutex_unlock(&g_event_lock);
    free(now);
    free(root);
    return rv;
}

API ULONG SKF_CancelWaitForDevEvent(void)
{
    pthread_once(&g_event_once, event_init);
    pthread_mutex_lock(&g_event_lock);
    g_cancel_generation++;
    pthread_cond_broadcast(&g_event_cond);
    pthread_mutex_unlock(&g_event_lock);
    return SAR_OK;
}
#endif

/* ---- device management -------------------------------------------------------------------- */

static ULONG enum_dev(BOOL bPresent, LPSTR szNameList, ULONG *pulSize)
{
    (void)bPresent; /* every device this library supports is a present one */
    struct names names;
    char root[PATH_MAX];
    if (pulSize == NULL)
        return SAR_INVALIDPARAMERR;
    if (list_devices(&names, root, sizeof root) != 0)
        return SAR_FILEERR;
    event_baseline(root, &names);
    return put_names(&names, szNameList, pulSize);
}

static ULONG device_path(const char *name, char *path, size_t size)
{
    char root[PATH_MAX], conf[PATH_MAX];
    if (!name_valid(name, MAX_NAME) || root_dir(root, sizeof root) != 0
        || path_join(path, size, root, name) != 0 || path_join(conf, sizeof conf, path, DEVICE_FILE) != 0
        || !is_directory(path) || !is_regular_file(conf))
        return SAR_DEVICE_REMOVED;
    return SAR_OK;
}

static ULONG connect_dev(LPSTR szName, DEVHANDLE *phDev)
{
    if (szName == NULL || phDev == NULL)
        return SAR_INVALIDPARAMERR;
    struct dev *dev = calloc(1, sizeof *dev);
    if (dev == NULL)
        return SAR_MEMORYERR;
    struct stat st;
    ULONG rv = device_path(szName, dev->path, sizeof dev->path);
    if (rv == SAR_OK && stat(dev->path, &st) != 0)
        rv = SAR_DEVICE_REMOVED;
    if (rv != SAR_OK) {
        free(dev);
        return rv;
    }
    snprintf(dev->name, sizeof dev->name, "%s", szName);
    dev->st_dev = st.st_dev;
    dev->st_ino = st.st_ino;
    uint32_t id = handle_new(H_DEV, 0, dev);
    if (id == 0) {
        free(dev);
        return SAR_MEMORYERR;
    }
    *phDev = (DEVHANDLE)(uintptr_t)id;
    return SAR_OK;
}

static ULONG disconnect_dev(DEVHANDLE hDev)
{
    struct slot *slot = handle_get(hDev, H_DEV);
    if (slot == NULL)
        return SAR_INVALIDHANDLEERR;
    handle_close(slot->id); /* also when the device was removed: the handle is released */
    return SAR_OK;
}

static ULONG get_dev_state(LPSTR szDevName, ULONG *pulDevState)
{
    char path[PATH_MAX];
    if (szDevName == NULL || pulDevState == NULL)
        return SAR_INVALIDPARAMERR;
    *pulDevState = device_path(szDevName, path, sizeof path) == SAR_OK ? DEV_PRESENT_STATE
                                                                        : DEV_ABSENT_STATE;
    return SAR_OK;
}

static ULONG get_dev_info(DEVHANDLE hDev, DEVINFO *info)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    if (info == NULL)
        return SAR_INVALIDPARAMERR;
    struct dev *dev = slot->obj;
    char conf[PATH_MAX];
    struct kv kv;
    if (path_join(conf, sizeof conf, dev->path, DEVICE_FILE) != 0 || kv_load(conf, &kv) != 0)
        return io_error(dev, SAR_FILEERR);
    memset(info, 0, sizeof *info);
    info->Version.major = 1;
    info->Version.minor = 0;
    put_text(info->Manufacturer, sizeof info->Manufacturer, kv_get(&kv, "manufacturer"));
    put_text(info->Issuer, sizeof info->Issuer, kv_get(&kv, "issuer"));
    put_text(info->Label, sizeof info->Label, kv_get(&kv, "label"));
    put_text(info->SerialNumber, sizeof info->SerialNumber, kv_get(&kv, "serial"));
    info->HWVersion.major = 1;
    info->FirmwareVersion.major = 1;
    info->AlgSymCap = 0; /* no symmetric cipher */
    info->AlgAsymCap = SGD_RSA | SGD_SM2_1;
    info->AlgHashCap = 0; /* the host hashes */
    info->DevAuthAlgId = 0;
    info->TotalSpace = 65536;
    info->FreeSpace = 32768;
    info->MaxECCBufferSize = 256;
    info->MaxBufferSize = 2048;
    return SAR_OK;
}

static ULONG lock_dev(DEVHANDLE hDev)
{
    struct slot *slot;
    return get_dev(hDev, &slot);
}

/* ---- PIN records -------------------------------------------------------------------------- */

struct pin {
    unsigned long max, remaining, is_default, iterations;
    unsigned char salt[SALT_LEN];
    unsigned char hash[HASH_LEN];
};

static int pin_len_ok(const char *pin)
{
    size_t len = strnlen(pin, MAX_PIN_LEN + 1);
    return len >= MIN_PIN_LEN && len <= MAX_PIN_LEN;
}

static int pin_read(const struct kv *kv, const char *role, struct pin *pin)
{
    char key[KV_MAX_KEY];
#define FIELD(name) (snprintf(key, sizeof key, "%s." name, role), key)
    if (kv_get_ulong(kv, FIELD("max_retries"), 1, MAX_PIN_RETRIES, &pin->max) != 0
        || kv_get_ulong(kv, FIELD("remaining"), 0, pin->max, &pin->remaining) != 0
        || kv_get_ulong(kv, FIELD("default"), 0, 1, &pin->is_default) != 0
        || kv_get_ulong(kv, FIELD("iterations"), 1000, 10000000UL, &pin->iterations) != 0
        || hex_decode(kv_get(kv, FIELD("salt")), pin->salt, SALT_LEN) != 0
        || hex_decode(kv_get(kv, FIELD("hash")), pin->hash, HASH_LEN) != 0)
        return -1;
    return 0;
}

static int pin_write(struct kv *kv, const char *role, const struct pin *pin)
{
    char key[KV_MAX_KEY], hex[2 * HASH_LEN + 1];
    if (kv_set_ulong(kv, FIELD("max_retries"), pin->max) != 0
        || kv_set_ulong(kv, FIELD("remaining"), pin->remaining) != 0
        || kv_set_ulong(kv, FIELD("default"), pin->is_default) != 0
        || kv_set(kv, FIELD("kdf"), "pbkdf2-hmac-sha256") != 0
        || kv_set_ulong(kv, FIELD("iterations"), pin->iterations) != 0)
        return -1;
    hex_encode(pin->salt, SALT_LEN, hex, sizeof hex);
    if (kv_set(kv, FIELD("salt"), hex) != 0)
        return -1;
    hex_encode(pin->hash, HASH_LEN, hex, sizeof hex);
    return kv_set(kv, FIELD("hash"), hex);
#undef FIELD
}

static int pin_set(struct pin *pin, const char *value)
{
    pin->iterations = PBKDF2_ITERATIONS;
    if (random_bytes(pin->salt, SALT_LEN) != 0)
        return -1;
    return pin_hash(value, pin->salt, pin->iterations, pin->hash);
}

static int pin_matches(const struct pin *pin, const char *value)
{
    unsigned char hash[HASH_LEN];
    if (pin_hash(value, pin->salt, pin->iterations, hash) != 0)
        return 0;
    int same = CRYPTO_memcmp(hash, pin->hash, HASH_LEN) == 0;
    OPENSSL_cleanse(hash, sizeof hash);
    return same;
}

static const char *role_name(ULONG type)
{
    return type == ADMIN_TYPE ? "admin" : type == USER_TYPE ? "user" : NULL;
}

/* flock(2) the application's lock file; -1 on failure */
static int app_lock(const struct app *app, int how)
{
    char path[PATH_MAX];
    if (path_join(path, sizeof path, app->path, LOCK_FILE) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    while (flock(fd, how) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void app_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

static int app_conf_path(const struct app *app, char *path, size_t size)
{
    return path_join(path, size, app->path, APP_FILE);
}

/* One PIN try against `role`, under the caller's exclusive lock: updates and saves the
 * counter. SAR_OK, SAR_PIN_INCORRECT or SAR_PIN_LOCKED (*retry = tries left). */
static ULONG pin_try(struct kv *kv, const char *conf, const char *role, struct pin *pin,
                     const char *value, ULONG *retry)
{
    if (pin->remaining == 0) {
        *retry = 0;
        return SAR_PIN_LOCKED;
    }
    if (pin_matches(pin, value)) {
        if (pin->remaining != pin->max) {
            pin->remaining = pin->max;
            if (pin_write(kv, role, pin) != 0 || kv_save(conf, kv, "softskf application") != 0)
                return SAR_WRITEFILEERR;
        }
        *retry = (ULONG)pin->remaining;
        return SAR_OK;
    }
    pin->remaining--;
    if (pin_write(kv, role, pin) != 0 || kv_save(conf, kv, "softskf application") != 0)
        return SAR_WRITEFILEERR;
    *retry = (ULONG)pin->remaining;
    return pin->remaining == 0 ? SAR_PIN_LOCKED : SAR_PIN_INCORRECT;
}

static ULONG verify_pin(HAPPLICATION hApp, ULONG type, LPSTR szPIN, ULONG *pulRetryCount)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev), retry = 0;
    if (rv != SAR_OK)
        return rv;
    const char *role = role_name(type);
    if (role == NULL)
        return SAR_USER_TYPE_INVALID;
    if (szPIN == NULL)
        return SAR_INVALIDPARAMERR;
    if (!pin_len_ok(szPIN))
        return SAR_PIN_LEN_RANGE; /* not a try: no counter change */
    struct app *app = slot->obj;
    char conf[PATH_MAX];
    struct kv kv;
    struct pin pin;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (app_conf_path(app, conf, sizeof conf) != 0 || kv_load(conf, &kv) != 0
        || pin_read(&kv, role, &pin) != 0)
        rv = io_error(dev, SAR_FILEERR);
    else
        rv = pin_try(&kv, conf, role, &pin, szPIN, &retry);
    app_unlock(fd);
    int *logged_in = type == USER_TYPE ? &app->user_logged_in : &app->admin_logged_in;
    *logged_in = rv == SAR_OK; /* a failed try ends that role's login */
    if (pulRetryCount != NULL && (rv == SAR_OK || rv == SAR_PIN_INCORRECT || rv == SAR_PIN_LOCKED))
        *pulRetryCount = retry;
    OPENSSL_cleanse(&pin, sizeof pin);
    return rv;
}

static ULONG change_pin(HAPPLICATION hApp, ULONG type, LPSTR szOld, LPSTR szNew, ULONG *pulRetry)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev), retry = 0;
    if (rv != SAR_OK)
        return rv;
    const char *role = role_name(type);
    if (role == NULL)
        return SAR_USER_TYPE_INVALID;
    if (szOld == NULL || szNew == NULL)
        return SAR_INVALIDPARAMERR;
    if (!pin_len_ok(szOld) || !pin_len_ok(szNew))
        return SAR_PIN_LEN_RANGE;
    struct app *app = slot->obj;
    char conf[PATH_MAX];
    struct kv kv;
    struct pin pin;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (app_conf_path(app, conf, sizeof conf) != 0 || kv_load(conf, &kv) != 0
        || pin_read(&kv, role, &pin) != 0) {
        rv = io_error(dev, SAR_FILEERR);
    } else {
        rv = pin_try(&kv, conf, role, &pin, szOld, &retry);
        if (rv == SAR_OK) {
            pin.remaining = pin.max;
            pin.is_default = 0;
            if (pin_set(&pin, szNew) != 0 || pin_write(&kv, role, &pin) != 0
                || kv_save(conf, &kv, "softskf application") != 0)
                rv = io_error(dev, SAR_WRITEFILEERR);
            retry = (ULONG)pin.max;
        }
    }
    app_unlock(fd);
    if (pulRetry != NULL && (rv == SAR_OK || rv == SAR_PIN_INCORRECT || rv == SAR_PIN_LOCKED))
        *pulRetry = retry;
    OPENSSL_cleanse(&pin, sizeof pin);
    return rv;
}

static ULONG get_pin_info(HAPPLICATION hApp, ULONG type, ULONG *max, ULONG *remain, BOOL *deflt)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    const char *role = role_name(type);
    if (role == NULL)
        return SAR_USER_TYPE_INVALID;
    if (max == NULL || remain == NULL || deflt == NULL)
        return SAR_INVALIDPARAMERR;
    struct app *app = slot->obj;
    char conf[PATH_MAX];
    struct kv kv;
    struct pin pin;
    int fd = app_lock(app, LOCK_SH);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (app_conf_path(app, conf, sizeof conf) != 0 || kv_load(conf, &kv) != 0
        || pin_read(&kv, role, &pin) != 0) {
        rv = io_error(dev, SAR_FILEERR);
    } else {
        *max = (ULONG)pin.max;
        *remain = (ULONG)pin.remaining;
        *deflt = pin.is_default ? TRUE : FALSE;
    }
    app_unlock(fd);
    return rv;
}

static ULONG unblock_pin(HAPPLICATION hApp, LPSTR szAdminPIN, LPSTR szNewUserPIN, ULONG *pulRetry)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev), retry = 0;
    if (rv != SAR_OK)
        return rv;
    if (szAdminPIN == NULL || szNewUserPIN == NULL)
        return SAR_INVALIDPARAMERR;
    if (!pin_len_ok(szAdminPIN) || !pin_len_ok(szNewUserPIN))
        return SAR_PIN_LEN_RANGE;
    struct app *app = slot->obj;
    char conf[PATH_MAX];
    struct kv kv;
    struct pin admin, user;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (app_conf_path(app, conf, sizeof conf) != 0 || kv_load(conf, &kv) != 0
        || pin_read(&kv, "admin", &admin) != 0 || pin_read(&kv, "user", &user) != 0) {
        rv = io_error(dev, SAR_FILEERR);
    } else {
        rv = pin_try(&kv, conf, "admin", &admin, szAdminPIN, &retry);
        if (rv == SAR_OK) {
            /* a PIN the administrator chose counts as a default one until the user changes it */
            user.remaining = user.max;
            user.is_default = 1;
            if (pin_set(&user, szNewUserPIN) != 0 || pin_write(&kv, "user", &user) != 0
                || kv_save(conf, &kv, "softskf application") != 0)
                rv = io_error(dev, SAR_WRITEFILEERR);
        }
    }
    app_unlock(fd);
    if (rv != SAR_OK)
        app->admin_logged_in = 0;
    if (pulRetry != NULL && (rv == SAR_OK || rv == SAR_PIN_INCORRECT || rv == SAR_PIN_LOCKED))
        *pulRetry = retry;
    OPENSSL_cleanse(&admin, sizeof admin);
    OPENSSL_cleanse(&user, sizeof user);
    return rv;
}

static ULONG clear_secure_state(HAPPLICATION hApp)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    struct app *app = slot->obj;
    app->user_logged_in = 0;
    app->admin_logged_in = 0;
    return SAR_OK;
}

/* ---- applications ------------------------------------------------------------------------- */

static ULONG name_check(const char *name, size_t max, ULONG invalid)
{
    if (name == NULL)
        return SAR_INVALIDPARAMERR;
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return SAR_NAMELENERR;
    return name_valid(name, max) ? SAR_OK : invalid;
}

/* make `final` (a directory holding `file` with `kv`) atomically: build it under a hidden
 * temporary name beside it, then rename without replacing. EEXIST when it exists already. */
static int make_object_dir(const char *parent, const char *final, const char *file,
                           const struct kv *kv, const char *header, const char *subdir)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    unsigned char rnd[8];
    char hex[17];
    if (random_bytes(rnd, sizeof rnd) != 0)
        return -1;
    hex_encode(rnd, sizeof rnd, hex, sizeof hex);
    int n = snprintf(tmp, sizeof tmp, "%s/.new-%s", parent, hex);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir(parent, 0700) != 0 && errno != EEXIST)
        return -1;
    if (mkdir(tmp, 0700) != 0)
        return -1;
    if (path_join(path, sizeof path, tmp, file) != 0 || kv_save(path, kv, header) != 0)
        goto fail;
    if (subdir != NULL
        && (path_join(path, sizeof path, tmp, subdir) != 0 || mkdir(path, 0700) != 0))
        goto fail;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) != 0)
        goto fail;
    return 0;
fail:;
    int saved = errno;
    remove_tree(tmp);
    errno = saved == ENOTEMPTY ? EEXIST : saved;
    return -1;
}

static ULONG open_app_handle(struct slot *dev_slot, const char *name, const char *path,
                             HAPPLICATION *phApp)
{
    struct app *app = calloc(1, sizeof *app);
    if (app == NULL)
        return SAR_MEMORYERR;
    snprintf(app->name, sizeof app->name, "%s", name);
    snprintf(app->path, sizeof app->path, "%s", path);
    uint32_t id = handle_new(H_APP, dev_slot->id, app);
    if (id == 0) {
        free(app);
        return SAR_MEMORYERR;
    }
    *phApp = (HAPPLICATION)(uintptr_t)id;
    return SAR_OK;
}

static ULONG create_application(DEVHANDLE hDev, LPSTR szAppName, LPSTR szAdminPin,
                                DWORD adminRetry, LPSTR szUserPin, DWORD userRetry, DWORD rights,
                                HAPPLICATION *phApp)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    if ((rv = name_check(szAppName, MAX_APP_NAME, SAR_APPLICATION_NAME_INVALID)) != SAR_OK)
        return rv;
    if (szAdminPin == NULL || szUserPin == NULL || phApp == NULL)
        return SAR_INVALIDPARAMERR;
    if (!pin_len_ok(szAdminPin) || !pin_len_ok(szUserPin))
        return SAR_PIN_LEN_RANGE;
    if (adminRetry < 1 || adminRetry > MAX_PIN_RETRIES || userRetry < 1
        || userRetry > MAX_PIN_RETRIES)
        return SAR_INVALIDPARAMERR;
    struct dev *dev = slot->obj;
    char apps[PATH_MAX], path[PATH_MAX];
    if (path_join(apps, sizeof apps, dev->path, APPS_DIR) != 0
        || path_join(path, sizeof path, apps, szAppName) != 0)
        return SAR_NAMELENERR;
    struct kv kv = {0};
    struct pin admin = {.max = adminRetry, .remaining = adminRetry, .is_default = 1};
    struct pin user = {.max = userRetry, .remaining = userRetry, .is_default = 1};
    if (pin_set(&admin, szAdminPin) != 0 || pin_set(&user, szUserPin) != 0
        || kv_set(&kv, "format", "softskf-application/1") != 0
        || kv_set_ulong(&kv, "create_file_rights", rights) != 0
        || pin_write(&kv, "admin", &admin) != 0 || pin_write(&kv, "user", &user) != 0)
        rv = SAR_FAIL;
    else if (make_object_dir(apps, path, APP_FILE, &kv, "softskf application", CONTAINERS_DIR)
             != 0)
        rv = errno == EEXIST ? SAR_APPLICATION_EXISTS : io_error(dev, SAR_WRITEFILEERR);
    OPENSSL_cleanse(&admin, sizeof admin);
    OPENSSL_cleanse(&user, sizeof user);
    OPENSSL_cleanse(&kv, sizeof kv);
    if (rv != SAR_OK)
        return rv;
    return open_app_handle(slot, szAppName, path, phApp);
}

static ULONG enum_application(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    struct dev *dev = slot->obj;
    char apps[PATH_MAX];
    struct names names;
    if (path_join(apps, sizeof apps, dev->path, APPS_DIR) != 0
        || list_dirs_with(apps, APP_FILE, &names) != 0)
        return io_error(dev, SAR_FILEERR);
    return put_names(&names, szAppName, pulSize);
}

static ULONG open_application(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApp)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    if ((rv = name_check(szAppName, MAX_APP_NAME, SAR_APPLICATION_NAME_INVALID)) != SAR_OK)
        return rv == SAR_NAMELENERR ? SAR_APPLICATION_NOT_EXISTS : rv;
    if (phApp == NULL)
        return SAR_INVALIDPARAMERR;
    struct dev *dev = slot->obj;
    char apps[PATH_MAX], path[PATH_MAX], conf[PATH_MAX];
    if (path_join(apps, sizeof apps, dev->path, APPS_DIR) != 0
        || path_join(path, sizeof path, apps, szAppName) != 0
        || path_join(conf, sizeof conf, path, APP_FILE) != 0)
        return SAR_APPLICATION_NOT_EXISTS;
    if (!is_regular_file(conf))
        return io_error(dev, SAR_APPLICATION_NOT_EXISTS);
    return open_app_handle(slot, szAppName, path, phApp);
}

static ULONG close_handle(HANDLE handle, enum htype type)
{
    struct slot *slot = handle_get(handle, type);
    if (slot == NULL)
        return SAR_INVALIDHANDLEERR;
    handle_close(slot->id);
    return SAR_OK;
}

/* ---- containers --------------------------------------------------------------------------- */

static ULONG need_user(const struct app *app)
{
    return app->user_logged_in ? SAR_OK : SAR_USER_NOT_LOGGED_IN;
}

static ULONG containers_path(const struct app *app, char *out, size_t size)
{
    return path_join(out, size, app->path, CONTAINERS_DIR) == 0 ? SAR_OK : SAR_NAMELENERR;
}

static ULONG open_con_handle(uint32_t app_id, const char *name, const char *path,
                             HCONTAINER *phContainer)
{
    struct con *con = calloc(1, sizeof *con);
    if (con == NULL)
        return SAR_MEMORYERR;
    snprintf(con->name, sizeof con->name, "%s", name);
    snprintf(con->path, sizeof con->path, "%s", path);
    uint32_t id = handle_new(H_CON, app_id, con);
    if (id == 0) {
        free(con);
        return SAR_MEMORYERR;
    }
    *phContainer = (HCONTAINER)(uintptr_t)id;
    return SAR_OK;
}

static ULONG enum_container(HAPPLICATION hApp, LPSTR szNames, ULONG *pulSize)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    char dir[PATH_MAX];
    struct names names;
    if (containers_path(slot->obj, dir, sizeof dir) != SAR_OK
        || list_dirs_with(dir, CONTAINER_FILE, &names) != 0)
        return io_error(dev, SAR_FILEERR);
    return put_names(&names, szNames, pulSize);
}

static ULONG create_container(HAPPLICATION hApp, LPSTR szName, HCONTAINER *phContainer)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    struct app *app = slot->obj;
    if ((rv = need_user(app)) != SAR_OK)
        return rv;
    if ((rv = name_check(szName, MAX_NAME, SAR_INVALIDPARAMERR)) != SAR_OK)
        return rv;
    if (phContainer == NULL)
        return SAR_INVALIDPARAMERR;
    char dir[PATH_MAX], path[PATH_MAX];
    struct names names;
    struct kv kv = {0};
    if (containers_path(app, dir, sizeof dir) != SAR_OK
        || path_join(path, sizeof path, dir, szName) != 0)
        return SAR_NAMELENERR;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (list_dirs_with(dir, CONTAINER_FILE, &names) != 0)
        rv = io_error(dev, SAR_FILEERR);
    else if (names_contain(&names, szName))
        rv = SAR_FILE_ALREADY_EXIST;
    else if (names.count >= MAX_CONTAINERS)
        rv = SAR_REACH_MAX_CONTAINER_COUNT;
    else if (kv_set(&kv, "format", "softskf-container/1") != 0 || kv_set(&kv, "type", "0") != 0)
        rv = SAR_FAIL;
    else if (make_object_dir(dir, path, CONTAINER_FILE, &kv, "softskf container", NULL) != 0)
        rv = errno == EEXIST ? SAR_FILE_ALREADY_EXIST : io_error(dev, SAR_WRITEFILEERR);
    app_unlock(fd);
    if (rv != SAR_OK)
        return rv;
    return open_con_handle(slot->id, szName, path, phContainer);
}

static ULONG delete_container(HAPPLICATION hApp, LPSTR szName)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    struct app *app = slot->obj;
    if ((rv = need_user(app)) != SAR_OK)
        return rv;
    if ((rv = name_check(szName, MAX_NAME, SAR_INVALIDPARAMERR)) != SAR_OK)
        return rv == SAR_NAMELENERR ? SAR_FILE_NOT_EXIST : rv;
    char dir[PATH_MAX], path[PATH_MAX], conf[PATH_MAX], doomed[PATH_MAX];
    if (containers_path(app, dir, sizeof dir) != SAR_OK
        || path_join(path, sizeof path, dir, szName) != 0
        || path_join(conf, sizeof conf, path, CONTAINER_FILE) != 0)
        return SAR_FILE_NOT_EXIST;
    unsigned char rnd[8];
    char hex[17];
    if (random_bytes(rnd, sizeof rnd) != 0)
        return SAR_GENRANDERR;
    hex_encode(rnd, sizeof rnd, hex, sizeof hex);
    int n = snprintf(doomed, sizeof doomed, "%s/.deleted-%s", dir, hex);
    if (n < 0 || (size_t)n >= sizeof doomed)
        return SAR_NAMELENERR;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if (!is_regular_file(conf))
        rv = io_error(dev, SAR_FILE_NOT_EXIST);
    else if (rename(path, doomed) != 0) /* disappears at once; the files go afterwards */
        rv = io_error(dev, SAR_WRITEFILEERR);
    else
        remove_tree(doomed);
    app_unlock(fd);
    return rv;
}

static ULONG open_container(HAPPLICATION hApp, LPSTR szName, HCONTAINER *phContainer)
{
    struct slot *slot;
    struct dev *dev;
    ULONG rv = get_app(hApp, &slot, &dev);
    if (rv != SAR_OK)
        return rv;
    if ((rv = name_check(szName, MAX_NAME, SAR_INVALIDPARAMERR)) != SAR_OK)
        return rv == SAR_NAMELENERR ? SAR_FILE_NOT_EXIST : rv;
    if (phContainer == NULL)
        return SAR_INVALIDPARAMERR;
    char dir[PATH_MAX], path[PATH_MAX], conf[PATH_MAX];
    if (containers_path(slot->obj, dir, sizeof dir) != SAR_OK
        || path_join(path, sizeof path, dir, szName) != 0
        || path_join(conf, sizeof conf, path, CONTAINER_FILE) != 0)
        return SAR_FILE_NOT_EXIST;
    if (!is_regular_file(conf))
        return io_error(dev, SAR_FILE_NOT_EXIST);
    return open_con_handle(slot->id, szName, path, phContainer);
}

static ULONG read_container_type(const struct con *con, struct dev *dev, ULONG *type)
{
    char conf[PATH_MAX];
    struct kv kv;
    unsigned long value;
    if (path_join(conf, sizeof conf, con->path, CONTAINER_FILE) != 0 || kv_load(conf, &kv) != 0
        || kv_get_ulong(&kv, "type", 0, 2, &value) != 0)
        return io_error(dev, SAR_FILEERR);
    *type = (ULONG)value;
    return SAR_OK;
}

static ULONG write_container_type(const struct con *con, struct dev *dev, ULONG type)
{
    char conf[PATH_MAX];
    struct kv kv;
    if (path_join(conf, sizeof conf, con->path, CONTAINER_FILE) != 0 || kv_load(conf, &kv) != 0
        || kv_set_ulong(&kv, "type", type) != 0 || kv_save(conf, &kv, "softskf container") != 0)
        return io_error(dev, SAR_WRITEFILEERR);
    return SAR_OK;
}

static ULONG get_container_type(HCONTAINER hCon, ULONG *type)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK)
        return rv;
    if (type == NULL)
        return SAR_INVALIDPARAMERR;
    return read_container_type(con, dev, type);
}

/* the key pair of a container (sign: 1 signing, 0 encryption), cached while its file is
 * unchanged; SAR_KEYNOTFOUNTERR when there is none */
static ULONG load_key(struct con *con, struct dev *dev, int sign, EVP_PKEY **out)
{
    char path[PATH_MAX];
    struct stat st;
    struct cached_key *cache = &con->keys[sign ? 1 : 0];
    if (path_join(path, sizeof path, con->path, KEY_FILE[sign ? 1 : 0]) != 0)
        return SAR_FILEERR;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        EVP_PKEY_free(cache->key);
        memset(cache, 0, sizeof *cache);
        return io_error(dev, SAR_KEYNOTFOUNTERR);
    }
    if (cache->key != NULL && cache->st_ino == st.st_ino && cache->st_dev == st.st_dev
        && cache->size == st.st_size && cache->mtime.tv_sec == st.st_mtim.tv_sec
        && cache->mtime.tv_nsec == st.st_mtim.tv_nsec) {
        *out = cache->key;
        return SAR_OK;
    }
    unsigned char *pem;
    size_t len;
    if (file_read(path, MAX_PEM_LEN, &pem, &len) != 0)
        return io_error(dev, SAR_READFILEERR);
    EVP_PKEY *key = key_from_pem(pem, len);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (key == NULL)
        return SAR_FILEERR;
    EVP_PKEY_free(cache->key);
    cache->key = key;
    cache->st_ino = st.st_ino;
    cache->st_dev = st.st_dev;
    cache->size = st.st_size;
    cache->mtime = st.st_mtim;
    *out = key;
    return SAR_OK;
}

/* write a key pair into a container whose type allows it, and set the type */
static ULONG store_key(struct con *con, struct dev *dev, const struct app *app, int sign,
                       EVP_PKEY *key)
{
    ULONG type, want = key_kind_of(key) == KEY_SM2 ? SKF_CONTAINER_TYPE_ECC : SKF_CONTAINER_TYPE_RSA;
    char path[PATH_MAX];
    unsigned char *pem = NULL;
    size_t len = 0;
    ULONG rv;
    int fd = app_lock(app, LOCK_EX);
    if (fd < 0)
        return io_error(dev, SAR_FILEERR);
    if ((rv = read_container_type(con, dev, &type)) != SAR_OK)
        goto done;
    if (type != SKF_CONTAINER_TYPE_EMPTY && type != want) {
        rv = SAR_KEYINFOTYPEERR; /* an RSA container holds RSA keys, an ECC one SM2 keys */
        goto done;
    }
    if (path_join(path, sizeof path, con->path, KEY_FILE[sign ? 1 : 0]) != 0
        || key_to_pem(key, &pem, &len) != 0) {
        rv = SAR_FAIL;
        goto done;
    }
    if (file_write_atomic(path, pem, len, 0600) != 0) {
        rv = io_error(dev, SAR_WRITEFILEERR);
        goto done;
    }
    if (type != want)
        rv = write_container_type(con, dev, want);
done:
    app_unlock(fd);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        OPENSSL_free(pem);
    }
    return rv;
}

static ULONG gen_ecc_key_pair(HCONTAINER hCon, ULONG alg, ECCPUBLICKEYBLOB *blob)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (alg != SGD_SM2_1 && alg != SGD_SM2) /* vendors disagree on SGD_SM2_1's value */
        return SAR_NOTSUPPORTYETERR;
    if (blob == NULL)
        return SAR_INVALIDPARAMERR;
    EVP_PKEY *key = key_generate(KEY_SM2, 256);
    if (key == NULL)
        return SAR_FAIL;
    ECCPUBLICKEYBLOB out;
    if (key_ecc_blob(key, &out) != 0)
        rv = SAR_FAIL;
    else
        rv = store_key(con, dev, app, 1, key);
    EVP_PKEY_free(key);
    if (rv == SAR_OK)
        *blob = out;
    return rv;
}

static ULONG gen_rsa_key_pair(HCONTAINER hCon, ULONG bits, RSAPUBLICKEYBLOB *blob)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (bits != 1024 && bits != 2048)
        return SAR_MODULUSLENERR;
    if (blob == NULL)
        return SAR_INVALIDPARAMERR;
    EVP_PKEY *key = key_generate(KEY_RSA, bits);
    if (key == NULL)
        return SAR_GENRSAKEYERR;
    RSAPUBLICKEYBLOB out;
    if (key_rsa_blob(key, &out) != 0)
        rv = SAR_FAIL;
    else
        rv = store_key(con, dev, app, 1, key);
    EVP_PKEY_free(key);
    if (rv == SAR_OK)
        *blob = out;
    return rv;
}

static ULONG import_key_pair_pem(HCONTAINER hCon, BOOL sign, const BYTE *pem, ULONG len)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (pem == NULL)
        return SAR_INVALIDPARAMERR;
    if (len == 0 || len > MAX_PEM_LEN)
        return SAR_INDATALENERR;
    EVP_PKEY *key = key_from_pem(pem, len);
    if (key == NULL)
        return SAR_INDATAERR; /* not an unencrypted SM2 or RSA 1024/2048 private key */
    rv = store_key(con, dev, app, sign != FALSE, key);
    EVP_PKEY_free(key);
    return rv;
}

static ULONG export_public_key(HCONTAINER hCon, BOOL sign, BYTE *pbBlob, ULONG *pulBlobLen)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    EVP_PKEY *key;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK)
        return rv;
    if (pulBlobLen == NULL)
        return SAR_INVALIDPARAMERR;
    if ((rv = load_key(con, dev, sign != FALSE, &key)) != SAR_OK)
        return rv;
    union {
        ECCPUBLICKEYBLOB ecc;
        RSAPUBLICKEYBLOB rsa;
    } blob;
    size_t need;
    if (key_kind_of(key) == KEY_SM2) {
        need = sizeof blob.ecc;
        if (key_ecc_blob(key, &blob.ecc) != 0)
            return SAR_FAIL;
    } else {
        need = sizeof blob.rsa;
        if (key_rsa_blob(key, &blob.rsa) != 0)
            return SAR_FAIL;
    }
    if (pbBlob == NULL) {
        *pulBlobLen = (ULONG)need;
        return SAR_OK;
    }
    if (*pulBlobLen < need) {
        *pulBlobLen = (ULONG)need;
        return SAR_BUFFER_TOO_SMALL;
    }
    memcpy(pbBlob, &blob, need);
    *pulBlobLen = (ULONG)need;
    return SAR_OK;
}

static ULONG ecc_sign_data(HCONTAINER hCon, BYTE *pbDigest, ULONG ulDigestLen,
                           ECCSIGNATUREBLOB *pSignature)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    EVP_PKEY *key;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (pbDigest == NULL || pSignature == NULL)
        return SAR_INVALIDPARAMERR;
    if (ulDigestLen != 32)
        return SAR_INDATALENERR; /* e = SM3(Z || M), computed by the host */
    if ((rv = load_key(con, dev, 1, &key)) != SAR_OK)
        return rv;
    if (key_kind_of(key) != KEY_SM2)
        return SAR_KEYINFOTYPEERR;
    ECCSIGNATUREBLOB sig;
    if (key_sm2_sign(key, pbDigest, &sig) != 0)
        return SAR_FAIL;
    *pSignature = sig;
    return SAR_OK;
}

static ULONG rsa_sign_data(HCONTAINER hCon, BYTE *pbData, ULONG ulDataLen, BYTE *pbSignature,
                           ULONG *pulSignLen)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    EVP_PKEY *key;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (pbData == NULL || pulSignLen == NULL)
        return SAR_INVALIDPARAMERR;
    if ((rv = load_key(con, dev, 1, &key)) != SAR_OK)
        return rv;
    if (key_kind_of(key) != KEY_RSA)
        return SAR_KEYINFOTYPEERR;
    size_t size = (size_t)EVP_PKEY_get_size(key);
    if (ulDataLen == 0 || ulDataLen > size - 11)
        return SAR_INDATALENERR; /* PKCS#1 v1.5 type 1 needs 11 bytes of padding */
    if (pbSignature == NULL) {
        *pulSignLen = (ULONG)size;
        return SAR_OK;
    }
    if (*pulSignLen < size) {
        *pulSignLen = (ULONG)size;
        return SAR_BUFFER_TOO_SMALL;
    }
    size_t out_len = size;
    if (key_rsa_sign(key, pbData, ulDataLen, pbSignature, &out_len) != 0)
        return SAR_FAIL;
    *pulSignLen = (ULONG)out_len;
    return SAR_OK;
}

static ULONG ecc_verify(DEVHANDLE hDev, ECCPUBLICKEYBLOB *blob, BYTE *data, ULONG len,
                        ECCSIGNATUREBLOB *sig)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    if (blob == NULL || data == NULL || sig == NULL)
        return SAR_INVALIDPARAMERR;
    if (len != 32)
        return SAR_INDATALENERR;
    int ok = sm2_verify(blob, data, sig);
    return ok > 0 ? SAR_OK : ok == 0 ? SAR_FAIL : SAR_INVALIDPARAMERR;
}

static ULONG gen_random(DEVHANDLE hDev, BYTE *pbRandom, ULONG ulRandomLen)
{
    struct slot *slot;
    ULONG rv = get_dev(hDev, &slot);
    if (rv != SAR_OK)
        return rv;
    if (ulRandomLen > MAX_RANDOM_LEN)
        return SAR_INDATALENERR;
    if (ulRandomLen == 0)
        return SAR_OK;
    if (pbRandom == NULL)
        return SAR_INVALIDPARAMERR;
    return random_bytes(pbRandom, ulRandomLen) == 0 ? SAR_OK : SAR_GENRANDERR;
}

static ULONG import_certificate(HCONTAINER hCon, BOOL sign, BYTE *pbCert, ULONG ulCertLen)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK || (rv = need_user(app)) != SAR_OK)
        return rv;
    if (pbCert == NULL)
        return SAR_INVALIDPARAMERR;
    if (ulCertLen == 0 || ulCertLen > MAX_CERT_LEN)
        return SAR_INDATALENERR;
    char path[PATH_MAX];
    if (path_join(path, sizeof path, con->path, CERT_FILE[sign ? 1 : 0]) != 0)
        return SAR_FILEERR;
    /* stored as given: like a real key, the library does not parse certificates */
    return file_write_atomic(path, pbCert, ulCertLen, 0644) == 0 ? SAR_OK
                                                                 : io_error(dev, SAR_WRITEFILEERR);
}

static ULONG export_certificate(HCONTAINER hCon, BOOL sign, BYTE *pbCert, ULONG *pulCertLen)
{
    struct con *con;
    struct app *app;
    struct dev *dev;
    ULONG rv = get_con(hCon, &con, &app, &dev);
    if (rv != SAR_OK)
        return rv;
    if (pulCertLen == NULL)
        return SAR_INVALIDPARAMERR;
    char path[PATH_MAX];
    unsigned char *data;
    size_t len;
    if (path_join(path, sizeof path, con->path, CERT_FILE[sign ? 1 : 0]) != 0)
        return SAR_FILEERR;
    if (file_read(path, MAX_CERT_LEN, &data, &len) != 0)
        return io_error(dev, errno == ENOENT ? SAR_CERTNOTFOUNTERR : SAR_READFILEERR);
    if (pbCert == NULL) {
        *pulCertLen = (ULONG)len;
    } else if (*pulCertLen < len) {
        *pulCertLen = (ULONG)len;
        rv = SAR_BUFFER_TOO_SMALL;
    } else {
        memcpy(pbCert, data, len);
        *pulCertLen = (ULONG)len;
    }
    free(data);
    return rv;
}

/* ---- exported functions: each takes the library lock around its implementation ------------- */

#define LOCKED(call)                                                                             \
    do {                                                                                         \
        pthread_mutex_lock(&g_lock);                                                             \
        ULONG locked_rv = (call);                                                                \
        pthread_mutex_unlock(&g_lock);                                                           \
        return locked_rv;                                                                        \
    } while (0)

API ULONG SKF_EnumDev(BOOL bPresent, LPSTR szNameList, ULONG *pulSize)
{
    LOCKED(enum_dev(bPresent, szNameList, pulSize));
}

API ULONG SKF_ConnectDev(LPSTR szName, DEVHANDLE *phDev)
{
    LOCKED(connect_dev(szName, phDev));
}

API ULONG SKF_DisConnectDev(DEVHANDLE hDev)
{
    LOCKED(disconnect_dev(hDev));
}

API ULONG SKF_GetDevState(LPSTR szDevName, ULONG *pulDevState)
{
    LOCKED(get_dev_state(szDevName, pulDevState));
}

API ULONG SKF_GetDevInfo(DEVHANDLE hDev, DEVINFO *pDevInfo)
{
    LOCKED(get_dev_info(hDev, pDevInfo));
}

API ULONG SKF_LockDev(DEVHANDLE hDev, ULONG ulTimeOut)
{
    (void)ulTimeOut; /* the library lock already serialises every call */
    LOCKED(lock_dev(hDev));
}

API ULONG SKF_UnlockDev(DEVHANDLE hDev)
{
    LOCKED(lock_dev(hDev));
}

API ULONG SKF_ChangePIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szOldPin,
                        LPSTR szNewPin, ULONG *pulRetryCount)
{
    LOCKED(change_pin(hApplication, ulPINType, szOldPin, szNewPin, pulRetryCount));
}

API ULONG SKF_GetPINInfo(HAPPLICATION hApplication, ULONG ulPINType, ULONG *pulMaxRetryCount,
                         ULONG *pulRemainRetryCount, BOOL *pbDefaultPin)
{
    LOCKED(get_pin_info(hApplication, ulPINType, pulMaxRetryCount, pulRemainRetryCount,
                        pbDefaultPin));
}

API ULONG SKF_VerifyPIN(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szPIN,
                        ULONG *pulRetryCount)
{
    LOCKED(verify_pin(hApplication, ulPINType, szPIN, pulRetryCount));
}

API ULONG SKF_UnblockPIN(HAPPLICATION hApplication, LPSTR szAdminPIN, LPSTR szNewUserPIN,
                         ULONG *pulRetryCount)
{
    LOCKED(unblock_pin(hApplication, szAdminPIN, szNewUserPIN, pulRetryCount));
}

API ULONG SKF_ClearSecureState(HAPPLICATION hApplication)
{
    LOCKED(clear_secure_state(hApplication));
}

API ULONG SKF_CreateApplication(DEVHANDLE hDev, LPSTR szAppName, LPSTR szAdminPin,
                                DWORD dwAdminPinRetryCount, LPSTR szUserPin,
                                DWORD dwUserPinRetryCount, DWORD dwCreateFileRights,
                                HAPPLICATION *phApplication)
{
    LOCKED(create_application(hDev, szAppName, szAdminPin, dwAdminPinRetryCount, szUserPin,
                              dwUserPinRetryCount, dwCreateFileRights, phApplication));
}

API ULONG SKF_EnumApplication(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize)
{
    LOCKED(enum_application(hDev, szAppName, pulSize));
}

API ULONG SKF_OpenApplication(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApplication)
{
    LOCKED(open_application(hDev, szAppName, phApplication));
}

API ULONG SKF_CloseApplication(HAPPLICATION hApplication)
{
    LOCKED(close_handle(hApplication, H_APP));
}

API ULONG SKF_CreateContainer(HAPPLICATION hApplication, LPSTR szContainerName,
                              HCONTAINER *phContainer)
{
    LOCKED(create_container(hApplication, szContainerName, phContainer));
}

API ULONG SKF_DeleteContainer(HAPPLICATION hApplication, LPSTR szContainerName)
{
    LOCKED(delete_container(hApplication, szContainerName));
}

API ULONG SKF_OpenContainer(HAPPLICATION hApplication, LPSTR szContainerName,
                            HCONTAINER *phContainer)
{
    LOCKED(open_container(hApplication, szContainerName, phContainer));
}

API ULONG SKF_CloseContainer(HCONTAINER hContainer)
{
    LOCKED(close_handle(hContainer, H_CON));
}

API ULONG SKF_EnumContainer(HAPPLICATION hApplication, LPSTR szContainerName, ULONG *pulSize)
{
    LOCKED(enum_container(hApplication, szContainerName, pulSize));
}

API ULONG SKF_GetContainerType(HCONTAINER hContainer, ULONG *pulContainerType)
{
    LOCKED(get_container_type(hContainer, pulContainerType));
}

API ULONG SKF_ImportCertificate(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbCert,
                                ULONG ulCertLen)
{
    LOCKED(import_certificate(hContainer, bSignFlag, pbCert, ulCertLen));
}

API ULONG SKF_ExportCertificate(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbCert,
                                ULONG *pulCertLen)
{
    LOCKED(export_certificate(hContainer, bSignFlag, pbCert, pulCertLen));
}

API ULONG SKF_GenRandom(DEVHANDLE hDev, BYTE *pbRandom, ULONG ulRandomLen)
{
    LOCKED(gen_random(hDev, pbRandom, ulRandomLen));
}

API ULONG SKF_GenRSAKeyPair(HCONTAINER hContainer, ULONG ulBitsLen, RSAPUBLICKEYBLOB *pBlob)
{
    LOCKED(gen_rsa_key_pair(hContainer, ulBitsLen, pBlob));
}

API ULONG SKF_RSASignData(HCONTAINER hContainer, BYTE *pbData, ULONG ulDataLen,
                          BYTE *pbSignature, ULONG *pulSignLen)
{
    LOCKED(rsa_sign_data(hContainer, pbData, ulDataLen, pbSignature, pulSignLen));
}

API ULONG SKF_GenECCKeyPair(HCONTAINER hContainer, ULONG ulAlgId, ECCPUBLICKEYBLOB *pBlob)
{
    LOCKED(gen_ecc_key_pair(hContainer, ulAlgId, pBlob));
}

API ULONG SKF_ECCSignData(HCONTAINER hContainer, BYTE *pbDigest, ULONG ulDigestLen,
                          ECCSIGNATUREBLOB *pSignature)
{
    LOCKED(ecc_sign_data(hContainer, pbDigest, ulDigestLen, pSignature));
}

API ULONG SKF_ECCVerify(DEVHANDLE hDev, ECCPUBLICKEYBLOB *pECCPubKeyBlob, BYTE *pbData,
                        ULONG ulDataLen, ECCSIGNATUREBLOB *pSignature)
{
    LOCKED(ecc_verify(hDev, pECCPubKeyBlob, pbData, ulDataLen, pSignature));
}

API ULONG SKF_ExportPublicKey(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbBlob,
                              ULONG *pulBlobLen)
{
    LOCKED(export_public_key(hContainer, bSignFlag, pbBlob, pulBlobLen));
}

API ULONG SOFTSKF_ImportKeyPairPEM(HCONTAINER hContainer, BOOL bSignFlag, const BYTE *pbPem,
                                   ULONG ulPemLen)
{
    LOCKED(import_key_pair_pem(hContainer, bSignFlag, pbPem, ulPemLen));
}
