/*
 * rch-exec: the per-run process wrapper of the Run Command handler (run-command.md §4, §8).
 *
 * Usage: rch-exec [--launch-nonce HEX] --grace-ms N [--max-output BYTES] <run-dir> <program> [args...]
 *
 * The daemon starts it in a new session with cwd, env, stdin and stdout/stderr already set up,
 * and optionally fd 3 = a pipe back to the daemon. The wrapper
 *   0. with --launch-nonce, claims the launch: creates <run-dir>/rch-launch-<nonce> exclusively,
 *      holding its own pid and start time, and, if that name exists already (a restarted daemon
 *      fenced this launch, see src/runner/launch-fence.ts), exits 75 at once, silently, having
 *      started and written nothing;
 *   1. becomes a child subreaper, so descendants that double-fork or setsid are re-parented here;
 *   2. spawns the script into its own process group (posix_spawn: no copy of the wrapper's page
 *      tables); an exec failure is told apart from a script that exits 127 (posix_spawn's return
 *      value, and on the fork fallback a CLOEXEC pipe);
 *   3. records the script's identity in <run-dir>/process.json and on fd 3;
 *   4. on SIGUSR1 terminates the run: SIGTERM to the whole tree, SIGKILL after the grace period;
 *   5. when the script exits, sweeps and reaps every leftover descendant and only then records the
 *      outcome in <run-dir>/exit-status.json, so a daemon that died meanwhile still learns it;
 *      that file's space is reserved before the script starts, so a full disk cannot lose it.
 * It never writes to stdout but the script's relayed output: that is the script's output file. With
 * --max-output the script's stdout and stderr are pipes the wrapper relays (see "output relay").
 *
 * Usage: rch-exec --launcher
 *
 * A long-lived helper the daemon starts once: it reads launch requests on stdin and forks a wrapper
 * (the mode above) for each, so the daemon, a large process whose fork copies its page tables,
 * never forks per run. Each request is a native u32 length then NUL-terminated fields: id,
 * grace-ms, max-output (0: no relay), run-dir, cwd, stdout path, stderr path, argc, argv..., envc,
 * env..., launch nonce ('' or absent: none). Replies on stdout,
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
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

/* The bench's dispatch profile (issue 16): when the launcher's environment has RCH_DISPATCH_PROFILE,
 * the launcher and its wrappers add "T <wrapper pid> <step> <epoch µs>" lines to the daemon's pipe
 * (CLOCK_REALTIME, comparable with the script's $EPOCHREALTIME). Off, a mark is one test of a flag. */
static int profiling, profile_fd = -1;

