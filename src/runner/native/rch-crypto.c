/*
 * rch-crypto: the protected-settings decryptor of the Run Command handler (protocol.md §6).
 *
 * Usage: rch-crypto   (started once by the daemon; stdin and stdout are pipes to it)
 *
 * A long-lived helper, so a run with protected settings costs one RSA operation in a process that
 * already exists instead of an `openssl cms` process (≈ 10 ms on 2 CPUs; targets.md: spawn
 * overhead, dispatch latency). libcrypto is loaded at run time with dlopen: building needs no
 * OpenSSL headers, and a VM without a usable libcrypto only makes the daemon fall back to
 * `openssl cms`. This is its own dynamically linked binary, not a mode of rch-exec: rch-exec is
 * linked statically so it runs on any distro, and a static glibc program can dlopen only with the
 * exact glibc it was linked against.
 *
 * Frames, both ways: a little-endian u32 length, then that many bytes.
 *   hello (the first frame it writes): status 0 + "<library>: <OpenSSL version>", or status 2 +
 *     why libcrypto is unusable (and then it exits).
 *   request: certificate path NUL, private-key path NUL, the DER CMS EnvelopedData.
 *   reply: status 0 + the plaintext, or status 1 + a short printable cause.
 * Requests are answered one at a time, in order. It exits on EOF of stdin. It never writes anything
 * but frames to stdout (the daemon's pipe); diagnostics go to stderr. The plaintext exists only in
 * this process's memory: never on disk, in argv or in the environment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REQUEST (64u << 20)
#define STATUS_OK 0
#define STATUS_FAILED 1
#define STATUS_UNAVAILABLE 2
#define BIO_CTRL_INFO 3 /* BIO_get_mem_data is BIO_ctrl(b, BIO_CTRL_INFO, 0, &data) */

typedef int pem_password_cb(char *buf, int size, int rwflag, void *userdata);

/* The libcrypto functions we use, with their prototypes written here (no OpenSSL headers). They are
 * the same in OpenSSL 1.1 and 3; opaque types are void. */
static struct {
    const char *(*OpenSSL_version)(int type);
    void *(*BIO_new_file)(const char *path, const char *mode);
    void *(*BIO_new_mem_buf)(const void *data, int size);
    void *(*BIO_new)(const void *method);
    const void *(*BIO_s_mem)(void);
    const void *(*BIO_s_secmem)(void);
    long (*BIO_ctrl)(void *bio, int cmd, long larg, void *parg);
    int (*BIO_free)(void *bio);
    void *(*PEM_read_bio_X509)(void *bio, void **x, pem_password_cb *cb, void *u);
    void *(*PEM_read_bio_PrivateKey)(void *bio, void **x, pem_password_cb *cb, void *u);
    void (*X509_free)(void *x509);
    void (*EVP_PKEY_free)(void *pkey);
    void *(*d2i_CMS_bio)(void *bio, void **cms);
    int (*CMS_decrypt_set1_pkey)(void *cms, void *pkey, void *cert);
    int (*CMS_decrypt)(void *cms, void *pkey, void *cert, void *dcont, void *out, unsigned int flags);
    void (*CMS_ContentInfo_free)(void *cms);
    unsigned long (*ERR_get_error)(void);
    void (*ERR_error_string_n)(unsigned long e, char *buf, size_t len);
    void (*ERR_clear_error)(void);
} api;

