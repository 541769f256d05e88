/*
 * rch-enable: the Linux fast path of `enable` (issues 11.4, 16.3).
 *
 * Usage: rch-enable NODE CLI enable [args...]   (run by bin/runcommand-handler for `enable` only)
 *
 * The agent runs `enable` for every run command on every goal state, and node alone needs 100 ms
 * and more of CPU to start on a small VM. When a daemon already serves this install, this client
 * hands it the whole enable in one request and exits 0, and node never starts:
 *   1. reads the endpoint file the daemon wrote into the package root (ENDPOINT_FILE: the socket's
 *      path; src/handler/infra/endpoint-file.ts writes it);
 *   2. checks the socket as the node client does (isTrustedEndpoint in ipc.ts): a socket owned by
 *      this uid, named daemon.sock, in a directory owned by this uid that no one else can enter,
 *      next to the token file; only then reads the token;
 *   3. sends one request line (newline-delimited JSON with the token, as sendIpcRequest does): op
 *      `fastEnable`, this command's argv, its working directory, its pid and the variables
 *      `enable` computes from (RUNCOMMAND_HANDLER_*, AZURE_GUEST_AGENT_*, ConfigExtensionName,
 *      ConfigSequenceNumber). The daemon resolves them exactly as `enable` would
 *      (src/handler/daemon/fast-enable.ts), and does the enable only if they name the install it
 *      serves;
 *   4. exits 0 on the one reply that says it did ({"ok":true,"handled":true}).
 * Anything else — no endpoint file, an untrusted or missing socket, an unreadable token, a request
 * that would not fit, a value that is not UTF-8, a refused connection, any other reply, no reply in
 * REPLY_TIMEOUT_MS — and it execs NODE CLI enable [args...], exactly what the shim would have run:
 * the fast path only ever saves work, it never decides an outcome (invalid identity variables
 * included: node's enable reports them, with its own message and exit code).
 * It prints nothing itself and never writes the token anywhere but to the socket.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* In the package root, next to bin/ and dist/ (src/handler/infra/endpoint-file.ts). */
#define ENDPOINT_FILE ".daemon-endpoint"
#define SOCKET_NAME "daemon.sock"
#define TOKEN_NAME "ipc-token"
/* The daemon reads at most this much of a request line (defaultIpcLimits in ipc.ts). */
#define MAX_REQUEST 4096
/* sun_path holds 108 bytes, NUL included (maxSocketPathBytes in ipc.ts). */
#define MAX_SOCKET_PATH 107
#define MAX_TOKEN 128
#define MAX_REPLY 512
/* The daemon answers in a few ms; a busy one may take longer, and then node's enable, run after
 * this, does the same work again (enable is idempotent). */
#define REPLY_TIMEOUT_MS 2000
#define HANDLED_REPLY "{\"ok\":true,\"handled\":true}"

static char **fallback_argv;

/* Runs node's enable instead, as the shim would have; never returns. */
static void fall_back(void) {
    execvp(fallback_argv[0], fallback_argv);
    fprintf(stderr, "runcommand-handler: cannot run %s: %s\n", fallback_argv[0], strerror(errno));
    exit(127);
}

struct request {
    char text[MAX_REQUEST + 1];
    size_t length;
    int unusable; /* too long, or a value that is not UTF-8 */
};

static void put_bytes(struct request *request, const char *bytes, size_t count) {
    if (request->unusable || count > MAX_REQUEST - request->length) {
        request->unusable = 1;
        return;
    }
    memcpy(request->text + request->length, bytes, count);
    request->length += count;
}

static void put_text(struct request *request, const char *text) {
    put_bytes(request, text, strlen(text));
}

/* Length of the UTF-8 sequence at `s` (of at most `left` bytes), 0 when it is not valid UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF included, as node decodes them). */
static size_t utf8_length(const unsigned char *s, size_t left) {
    if (s[0] < 0x80) return 1;
    size_t count;
    unsigned int point;
    if ((s[0] & 0xe0) == 0xc0) count = 2, point = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0) count = 3, point = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0) count = 4, point = s[0] & 0x07;
    else return 0;
    if (count > left) return 0;
    for (size_t i = 1; i < count; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        point = (point << 6) | (s[i] & 0x3f);
    }
    static const unsigned int smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (point < smallest[count] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return 0;
    return count;
}

/* A JSON string of the first `count` bytes of `value`: quotes, backslashes and control characters
 * escaped, UTF-8 passed through. */