static long long now_epoch_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void profile_mark(int fd, pid_t wrapper, const char *step, long long at_us) {
    if (!profiling || fd < 0) return;
    char line[96];
    int len = snprintf(line, sizeof line, "T %d %s %lld\n", (int)wrapper, step, at_us ? at_us : now_epoch_us());
    if (len > 0 && write(fd, line, (size_t)len) < 0) { /* the daemon is gone */ }
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

/* ---- output relay (issue #6) ----
 * With --max-output N the script writes into pipes, not into its output files: the wrapper relays
 * each pipe to its file (fd 1, fd 2) and keeps, per stream, the first N - T bytes (spliced straight
 * through, no copy) and a rolling tail of the last T bytes (T = min(N / 2, 16 MiB), held in memory and
 * appended when the stream ends); what lies between is dropped and counted. It also stops writing
 * once the file system is down to its reserve (min(64 MiB, 1 % of its size)), so a run's output never
 * fills the disk the other runs' records and the handler's own files need. */
#define RELAY_CHUNK (1 << 20)
#define TAIL_MAX (16ULL << 20)
#define RESERVE_MAX (64ULL << 20)

struct stream {
    int in, out;                       /* pipe read end (non-blocking), output file */
    unsigned long long head_left;      /* bytes still written straight through */
    unsigned long long dropped;        /* bytes neither in the head nor in the tail */
    unsigned long long head_size;      /* the head's share of the cap */
    int low_space, spliceable;
    char *ring;                        /* the tail: ring_size bytes, ring_len of them valid */
    size_t ring_size, ring_len, ring_pos;
};

static struct stream streams[2];
static int relaying;
static char relay_buf[RELAY_CHUNK];

/* Bytes free on the file system under fd above its reserve (0 at or below it). */
static unsigned long long room_above_reserve(int fd) {
    struct statvfs st;
    if (fstatvfs(fd, &st) < 0) return ~0ULL; /* cannot tell: the write itself will say */
    unsigned long long total = (unsigned long long)st.f_blocks * st.f_frsize;
    unsigned long long free_bytes = (unsigned long long)st.f_bavail * st.f_frsize;
    unsigned long long reserve = total / 100 < RESERVE_MAX ? total / 100 : RESERVE_MAX;
    return free_bytes > reserve ? free_bytes - reserve : 0;
}


/* Sets up the script's stdout and stderr pipes; fds[i] is the write end for the script. */
static int relay_setup(unsigned long long max_output, int script_fds[2]) {
    unsigned long long tail = max_output / 2 < TAIL_MAX ? max_output / 2 : TAIL_MAX;
    for (int i = 0; i < 2; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) return -1;
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        fcntl(p[0], F_SETPIPE_SZ, RELAY_CHUNK); /* fewer, larger transfers; best effort */
        struct stream *st = &streams[i];
        st->in = p[0];
        st->out = i == 0 ? STDOUT_FILENO : STDERR_FILENO;
        /* splice(2) refuses O_APPEND targets: write at the end explicitly instead. */
        int flags = fcntl(st->out, F_GETFL);
        if (flags >= 0 && (flags & O_APPEND)) fcntl(st->out, F_SETFL, flags & ~O_APPEND);
        lseek(st->out, 0, SEEK_END);
        st->head_left = st->head_size = max_output - tail;
        st->ring_size = (size_t)tail;
        st->spliceable = 1;
        script_fds[i] = p[1];
    }
    relaying = 1;
    return 0;
}

/* Keeps n bytes just read into relay_buf in the stream's tail ring. */
static void keep_tail(struct stream *st, const char *data, size_t n) {
    if (st->ring_size == 0 || (!st->ring && !(st->ring = malloc(st->ring_size)))) {
        st->dropped += n;
        return;
    }
    if (n >= st->ring_size) { /* the chunk alone overflows the ring: keep its end */
        st->dropped += st->ring_len + (n - st->ring_size);
        memcpy(st->ring, data + (n - st->ring_size), st->ring_size);
        st->ring_len = st->ring_size, st->ring_pos = 0;
        return;
    }
    size_t overflow = st->ring_len + n > st->ring_size ? st->ring_len + n - st->ring_size : 0;
    st->dropped += overflow;
    size_t end = (st->ring_pos + st->ring_len) % st->ring_size, first = st->ring_size - end < n ? st->ring_size - end : n;
    memcpy(st->ring + end, data, first);
    memcpy(st->ring, data + first, n - first);
    st->ring_len += n - overflow;
    st->ring_pos = (st->ring_pos + overflow) % st->ring_size;
}

