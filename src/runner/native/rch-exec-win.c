/*
 * rch-exec.exe: the per-run process wrapper of the Run Command handler on Windows (run-command.md
 * §4, §8); it gives Windows the guarantees rch-exec.c gives Linux. docs/windows-wrapper.md has the
 * contract; in short:
 *
 * Usage: rch-exec.exe [--launch-nonce HEX] --grace-ms N [--max-output BYTES] [--verbatim-args] <run-dir> <program> [args...]
 *        rch-exec.exe --probe <pid> <creation-time>
 *
 * --probe answers whether the process <pid> created at <creation-time> (decimal FILETIME, as in
 * process.json) still runs: exit 0 yes, 1 no (gone, exited, or the pid now names another process),
 * 2 usage. node on Windows has no API for a process's creation time; the daemon asks this.
 *
 *   0. with --launch-nonce, claims the launch first: creates <run-dir>\rch-launch-<nonce> (CREATE_NEW)
 *      and, if that name exists already (a restarted daemon fenced this launch, see
 *      src/runner/launch-fence.ts), exits 75 at once, having started and written nothing;
 *   1. puts the script in a Job Object with KILL_ON_JOB_CLOSE and no breakaway, so every
 *      descendant is in it and none can leave it (CREATE_BREAKAWAY_FROM_JOB fails with error 5);
 *   2. starts the script suspended, assigns it, resumes it: no instruction runs outside the job.
 *      Its stdin is NUL and its stdout/stderr are <run-dir>\stdout and \stderr opened here: a
 *      console host (pwsh) started by node.exe with file fds crashes under Wine and on Windows
 *      (windows-under-wine.md, "It needs a console"), while CREATE_NO_WINDOW gives it a headless one;
 *   3. records the identity (pid + creation time, so a reused pid is told apart) in process.json;
 *   4. on <run-dir>\terminate-request, sends CTRL_BREAK to the script's process group and after the
 *      grace period terminates the job;
 *   5. when the script exits, stops whatever is left in the job the same way, and only then writes
 *      exit-status.json, so a daemon that died meanwhile still learns the outcome.
 * With --max-output the script's stdout and stderr are pipes that a thread per stream relays to those
 * files, keeping the head and the tail of each within the cap (see "output relay"), as rch-exec.c does.
 * It never writes to stdout. With --verbatim-args the arguments after <program> are joined with
 * single spaces, unquoted (as node's windowsVerbatimArguments): cmd.exe /s /c "..." needs that.
 */
#define __USE_MINGW_ANSI_STDIO 1
#include <windows.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "run-files.h" /* the run directory's file names, generated from src/runner/run-directory.ts */

#define POLL_MS 1000      /* safety net should a directory change notification be lost */
#define GIVE_UP_MS 3000   /* how long past TerminateJobObject we wait for the job to empty */
/* STATUS_CONTROL_C_EXIT: what a console process killed by Ctrl+Break exits with, so a run that was
 * terminated reports the same code whichever of the two steps ended it. */
#define TERMINATED_EXIT_CODE 0xC000013AUL

int _dowildcard = 0; /* the mingw runtime must not expand '*' in our arguments */

typedef struct {
    const wchar_t *run_dir;
    DWORD grace_ms;
    unsigned long long max_output; /* 0: the script writes its output files itself */
    HANDLE job;     /* KILL_ON_JOB_CLOSE: if we die, wineserver/the kernel closes it and the tree dies */
    HANDLE port;    /* the job's completion port, to wait for "no process left" without polling */
    HANDLE process; /* the script */
    DWORD pid;
} run_t;