static void put_json_string(struct request *request, const char *value, size_t count) {
    put_bytes(request, "\"", 1);
    for (size_t i = 0; i < count && !request->unusable;) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            char escaped[2] = {'\\', (char)c};
            put_bytes(request, escaped, 2);
            i++;
        } else if (c < 0x20) {
            char escaped[8];
            snprintf(escaped, sizeof escaped, "\\u%04x", c);
            put_text(request, escaped);
            i++;
        } else {
            size_t length = utf8_length((const unsigned char *)value + i, count - i);
            if (length == 0) {
                request->unusable = 1;
                return;
            }
            put_bytes(request, value + i, length);
            i += length;
        }
    }
    put_bytes(request, "\"", 1);
}

/* Whether `enable` reads this variable (the daemon checks each name again). */
static int is_enable_variable(const char *entry, size_t name_length) {
    static const char *const prefixes[] = {"RUNCOMMAND_HANDLER_", "AZURE_GUEST_AGENT_"};
    static const char *const names[] = {"ConfigExtensionName", "ConfigSequenceNumber"};
    for (size_t i = 0; i < 2; i++) {
        size_t length = strlen(prefixes[i]);
        if (name_length > length && strncmp(entry, prefixes[i], length) == 0) return 1;
    }
    for (size_t i = 0; i < 2; i++) {
        if (name_length == strlen(names[i]) && strncmp(entry, names[i], name_length) == 0) return 1;
    }
    return 0;
}

/* Whether the variable named by the first `name_length` bytes of `entry` comes again later in the
 * environment: node would see one of the two values and this client cannot tell which. */
static int is_repeated(char **entry, size_t name_length) {
    for (char **other = entry + 1; *other != NULL; other++) {
        if (strncmp(*other, *entry, name_length + 1) == 0) return 1;
    }
    return 0;
}

static void put_environment(struct request *request) {
    put_text(request, ",\"env\":{");
    int first = 1;
    for (char **entry = environ; *entry != NULL; entry++) {
        const char *equals = strchr(*entry, '=');
        if (equals == NULL) continue;
        size_t name_length = (size_t)(equals - *entry);
        if (!is_enable_variable(*entry, name_length)) continue;
        if (is_repeated(entry, name_length)) request->unusable = 1;
        if (!first) put_text(request, ",");
        first = 0;
        put_json_string(request, *entry, name_length);
        put_text(request, ":");
        put_json_string(request, equals + 1, strlen(equals + 1));
    }
    put_text(request, "}");
}

/* Reads at most `size - 1` bytes of a small file into `buffer` (NUL-terminated); -1 on error. */
static ssize_t read_small_file(const char *path, char *buffer, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    size_t total = 0;
    while (total < size - 1) {
        ssize_t got = read(fd, buffer + total, size - 1 - total);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            close(fd);
            return -1;
        }
        if (got == 0) break;
        total += (size_t)got;
    }
    close(fd);
    buffer[total] = '\0';
    return (ssize_t)total;
}

/* The socket the endpoint file names: an absolute path ending in /daemon.sock that fits sun_path. */
static int read_socket_path(const char *package_root, char *socket_path) {
    char path[4096];
    char text[MAX_SOCKET_PATH + 2];
    if (snprintf(path, sizeof path, "%s/%s", package_root, ENDPOINT_FILE) >= (int)sizeof path) return -1;
    ssize_t length = read_small_file(path, text, sizeof text);
    if (length < 2 || text[length - 1] != '\n') return -1;
    text[length - 1] = '\0';
    size_t path_length = (size_t)length - 1;
    size_t suffix = strlen("/" SOCKET_NAME);
    if (text[0] != '/' || path_length > MAX_SOCKET_PATH || path_length <= suffix || strlen(text) != path_length) return -1;
    if (strcmp(text + path_length - suffix, "/" SOCKET_NAME) != 0) return -1;
    memcpy(socket_path, text, path_length + 1);
    return 0;
}

/* isTrustedEndpoint (ipc.ts): only this uid can reach a socket in a directory of its own that no
 * one else can enter, so whoever listens there runs as this uid; reads the token next to it. */
static int read_trusted_token(const char *socket_path, char *token) {
    char folder[MAX_SOCKET_PATH + 1];
    char token_path[MAX_SOCKET_PATH + 16];
    size_t folder_length = strlen(socket_path) - strlen("/" SOCKET_NAME);
    memcpy(folder, socket_path, folder_length);
    folder[folder_length] = '\0';
    if (folder_length == 0) strcpy(folder, "/");
    struct stat folder_stat, socket_stat;
    uid_t uid = getuid();
    if (lstat(folder, &folder_stat) != 0 || lstat(socket_path, &socket_stat) != 0) return -1;
    if (!S_ISDIR(folder_stat.st_mode) || folder_stat.st_uid != uid || (folder_stat.st_mode & 077) != 0) return -1;
    if (!S_ISSOCK(socket_stat.st_mode) || socket_stat.st_uid != uid) return -1;
    snprintf(token_path, sizeof token_path, "%s/%s", folder_length == 0 ? "" : folder, TOKEN_NAME);
    ssize_t length = read_small_file(token_path, token, MAX_TOKEN);
    if (length <= 0 || length >= MAX_TOKEN - 1) return -1;
    /* The daemon's tokens are hex (ipc.ts makeToken); anything else is not one of its files. */
    for (ssize_t i = 0; i < length; i++) {
        if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f'))) return -1;
    }
    return 0;
}

