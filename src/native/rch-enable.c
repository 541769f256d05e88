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
 *      `fastEnable`, this command's argv, its working directory, its pid, whether it started the
 *      daemon (below) and the variables
 *      `enable` computes from (RUNCOMMAND_HANDLER_*, AZURE_GUEST_AGENT_*, ConfigExtensionName,
 *      ConfigSequenceNumber). The daemon resolves them exactly as `enable` would
 *      (src/handler/commands/fast-enable.ts), and does the enable only if they name the install it
 *      serves;
 *   4. exits 0 on the one reply that says it did ({"ok":true,"handled":true}).
 * When no daemon listens (no socket, or a stale one: ECONNREFUSED), the client starts it as node's
 * enable would (spawnDaemon in daemon-control.ts: node CLI daemon --handler-environment PATH, cwd the
 * package root, its own session, stdin /dev/null, stdout and stderr appended to daemon.out in the
 * log folder, this environment), connects as soon as it listens and sends the same request once
 * it has published its token: one node start instead of two. It does so only when it can tell that node's enable would
 * start exactly that daemon: the endpoint file records the HandlerEnvironment.json, log folder and
 * RUNCOMMAND_HANDLER_* variables of the daemon that wrote it, and this command's argv (nothing but
 * --handler-environment), variables and working directory (the package root) must resolve to the
 * same file with the same variables, and its identity variables must be valid; else, or if the
 * daemon does not publish a token within START_BUDGET_MS or exits, node's enable runs (and finds
 * the daemon if it came up late). Another version's daemon on the socket answers anything but
 * "handled", so node's enable is the one that asks it to stop.
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
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
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
/* How long a daemon this client started may take to publish its token (ensureDaemon's budget). */
#define START_BUDGET_MS 1200
#define MAX_ENDPOINT_FILE 16384
#define MAX_OPTIONS 64
#define HANDLER_ENVIRONMENT_FILE "HandlerEnvironment.json"
#define OPTION_PREFIX "RUNCOMMAND_HANDLER_"

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

/* What the endpoint file says (src/handler/infra/endpoint-file.ts). */
struct endpoint {
    char text[MAX_ENDPOINT_FILE];
    const char *socket;
    char folder[MAX_SOCKET_PATH + 1];
    /* Lines 2 and 3, and the sorted NAME=value lines after them; NULL / 0 when absent. */
    const char *handler_environment;
    const char *log_folder;
    const char *options[MAX_OPTIONS];
    size_t option_count;
};

/* Reads the endpoint file; its socket must be an absolute path ending in /daemon.sock that fits
 * sun_path, and the other lines, if any, absolute paths then options. */
static int read_endpoint(const char *package_root, struct endpoint *endpoint) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", package_root, ENDPOINT_FILE) >= (int)sizeof path) return -1;
    ssize_t length = read_small_file(path, endpoint->text, sizeof endpoint->text);
    if (length < 2 || length >= (ssize_t)sizeof endpoint->text - 1 || endpoint->text[length - 1] != '\n') return -1;
    if (strlen(endpoint->text) != (size_t)length) return -1;
    const char *lines[MAX_OPTIONS + 3];
    size_t count = 0;
    for (char *line = endpoint->text; *line != '\0';) {
        char *newline = strchr(line, '\n');
        *newline = '\0';
        if (count == MAX_OPTIONS + 3) return -1;
        lines[count++] = line;
        line = newline + 1;
    }
    const char *socket_path = lines[0];
    size_t path_length = strlen(socket_path), suffix = strlen("/" SOCKET_NAME);
    if (socket_path[0] != '/' || path_length > MAX_SOCKET_PATH || path_length <= suffix) return -1;
    if (strcmp(socket_path + path_length - suffix, "/" SOCKET_NAME) != 0) return -1;
    endpoint->socket = socket_path;
    memcpy(endpoint->folder, socket_path, path_length - suffix);
    endpoint->folder[path_length - suffix] = '\0';
    if (count >= 3 && lines[1][0] == '/' && lines[2][0] == '/') {
        endpoint->handler_environment = lines[1];
        endpoint->log_folder = lines[2];
        for (size_t i = 3; i < count; i++) endpoint->options[endpoint->option_count++] = lines[i];
    }
    return 0;
}