static void diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("rch-exec: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

/* Our stderr may belong to a process that is gone: a failed diagnostic must not kill us. Console
 * control events would (the default handler exits), so they are ignored for the wrapper itself. */
static BOOL WINAPI ignore_control(DWORD event) {
    (void)event;
    return TRUE;
}

/* Returns "<dir>\<name>" in a new buffer. */
static wchar_t *join_path(const wchar_t *dir, const wchar_t *name) {
    size_t dn = wcslen(dir), nn = wcslen(name);
    wchar_t *path = malloc((dn + nn + 2) * sizeof *path);
    if (!path) return NULL;
    wmemcpy(path, dir, dn);
    path[dn] = L'\\';
    wmemcpy(path + dn + 1, name, nn + 1);
    return path;
}

/* ---- command line ---- */

static wchar_t *copy_text(wchar_t *out, const wchar_t *text) {
    size_t n = wcslen(text);
    wmemcpy(out, text, n);
    return out + n;
}

static wchar_t *repeat_char(wchar_t *out, wchar_t c, size_t count) {
    while (count--) *out++ = c;
    return out;
}

/* Appends arg so that CommandLineToArgvW and the C runtimes give it back unchanged: quoted when it
 * is empty or holds blanks or quotes; inside quotes, backslashes are literal except in front of a
 * quote (escaped as \") or of the closing quote, where they are doubled. */
static wchar_t *append_quoted(wchar_t *out, const wchar_t *arg) {
    if (*arg && !wcspbrk(arg, L" \t\n\v\"")) return copy_text(out, arg);
    *out++ = L'"';
    for (;;) {
        size_t slashes = 0;
        while (*arg == L'\\') arg++, slashes++;
        if (*arg == L'\0') {
            out = repeat_char(out, L'\\', slashes * 2);
            break;
        }
        out = repeat_char(out, L'\\', *arg == L'"' ? slashes * 2 + 1 : slashes);
        *out++ = *arg++;
    }
    *out++ = L'"';
    return out;
}

/* Builds the script's command line from argv. The program name is always quoted and copied as is:
 * Windows parses the first token without escapes, and a file name cannot contain a quote. */
static wchar_t *make_command_line(wchar_t **argv, int argc, int verbatim) {
    size_t size = 1;
    for (int i = 0; i < argc; i++) size += wcslen(argv[i]) * 2 + 3;
    wchar_t *line = malloc(size * sizeof *line), *out = line;
    if (!line) return NULL;
    *out++ = L'"';
    out = copy_text(out, argv[0]);
    *out++ = L'"';
    for (int i = 1; i < argc; i++) {
        *out++ = L' ';
        out = verbatim ? copy_text(out, argv[i]) : append_quoted(out, argv[i]);
    }
    *out = L'\0';
    return line;
}

/* ---- files ---- */

/* Writes <dir>\<name> atomically: temp file in the same directory, flush, MoveFileEx over the old
 * one. The file gets the run directory's inherited ACL, which the daemon makes admin-only. */
static int write_atomic(const wchar_t *dir, const wchar_t *name, const char *text) {
    wchar_t dot_name[64] = L".";
    wcsncat(dot_name, name, 50);
    wcscat(dot_name, L".tmp");
    wchar_t *tmp = join_path(dir, dot_name), *dst = join_path(dir, name);
    int ok = 0;
    HANDLE file = tmp && dst ? CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL)
                             : INVALID_HANDLE_VALUE;
    if (file != INVALID_HANDLE_VALUE) {
        DWORD len = (DWORD)strlen(text), written = 0;
        ok = WriteFile(file, text, len, &written, NULL) && written == len && FlushFileBuffers(file);
        ok = CloseHandle(file) && ok && MoveFileExW(tmp, dst, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
        if (!ok) {
            DWORD error = GetLastError();
            DeleteFileW(tmp);
            SetLastError(error);
        }
    }
    free(tmp);
    free(dst);
    return ok ? 0 : -1;
}

/* Opens a handle the script inherits. Output files are opened for FILE_APPEND_DATA only, so every
 * write lands at the end even when several processes of the tree share the handle. */
static HANDLE open_inheritable(const wchar_t *path, DWORD access, DWORD disposition) {
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    return CreateFileW(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &inherit,
                       disposition, FILE_ATTRIBUTE_NORMAL, NULL);
}

/* Opens NUL, <run-dir>\stdout and <run-dir>\stderr; returns 0 or the Win32 error of the first that
 * failed (taken at once: a later successful OPEN_ALWAYS sets ERROR_ALREADY_EXISTS). */
static DWORD open_stdio(const wchar_t *run_dir, HANDLE std[3]) {
    const DWORD append = FILE_APPEND_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE;
    wchar_t *paths[3] = {NULL, join_path(run_dir, RUN_FILE_STDOUT_W), join_path(run_dir, RUN_FILE_STDERR_W)};
    DWORD error = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 0) std[i] = open_inheritable(L"NUL", GENERIC_READ, OPEN_EXISTING);
        else std[i] = paths[i] ? open_inheritable(paths[i], append, OPEN_ALWAYS) : INVALID_HANDLE_VALUE;
        if (std[i] == INVALID_HANDLE_VALUE && !error) error = paths[i] || i == 0 ? GetLastError() : ERROR_OUTOFMEMORY;
        free(paths[i]);
    }
    return error;
}

/* ---- output relay (issue #6) ----
 * With --max-output N the script writes into pipes, not into its output files: a thread per stream
 * relays its pipe to <run-dir>\stdout or \stderr and keeps the first N - T bytes (written through)
 * and a rolling tail of the last T bytes (T = min(N / 2, 16 MiB), held in memory and appended when
 * the stream ends); what lies between is dropped and counted. It also stops writing once the volume
 * is down to its reserve (min(64 MiB, 1 % of its size)), so a run's output never fills the disk the
 * other runs' records and the handler's own files need. The same rules as rch-exec.c on Linux. */