/* Moves what the pipe holds now; returns 0 at EOF (the stream is then closed), 1 otherwise. */
static int relay_once(struct stream *st) {
    for (int rounds = 0; rounds < 64; rounds++) {
        size_t want = RELAY_CHUNK;
        if (st->head_left > 0 && !st->low_space) {
            /* Never into the reserve: each chunk is at most what is free above it (one fstatvfs per
             * chunk of up to 1 MiB, cheap next to the copy it guards). */
            unsigned long long room = room_above_reserve(st->out);
            if (room == 0) { st->low_space = 1; continue; }
            if (room < want) want = (size_t)room;
            if (st->head_left < want) want = (size_t)st->head_left;
            ssize_t n = -1;
            if (st->spliceable) {
                n = splice(st->in, NULL, st->out, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n < 0 && errno == EINVAL) st->spliceable = 0;
            }
            if (!st->spliceable) {
                n = read(st->in, relay_buf, want);
                if (n > 0) {
                    ssize_t done = 0;
                    while (done < n) {
                        ssize_t w = write(st->out, relay_buf + done, (size_t)(n - done));
                        if (w <= 0) break;
                        done += w;
                    }
                    if (done < n) { /* the disk is full after all: the head ends here, the rest goes to the tail */
                        st->head_size -= st->head_left - (unsigned long long)done;
                        st->head_left = 0, st->low_space = 1;
                        keep_tail(st, relay_buf + done, (size_t)(n - done));
                    } else {
                        st->head_left -= (unsigned long long)done;
                    }
                    continue;
                }
            }
            if (n > 0) {
                st->head_left -= (unsigned long long)n;
                continue;
            }
            if (n == 0) return close(st->in), st->in = -1, 0;
            if (errno == EAGAIN || errno == EINTR) return 1;
            if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG || errno == EIO) { st->low_space = 1; continue; }
            return close(st->in), st->in = -1, 0; /* the pipe itself failed */
        }
        ssize_t n = read(st->in, relay_buf, want);
        if (n > 0) { keep_tail(st, relay_buf, (size_t)n); continue; }
        if (n == 0) return close(st->in), st->in = -1, 0;
        if (errno == EAGAIN || errno == EINTR) return 1;
        return close(st->in), st->in = -1, 0;
    }
    return 1;
}

/* After the script's tree is gone: drains what the pipes still hold, then appends each tail, if the
 * file system has room for it above its reserve (else the tail is dropped too). */
static void relay_finish(void) {
    if (!relaying) return;
    for (int i = 0; i < 2; i++) {
        struct stream *st = &streams[i];
        while (st->in >= 0) {
            if (relay_once(st) == 0) break;
            /* EAGAIN with the whole tree gone: only a survivor of SIGKILL holds the pipe; stop. */
            struct pollfd pfd = {.fd = st->in, .events = POLLIN};
            if (poll(&pfd, 1, 100) <= 0) break;
        }
        if (st->in >= 0) close(st->in), st->in = -1;
        if (st->ring_len == 0) continue;
        unsigned long long room = room_above_reserve(st->out);
        if (room < st->ring_len) {
            /* The reserve stopped the head: give up to half of the head back, so the end of the
             * output is kept too (ftruncate frees space, it never needs any). */
            unsigned long long head_written = st->head_size - st->head_left, want = st->ring_len - room;
            unsigned long long cut = want < head_written / 2 ? want : head_written / 2;
            off_t end = lseek(st->out, 0, SEEK_END);
            if (cut > 0 && end >= (off_t)cut && ftruncate(st->out, end - (off_t)cut) == 0) {
                lseek(st->out, 0, SEEK_END);
                st->dropped += cut;
                room = room_above_reserve(st->out);
            }
        }
        if (room < st->ring_len) { /* keep only the very end that fits above the reserve */
            size_t skip = st->ring_len - (size_t)room;
            st->dropped += skip, st->low_space = 1;
            st->ring_pos = (st->ring_pos + skip) % st->ring_size, st->ring_len -= skip;
            if (st->ring_len == 0) continue;
        }
        size_t first = st->ring_size - st->ring_pos < st->ring_len ? st->ring_size - st->ring_pos : st->ring_len;
        const char *parts[2] = {st->ring + st->ring_pos, st->ring};
        size_t sizes[2] = {first, st->ring_len - first};
        size_t written = 0;
        for (int k = 0; k < 2; k++) {
            size_t done = 0;
            while (done < sizes[k]) {
                ssize_t w = write(st->out, parts[k] + done, sizes[k] - done);
                if (w <= 0) break;
                done += (size_t)w;
            }
            written += done;
            if (done < sizes[k]) break;
        }
        st->dropped += st->ring_len - written;
    }
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
        struct pollfd pfd[3] = {{.fd = sig_fd, .events = POLLIN}, {.fd = streams[0].in, .events = POLLIN}, {.fd = streams[1].in, .events = POLLIN}};
        int nfds = relaying ? 3 : 1;
        if (poll(pfd, (nfds_t)nfds, timeout) <= 0) continue;
        for (int i = 1; i < nfds; i++)
            if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) relay_once(&streams[i - 1]);
        if (!(pfd[0].revents & POLLIN)) continue;
        struct signalfd_siginfo info;
        while (read(sig_fd, &info, sizeof info) == (ssize_t)sizeof info)
            if (info.ssi_signo == SIGUSR1 && kill_at < 0) kill_at = now_ms() + grace_ms; /* "terminate this run" */
    }
    return status;
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4 /* linux/close_range.h, Linux 5.11+ */
#endif

