/*
 * bench_skf_raw — SM2 signatures per second through an SKF library, in a plain C loop.
 *
 * The floor the Python driver's overhead is measured against: the same SKF_ECCSignData calls
 * with nothing around them. Works with any SKF library that exports the standard functions
 * (it is loaded with dlopen), e.g. softhsm-fixtures/softskf/libsoftskf.so.
 *
 * Build:  gcc -O2 -Wall -o tests/bench/bench_skf_raw tests/bench/bench_skf_raw.c -ldl
 * Run:    export SOFTSKF_DIR=OUTDIR/skf          # a build of softhsm-fixtures/build.py
 *         echo 123456 | tests/bench/bench_skf_raw LIBRARY [-n COUNT] [-d DEVICE]
 *                                                 [-a APPLICATION] [-c CONTAINER]
 * The user PIN is read from stdin (never from the command line). Without -d/-a/-c the first
 * device, its first application and its first ECC container with a signing key are used.
 * Prints one line: the count, the time and the signatures per second; exit 0 on success.
 * Each signature is over a fixed e (32 bytes): hashing is the host's work and not measured.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef uint32_t ULONG;
typedef int32_t BOOL;
typedef void *HANDLE;

#pragma pack(1)
typedef struct {
    ULONG BitLen;
    unsigned char X[64];
    unsigned char Y[64];
} ECCPUBLICKEYBLOB;
typedef struct {
    unsigned char r[64];
    unsigned char s[64];
} ECCSIGNATUREBLOB;
#pragma pack()

#define SAR_OK 0
#define USER_TYPE 1
#define CONTAINER_ECC 2

typedef ULONG (*enum_fn)(HANDLE, char *, ULONG *);

static struct {
    ULONG (*EnumDev)(BOOL, char *, ULONG *);
    ULONG (*ConnectDev)(const char *, HANDLE *);
    ULONG (*DisConnectDev)(HANDLE);
    enum_fn EnumApplication;
    ULONG (*OpenApplication)(HANDLE, const char *, HANDLE *);
    ULONG (*VerifyPIN)(HANDLE, ULONG, const char *, ULONG *);
    enum_fn EnumContainer;
    ULONG (*OpenContainer)(HANDLE, const char *, HANDLE *);
    ULONG (*GetContainerType)(HANDLE, ULONG *);
    ULONG (*ECCSignData)(HANDLE, const unsigned char *, ULONG, ECCSIGNATUREBLOB *);
    ULONG (*ECCVerify)(HANDLE, ECCPUBLICKEYBLOB *, const unsigned char *, ULONG,
                       ECCSIGNATUREBLOB *);
    ULONG (*ExportPublicKey)(HANDLE, BOOL, unsigned char *, ULONG *);
} skf;

static void *symbol(void *lib, const char *name)
{
    void *fn = dlsym(lib, name);
    if (fn == NULL) {
        fprintf(stderr, "bench_skf_raw: the library lacks %s\n", name);
        exit(2);
    }
    return fn;
}

static void check(ULONG rv, const char *what)
{
    if (rv != SAR_OK) {
        fprintf(stderr, "bench_skf_raw: %s failed: 0x%08X\n", what, rv);
        exit(1);
    }
}

/* a name list (a\0b\0\0) from EnumDev/EnumApplication/EnumContainer; caller frees */
static char *list_names(ULONG (*call)(HANDLE, char *, ULONG *), HANDLE handle, const char *what)
{
    ULONG size = 0;
    check(call(handle, NULL, &size), what);
    char *names = calloc(1, (size_t)size + 2);
    if (names == NULL)
        exit(1);
    check(call(handle, names, &size), what);
    return names;
}

static ULONG enum_dev_adapter(HANDLE unused, char *names, ULONG *size)
{
    (void)unused;
    return skf.EnumDev(1, names, size);
}