/* isTrustedEndpoint (ipc.ts): only this uid can reach a socket in a directory of its own that no
 * one else can enter, so whoever listens there runs as this uid. */
static int is_trusted_folder(const char *folder) {
    struct stat st;
    return lstat(folder, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 077) == 0;
}

static int is_trusted_socket(const char *socket_path) {
    struct stat st;
    return lstat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == getuid();
}

/* Reads the token next to the socket; the daemon's tokens are hex (ipc.ts makeToken). */
static int read_token(const struct endpoint *endpoint, char *token) {
    char token_path[MAX_SOCKET_PATH + 16];
    snprintf(token_path, sizeof token_path, "%s/%s", endpoint->folder, TOKEN_NAME);
    ssize_t length = read_small_file(token_path, token, MAX_TOKEN);
    if (length <= 0 || length >= MAX_TOKEN - 1) return -1;
    for (ssize_t i = 0; i < length; i++) {
        if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f'))) return -1;
    }
    return 0;
}

static void build_request(struct request *request, char **args, int count, const char *token, int started) {
    char cwd[PATH_MAX];
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
    put_text(request, started ? ",\"started\":true" : ",\"started\":false");
    put_environment(request);
    put_text(request, ",\"token\":\"");
    put_text(request, token);
    put_text(request, "\"}\n");
}

static struct timespec deadline_in(long ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000L;
    return deadline;
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

enum outcome { HANDLED, NO_DAEMON, NOT_HANDLED };

/* A connection to the socket, or -1 (NO_DAEMON in `why` when nothing listens: ECONNREFUSED,
 * ENOENT). A full backlog is waited out within the deadline. */
static int connect_socket(const char *socket_path, const struct timespec *deadline, enum outcome *why) {
    *why = NOT_HANDLED;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path, socket_path, strlen(socket_path) + 1);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0) return fd;
    if (errno == ECONNREFUSED || errno == ENOENT) *why = NO_DAEMON;
    int error = 0;
    socklen_t size = sizeof error;
    if ((errno == EAGAIN || errno == EINPROGRESS) && wait_for(fd, POLLOUT, deadline) == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0) return fd;
    close(fd);
    return -1;
}

/* Sends the request on `fd` (closed after) and reads the reply's first line: HANDLED when the
 * daemon says it did the enable. */
static enum outcome talk(int fd, const struct request *request, const struct timespec *deadline) {
    enum outcome outcome = NOT_HANDLED;
    char reply[MAX_REPLY + 1];
    size_t received = 0;
    for (size_t sent = 0; sent < request->length;) {
        ssize_t wrote = send(fd, request->text + sent, request->length - sent, MSG_NOSIGNAL);
        if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLOUT, deadline) != 0) goto done;
            continue;
        }
        if (wrote <= 0) goto done;
        sent += (size_t)wrote;
    }
    while (received < MAX_REPLY) {
        ssize_t got = recv(fd, reply + received, MAX_REPLY - received, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLIN, deadline) != 0) goto done;
            continue;
        }
        if (got <= 0) goto done;
        received += (size_t)got;
        reply[received] = '\0';
        char *newline = memchr(reply, '\n', received);
        if (newline == NULL) continue;
        *newline = '\0';
        if (strcmp(reply, HANDLED_REPLY) == 0) outcome = HANDLED;
        break;
    }
done:
    close(fd);
    return outcome;
}

/* Sends this enable to the daemon on the endpoint's socket, if it is trusted, on `fd` if it is a
 * connection already (else connects); `started`: this client started that daemon. NO_DAEMON when
 * nothing listens there. */