static void diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("rch-crypto: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Reads exactly `size` bytes; 0 on EOF before the first byte, -1 on error or a short read. */
static int read_exact(void *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(STDIN_FILENO, (char *)buffer + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return done == 0 && n == 0 ? 0 : -1;
        done += (size_t)n;
    }
    return 1;
}

static int write_all(const void *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(STDOUT_FILENO, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data = (const char *)data + n, size -= (size_t)n;
    }
    return 0;
}

/* One frame: length (status byte included), status, body. Failure means the daemon is gone. */
static int send_frame(unsigned char status, const void *body, size_t size) {
    uint32_t length = (uint32_t)size + 1;
    unsigned char header[5] = {length & 0xff, (length >> 8) & 0xff, (length >> 16) & 0xff, length >> 24, status};
    return write_all(header, sizeof header) < 0 || write_all(body, size) < 0 ? -1 : 0;
}

static int send_text(unsigned char status, const char *text) {
    return send_frame(status, text, strlen(text));
}

/* dlsym into a function pointer: POSIX guarantees the conversion works. */
#define LOAD(name) ((api.name = (__typeof__(api.name))dlsym(lib, #name)) != NULL || (missing = #name, 0))

/* Binds every function of `lib`; returns the name of the first missing one, or NULL. */
static const char *bind_api(void *lib) {
    const char *missing = NULL;
    (void)(LOAD(OpenSSL_version) && LOAD(BIO_new_file) && LOAD(BIO_new_mem_buf) && LOAD(BIO_new) && LOAD(BIO_s_mem) &&
           LOAD(BIO_ctrl) && LOAD(BIO_free) && LOAD(PEM_read_bio_X509) && LOAD(PEM_read_bio_PrivateKey) && LOAD(X509_free) &&
           LOAD(EVP_PKEY_free) && LOAD(d2i_CMS_bio) && LOAD(CMS_decrypt_set1_pkey) && LOAD(CMS_decrypt) &&
           LOAD(CMS_ContentInfo_free) && LOAD(ERR_get_error) && LOAD(ERR_error_string_n) && LOAD(ERR_clear_error));
    /* Optional (1.1.0+): a memory BIO that wipes its buffer when it grows or is freed. */
    api.BIO_s_secmem = (__typeof__(api.BIO_s_secmem))dlsym(lib, "BIO_s_secmem");
    return missing;
}

/* Loads the first usable libcrypto (OpenSSL 3, then 1.1, then whatever libcrypto.so is); fills
 * `name` with what the hello frame says, or `why` with the reason none is usable. OpenSSL_version
 * is required: libcrypto 1.0 lacks it, and also lacks the automatic initialisation we rely on. */
static int load_libcrypto(char *name, size_t name_size, char *why, size_t why_size) {
    static const char *const candidates[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
    snprintf(why, why_size, "no libcrypto.so.3, libcrypto.so.1.1 or libcrypto.so");
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        void *lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) continue;
        const char *missing = bind_api(lib);
        if (!missing) {
            snprintf(name, name_size, "%s: %s", candidates[i], api.OpenSSL_version(0));
            return 0;
        }
        snprintf(why, why_size, "%s has no %s", candidates[i], missing);
        dlclose(lib);
    }
    return -1;
}

/* The agent's keys are not encrypted; never let OpenSSL prompt for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return -1;
}

/* "<stage>: <first line of OpenSSL's error queue>", printable, into cause. */
static void describe_failure(const char *stage, char *cause, size_t size) {
    char detail[256];
    unsigned long code = api.ERR_get_error();
    if (code) {
        api.ERR_error_string_n(code, detail, sizeof detail);
        snprintf(cause, size, "%s: %s", stage, detail);
    } else {
        snprintf(cause, size, "%s", stage); /* e.g. no recipient matches: openssl prints nothing more */
    }
    for (char *p = cause; *p; p++)
        if (*p < 0x20 || *p > 0x7e) *p = '?';
}

/* Reads one PEM object (`read` is PEM_read_bio_X509 or PEM_read_bio_PrivateKey) from a file. */
static void *read_pem(const char *path, void *(*read)(void *, void **, pem_password_cb *, void *)) {
    void *bio = api.BIO_new_file(path, "r");
    if (!bio) return NULL;
    void *object = read(bio, NULL, no_passphrase, NULL);
    api.BIO_free(bio);
    return object;
}

/* Parsed certificates and keys by path, reused while the file is unchanged (same inode, size,
 * mtime and ctime): parsing them costs about as much as the RSA operation itself. */
#define CACHE_SLOTS 8
static struct {
    char *path;
    struct stat st;
    void *object;
    void (*release)(void *);
} cache[CACHE_SLOTS];
static unsigned next_slot;

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void drop_slot(unsigned i) {
    if (cache[i].object) cache[i].release(cache[i].object);
    free(cache[i].path);
    cache[i].path = NULL, cache[i].object = NULL;
}

/* The object in `path`, from the cache or read now; owned by the cache (never freed by callers). */
static void *load_cached(const char *path, void *(*read)(void *, void **, pem_password_cb *, void *), void (*release)(void *)) {
    struct stat st;
    int found = stat(path, &st) == 0;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        if (!cache[i].path || strcmp(cache[i].path, path) != 0) continue;
        if (found && same_file(&cache[i].st, &st)) return cache[i].object;
        drop_slot(i); /* changed or gone: never use it again */
    }
    void *object = read_pem(path, read); /* also when stat failed: OpenSSL then says why */
    char *copy = object && found ? strdup(path) : NULL;
    /* Not cacheable (the file appeared between stat and open, or no memory): fail this request
     * rather than hand out an object nobody frees; the next one reads it again. */
    if (!copy) return object ? (release(object), NULL) : NULL;
    unsigned slot = next_slot++ % CACHE_SLOTS;
    drop_slot(slot);
    cache[slot].path = copy, cache[slot].st = st, cache[slot].object = object, cache[slot].release = release;
    return object;
}