/* Closes descriptors first..last, or with `cloexec` marks them close-on-exec; close_range(2) where
 * the kernel has it (Linux 5.9+, its CLOEXEC flag 5.11+), else a walk of /proc/self/fd, else every
 * number up to the descriptor limit. Async-signal-safe enough for a forked child: no allocation
 * but opendir's, and that only on the fallback. */
static void close_fds(unsigned first, unsigned last, int cloexec) {
    if (first > last) return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, cloexec ? CLOSE_RANGE_CLOEXEC : 0) == 0) return;
#endif
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        int own = dirfd(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            char *end = NULL;
            long fd = strtol(entry->d_name, &end, 10);
            if (!end || *end != '\0' || entry->d_name[0] == '\0' || fd == own) continue;
            if ((unsigned long)fd < first || (unsigned long)fd > last) continue;
            if (cloexec) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
            else close((int)fd);
        }
        closedir(dir);
        return;
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20) max = 1 << 20;
    for (long fd = first; fd < max && (unsigned long)fd <= last; fd++) {
        if (cloexec) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        else close((int)fd);
    }
}

/* Closes every descriptor from `first` on but `keep` (-1: none). */
static void close_fds_from(int first, int keep) {
    if (keep < first) {
        close_fds((unsigned)first, ~0U, 0);
        return;
    }
    close_fds((unsigned)first, (unsigned)keep - 1, 0);
    close_fds((unsigned)keep + 1, ~0U, 0);
}

/* Starts the script with posix_spawn: own process group, pristine signal state, stdio only (every
 * other descriptor is close-on-exec by now). glibc spawns with CLONE_VM|CLONE_VFORK, so neither the
 * wrapper's page tables are copied nor its pages faulted in again (a fork and its faults cost ~1 ms of
 * a small VM's dispatch, issue 16), and a failed exec comes back as the return value: 0 or an errno. */
static int spawn_script(char **argv, const int *out_fds, pid_t *pid) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    if (posix_spawnattr_init(&attr) != 0) return ENOMEM;
    if (posix_spawn_file_actions_init(&actions) != 0) return posix_spawnattr_destroy(&attr), ENOMEM;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (size_t i = 0; i < sizeof ignored_signals / sizeof ignored_signals[0]; i++) sigaddset(&defaults, ignored_signals[i]);
    int err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (err == 0) err = posix_spawnattr_setpgroup(&attr, 0);
    if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
    if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (err == 0 && out_fds) err = posix_spawn_file_actions_adddup2(&actions, out_fds[0], STDOUT_FILENO);
    if (err == 0 && out_fds) err = posix_spawn_file_actions_adddup2(&actions, out_fds[1], STDERR_FILENO);
    if (err == 0) err = posix_spawnp(pid, argv[0], &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return err;
}

/* In the forked child: own process group, pristine signal state, only stdio left open, exec. The
 * way a script that posix_spawn could not start is started, so its failure is reported as ever. */