#define RELAY_CHUNK (1 << 20)
#define TAIL_MAX (16ULL << 20)
#define RESERVE_MAX (64ULL << 20)
#define RELAY_DRAIN_MS 5000 /* how long the pipes may stay open once the script's tree is gone */

typedef struct {
    HANDLE in, out, thread;            /* pipe read end, output file, relay thread */
    const wchar_t *run_dir;            /* on the volume whose free space counts */
    unsigned long long head_left;      /* bytes still written straight through */
    unsigned long long head_size;      /* the head's share of the cap */
    unsigned long long dropped;        /* bytes neither in the head nor in the tail */
    int low_space, abandoned;          /* abandoned: the wrapper stopped waiting for the thread */
    CRITICAL_SECTION lock;             /* held by the thread while it handles a chunk */
    char *buf, *ring;                  /* the tail: ring_size bytes, ring_len of them valid */
    size_t ring_size, ring_len, ring_pos;
} stream_t;

static stream_t streams[2];
static int relaying;

/* Bytes free on the volume of dir above its reserve (0 at or below it). */
static unsigned long long room_above_reserve(const wchar_t *dir) {
    ULARGE_INTEGER available, total, free_all;
    if (!GetDiskFreeSpaceExW(dir, &available, &total, &free_all)) return ~0ULL; /* the write itself will say */
    unsigned long long reserve = total.QuadPart / 100 < RESERVE_MAX ? total.QuadPart / 100 : RESERVE_MAX;
    return available.QuadPart > reserve ? available.QuadPart - reserve : 0;
}

/* Writes what it can of n bytes; returns how many were written. */
static size_t write_all(HANDLE file, const char *data, size_t n) {
    size_t done = 0;
    while (done < n) {
        DWORD chunk = n - done > RELAY_CHUNK ? RELAY_CHUNK : (DWORD)(n - done), written = 0;
        if (!WriteFile(file, data + done, chunk, &written, NULL) || written == 0) break;
        done += written;
    }
    return done;
}

/* Keeps n bytes in the stream's tail ring. */
static void keep_tail(stream_t *st, const char *data, size_t n) {
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

/* How many bytes the next read may take for the head (0: the head is over, read for the tail). */
static DWORD head_room(stream_t *st) {
    if (st->head_left == 0 || st->low_space) return 0;
    /* Never into the reserve: each chunk is at most what is free above it. */
    unsigned long long room = room_above_reserve(st->run_dir), want = RELAY_CHUNK;
    if (room == 0) return st->low_space = 1, 0;
    if (room < want) want = room;
    if (st->head_left < want) want = st->head_left;
    return (DWORD)want;
}

/* Handles n bytes just read for the head (to_head) or the tail. */
static void take_chunk(stream_t *st, size_t n, int to_head) {
    if (!to_head) return keep_tail(st, st->buf, n);
    size_t done = write_all(st->out, st->buf, n);
    if (done < n) { /* the disk is full after all: the head ends here, the rest goes to the tail */
        st->head_size -= st->head_left - done;
        st->head_left = 0, st->low_space = 1;
        keep_tail(st, st->buf + done, n - done);
    } else {
        st->head_left -= done;
    }
}

/* The relay thread of one stream: reads until every writer of the pipe is gone (ERROR_BROKEN_PIPE). */
static DWORD WINAPI relay_stream(void *arg) {
    stream_t *st = arg;
    for (;;) {
        EnterCriticalSection(&st->lock);
        DWORD room = st->abandoned ? 0 : head_room(st), got = 0;
        int stop = st->abandoned;
        LeaveCriticalSection(&st->lock);
        if (stop || !ReadFile(st->in, st->buf, room ? room : RELAY_CHUNK, &got, NULL)) break;
        EnterCriticalSection(&st->lock);
        if (!st->abandoned) take_chunk(st, got, room != 0);
        LeaveCriticalSection(&st->lock);
    }
    return 0;
}

/* Opens <run-dir>\stdout or \stderr for the relay (not inherited), positioned at its end. Write
 * access, not append only: giving back part of the head (relay_finish) needs SetEndOfFile. */
static HANDLE open_output(const wchar_t *run_dir, const wchar_t *name) {
    wchar_t *path = join_path(run_dir, name);
    HANDLE file = path ? CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                                     OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL)
                       : INVALID_HANDLE_VALUE;
    DWORD error = path ? GetLastError() : ERROR_OUTOFMEMORY;
    free(path);
    LARGE_INTEGER zero = {0};
    if (file != INVALID_HANDLE_VALUE) SetFilePointerEx(file, zero, NULL, FILE_END);
    else SetLastError(error);
    return file;
}