/* Decrypts like `openssl cms -decrypt -inform DER -recip <crt> -inkey <prv>`: the recipient is
 * matched by the certificate, then the content is decrypted; the same stages fail with the same
 * words. Replies with the plaintext or the cause; returns -1 when the reply could not be sent. */
static int decrypt(const char *crt, const char *prv, const unsigned char *der, size_t size) {
    char cause[512];
    void *cert = NULL, *pkey = NULL, *in = NULL, *cms = NULL, *out = NULL;
    const char *stage = NULL;
    api.ERR_clear_error();
    if (!(cert = load_cached(crt, api.PEM_read_bio_X509, api.X509_free))) stage = "unable to load recipient certificate";
    else if (!(pkey = load_cached(prv, api.PEM_read_bio_PrivateKey, api.EVP_PKEY_free))) stage = "unable to load private key";
    else if (!(in = api.BIO_new_mem_buf(der, (int)size)) || !(cms = api.d2i_CMS_bio(in, NULL))) stage = "Error reading SMIME Content Info";
    else if (!api.CMS_decrypt_set1_pkey(cms, pkey, cert)) stage = "Error decrypting CMS using private key";
    else if (!(out = api.BIO_new(api.BIO_s_secmem ? api.BIO_s_secmem() : api.BIO_s_mem())) ||
             !api.CMS_decrypt(cms, NULL, NULL, NULL, out, 0)) stage = "Error decrypting CMS structure";
    int sent;
    if (stage) {
        describe_failure(stage, cause, sizeof cause);
        sent = send_text(STATUS_FAILED, cause);
    } else {
        char *plaintext = NULL;
        long length = api.BIO_ctrl(out, BIO_CTRL_INFO, 0, &plaintext);
        sent = send_frame(STATUS_OK, plaintext, length > 0 ? (size_t)length : 0);
    }
    if (out) api.BIO_free(out); /* a secmem BIO wipes the plaintext here */
    if (cms) api.CMS_ContentInfo_free(cms);
    if (in) api.BIO_free(in);
    api.ERR_clear_error();
    return sent;
}

/* Splits a request into its two NUL-terminated paths and the DER after them; -1 if malformed. */
static int split_request(const char *payload, size_t size, const char **crt, const char **prv, const unsigned char **der, size_t *der_size) {
    size_t crt_len = strnlen(payload, size);
    if (crt_len == 0 || crt_len + 1 >= size) return -1;
    const char *key = payload + crt_len + 1;
    size_t key_len = strnlen(key, size - crt_len - 1);
    if (key_len == 0 || crt_len + key_len + 2 > size) return -1;
    *crt = payload, *prv = key;
    *der = (const unsigned char *)key + key_len + 1;
    *der_size = size - crt_len - key_len - 2;
    return 0;
}

/* Serves one request from stdin; 0 when served, -1 on EOF, a broken frame or a gone daemon. */
static int serve_request(void) {
    unsigned char header[4];
    if (read_exact(header, sizeof header) <= 0) return -1;
    uint32_t size = header[0] | header[1] << 8 | header[2] << 16 | (uint32_t)header[3] << 24;
    if (size == 0 || size > MAX_REQUEST) return diag("request of %u bytes refused", size), -1;
    char *payload = malloc(size);
    if (!payload || read_exact(payload, size) <= 0) return free(payload), diag("short request"), -1;
    const char *crt, *prv;
    const unsigned char *der;
    size_t der_size;
    int sent = split_request(payload, size, &crt, &prv, &der, &der_size) < 0 ? send_text(STATUS_FAILED, "malformed request")
                                                                             : decrypt(crt, prv, der, der_size);
    free(payload);
    return sent;
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) return diag("usage: rch-crypto (frames on stdin and stdout; see the source)"), 2;
    signal(SIGPIPE, SIG_IGN); /* a gone daemon shows up as a failed write */
    /* No core dump and no same-user ptrace: the process holds private keys and plaintexts. */
    prctl(PR_SET_DUMPABLE, 0);
    char name[256], why[256];
    if (load_libcrypto(name, sizeof name, why, sizeof why) < 0) return send_text(STATUS_UNAVAILABLE, why), 0;
    if (send_text(STATUS_OK, name) < 0) return 0;
    while (serve_request() == 0) {}
    return 0;
}