static void build_request(struct request *request, char **args, int count, const char *token) {
    char cwd[4096];
    char pid[32];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        request->unusable = 1;
        return;
    }
    put_text(request, "{\"op\":\"fastEnable\",\"argv\":[");
    for (int i = 0; i < count; i++) {
        if (i > 0) put_text(request, ",");
        put_json_string(request, args[i], strlen(args[i]));
    }
    put_text(request, "],\"cwd\":");
    put_json_string(request, cwd, strlen(cwd));
    snprintf(pid, sizeof pid, ",\"pid\":%ld", (long)getpid());
    put_text(request, pid);
    put_environment(request);
    put_text(request, ",\"token\":\"");
    put_text(request, token);
    put_text(request, "\"}\n");
}

static long remaining_ms(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Waits for `events` on `fd` until the deadline; 0 when ready. */
static int wait_for(int fd, short events, const struct timespec *deadline) {
    for (;;) {
        long left = remaining_ms(deadline);
        if (left <= 0) return -1;
        struct pollfd poll_fd = {.fd = fd, .events = events};
        int ready = poll(&poll_fd, 1, (int)left);
        if (ready < 0 && errno == EINTR) continue;
        return ready == 1 ? 0 : -1;
    }
}

/* Sends the request and reads the reply's first line; 0 when the daemon says it did the enable. */
static int exchange(const char *socket_path, const struct request *request) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += REPLY_TIMEOUT_MS / 1000;
    deadline.tv_nsec += (REPLY_TIMEOUT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000L;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path, socket_path, strlen(socket_path) + 1);
    int result = -1;
    char reply[MAX_REPLY + 1];
    size_t received = 0;
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        /* A full backlog: wait for the daemon to accept, within the deadline. */
        if (errno != EAGAIN && errno != EINPROGRESS) goto done;
        int error = 0;
        socklen_t size = sizeof error;
        if (wait_for(fd, POLLOUT, &deadline) != 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) goto done;
    }
    for (size_t sent = 0; sent < request->length;) {
        ssize_t wrote = send(fd, request->text + sent, request->length - sent, MSG_NOSIGNAL);
        if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLOUT, &deadline) != 0) goto done;
            continue;
        }
        if (wrote <= 0) goto done;
        sent += (size_t)wrote;
    }
    while (received < MAX_REPLY) {
        ssize_t got = recv(fd, reply + received, MAX_REPLY - received, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLIN, &deadline) != 0) goto done;
            continue;
        }
        if (got <= 0) goto done;
        received += (size_t)got;
        reply[received] = '\0';
        char *newline = memchr(reply, '\n', received);
        if (newline == NULL) continue;
        *newline = '\0';
        result = strcmp(reply, HANDLED_REPLY) == 0 ? 0 : -1;
        break;
    }
done:
    close(fd);
    return result;
}

/* The package root from the CLI path the shim passes (<root>/bin/../dist/cli.js): two levels up. */
static int to_package_root(const char *cli, char *root, size_t size) {
    const char *suffix = "/dist/cli.js";
    size_t length = strlen(cli), suffix_length = strlen(suffix);
    if (length <= suffix_length || length - suffix_length >= size || strcmp(cli + length - suffix_length, suffix) != 0) return -1;
    memcpy(root, cli, length - suffix_length);
    root[length - suffix_length] = '\0';
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[3], "enable") != 0) {
        fprintf(stderr, "usage: rch-enable NODE CLI enable [args...]\n");
        return 2;
    }
    fallback_argv = argv + 1;
    char package_root[4096];
    char socket_path[MAX_SOCKET_PATH + 1];
    char token[MAX_TOKEN];
    static struct request request;
    if (to_package_root(argv[2], package_root, sizeof package_root) != 0) fall_back();
    if (read_socket_path(package_root, socket_path) != 0) fall_back();
    if (read_trusted_token(socket_path, token) != 0) fall_back();
    build_request(&request, argv + 3, argc - 3, token);
    memset(token, 0, sizeof token);
    if (request.unusable) fall_back();
    int handled = exchange(socket_path, &request);
    memset(request.text, 0, sizeof request.text);
    if (handled != 0) fall_back();
    return 0;
}