/* Makes the two pipes and opens the output files; write_ends[i] is what the script inherits.
 * Returns 0 or the Win32 error. */
static DWORD relay_setup(const run_t *run, HANDLE write_ends[2]) {
    static const wchar_t *names[2] = {RUN_FILE_STDOUT_W, RUN_FILE_STDERR_W};
    unsigned long long tail = run->max_output / 2 < TAIL_MAX ? run->max_output / 2 : TAIL_MAX;
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    for (int i = 0; i < 2; i++) {
        stream_t *st = &streams[i];
        st->run_dir = run->run_dir;
        st->head_left = st->head_size = run->max_output - tail;
        st->ring_size = (size_t)tail;
        st->out = open_output(run->run_dir, names[i]);
        if (st->out == INVALID_HANDLE_VALUE) return GetLastError();
        if (!(st->buf = malloc(RELAY_CHUNK))) return ERROR_OUTOFMEMORY;
        /* Only the write end is inheritable: the script must never hold a read end. */
        if (!CreatePipe(&st->in, &write_ends[i], &inherit, RELAY_CHUNK)) return GetLastError();
        SetHandleInformation(st->in, HANDLE_FLAG_INHERIT, 0);
        InitializeCriticalSection(&st->lock);
    }
    relaying = 1;
    return 0;
}

/* Starts the relay threads once the script runs (it holds the pipes' only write ends by then). */
static DWORD relay_start(void) {
    for (int i = 0; relaying && i < 2; i++)
        if (!(streams[i].thread = CreateThread(NULL, 0, relay_stream, &streams[i], 0, NULL))) return GetLastError();
    return 0;
}

/* The reserve stopped the head: gives back up to half of what was written of it, so that the end
 * of the output is kept too (truncating frees space, it never needs any). Returns the new room. */
static unsigned long long give_back_head(stream_t *st, unsigned long long room) {
    unsigned long long head_written = st->head_size - st->head_left, want = st->ring_len - room;
    unsigned long long cut = want < head_written / 2 ? want : head_written / 2;
    LARGE_INTEGER end, zero = {0};
    if (cut == 0 || !SetFilePointerEx(st->out, zero, &end, FILE_END) || (unsigned long long)end.QuadPart < cut) return room;
    LARGE_INTEGER at = {.QuadPart = end.QuadPart - (LONGLONG)cut};
    if (!SetFilePointerEx(st->out, at, NULL, FILE_BEGIN) || !SetEndOfFile(st->out)) return SetFilePointerEx(st->out, zero, NULL, FILE_END), room;
    st->dropped += cut;
    return room_above_reserve(st->run_dir);
}

/* Appends the stream's tail, if the volume has room for it above its reserve (else only the very
 * end that fits; the rest is dropped too). */
static void append_tail(stream_t *st) {
    if (st->ring_len == 0) return;
    unsigned long long room = room_above_reserve(st->run_dir);
    if (room < st->ring_len) room = give_back_head(st, room);
    if (room < st->ring_len) { /* keep only the very end that fits above the reserve */
        size_t skip = st->ring_len - (size_t)room;
        st->dropped += skip, st->low_space = 1;
        st->ring_pos = (st->ring_pos + skip) % st->ring_size, st->ring_len -= skip;
        if (st->ring_len == 0) return;
    }
    size_t first = st->ring_size - st->ring_pos < st->ring_len ? st->ring_size - st->ring_pos : st->ring_len;
    size_t written = write_all(st->out, st->ring + st->ring_pos, first);
    if (written == first) written += write_all(st->out, st->ring, st->ring_len - first);
    st->dropped += st->ring_len - written;
}

/* After the script's tree is gone: lets the threads drain the pipes to their end, then appends each
 * tail. A pipe still open after RELAY_DRAIN_MS (a process outside the job holds a duplicate of its
 * write end) is abandoned: what it said until then counts. */
static void relay_finish(void) {
    if (!relaying) return;
    HANDLE threads[2];
    DWORD count = 0;
    for (int i = 0; i < 2; i++)
        if (streams[i].thread) threads[count++] = streams[i].thread;
    if (count && WaitForMultipleObjects(count, threads, TRUE, RELAY_DRAIN_MS) == WAIT_TIMEOUT)
        diag("an output pipe is still open after the script's tree ended; relaying what it wrote so far");
    for (int i = 0; i < 2; i++) {
        stream_t *st = &streams[i];
        EnterCriticalSection(&st->lock);
        st->abandoned = 1;
        append_tail(st);
        LeaveCriticalSection(&st->lock);
    }
}