static enum outcome send_enable(const struct endpoint *endpoint, char **args, int count, int started, int fd) {
    static struct request request;
    char token[MAX_TOKEN];
    struct timespec deadline = deadline_in(REPLY_TIMEOUT_MS);
    if (!is_trusted_socket(endpoint->socket) || read_token(endpoint, token) != 0) {
        if (fd >= 0) close(fd);
        return NOT_HANDLED;
    }
    memset(&request, 0, sizeof request);
    build_request(&request, args, count, token, started);
    memset(token, 0, sizeof token);
    enum outcome outcome = NOT_HANDLED;
    if (request.unusable) {
        if (fd >= 0) close(fd);
    } else {
        if (fd < 0) fd = connect_socket(endpoint->socket, &deadline, &outcome);
        if (fd >= 0) outcome = talk(fd, &request, &deadline);
    }
    memset(request.text, 0, sizeof request.text);
    return outcome;
}

/* path.resolve(cwd, path): absolute, without ".", ".." or repeated slashes. */
static int resolve_path(const char *cwd, const char *path, char *out, size_t size) {
    char joined[PATH_MAX * 2];
    if (snprintf(joined, sizeof joined, "%s/%s", path[0] == '/' ? "" : cwd, path) >= (int)sizeof joined) return -1;
    size_t length = 0;
    for (char *part = strtok(joined, "/"); part != NULL; part = strtok(NULL, "/")) {
        if (strcmp(part, ".") == 0) continue;
        if (strcmp(part, "..") == 0) {
            while (length > 0 && out[length - 1] != '/') length--;
            if (length > 0) length--;
            continue;
        }
        size_t part_length = strlen(part);
        if (length + 1 + part_length + 1 > size) return -1;
        out[length++] = '/';
        memcpy(out + length, part, part_length);
        length += part_length;
    }
    if (length == 0) out[length++] = '/';
    out[length] = '\0';
    return 0;
}

/* readCommandIdentity (commands/enable.ts): an absent or empty ConfigExtensionName, or a valid
 * name; a ConfigSequenceNumber of 1 to 15 digits. */
static int has_valid_identity(void) {
    const char *name = getenv("ConfigExtensionName");
    const char *seq = getenv("ConfigSequenceNumber");
    if (seq == NULL || strlen(seq) < 1 || strlen(seq) > 15 || strspn(seq, "0123456789") != strlen(seq)) return 0;
    if (name == NULL || name[0] == '\0') return 1;
    size_t length = strlen(name);
    const char *alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (length > 128 || strchr(alnum, name[0]) == NULL || strstr(name, "..") != NULL) return 0;
    for (size_t i = 1; i < length; i++) {
        if (strchr(alnum, name[i]) == NULL && strchr("._-", name[i]) == NULL) return 0;
    }
    return 1;
}

/* The HandlerEnvironment.json node's enable would use (toHandlerEnvironmentCandidates, then
 * findHandlerEnvironment in context.ts), resolved; -1 when the argv holds anything but
 * --handler-environment, or none is found. */
static int find_handler_environment(char **args, int count, const char *root, const char *cwd, char *out, size_t size) {
    const char *explicit = NULL;
    size_t flag_length = strlen("--handler-environment");
    for (int i = 1; i < count; i++) {
        if (strncmp(args[i], "--handler-environment", flag_length) != 0) return -1;
        if (args[i][flag_length] == '=') explicit = args[i] + flag_length + 1;
        else if (args[i][flag_length] == '\0' && i + 1 < count) explicit = args[++i];
        else return -1;
    }
    const char *from_env = getenv("RUNCOMMAND_HANDLER_ENVIRONMENT");
    char bin[PATH_MAX];
    if (snprintf(bin, sizeof bin, "%s/bin", root) >= (int)sizeof bin) return -1;
    const char *candidates[2] = {bin, root};
    size_t candidate_count = 2;
    if (explicit != NULL && explicit[0] != '\0') candidates[0] = explicit, candidate_count = 1;
    else if (from_env != NULL && from_env[0] != '\0') candidates[0] = from_env, candidate_count = 1;
    for (size_t i = 0; i < candidate_count; i++) {
        struct stat st;
        char inside[PATH_MAX];
        if (stat(candidates[i], &st) != 0) continue;
        if (S_ISREG(st.st_mode)) return resolve_path(cwd, candidates[i], out, size);
        if (!S_ISDIR(st.st_mode)) continue;
        if (snprintf(inside, sizeof inside, "%s/%s", candidates[i], HANDLER_ENVIRONMENT_FILE) >= (int)sizeof inside) return -1;
        if (stat(inside, &st) == 0 && S_ISREG(st.st_mode)) return resolve_path(cwd, inside, out, size);
    }
    return -1;
}

