/*
 * rch-exec: the per-run process wrapper of the Run Command handler (run-command.md §4, §8).
 *
 * Usage: rch-exec --grace-ms N <run-dir> <program> [args...]
 *
 * The daemon starts it in a new session with cwd, env, stdin and stdout/stderr already set up,
 * and optionally fd 3 = a pipe back to the daemon. The wrapper
 *   1. becomes a child subreaper, so descendants that double-fork or setsid are re-parented here;
 *   2. forks the script into its own process group and execs it (exec failure comes back on a
 *      CLOEXEC pipe, so it is distinguishable from a script that exits 127);
 *   3. records the script's identity in <run-dir>/process.json and on fd 3;
 *   4. on SIGUSR1 terminates the run: SIGTERM to the whole tree, SIGKILL after the grace period;
 *   5. when the script exits, sweeps and reaps every leftover descendant and only then records the
 *      outcome in <run-dir>/exit-status.json, so a daemon that died meanwhile still learns it.
 * It never writes to stdout: that is the script's output file.
 *
 * Usage: rch-exec --launcher
 *
 * A long-lived helper the daemon starts once: it reads launch requests on stdin and forks a wrapper
 * (the mode above) for each, so the daemon, a large process whose fork copies its page tables,
 * never forks per run. Each request is a native u32 length then NUL-terminated fields: id,
 * grace-ms, run-dir, cwd, stdout path, stderr path, argc, argv..., envc, env... Replies on stdout,
 * one line each: "S <id> <pid>" when a wrapper is forked, "F <id> <errno>" when it could not be,
 * the wrapper's own identity JSON line (its fd 3 is this pipe), "X <pid> <status>" when a wrapper
 * is reaped. On EOF of stdin it exits; running wrappers carry on (they lead their own sessions).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run-files.h" /* the run directory's file names, generated from src/runner/run-directory.ts */

#define TICK_MS 10          /* sweep polling interval */
#define GIVE_UP_MS 3000     /* how long past the grace period we keep re-killing and reaping */
#define DAEMON_FD 3

static const int ignored_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE};
static pid_t self_pid, self_pgid, script_pid;
static int group_gone; /* once group <script_pid> is empty its id may be recycled: never signal it again */

static void diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("rch-exec: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies field `field` (numbered as in proc(5), >= 3) of /proc/<pid>/stat into out. Parsing starts
 * after the last ')' because the command name may contain spaces and parentheses. */
static int stat_field(pid_t pid, int field, char *out, size_t size) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    for (int i = 3; i <= field; i++) {
        p += strspn(p, " )");
        size_t len = strcspn(p, " \n");
        if (len == 0) return -1;
        if (i == field) {
            if (len >= size) return -1;
            memcpy(out, p, len);
            out[len] = '\0';
            return 0;
        }
        p += len;
    }
    return -1;
}

static long stat_number(pid_t pid, int field) {
    char value[32];
    return stat_field(pid, field, value, sizeof value) == 0 ? strtol(value, NULL, 10) : -1;
}

/* SIGTERM alone does not reach a stopped process, so it is followed by SIGCONT. */
static void signal_target(pid_t target, int sig) {
    kill(target, sig);
    if (sig == SIGTERM) kill(target, SIGCONT);
}

/* SIGTERM goes once to each target (a pid, or a group as -pgid), so a script that traps it runs
 * its handler once; returns 1 the first time target is seen (past capacity, everything is new). */
static int first_term(pid_t target) {
    static pid_t seen[1024];
    static size_t count;
    for (size_t i = 0; i < count; i++)
        if (seen[i] == target) return 0;
    if (count < sizeof seen / sizeof seen[0]) seen[count++] = target;
    return 1;
}

/* Signals the script's process group and every child of ours (the script, or a descendant
 * re-parented to us) with its group. Our own group is never signalled as a group: it holds us. */