static double seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long count = 1000;
    const char *device = NULL, *application = NULL, *container = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:d:a:c:")) != -1) {
        switch (opt) {
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'd': device = optarg; break;
        case 'a': application = optarg; break;
        case 'c': container = optarg; break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || count <= 0)
        goto usage;

    void *lib = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "bench_skf_raw: %s\n", dlerror());
        return 2;
    }
    *(void **)&skf.EnumDev = symbol(lib, "SKF_EnumDev");
    *(void **)&skf.ConnectDev = symbol(lib, "SKF_ConnectDev");
    *(void **)&skf.DisConnectDev = symbol(lib, "SKF_DisConnectDev");
    *(void **)&skf.EnumApplication = symbol(lib, "SKF_EnumApplication");
    *(void **)&skf.OpenApplication = symbol(lib, "SKF_OpenApplication");
    *(void **)&skf.VerifyPIN = symbol(lib, "SKF_VerifyPIN");
    *(void **)&skf.EnumContainer = symbol(lib, "SKF_EnumContainer");
    *(void **)&skf.OpenContainer = symbol(lib, "SKF_OpenContainer");
    *(void **)&skf.GetContainerType = symbol(lib, "SKF_GetContainerType");
    *(void **)&skf.ECCSignData = symbol(lib, "SKF_ECCSignData");
    *(void **)&skf.ECCVerify = symbol(lib, "SKF_ECCVerify");
    *(void **)&skf.ExportPublicKey = symbol(lib, "SKF_ExportPublicKey");

    char pin[64] = {0};
    if (fgets(pin, sizeof pin, stdin) == NULL) {
        fprintf(stderr, "bench_skf_raw: give the user PIN on stdin\n");
        return 2;
    }
    pin[strcspn(pin, "\r\n")] = 0;

    char *devices = list_names(enum_dev_adapter, NULL, "SKF_EnumDev");
    if (device == NULL)
        device = devices;
    if (*device == 0) {
        fprintf(stderr, "bench_skf_raw: no device (is SOFTSKF_DIR set?)\n");
        return 1;
    }
    HANDLE dev, app, con = NULL;
    check(skf.ConnectDev(device, &dev), "SKF_ConnectDev");
    char *apps = list_names(skf.EnumApplication, dev, "SKF_EnumApplication");
    check(skf.OpenApplication(dev, application ? application : apps, &app), "SKF_OpenApplication");
    ULONG retries = 0;
    ULONG rv = skf.VerifyPIN(app, USER_TYPE, pin, &retries);
    memset(pin, 0, sizeof pin);
    check(rv, "SKF_VerifyPIN");

    ECCPUBLICKEYBLOB key;
    ULONG key_len = sizeof key;
    char *containers = list_names(skf.EnumContainer, app, "SKF_EnumContainer");
    for (const char *name = container ? container : containers; *name; name += strlen(name) + 1) {
        ULONG type = 0;
        check(skf.OpenContainer(app, name, &con), "SKF_OpenContainer");
        key_len = sizeof key;
        if (skf.GetContainerType(con, &type) == SAR_OK && type == CONTAINER_ECC
            && skf.ExportPublicKey(con, 1, (unsigned char *)&key, &key_len) == SAR_OK) {
            container = name;
            break;
        }
        con = NULL;
        if (name == container)
            break;
    }
    if (con == NULL) {
        fprintf(stderr, "bench_skf_raw: no ECC container with a signing key\n");
        return 1;
    }

    unsigned char e[32];
    for (int i = 0; i < 32; i++)
        e[i] = (unsigned char)(i * 7 + 1);
    ECCSIGNATUREBLOB sig;
    for (int i = 0; i < 10; i++) /* warm up: key load and caches */
        check(skf.ECCSignData(con, e, sizeof e, &sig), "SKF_ECCSignData");
    double start = seconds();
    for (long i = 0; i < count; i++)
        check(skf.ECCSignData(con, e, sizeof e, &sig), "SKF_ECCSignData");
    double elapsed = seconds() - start;
    check(skf.ECCVerify(dev, &key, e, sizeof e, &sig), "SKF_ECCVerify of the last signature");

    printf("%ld SM2 signatures in %.3f s: %.0f signatures/s (%.3f ms each) [%s / %s]\n", count,
           elapsed, (double)count / elapsed, elapsed * 1000.0 / (double)count, device, container);
    skf.DisConnectDev(dev);
    free(devices);
    free(apps);
    free(containers);
    dlclose(lib);
    return 0;
usage:
    fprintf(stderr,
            "usage: echo PIN | %s LIBRARY [-n COUNT] [-d DEVICE] [-a APPLICATION] [-c CONTAINER]\n",
            argv[0]);
    return 2;
}