static int compare_text(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether this environment's RUNCOMMAND_HANDLER_* variables are the endpoint file's, sorted alike. */
static int has_same_options(const struct endpoint *endpoint) {
    const char *mine[MAX_OPTIONS];
    size_t count = 0;
    for (char **entry = environ; *entry != NULL; entry++) {
        if (strncmp(*entry, OPTION_PREFIX, strlen(OPTION_PREFIX)) != 0 || strchr(*entry, '=') == NULL) continue;
        if (count == MAX_OPTIONS) return 0;
        mine[count++] = *entry;
    }
    if (count != endpoint->option_count) return 0;
    qsort(mine, count, sizeof mine[0], compare_text);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(mine[i], endpoint->options[i]) != 0) return 0;
    }
    return 1;
}

/* Whether node's enable, run here, would start exactly the daemon the endpoint file describes. */
static int can_start_daemon(const struct endpoint *endpoint, char **args, int count, const char *root) {
    char cwd[PATH_MAX], found[PATH_MAX];
    if (endpoint->handler_environment == NULL || !has_valid_identity() || !has_same_options(endpoint)) return 0;
    if (getcwd(cwd, sizeof cwd) == NULL || strcmp(cwd, root) != 0) return 0;
    if (find_handler_environment(args, count, root, cwd, found, sizeof found) != 0) return 0;
    return strcmp(found, endpoint->handler_environment) == 0;
}