static void signal_all(int sig) {
    if (!group_gone && kill(-script_pid, 0) < 0 && errno == ESRCH) group_gone = 1;
    if (!group_gone && (sig != SIGTERM || first_term(-script_pid))) signal_target(-script_pid, sig);
    DIR *dir = opendir("/proc");
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 1 || pid == self_pid || stat_number((pid_t)pid, 4) != self_pid) continue;
        /* Our child, alive or zombie, so neither its pid nor its group id can be recycled: signal
         * its whole group, or just it when it sits in our own group. */
        long pgid = stat_number((pid_t)pid, 5);
        pid_t target = pgid > 1 && pgid != self_pgid ? (pid_t)-pgid : (pid_t)pid;
        if (sig != SIGTERM || first_term(target)) signal_target(target, sig);
    }
    closedir(dir);
}

/* Reaps every exited child; returns 1 while children remain, 0 once there are none. */
static int reap_all(int *script_status, int *script_done) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            if (pid == script_pid) *script_status = status, *script_done = 1;
        } else if (pid == 0) {
            return 1;
        } else if (errno != EINTR) {
            return 0; /* ECHILD */
        }
    }
}

static int leftovers(int children) {
    if (!group_gone && kill(-script_pid, 0) < 0 && errno == ESRCH) group_gone = 1;
    return children || !group_gone;
}

/* Waits for the script, honouring SIGUSR1, then sweeps its leftovers; returns its wait status.
 * Once termination starts (SIGUSR1, or the script exited with leftovers), every tick sends SIGTERM
 * to newcomers (descendants re-parented to us when their parent died) until the grace period is
 * over, then SIGKILL to everything until nothing is left. */
static int supervise(int sig_fd, long grace_ms) {
    int status = 0, done = 0;
    long long kill_at = -1;
    for (;;) {
        int children = reap_all(&status, &done);
        long long now = now_ms();
        if (done && !leftovers(children)) break; /* the typical case: no delay at all */
        if (done && kill_at < 0) kill_at = now + grace_ms;
        if (kill_at >= 0 && now < kill_at) signal_all(SIGTERM);
        if (kill_at >= 0 && now >= kill_at) {
            signal_all(SIGKILL);
            if (done && now >= kill_at + GIVE_UP_MS) {
                diag("descendants of pid %d survived SIGKILL; giving up on them", (int)script_pid);
                break;
            }
        }
        int timeout = kill_at < 0 ? -1 : now >= kill_at + GIVE_UP_MS ? 100 : TICK_MS;
        struct pollfd pfd = {.fd = sig_fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout) <= 0) continue;
        struct signalfd_siginfo info;
        while (read(sig_fd, &info, sizeof info) == (ssize_t)sizeof info)
            if (info.ssi_signo == SIGUSR1 && kill_at < 0) kill_at = now_ms() + grace_ms; /* "terminate this run" */
    }
    return status;
}

/* Closes descriptors first..last; close_range(2) where the kernel has it (Linux 5.9+), else a walk
 * of /proc/self/fd, else every number up to the descriptor limit. Async-signal-safe enough for a
 * forked child: no allocation but opendir's, and that only on the fallback. */
static void close_fds(unsigned first, unsigned last) {
    if (first > last) return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
#endif
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        int own = dirfd(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            char *end = NULL;
            long fd = strtol(entry->d_name, &end, 10);
            if (!end || *end != '\0' || entry->d_name[0] == '\0' || fd == own) continue;
            if ((unsigned long)fd >= first && (unsigned long)fd <= last) close((int)fd);
        }
        closedir(dir);
        return;
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = first; fd < max && (unsigned long)fd <= last; fd++) close((int)fd);
}

/* Closes every descriptor from `first` on but `keep` (-1: none). */
static void close_fds_from(int first, int keep) {
    if (keep < first) {
        close_fds((unsigned)first, ~0U);
        return;
    }
    close_fds((unsigned)first, (unsigned)keep - 1);
    close_fds((unsigned)keep + 1, ~0U);
}