/* The exit record's "output" member when the relay dropped anything; "" otherwise. lowSpace: the
 * reserve, not the cap alone, made a stream drop output. */
static void format_output_note(char *out, size_t size) {
    out[0] = '\0';
    if (!relaying || (!streams[0].dropped && !streams[1].dropped)) return;
    int low = (streams[0].low_space && streams[0].dropped) || (streams[1].low_space && streams[1].dropped);
    snprintf(out, size, ",\"output\":{\"stdoutDropped\":%llu,\"stderrDropped\":%llu,\"lowSpace\":%s}",
             streams[0].dropped, streams[1].dropped, low ? "true" : "false");
}

/* ---- the job and the script ---- */

/* No BREAKAWAY_OK nor SILENT_BREAKAWAY_OK: a descendant asking for CREATE_BREAKAWAY_FROM_JOB fails
 * to start (error 5) instead of escaping the run. */
static DWORD make_job(run_t *run) {
    run->job = CreateJobObjectW(NULL, NULL);
    if (!run->job) return GetLastError();
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {0};
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(run->job, JobObjectExtendedLimitInformation, &limits, sizeof limits))
        return GetLastError();
    run->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT association = {run->job, run->port};
    if (!run->port || !SetInformationJobObject(run->job, JobObjectAssociateCompletionPortInformation,
                                               &association, sizeof association)) {
        diag("no job completion port (error %lu); polling the job instead", GetLastError());
        if (run->port) CloseHandle(run->port);
        run->port = NULL;
    }
    return 0;
}

/* Limits what the script inherits to its three stdio handles, whatever else of ours is inheritable
 * (handles we inherited from our own parent, say). NULL when unsupported: then all inheritable ones go. */
static LPPROC_THREAD_ATTRIBUTE_LIST make_handle_list(HANDLE std[3]) {
    SIZE_T size = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    LPPROC_THREAD_ATTRIBUTE_LIST list = size ? malloc(size) : NULL;
    if (!list) return NULL;
    if (!InitializeProcThreadAttributeList(list, 1, 0, &size)) return free(list), NULL;
    if (!UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, std, 3 * sizeof(HANDLE), NULL, NULL)) {
        DeleteProcThreadAttributeList(list);
        return free(list), NULL;
    }
    return list;
}

/* CreateProcessW with the script's flags: suspended until it is in the job; CREATE_NO_WINDOW gives
 * it a console of its own without a window (console hosts need one); its own process group is the
 * target of CTRL_BREAK. Environment and cwd are ours. */
static DWORD create_script(wchar_t *command_line, HANDLE std[3], PROCESS_INFORMATION *pi) {
    STARTUPINFOEXW si;
    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std[0], si.StartupInfo.hStdOutput = std[1], si.StartupInfo.hStdError = std[2];
    si.lpAttributeList = make_handle_list(std);
    DWORD flags = CREATE_SUSPENDED | CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT | CREATE_NEW_PROCESS_GROUP;
    if (si.lpAttributeList) flags |= EXTENDED_STARTUPINFO_PRESENT;
    BOOL ok = CreateProcessW(NULL, command_line, NULL, NULL, TRUE, flags, NULL, NULL, &si.StartupInfo, pi);
    DWORD error = ok ? 0 : GetLastError();
    if (si.lpAttributeList) DeleteProcThreadAttributeList(si.lpAttributeList), free(si.lpAttributeList);
    return error;
}

/* The script's stdio: NUL, and its output files or, with a cap, the relay's pipes. */
static DWORD open_script_stdio(const run_t *run, HANDLE std[3]) {
    std[0] = std[1] = std[2] = INVALID_HANDLE_VALUE;
    if (!run->max_output) return open_stdio(run->run_dir, std);
    std[0] = open_inheritable(L"NUL", GENERIC_READ, OPEN_EXISTING);
    if (std[0] == INVALID_HANDLE_VALUE) return GetLastError();
    return relay_setup(run, std + 1);
}