static void exec_script(char **argv, int err_fd, const int *out_fds) {
    setpgid(0, 0);
    if (out_fds) dup2(out_fds[0], STDOUT_FILENO), dup2(out_fds[1], STDERR_FILENO);
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

/* The exit record's space, taken before the script can fill the disk (issue #6): its temp file is
 * created and preallocated at launch, so writing the record at the end needs no new blocks.
 * posix_fallocate takes the blocks when it returns: no fsync, which would cost every launch a journal
 * commit (≈ 1-2 ms, dispatch latency, issue 16) and buys only that the reservation outlives a power
 * loss, after which no wrapper is left to use it (write_exit_record syncs the record itself). Zeros
 * written instead (no fallocate on this file system) may get their blocks only at writeback: those
 * are synced, on those rare file systems only. */
#define EXIT_RECORD_RESERVE 4096
static int exit_record_fd = -1;

static void reserve_exit_record(const char *dir) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, RUN_FILE_EXIT_STATUS) >= (int)sizeof tmp) return;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return (void)diag("cannot reserve %s: %s", RUN_FILE_EXIT_STATUS, strerror(errno));
    int err = posix_fallocate(fd, 0, EXIT_RECORD_RESERVE);
    if (err == EOPNOTSUPP || err == EINVAL) { /* no fallocate here: write the blocks instead */
        static const char zeros[EXIT_RECORD_RESERVE];
        err = pwrite(fd, zeros, sizeof zeros, 0) == (ssize_t)sizeof zeros ? 0 : errno;
        if (err == 0) err = fsync(fd) == 0 ? 0 : errno;
    }
    if (err != 0) diag("cannot reserve %s: %s", RUN_FILE_EXIT_STATUS, strerror(err));
    exit_record_fd = fd; /* even unreserved, an open file is a better start than none */
}

/* Writes the exit record into the reserved file (overwrite in place, shrink, fsync, rename: none of
 * which needs free space), else as a fresh atomic write. */
static int write_exit_record(const char *dir, const char *text) {
    char tmp[4096], dst[4096];
    size_t len = strlen(text);
    if (exit_record_fd >= 0 && snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, RUN_FILE_EXIT_STATUS) < (int)sizeof tmp &&
        snprintf(dst, sizeof dst, "%s/%s", dir, RUN_FILE_EXIT_STATUS) < (int)sizeof dst) {
        int ok = pwrite(exit_record_fd, text, len, 0) == (ssize_t)len && ftruncate(exit_record_fd, (off_t)len) == 0 && fsync(exit_record_fd) == 0;
        ok = close(exit_record_fd) == 0 && ok && rename(tmp, dst) == 0;
        exit_record_fd = -1;
        if (ok) {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) fsync(dfd), close(dfd);
            return 0;
        }
        diag("cannot use the reserved %s: %s", RUN_FILE_EXIT_STATUS, strerror(errno));
    }
    return write_atomic(dir, RUN_FILE_EXIT_STATUS, text);
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

/* ---- launch claim (hardening #5) ---- */
#define FENCED_EXIT 75

static int is_nonce(const char *nonce) {
    size_t len = strlen(nonce);
    return len >= 1 && len <= 64 && strspn(nonce, "0123456789abcdef") == len;
}

/* Creates <run-dir>/rch-launch-<nonce>: 0 when this wrapper has the launch, FENCED_EXIT when the
 * name is taken (by a restarted daemon's fence: the script must never start), 1 on any other error
 * (the launch cannot be fenced, so it does not happen). The claim holds this wrapper's pid and start
 * time (process.json's format), so a daemon that finds it before process.json follows this wrapper
 * for as long as it lives (launch-fence.ts): it is written to a temporary name first and linked to
 * the claim's (link(2) never replaces a name, like O_EXCL), so no claim is ever seen empty. Not
 * fsynced: a crash that loses it is a reboot, and a run cut off by a reboot is never started again. */