/* In the forked child: own process group, pristine signal state, only stdio left open, exec. */
static void exec_script(char **argv, int err_fd) {
    setpgid(0, 0);
    for (size_t i = 0; i < sizeof ignored_signals / sizeof ignored_signals[0]; i++) signal(ignored_signals[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The script gets stdin, stdout and stderr only: not the signalfd, not the daemon's pipe (fd 3),
     * not whatever the daemon inherited. err_fd (close-on-exec) reports a failed exec, then goes. */
    close_fds_from(3, err_fd);
    execvp(argv[0], argv);
    int err = errno;
    if (write(err_fd, &err, sizeof err) < 0) { /* the parent then sees a plain exit 127 */ }
    _exit(127);
}

/* Writes <dir>/<name> atomically: temp file in the same directory, fsync, rename, fsync dir. */
static int write_atomic(const char *dir, const char *name, const char *text) {
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp) return -1;
    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* root-only, like its run dir */
    if (fd < 0) return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok && rename(tmp, dst) == 0;
    if (!ok) return unlink(tmp), -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd), close(dfd);
    return 0;
}

/* Tells where the script is: process.json for a daemon that restarts, fd 3 for the one waiting. */
static void record_identity(const char *run_dir, int daemon_fd) {
    char start[32] = "", wrapper_start[32] = "", json[256];
    if (stat_field(script_pid, 22, start, sizeof start) || stat_field(self_pid, 22, wrapper_start, sizeof wrapper_start))
        diag("cannot read process start times from /proc");
    snprintf(json, sizeof json, "{\"wrapperPid\":%d,\"pid\":%d,\"pgid\":%d,\"startTime\":\"%s\",\"wrapperStartTime\":\"%s\"}\n",
             (int)self_pid, (int)script_pid, (int)script_pid, start, wrapper_start);
    if (write_atomic(run_dir, RUN_FILE_PROCESS, json) < 0) diag("cannot write %s: %s", RUN_FILE_PROCESS, strerror(errno));
    if (daemon_fd < 0) return;
    if (write(daemon_fd, json, strlen(json)) < 0) { /* the daemon is gone: process.json is enough */ }
    close(daemon_fd);
}