/* Starts the script in the job; returns 0 or the Win32 error that kept it from running. */
static DWORD start_script(run_t *run, wchar_t *command_line) {
    HANDLE std[3];
    PROCESS_INFORMATION pi;
    DWORD error = open_script_stdio(run, std);
    if (!error) error = create_script(command_line, std, &pi);
    /* Ours closed, the script holds the pipes' only write ends: the relay sees their end with it. */
    for (int i = 0; i < 3; i++)
        if (std[i] != INVALID_HANDLE_VALUE && std[i] != NULL) CloseHandle(std[i]);
    if (error) return error;
    if (!AssignProcessToJobObject(run->job, pi.hProcess)) {
        error = GetLastError(); /* it has not run a single instruction: just drop it */
        TerminateProcess(pi.hProcess, TERMINATED_EXIT_CODE);
        CloseHandle(pi.hThread), CloseHandle(pi.hProcess);
        return error;
    }
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    run->process = pi.hProcess;
    run->pid = pi.dwProcessId;
    return 0;
}

/* ---- identity ---- */

/* The creation time as a decimal FILETIME (100 ns since 1601): with the pid, it names one process. */
static void format_creation_time(HANDLE process, char *out, size_t size) {
    FILETIME created, exited, kernel, user;
    out[0] = '\0';
    if (!GetProcessTimes(process, &created, &exited, &kernel, &user)) return diag("GetProcessTimes: error %lu", GetLastError());
    unsigned long long ticks = ((unsigned long long)created.dwHighDateTime << 32) | created.dwLowDateTime;
    snprintf(out, size, "%llu", ticks);
}

/* Same shape as on Linux; pgid is the script's pid since it leads its own process group. */
static void record_identity(const run_t *run) {
    char start[32], wrapper_start[32], json[256];
    format_creation_time(run->process, start, sizeof start);
    format_creation_time(GetCurrentProcess(), wrapper_start, sizeof wrapper_start);
    snprintf(json, sizeof json, "{\"wrapperPid\":%lu,\"pid\":%lu,\"pgid\":%lu,\"startTime\":\"%s\",\"wrapperStartTime\":\"%s\"}\n",
             GetCurrentProcessId(), run->pid, run->pid, start, wrapper_start);
    if (write_atomic(run->run_dir, RUN_FILE_PROCESS_W, json) < 0) diag("cannot write %s: error %lu", RUN_FILE_PROCESS, GetLastError());
}

/* ---- supervision ---- */

static DWORD active_processes(const run_t *run) {
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION info;
    if (!QueryInformationJobObject(run->job, JobObjectBasicAccountingInformation, &info, sizeof info, NULL)) return 0;
    return info.ActiveProcesses;
}

/* The layout of JOBOBJECT_BASIC_PROCESS_ID_LIST with room for 256 ids. Its own ProcessIdList[1]
 * cannot be indexed past 0: GCC treats that as undefined and cuts the loop to one pass. */
typedef struct {
    DWORD assigned;
    DWORD count;
    ULONG_PTR pids[256];
} job_pids_t;

/* Lists (up to 256 of) the processes in the job; the list is empty when the query fails. */
static void list_job_pids(const run_t *run, job_pids_t *ids) {
    memset(ids, 0, sizeof *ids);
    if (!QueryInformationJobObject(run->job, JobObjectBasicProcessIdList, ids, sizeof *ids, NULL) &&
        GetLastError() != ERROR_MORE_DATA)
        ids->count = 0;
    if (ids->count > 256) ids->count = 256;
}

/* The console host of the script's console sits in the job too (seen under Wine) and ends by itself
 * once its last client is gone: it is not a leftover of the script. */
static int is_console_host(DWORD pid) {
    HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    wchar_t image[MAX_PATH];
    DWORD size = MAX_PATH;
    int ok = process && QueryFullProcessImageNameW(process, 0, image, &size);
    if (process) CloseHandle(process);
    if (!ok) return 0;
    const wchar_t *base = wcsrchr(image, L'\\');
    return _wcsicmp(base ? base + 1 : image, L"conhost.exe") == 0;
}

/* Whether processes other than a console host remain in the job. */
static int has_leftovers(const run_t *run) {
    job_pids_t ids;
    list_job_pids(run, &ids);
    for (DWORD i = 0; i < ids.count; i++)
        if (!is_console_host((DWORD)ids.pids[i])) return 1;
    return 0;
}

/* Waits up to ms for the job to hold no process; returns 1 once it is empty. Every message on the
 * completion port (a process started or exited) is a reason to look again. */
static int wait_job_empty(const run_t *run, DWORD ms) {
    DWORD start = GetTickCount();
    while (active_processes(run) > 0) {
        DWORD elapsed = GetTickCount() - start;
        if (elapsed >= ms) return 0;
        DWORD message;
        ULONG_PTR key;
        LPOVERLAPPED overlapped;
        if (run->port) GetQueuedCompletionStatus(run->port, &message, &key, &overlapped, ms - elapsed);
        else Sleep(50);
    }
    return 1;
}

