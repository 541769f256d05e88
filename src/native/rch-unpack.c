/*
 * rch-unpack: unpacks the package's Node runtime on the handler's first command.
 *
 * Usage: rch-unpack PACKED TARGET SHA256   (run by bin/runcommand-handler when TARGET is missing)
 *
 * The Linux zip ships node as an xz stream (bin/node.xz, stored): deflate leaves the stripped
 * binary at 32 MB, over the package target (targets.md: ≤ 30 MB), xz with the x86 filter at 21 MB.
 * The agent unzips with Python's zipfile, which only knows deflate and stored, so node is unpacked
 * here, once, by the first command (install, as a rule; any command may be first).
 *
 * Linked statically against liblzma (and glibc where libc.a exists): a minimal VM may have neither
 * the xz tool nor liblzma. Safe against a concurrent first command and a crash:
 *   - an exclusive flock on PACKED serialises the unpackers; whoever gets it second finds TARGET;
 *   - the output goes to TARGET.unpacking (a leftover of a killed unpacker is removed first), is
 *     checked against SHA256 (hex, the shim carries it) and only then renamed to TARGET, so TARGET
 *     is either absent or the whole verified binary;
 *   - PACKED is removed after the rename (the runtime is then on disk once, not twice).
 * Exit status 0 when TARGET is there (unpacked now or before), else 1 with one line on stderr
 * naming the file and the cause; the agent records the command's stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

#define CHUNK (1u << 20)
/* node is written in pieces of this size, not CHUNK: the kernel may keep a file in page-cache
 * folios as large as the writes that filled it, and maps a whole folio when a process faults on
 * any page of it. Written 1 MiB at a time, every node process mapped ≈ 10 MB more of the binary
 * than it touches (a bare node: 43 MB resident of the file vs 33 MB with 16 KiB writes). */
#define WRITE_PIECE (16u << 10)
/* The decoder needs the dictionary (64 MiB at xz preset 9) plus a little; refuse more. */
#define MEMORY_LIMIT (256ull << 20)

static const char *packed_path;

static void fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("rch-unpack: ", stderr);
    vfprintf(stderr, format, args);
    fputs("\n", stderr);
    va_end(args);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int write_all(int fd, const uint8_t *data, size_t size) {
    while (size > 0) {
        ssize_t written = write(fd, data, size < WRITE_PIECE ? size : WRITE_PIECE);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return -1;
        data += written;
        size -= (size_t)written;
    }
    return 0;
}

static const char *lzma_cause(lzma_ret ret) {
    switch (ret) {
    case LZMA_FORMAT_ERROR: return "not an xz stream";
    case LZMA_OPTIONS_ERROR: return "unsupported xz options";
    case LZMA_DATA_ERROR: return "corrupt xz data";
    case LZMA_BUF_ERROR: return "truncated xz stream";
    case LZMA_MEMLIMIT_ERROR: return "xz stream needs too much memory";
    case LZMA_MEM_ERROR: return "out of memory";
    default: return "xz decoder error";
    }
}

/* Decodes the xz stream on `in` to `out`, hashing what it writes. 0, or -1 after saying why. */
static int decode(int in, int out, struct sha256 *hash, uint8_t *input, uint8_t *output) {
    lzma_stream stream = LZMA_STREAM_INIT;
    lzma_ret ret = lzma_stream_decoder(&stream, MEMORY_LIMIT, 0);
    lzma_action action = LZMA_RUN;
    while (ret == LZMA_OK) {
        if (stream.avail_in == 0 && action == LZMA_RUN) {
            ssize_t got = read(in, input, CHUNK);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) { fail("%s: read: %s", packed_path, strerror(errno)); lzma_end(&stream); return -1; }
            stream.next_in = input;
            stream.avail_in = (size_t)got;
            if (got == 0) action = LZMA_FINISH;
        }
        stream.next_out = output;
        stream.avail_out = CHUNK;
        ret = lzma_code(&stream, action);
        size_t produced = CHUNK - stream.avail_out;
        sha256_update(hash, output, produced);
        if (write_all(out, output, produced) != 0) { fail("writing node: %s", strerror(errno)); lzma_end(&stream); return -1; }
    }
    /* Data after the end of the stream means a different file than the packager wrote. */
    int trailing = ret == LZMA_STREAM_END && (stream.avail_in > 0 || (action == LZMA_RUN && read(in, input, 1) != 0));
    lzma_end(&stream);
    if (ret != LZMA_STREAM_END) { fail("%s is corrupt (%s): reinstall the extension", packed_path, lzma_cause(ret)); return -1; }
    if (trailing) { fail("%s is corrupt (data after the xz stream): reinstall the extension", packed_path); return -1; }
    return 0;
}

/* Unpacks to `temp`, verifies, renames to `target`. 0, or -1 after saying why (temp removed). */
static int unpack(int in, const char *temp, const char *target, const char *expected) {
    unlink(temp);
    int out = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0700);
    if (out < 0) { fail("%s: %s", temp, strerror(errno)); return -1; }
    uint8_t *input = malloc(CHUNK), *output = malloc(CHUNK);
    struct sha256 hash;
    sha256_init(&hash);
    int ok = input != NULL && output != NULL && decode(in, out, &hash, input, output) == 0;
    free(input);
    free(output);
    char actual[65];
    if (ok) {
        sha256_hex(&hash, actual);
        if (strcmp(actual, expected) != 0) {
            fail("%s unpacks to a file with sha256 %s, not the expected %s: the package is corrupt; reinstall the extension", packed_path, actual, expected);
            ok = 0;
        }
    }
    if (ok && (fchmod(out, 0755) != 0 || fsync(out) != 0)) { fail("%s: %s", temp, strerror(errno)); ok = 0; }
    if (close(out) != 0 && ok) { fail("%s: %s", temp, strerror(errno)); ok = 0; }
    if (ok && rename(temp, target) != 0) { fail("renaming %s to %s: %s", temp, target, strerror(errno)); ok = 0; }
    if (!ok) { unlink(temp); return -1; }
    return 0;
}

/* Makes the rename durable before PACKED goes: a crash must not leave neither file. */
static void sync_directory_of(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int is_sha256_hex(const char *text) {
    if (strlen(text) != 64) return 0;
    for (const char *c = text; *c; c += 1) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4 || !is_sha256_hex(argv[3])) {
        fail("usage: rch-unpack PACKED TARGET SHA256 (64 lowercase hex digits)");
        return 1;
    }
    packed_path = argv[1];
    const char *target = argv[2];
    if (exists(target)) return 0;
    int in = open(packed_path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        /* A concurrent unpacker renamed TARGET into place, then removed PACKED. */
        if (errno == ENOENT && exists(target)) return 0;
        fail("%s: %s (and %s is missing): reinstall the extension", packed_path, strerror(errno), target);
        return 1;
    }
    while (flock(in, LOCK_EX) != 0) {
        if (errno != EINTR) { fail("locking %s: %s", packed_path, strerror(errno)); return 1; }
    }
    if (exists(target)) return 0; /* unpacked by whoever held the lock before us */
    char temp[PATH_MAX];
    if (snprintf(temp, sizeof temp, "%s.unpacking", target) >= (int)sizeof temp) { fail("%s: path too long", target); return 1; }
    if (unpack(in, temp, target, argv[3]) != 0) return 1;
    sync_directory_of(target);
    if (unlink(packed_path) != 0 && errno != ENOENT) fail("removing %s: %s (node is unpacked all the same)", packed_path, strerror(errno));
    return 0;
}