static int claim_launch(const char *run_dir, const char *nonce) {
    char path[4096], tmp[4096], start[32] = "", holder[128];
    pid_t pid = getpid();
    if (snprintf(path, sizeof path, "%s/%s%s", run_dir, RUN_FILE_LAUNCH_CLAIM, nonce) >= (int)sizeof path) return 1;
    if (snprintf(tmp, sizeof tmp, "%s/.%s%s.%d", run_dir, RUN_FILE_LAUNCH_CLAIM, nonce, (int)pid) >= (int)sizeof tmp) return 1;
    if (stat_field(pid, 22, start, sizeof start) < 0) return diag("cannot read this wrapper's start time from /proc"), 1;
    int len = snprintf(holder, sizeof holder, "{\"wrapperPid\":%d,\"wrapperStartTime\":\"%s\"}\n", (int)pid, start);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return diag("cannot claim the launch (%s): %s", tmp, strerror(errno)), 1;
    int ok = write(fd, holder, (size_t)len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    int err = !ok ? (errno ? errno : EIO) : link(tmp, path) < 0 ? errno : 0;
    unlink(tmp);
    if (err == EEXIST) return FENCED_EXIT;
    if (err != 0) return diag("cannot claim the launch (%s): %s", path, strerror(err)), 1;
    return 0;
}

static int wrapper_main(int argc, char **argv) {
    const char *nonce = NULL;
    if (argc >= 3 && strcmp(argv[1], "--launch-nonce") == 0) { /* rch-exec --launch-nonce HEX --grace-ms N ... */
        nonce = argv[2];
        if (!is_nonce(nonce)) return diag("usage: --launch-nonce takes 1 to 64 lowercase hex digits"), 2;
        argv += 2, argc -= 2;
    }
    char *end = NULL;
    long grace_ms = argc >= 5 && strcmp(argv[1], "--grace-ms") == 0 ? strtol(argv[2], &end, 10) : -1;
    if (grace_ms < 0 || !end || *end != '\0' || argv[2][0] == '\0') {
        diag("usage: rch-exec --grace-ms N <run-dir> <program> [args...]");
        return 2;
    }
    unsigned long long max_output = 0;
    if (strcmp(argv[3], "--max-output") == 0) { /* rch-exec --grace-ms N --max-output BYTES <run-dir> ... */
        char *max_end = NULL;
        max_output = argc >= 7 ? strtoull(argv[4], &max_end, 10) : 0;
        if (max_output == 0 || !max_end || *max_end != '\0') {
            diag("usage: rch-exec --grace-ms N [--max-output BYTES] <run-dir> <program> [args...]");
            return 2;
        }
        argv += 2, argc -= 2;
    }
    const char *run_dir = argv[3];
    /* First of all: a fenced launch leaves no trace, not even a line in the run's stderr. */
    int claim = nonce ? claim_launch(run_dir, nonce) : 0;
    if (claim != 0) return claim;
    int daemon_fd = open_daemon_fd();
    self_pid = getpid();
    self_pgid = getpgrp();
    profile_fd = daemon_fd;
    profile_mark(profile_fd, self_pid, "wrapper", 0);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) diag("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    for (size_t i = 0; i < sizeof ignored_signals / sizeof ignored_signals[0]; i++) signal(ignored_signals[i], SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    reserve_exit_record(run_dir);
    profile_mark(profile_fd, self_pid, "reserved", 0);
    int err_pipe[2], script_out[2] = {-1, -1};
    streams[0].in = streams[1].in = -1;
    if (sig_fd < 0) return diag("setup: %s", strerror(errno)), 1;
    if (max_output > 0 && relay_setup(max_output, script_out) < 0) return diag("output pipes: %s", strerror(errno)), 1;

    close_fds(DAEMON_FD, ~0U, 1); /* the spawned script keeps stdio only */
    profile_mark(profile_fd, self_pid, "exec", 0);
    int exec_error = 0;
    if (spawn_script(argv + 4, max_output > 0 ? script_out : NULL, &script_pid) != 0) {
        /* posix_spawn failed (most often the exec): fork and exec once more, so that a script that
         * cannot start is reported exactly as before, with an identity and its execError. */
        if (pipe2(err_pipe, O_CLOEXEC) < 0) return diag("setup: %s", strerror(errno)), 1;
        script_pid = fork();
        if (script_pid < 0) return diag("fork: %s", strerror(errno)), 1;
        if (script_pid == 0) exec_script(argv + 4, err_pipe[1], max_output > 0 ? script_out : NULL);
        setpgid(script_pid, script_pid); /* also done by the child: whichever runs first wins */
        close(err_pipe[1]);
        ssize_t n;
        while ((n = read(err_pipe[0], &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {}
        if (n != (ssize_t)sizeof exec_error) exec_error = 0; /* EOF: exec succeeded */
        close(err_pipe[0]);
    }
    if (max_output > 0) close(script_out[0]), close(script_out[1]);
    record_identity(run_dir, daemon_fd);

    int status = supervise(sig_fd, grace_ms);
    relay_finish(); /* the record comes after the output is all in place */
    char json[256], output[160] = "";
    /* lowSpace: the reserve, not the cap alone, made a stream drop output. */
    if (streams[0].dropped || streams[1].dropped)
        snprintf(output, sizeof output, ",\"output\":{\"stdoutDropped\":%llu,\"stderrDropped\":%llu,\"lowSpace\":%s}",
                 streams[0].dropped, streams[1].dropped,
                 (streams[0].low_space && streams[0].dropped) || (streams[1].low_space && streams[1].dropped) ? "true" : "false");
    if (exec_error) snprintf(json, sizeof json, "{\"execError\":%d}\n", exec_error);
    else if (WIFSIGNALED(status)) snprintf(json, sizeof json, "{\"signal\":%d%s}\n", WTERMSIG(status), output);
    else snprintf(json, sizeof json, "{\"exitCode\":%d%s}\n", WEXITSTATUS(status), output);
    if (write_exit_record(run_dir, json) < 0) return diag("cannot write %s: %s", RUN_FILE_EXIT_STATUS, strerror(errno)), 1;
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
    long argc = strtol(f[7], NULL, 10);
    if (argc < 1 || (size_t)(8 + argc + 1) > nf) _exit(2);
    long envc = strtol(f[8 + argc], NULL, 10);
    if (envc < 0 || (size_t)(9 + argc + envc) > nf) _exit(2);
    close(sig_fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int reply_fd = dup(STDOUT_FILENO);
    int in = open("/dev/null", O_RDONLY);
    int out = open(f[5], O_WRONLY | O_APPEND | O_CREAT, 0600);
    int err = open(f[6], O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (reply_fd < 0 || in < 0 || out < 0 || err < 0 || chdir(f[4]) < 0) _exit(126);
    dup2(in, STDIN_FILENO), dup2(out, STDOUT_FILENO), dup2(err, STDERR_FILENO), dup2(reply_fd, DAEMON_FD);
    /* The wrapper keeps stdio and its reply pipe (fd 3) only: every other descriptor, however high. */
    close_fds_from(DAEMON_FD + 1, -1);
    char **env = calloc((size_t)envc + 1, sizeof *env);
    char **argv = calloc((size_t)argc + 9, sizeof *argv);
    if (!env || !argv) _exit(126);
    for (long i = 0; i < envc; i++) env[i] = f[9 + argc + i];
    const char *nonce = (size_t)(9 + argc + envc) < nf ? f[9 + argc + envc] : "";
    int at = 0;
    argv[at++] = "rch-exec";
    if (nonce[0] != '\0') argv[at++] = "--launch-nonce", argv[at++] = (char *)nonce;
    argv[at++] = "--grace-ms", argv[at++] = f[1];
    if (strcmp(f[2], "0") != 0) argv[at++] = "--max-output", argv[at++] = f[2];
    argv[at++] = f[3];
    for (long i = 0; i < argc; i++) argv[at++] = f[8 + i];
    environ = env;
    _exit(wrapper_main(at, argv));
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
    if (nf < 9) return free(fields), free(payload), diag("malformed launch request"), 0;
    long long received_us = profiling ? now_epoch_us() : 0;
    pid_t pid = fork();
    if (pid == 0) become_wrapper(fields, nf, sig_fd);
    if (pid < 0) reply("F %s %d\n", fields[0], errno);
    else reply("S %s %d\n", fields[0], (int)pid);
    if (pid > 0) profile_mark(STDOUT_FILENO, pid, "received", received_us), profile_mark(STDOUT_FILENO, pid, "forked", 0);
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
    const char *profile = getenv("RCH_DISPATCH_PROFILE");
    profiling = profile != NULL && *profile != '\0';
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