static int termination_requested(const run_t *run) {
    wchar_t *path = join_path(run->run_dir, RUN_FILE_TERMINATE_REQUEST_W);
    int requested = path && GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES;
    free(path);
    return requested;
}

/* Waits until the script exits (returns 0) or <run-dir>\terminate-request appears (returns 1).
 * File-name changes in the run dir wake us; output writes do not (they change no name). */
static int wait_exit_or_request(const run_t *run) {
    HANDLE change = FindFirstChangeNotificationW(run->run_dir, FALSE, FILE_NOTIFY_CHANGE_FILE_NAME);
    if (change == INVALID_HANDLE_VALUE) diag("cannot watch the run dir (error %lu); polling it", GetLastError());
    int requested = 0;
    for (;;) {
        /* Looked at after the watch is armed, so a request made before it is not missed. */
        if ((requested = termination_requested(run))) break;
        HANDLE handles[2] = {run->process, change};
        DWORD count = change == INVALID_HANDLE_VALUE ? 1 : 2;
        DWORD woken = WaitForMultipleObjects(count, handles, FALSE, POLL_MS);
        if (woken == WAIT_OBJECT_0) break;
        if (woken == WAIT_OBJECT_0 + 1 && !FindNextChangeNotification(change)) {
            FindCloseChangeNotification(change);
            change = INVALID_HANDLE_VALUE;
        }
        if (woken == WAIT_FAILED) Sleep(POLL_MS);
    }
    if (change != INVALID_HANDLE_VALUE) FindCloseChangeNotification(change);
    return requested;
}

/* CTRL_BREAK to the script's process group, best effort. GenerateConsoleCtrlEvent reaches only the
 * caller's console, and the script has one of its own (CREATE_NO_WINDOW), so we join it for the
 * call through a process still in the job. Processes that started a new group or console miss it:
 * TerminateJobObject gets them after the grace period. */
static void send_ctrl_break(const run_t *run) {
    job_pids_t ids;
    list_job_pids(run, &ids);
    FreeConsole();
    for (DWORD i = 0; i < ids.count; i++) {
        if (!AttachConsole((DWORD)ids.pids[i])) continue;
        if (!GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, run->pid)) diag("CTRL_BREAK: error %lu", GetLastError());
        FreeConsole();
        return;
    }
    diag("CTRL_BREAK not sent: no console to join");
}

/* Asks the tree to stop, gives it the grace period, then kills whatever is left in the job. */
static void stop_tree(const run_t *run) {
    send_ctrl_break(run);
    if (wait_job_empty(run, run->grace_ms)) return;
    if (!TerminateJobObject(run->job, TERMINATED_EXIT_CODE)) diag("TerminateJobObject: error %lu", GetLastError());
    if (!wait_job_empty(run, GIVE_UP_MS)) diag("processes of the job survived TerminateJobObject; giving up on them");
}

/* Runs the script to its end; returns its exit code. */
static DWORD supervise(const run_t *run) {
    int requested = wait_exit_or_request(run);
    /* A script that exited with descendants still running is stopped like a terminated one:
     * leftovers never outlive a run. */
    if (requested || has_leftovers(run)) stop_tree(run);
    DWORD code = TERMINATED_EXIT_CODE;
    if (WaitForSingleObject(run->process, GIVE_UP_MS) != WAIT_OBJECT_0 || !GetExitCodeProcess(run->process, &code))
        diag("the script's exit code is unknown; reporting it as terminated");
    return code;
}

/* ---- launch claim (hardening #5, as in rch-exec.c) ---- */
#define FENCED_EXIT 75

static int is_nonce(const wchar_t *nonce) {
    size_t len = wcslen(nonce);
    return len >= 1 && len <= 64 && wcsspn(nonce, L"0123456789abcdef") == len;
}

/* 0 when this wrapper has the launch, FENCED_EXIT when the name is taken, 1 on any other error. */
static int claim_launch(const wchar_t *run_dir, const wchar_t *nonce) {
    wchar_t name[96] = RUN_FILE_LAUNCH_CLAIM_W;
    wcsncat(name, nonce, 64);
    wchar_t *path = join_path(run_dir, name);
    if (!path) return 1;
    HANDLE file = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD error = file == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    /* A directory there (the daemon's fence) answers ERROR_ACCESS_DENIED, not ERROR_FILE_EXISTS. */
    int taken = file == INVALID_HANDLE_VALUE && (error == ERROR_FILE_EXISTS || GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES);
    if (file != INVALID_HANDLE_VALUE) CloseHandle(file);
    free(path);
    if (taken) return FENCED_EXIT;
    if (error) return diag("cannot claim the launch: error %lu", error), 1;
    return 0;
}