static int open_daemon_fd(void) {
    struct stat st; /* only a pipe or socket counts, not some fd 3 leaked by a shell */
    if (fstat(DAEMON_FD, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return -1;
    fcntl(DAEMON_FD, F_SETFD, FD_CLOEXEC);
    return DAEMON_FD;
}

static int wrapper_main(int argc, char **argv) {
    char *end = NULL;
    long grace_ms = argc >= 5 && strcmp(argv[1], "--grace-ms") == 0 ? strtol(argv[2], &end, 10) : -1;
    if (grace_ms < 0 || !end || *end != '\0' || argv[2][0] == '\0') {
        diag("usage: rch-exec --grace-ms N <run-dir> <program> [args...]");
        return 2;
    }
    const char *run_dir = argv[3];
    int daemon_fd = open_daemon_fd();
    self_pid = getpid();
    self_pgid = getpgrp();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) diag("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    for (size_t i = 0; i < sizeof ignored_signals / sizeof ignored_signals[0]; i++) signal(ignored_signals[i], SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int err_pipe[2];
    if (sig_fd < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) return diag("setup: %s", strerror(errno)), 1;

    script_pid = fork();
    if (script_pid < 0) return diag("fork: %s", strerror(errno)), 1;
    if (script_pid == 0) exec_script(argv + 4, err_pipe[1]);
    setpgid(script_pid, script_pid); /* also done by the child: whichever runs first wins */
    close(err_pipe[1]);
    int exec_error = 0;
    ssize_t n;
    while ((n = read(err_pipe[0], &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof exec_error) exec_error = 0; /* EOF: exec succeeded */
    close(err_pipe[0]);
    record_identity(run_dir, daemon_fd);

    int status = supervise(sig_fd, grace_ms);
    char json[64];
    if (exec_error) snprintf(json, sizeof json, "{\"execError\":%d}\n", exec_error);
    else if (WIFSIGNALED(status)) snprintf(json, sizeof json, "{\"signal\":%d}\n", WTERMSIG(status));
    else snprintf(json, sizeof json, "{\"exitCode\":%d}\n", WEXITSTATUS(status));
    if (write_atomic(run_dir, RUN_FILE_EXIT_STATUS, json) < 0) return diag("cannot write %s: %s", RUN_FILE_EXIT_STATUS, strerror(errno)), 1;
    return 0;
}

/* ---- launcher mode ---- */

extern char **environ;

/* Reads exactly `size` bytes; 0 on EOF before the first byte, -1 on error or a short read. */
static int read_exact(int fd, void *buffer, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, (char *)buffer + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return done == 0 && n == 0 ? 0 : -1;
        done += (size_t)n;
    }
    return 1;
}

static void reply(const char *fmt, ...) {
    char line[256];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    if (len > 0 && write(STDOUT_FILENO, line, (size_t)len) < 0) { /* the daemon is gone */ }
}

/* Splits the payload into its NUL-terminated fields; returns how many, at most `max`. */
static size_t split_fields(char *payload, size_t size, char **fields, size_t max) {
    size_t count = 0;
    for (size_t at = 0; at < size && count < max; at += strlen(payload + at) + 1) fields[count++] = payload + at;
    return count;
}

/* In the forked child: the wrapper's session, stdio and environment, then the wrapper itself. */
static void become_wrapper(char **f, size_t nf, int sig_fd) {
    long argc = strtol(f[6], NULL, 10);
    if (argc < 1 || (size_t)(7 + argc + 1) > nf) _exit(2);
    long envc = strtol(f[7 + argc], NULL, 10);
    if (envc < 0 || (size_t)(8 + argc + envc) > nf) _exit(2);
    close(sig_fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int reply_fd = dup(STDOUT_FILENO);
    int in = open("/dev/null", O_RDONLY);
    int out = open(f[4], O_WRONLY | O_APPEND | O_CREAT, 0600);
    int err = open(f[5], O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (reply_fd < 0 || in < 0 || out < 0 || err < 0 || chdir(f[3]) < 0) _exit(126);
    dup2(in, STDIN_FILENO), dup2(out, STDOUT_FILENO), dup2(err, STDERR_FILENO), dup2(reply_fd, DAEMON_FD);
    /* The wrapper keeps stdio and its reply pipe (fd 3) only: every other descriptor, however high. */
    close_fds_from(DAEMON_FD + 1, -1);
    char **env = calloc((size_t)envc + 1, sizeof *env);
    char **argv = calloc((size_t)argc + 5, sizeof *argv);
    if (!env || !argv) _exit(126);
    for (long i = 0; i < envc; i++) env[i] = f[8 + argc + i];
    argv[0] = "rch-exec", argv[1] = "--grace-ms", argv[2] = f[1], argv[3] = f[2];
    for (long i = 0; i < argc; i++) argv[4 + i] = f[7 + i];
    environ = env;
    _exit(wrapper_main((int)argc + 4, argv));
}

/* Forks one wrapper for a request read from stdin; -1 when stdin is closed. */
static int serve_request(int sig_fd) {
    uint32_t size;
    int got = read_exact(STDIN_FILENO, &size, sizeof size);
    if (got <= 0 || size == 0 || size > (64u << 20)) return -1;
    char *payload = malloc(size + 1);
    if (!payload || read_exact(STDIN_FILENO, payload, size) <= 0) return free(payload), -1;
    payload[size] = '\0';
    size_t max = size / 2 + 8;
    char **fields = calloc(max, sizeof *fields);
    size_t nf = fields ? split_fields(payload, size, fields, max) : 0;
    if (nf < 8) return free(fields), free(payload), diag("malformed launch request"), 0;
    pid_t pid = fork();
    if (pid == 0) become_wrapper(fields, nf, sig_fd);
    if (pid < 0) reply("F %s %d\n", fields[0], errno);
    else reply("S %s %d\n", fields[0], (int)pid);
    free(fields);
    free(payload);
    return 0;
}

static void report_exits(int sig_fd) {
    struct signalfd_siginfo info;
    while (read(sig_fd, &info, sizeof info) > 0) {}
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) reply("X %d %d\n", (int)pid, status);
}

static int launcher_main(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) return diag("signalfd: %s", strerror(errno)), 1;
    for (;;) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sig_fd, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) return diag("poll: %s", strerror(errno)), 1;
        if (fds[1].revents & POLLIN) report_exits(sig_fd);
        if ((fds[0].revents & (POLLIN | POLLHUP)) && serve_request(sig_fd) < 0) return 0;
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--launcher") == 0) return launcher_main();
    return wrapper_main(argc, argv);
}
