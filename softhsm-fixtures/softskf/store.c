/*
 * The on-disk store of libsoftskf: small "key=value" text files and whole files written
 * atomically (temporary file, fsync, rename), so that a reader in another process sees either
 * the old or the new content, never half of it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int key_valid(const char *key, size_t len)
{
    if (len == 0 || len >= KV_MAX_KEY)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int file_read(const char *path, size_t max, unsigned char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int saved = errno ? errno : EINVAL;
        close(fd);
        errno = saved;
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank while reading: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    static unsigned counter;
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
                     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const unsigned char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;
fail:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

int kv_load(const char *path, struct kv *kv)
{
    unsigned char *data;
    size_t len;
    memset(kv, 0, sizeof *kv);
    if (file_read(path, KV_MAX_FILE, &data, &len) != 0)
        return -1;
    if (memchr(data, 0, len) != NULL)
        goto bad;
    char *line = (char *)data;
    char *end = line + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        if (stop > line && stop[-1] == '\r')
            stop--;
        size_t line_len = (size_t)(stop - line);
        if (line_len > 0 && line[0] != '#') {
            char *eq = memchr(line, '=', line_len);
            if (eq == NULL)
                goto bad;
            size_t key_len = (size_t)(eq - line);
            size_t value_len = (size_t)(stop - eq - 1);
            if (!key_valid(line, key_len) || value_len >= KV_MAX_VALUE)
                goto bad;
            for (size_t i = 0; i < value_len; i++)
                if ((unsigned char)eq[1 + i] < 0x20 && eq[1 + i] != '\t')
                    goto bad;
            char key[KV_MAX_KEY], value[KV_MAX_VALUE];
            memcpy(key, line, key_len);
            key[key_len] = 0;
            memcpy(value, eq + 1, value_len);
            value[value_len] = 0;
            if (kv_set(kv, key, value) != 0)
                goto bad;
        }
        line = nl ? nl + 1 : end;
    }
    free(data);
    return 0;
bad:
    free(data);
    memset(kv, 0, sizeof *kv);
    errno = EINVAL;
    return -1;
}

const char *kv_get(const struct kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->count; i++)
        if (strcmp(kv->e[i].key, key) == 0)
            return kv->e[i].value;
    return NULL;
}

int kv_set(struct kv *kv, const char *key, const char *value)
{
    size_t key_len = strlen(key), value_len = strlen(value);
    if (!key_valid(key, key_len) || value_len >= KV_MAX_VALUE || strchr(value, '\n') != NULL) {
        errno = EINVAL;
        return -1;
    }
    size_t i;
    for (i = 0; i < kv->count; i++)
        if (strcmp(kv->e[i].key, key) == 0)
            break;
    if (i == kv->count) {
        if (kv->count >= KV_MAX_ENTRIES) {
            errno = E2BIG;
            return -1;
        }
        kv->count++;
        memcpy(kv->e[i].key, key, key_len + 1);
    }
    memcpy(kv->e[i].value, value, value_len + 1);
    return 0;
}

int kv_set_ulong(struct kv *kv, const char *key, unsigned long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lu", value);
    return kv_set(kv, key, text);
}

int kv_get_ulong(const struct kv *kv, const char *key, unsigned long min, unsigned long max,
                 unsigned long *out)
{
    const char *text = kv_get(kv, key);
    if (text == NULL || text[0] < '0' || text[0] > '9' || strlen(text) > 10)
        return -1;
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || *end != 0 || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

int kv_save(const char *path, const struct kv *kv, const char *header)
{
    size_t cap = 256 + kv->count * (KV_MAX_KEY + KV_MAX_VALUE + 2);
    char *buf = malloc(cap);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = 0;
    int n = snprintf(buf, cap, "# %s\n", header);
    if (n < 0 || (size_t)n >= 256) {
        free(buf);
        errno = EINVAL;
        return -1;
    }
    len = (size_t)n;
    for (size_t i = 0; i < kv->count; i++) {
        n = snprintf(buf + len, cap - len, "%s=%s\n", kv->e[i].key, kv->e[i].value);
        if (n < 0 || (size_t)n >= cap - len) {
            free(buf);
            errno = EINVAL;
            return -1;
        }
        len += (size_t)n;
    }
    int rc = file_write_atomic(path, buf, len, 0600);
    int saved = errno;
    free(buf);
    errno = saved;
    return rc;
}

int path_join(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int is_regular_file(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int is_directory(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char child[4096];
        if (path_join(child, sizeof child, path, entry->d_name) != 0) {
            rc = -1;
            continue;
        }
        if (is_directory(child)) {
            if (remove_tree(child) != 0)
                rc = -1;
        } else if (unlink(child) != 0 && errno != ENOENT) {
            rc = -1;
        }
    }
    closedir(dir);
    if (rmdir(path) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int name_valid(const char *name, size_t max)
{
    if (name == NULL || name[0] == 0 || name[0] == '.')
        return 0;
    size_t len = strnlen(name, max + 1);
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return 0;
    }
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int list_dirs_with(const char *dir, const char *marker, struct names *out)
{
    out->count = 0;
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return errno == ENOENT ? 0 : -1;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (!name_valid(entry->d_name, MAX_NAME))
            continue;
        char child[4096], mark[4096];
        if (path_join(child, sizeof child, dir, entry->d_name) != 0
            || path_join(mark, sizeof mark, child, marker) != 0)
            continue;
        if (!is_directory(child) || !is_regular_file(mark))
            continue;
        if (out->count >= MAX_NAMES)
            break;
        strcpy(out->v[out->count++], entry->d_name); /* length checked by name_valid */
    }
    closedir(handle);
    qsort(out->v, out->count, sizeof out->v[0], compare_names);
    return 0;
}

int hex_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    if (out_size < 2 * len + 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = 0;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, unsigned char *out, size_t len)
{
    if (in == NULL || strlen(in) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