/* ---- main ---- */

/* Parses "--grace-ms N [--max-output BYTES] [--verbatim-args] <run-dir> <program> ..."; returns the
 * index of <program>, or 0 on a usage error. */
static int parse_args(int argc, wchar_t **argv, run_t *run, int *verbatim) {
    if (argc < 5 || wcscmp(argv[1], L"--grace-ms") != 0 || argv[2][0] == L'\0') return 0;
    wchar_t *end;
    unsigned long grace = wcstoul(argv[2], &end, 10);
    if (*end != L'\0' || argv[2][0] == L'-' || grace > 0x7fffffffUL) return 0;
    int at = 3;
    if (wcscmp(argv[at], L"--max-output") == 0) {
        if (argc < at + 4 || argv[at + 1][0] < L'0' || argv[at + 1][0] > L'9') return 0;
        run->max_output = wcstoull(argv[at + 1], &end, 10);
        if (*end != L'\0' || run->max_output == 0) return 0;
        at += 2;
    }
    *verbatim = wcscmp(argv[at], L"--verbatim-args") == 0;
    if (*verbatim) at++;
    if (argc < at + 2 || argv[at][0] == L'\0') return 0;
    run->grace_ms = (DWORD)grace;
    run->run_dir = argv[at];
    return at + 1;
}

/* --probe <pid> <creation-time>: 0 while that very process runs, 1 otherwise, 2 on a usage error. */
static int probe(wchar_t **argv) {
    wchar_t *end_pid, *end_time;
    unsigned long pid = wcstoul(argv[2], &end_pid, 10);
    unsigned long long want = wcstoull(argv[3], &end_time, 10);
    if (*end_pid != L'\0' || *end_time != L'\0' || argv[2][0] == L'\0' || argv[3][0] == L'\0' || pid == 0) return 2;
    HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
    if (!process) return 1;
    FILETIME created, exited, kernel, user;
    int alive = GetProcessTimes(process, &created, &exited, &kernel, &user) &&
                (((unsigned long long)created.dwHighDateTime << 32) | created.dwLowDateTime) == want &&
                WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
    CloseHandle(process);
    return alive ? 0 : 1;
}

int wmain(int argc, wchar_t **argv) {
    if (argc >= 2 && wcscmp(argv[1], L"--probe") == 0) {
        if (argc == 4) return probe(argv);
        diag("usage: rch-exec.exe --probe <pid> <creation-time>");
        return 2;
    }
    const wchar_t *nonce = NULL;
    if (argc >= 3 && wcscmp(argv[1], L"--launch-nonce") == 0) {
        nonce = argv[2];
        if (!is_nonce(nonce)) return diag("usage: --launch-nonce takes 1 to 64 lowercase hex digits"), 2;
        argv += 2, argc -= 2;
    }
    run_t run;
    int verbatim = 0;
    memset(&run, 0, sizeof run);
    int program = parse_args(argc, argv, &run, &verbatim);
    if (!program) {
        diag("usage: rch-exec.exe [--launch-nonce HEX] --grace-ms N [--max-output BYTES] [--verbatim-args] <run-dir> <program> [args...]");
        return 2;
    }
    /* First of all: a fenced launch leaves no trace. */
    int claim = nonce ? claim_launch(run.run_dir, nonce) : 0;
    if (claim) return claim;
    SetConsoleCtrlHandler(ignore_control, TRUE);
    wchar_t *command_line = make_command_line(argv + program, argc - program, verbatim);
    DWORD error = command_line ? make_job(&run) : ERROR_OUTOFMEMORY;
    if (!error) error = start_script(&run, command_line);
    char json[256], output[160];
    if (error) {
        diag("cannot start the script: error %lu", error);
        snprintf(json, sizeof json, "{\"execError\":%lu}\n", error);
    } else {
        DWORD relay_error = relay_start();
        /* Without its threads the script would block on a full pipe: end the run at once. */
        if (relay_error) diag("cannot start the output relay: error %lu", relay_error), TerminateJobObject(run.job, TERMINATED_EXIT_CODE);
        record_identity(&run);
        DWORD code = supervise(&run);
        relay_finish(); /* the record comes after the output is all in place */
        format_output_note(output, sizeof output);
        snprintf(json, sizeof json, "{\"exitCode\":%lu%s}\n", code, output);
    }
    if (write_atomic(run.run_dir, RUN_FILE_EXIT_STATUS_W, json) < 0)
        return diag("cannot write %s: error %lu", RUN_FILE_EXIT_STATUS, GetLastError()), 1;
    return 0; /* closing the job (KILL_ON_JOB_CLOSE) at exit takes down anything we gave up on */
}