/* mkdir -p, as node's mkdir(recursive) before daemon.out is opened. */
static int make_folders(const char *path) {
    char partial[PATH_MAX];
    size_t length = strlen(path);
    if (length >= sizeof partial) return -1;
    for (size_t i = 1; i <= length; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (mkdir(partial, 0777) != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

/* Closes every inherited descriptor above stderr: the daemon holds none of the agent's files. */
static void close_inherited(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
    long limit = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (limit > 0 && limit < 65536 ? limit : 65536); fd++) close((int)fd);
}

/* spawnDaemon (daemon-control.ts): node CLI daemon --handler-environment PATH in its own session,
 * cwd the package root, stdin /dev/null, stdout and stderr appended to <log folder>/daemon.out,
 * default signal dispositions and mask (as libuv gives a child), this environment but for
 * NODE_EXTRA_CA_CERTS, deferred as spawnDaemon defers it. */
static pid_t start_daemon(const char *node, const char *cli, const struct endpoint *endpoint, const char *root) {
    char out_path[PATH_MAX];
    if (snprintf(out_path, sizeof out_path, "%s/daemon.out", endpoint->log_folder) >= (int)sizeof out_path) return -1;
    if (make_folders(endpoint->log_folder) != 0) return -1;
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = out < 0 || null < 0 ? -1 : fork();
    if (pid == 0) {
        /* No node flags, as daemonNodeFlags in daemon-control.ts (the daemon sets its V8 flags itself;
         * idle-modules.test.ts checks the daemon this client starts). */
        char *argv[] = {(char *)node, (char *)cli, "daemon", "--handler-environment", (char *)endpoint->handler_environment, NULL};
        struct sigaction defaults = {.sa_handler = SIG_DFL};
        sigset_t none;
        sigemptyset(&none);
        if (setsid() < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || chdir(root) != 0) _exit(127);
        for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &defaults, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close_inherited();
        /* NODE_EXTRA_CA_CERTS under its deferred name: node would read the file before the daemon
         * could answer; the daemon reads it at its first TLS connection (toDaemonEnvironment in
         * src/util/extra-ca-certificates.ts). */
        const char *extra_ca = getenv("NODE_EXTRA_CA_CERTS");
        if (extra_ca != NULL && *extra_ca != '\0' && (setenv("RCH_DEFERRED_EXTRA_CA_CERTS", extra_ca, 1) != 0 || unsetenv("NODE_EXTRA_CA_CERTS") != 0)) _exit(127);
        execv(node, argv);
        _exit(127);
    }
    if (out >= 0) close(out);
    if (null >= 0) close(null);
    return pid;
}

/* Starts the daemon, connects as soon as it listens (the daemon serves the connections open when
 * it has bound before it loads the rest: daemon-endpoint.ts), and waits until it publishes a new
 * token (it does after listening: ipc.ts); the connection, or -1 if the daemon exits or the budget
 * is spent first. */
static int start_and_connect(const struct endpoint *endpoint, const char *node, const char *cli, const char *root) {
    char token_path[MAX_SOCKET_PATH + 16];
    snprintf(token_path, sizeof token_path, "%s/%s", endpoint->folder, TOKEN_NAME);
    struct stat before, now;
    int had_token = stat(token_path, &before) == 0;
    pid_t pid = start_daemon(node, cli, endpoint, root);
    if (pid < 0) return -1;
    struct timespec deadline = deadline_in(START_BUDGET_MS);
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 2 * 1000000L};
    int fd = -1;
    while (remaining_ms(&deadline) > 0) {
        int status;
        enum outcome why;
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        if (fd < 0) fd = connect_socket(endpoint->socket, &deadline, &why);
        if (fd >= 0 && stat(token_path, &now) == 0 && (!had_token || now.st_ino != before.st_ino || now.st_dev != before.st_dev)) return fd;
        nanosleep(&pause, NULL);
    }
    if (fd >= 0) close(fd);
    return -1;
}

/* The package root from the CLI path the shim passes (<root>/bin/../dist/cli.js), resolved as
 * node resolves its own (packageRoot in util/package-root.ts: the main module's real path). */
static int to_package_root(const char *cli, char *root) {
    char given[PATH_MAX];
    const char *suffix = "/dist/cli.js";
    size_t length = strlen(cli), suffix_length = strlen(suffix);
    if (length <= suffix_length || length - suffix_length >= sizeof given || strcmp(cli + length - suffix_length, suffix) != 0) return -1;
    memcpy(given, cli, length - suffix_length);
    given[length - suffix_length] = '\0';
    return realpath(given, root) == NULL ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[3], "enable") != 0) {
        fprintf(stderr, "usage: rch-enable NODE CLI enable [args...]\n");
        return 2;
    }
    fallback_argv = argv + 1;
    /* As cli.js does first: nothing the handler creates may be group- or world-writable. */
    mode_t mask = umask(0);
    umask(mask | 022);
    char root[PATH_MAX];
    static struct endpoint endpoint;
    if (to_package_root(argv[2], root) != 0 || read_endpoint(root, &endpoint) != 0) fall_back();
    if (!is_trusted_folder(endpoint.folder)) fall_back();
    struct stat socket_stat;
    if (lstat(endpoint.socket, &socket_stat) == 0) {
        enum outcome outcome = send_enable(&endpoint, argv + 3, argc - 3, 0, -1);
        if (outcome == HANDLED) return 0;
        if (outcome == NOT_HANDLED) fall_back();
    } else if (errno != ENOENT) {
        fall_back();
    }
    /* No daemon listens: start it as node's enable would, if that is certainly what it would do. */
    char node[PATH_MAX], cli[PATH_MAX];
    if (strchr(argv[1], '/') == NULL || realpath(argv[1], node) == NULL) fall_back();
    if (snprintf(cli, sizeof cli, "%s/dist/cli.js", root) >= (int)sizeof cli) fall_back();
    if (!can_start_daemon(&endpoint, argv + 3, argc - 3, root)) fall_back();
    int fd = start_and_connect(&endpoint, node, cli, root);
    if (fd < 0 || send_enable(&endpoint, argv + 3, argc - 3, 1, fd) != HANDLED) fall_back();
    return 0;
}
