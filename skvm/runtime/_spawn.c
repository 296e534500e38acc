/* Start one sandboxed command from the VM process, with vfork semantics.
 *
 * The fork server (spawner.py) needs a request, a reply and a server wake-up
 * per command, and glibc's posix_spawn resets every signal in its child before
 * exec. This module does the same confinement in the VM's own process with one
 * clone(CLONE_VM | CLONE_VFORK): the child borrows the parent's memory (no page
 * tables copied) and the calling thread sleeps until the child has exec'd or
 * exited. Everything the child needs (argv, environment, candidate paths) is
 * built by the parent first: between clone and exec the child only makes
 * system calls, because other threads of the VM keep running in the memory it
 * shares (no malloc, no locks, no Python).
 *
 * In the child, in this order: signal handlers reset (a handler is parent code,
 * and must never run in the child), SIGPIPE/SIGXFSZ/SIGINT back to their
 * defaults, a new session, the parent-death signal, the network namespace, the
 * mount namespace of the commands' PID namespace (which the parent thread
 * makes the child's for the clone, see spawn), the pids cgroup, the rlimits, the Landlock ruleset (no_new_privs first), the
 * working directory, fds 0-2, every other fd
 * close-on-exec, the signal mask emptied, exec. A failure before exec is
 * recorded in memory the parent reads after clone returns (step, index and
 * errno), and the child exits 126, or 127 when the command was not found.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446 /* the same number on every architecture */
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Where a failure before exec happened (reported to Python as the first field). */
enum {
    STEP_NONE = 0,
    STEP_SIGNALS,
    STEP_SESSION,
    STEP_NETNS,
    STEP_CGROUP,
    STEP_LIMIT,
    STEP_CWD,
    STEP_STDIO,
    STEP_EXEC,
    STEP_LANDLOCK,
    STEP_PROCNS,
};

#define MAX_LIMITS 8
#define CHILD_STACK_BYTES (64 * 1024)

typedef struct {
    /* Inputs, built by the parent before clone. */
    char *const *candidates; /* paths to try, NULL-terminated */
    char *const *argv;
    char **sh_argv; /* {"/bin/sh", <path>, argv[1:]..., NULL}: a file without #! */
    char *const *envp;
    const char *cwd;
    int fds[3];    /* stdin (-1: /dev/null), stdout, stderr */
    int cgroup_fd; /* cgroup.procs opened for writing, or -1 */
    int netns_fd;  /* a network namespace to enter, or -1 */
    int landlock_fd; /* a Landlock ruleset to restrict the command to, or -1 */
    int mntns_fd;    /* the mount namespace of the commands' PID namespace, or -1 */
    int nlimits;
    int limit_resource[MAX_LIMITS];
    struct rlimit limit_value[MAX_LIMITS];
    /* Output, written by the child when it fails before exec. */
    int step;
    int index;
    int error;
} spawn_request;

static int
fail(spawn_request *req, int step, int index, int error)
{
    req->step = step;
    req->index = index;
    req->error = error;
    /* 127 is a shell's "command not found"; anything else stopped it from running. */
    _exit(step == STEP_EXEC && (error == ENOENT || error == ENOTDIR) ? 127 : 126);
    return 0;
}

static int
child_main(void *arg)
{
    spawn_request *req = (spawn_request *)arg;
    struct sigaction action;
    int sig, i, fd;

    /* A handler is parent code: reset it before any signal can be unblocked.
       Ignored signals stay ignored (as across any exec), except these three,
       which Python ignores and a command expects at their defaults. */
    for (sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &action) != 0)
            continue; /* signals reserved by the C library */
        if (action.sa_handler == SIG_DFL)
            continue;
        if (action.sa_handler == SIG_IGN && sig != SIGPIPE && sig != SIGXFSZ && sig != SIGINT)
            continue;
        memset(&action, 0, sizeof(action));
        action.sa_handler = SIG_DFL;
        if (sigaction(sig, &action, NULL) != 0)
            return fail(req, STEP_SIGNALS, sig, errno);
    }
    if (setsid() < 0)
        return fail(req, STEP_SESSION, 0, errno);
    /* The command dies with the VM thread that started it (its descendants are
       left to the pids cgroup and the process group: see docs/security.md). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return fail(req, STEP_SESSION, 1, errno);
    if (req->netns_fd >= 0 && setns(req->netns_fd, CLONE_NEWNET) != 0)
        return fail(req, STEP_NETNS, 0, errno);
    /* Its /proc shows the PID namespace the child was born in. This also moves
       the child to that namespace's root directory: chdir below. */
    if (req->mntns_fd >= 0 && setns(req->mntns_fd, CLONE_NEWNS) != 0)
        return fail(req, STEP_PROCNS, 0, errno);
    /* "0" moves the writing process. */
    if (req->cgroup_fd >= 0 && write(req->cgroup_fd, "0", 1) != 1)
        return fail(req, STEP_CGROUP, 0, errno);
    for (i = 0; i < req->nlimits; i++) {
        if (setrlimit(req->limit_resource[i], &req->limit_value[i]) != 0)
            return fail(req, STEP_LIMIT, i, errno);
    }
    /* Landlock domains and no_new_privs belong to this task's credentials: the
       VM (which shares only the memory) stays unrestricted. */
    if (req->landlock_fd >= 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            return fail(req, STEP_LANDLOCK, 0, errno);
        if (syscall(SYS_landlock_restrict_self, req->landlock_fd, 0U) != 0)
            return fail(req, STEP_LANDLOCK, 1, errno);
    }
    if (chdir(req->cwd) != 0)
        return fail(req, STEP_CWD, 0, errno);

    /* Lift any source fd out of 0-2 first, so no dup2 below overwrites another. */
    if (req->fds[0] < 0) {
        req->fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (req->fds[0] < 0)
            return fail(req, STEP_STDIO, 0, errno);
    }
    for (i = 0; i < 3; i++) {
        if (req->fds[i] < 3) {
            fd = fcntl(req->fds[i], F_DUPFD_CLOEXEC, 3);
            if (fd < 0)
                return fail(req, STEP_STDIO, i, errno);
            req->fds[i] = fd;
        }
    }
    for (i = 0; i < 3; i++) {
        if (dup2(req->fds[i], i) < 0)
            return fail(req, STEP_STDIO, i, errno);
    }
    /* The command holds fds 0-2 only, whatever the VM left inheritable. The fd
       table is the child's own copy (no CLONE_FILES): the parent keeps its fds. */
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    /* execvpe as sh does it: the first error that says more than "not found". */
    int error = 0;
    for (i = 0; req->candidates[i] != NULL; i++) {
        execve(req->candidates[i], req->argv, req->envp);
        int e = errno;
        if (e == ENOEXEC) {
            req->sh_argv[1] = req->candidates[i];
            execve("/bin/sh", req->sh_argv, req->envp);
            e = errno;
        }
        if (error == 0 || error == ENOENT || error == ENOTDIR)
            error = e;
    }
    return fail(req, STEP_EXEC, 0, error ? error : ENOENT);
}

/* A NULL-terminated char* array pointing into the bytes objects of ``seq``
   (which must outlive it). ``extra`` leading slots are left for the caller. */
static char **
byte_array(PyObject *seq, const char *what, Py_ssize_t extra, Py_ssize_t *count)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **out = PyMem_Calloc((size_t)(n + extra + 1), sizeof(char *));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        char *text;
        Py_ssize_t size;
        if (!PyBytes_Check(item) || PyBytes_AsStringAndSize(item, &text, &size) < 0 ||
            (Py_ssize_t)strlen(text) != size) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "%s: bytes without NUL expected", what);
            PyMem_Free(out);
            Py_DECREF(fast);
            return NULL;
        }
        out[extra + i] = text;
    }
    Py_DECREF(fast); /* the items stay alive: the caller holds ``seq`` */
    if (count != NULL)
        *count = n;
    return out;
}

PyDoc_STRVAR(spawn_doc,
"spawn(candidates, argv, env, cwd, stdin, stdout, stderr, limits, cgroup_fd, netns_fd,\n"
"      landlock_fd=-1, pidns_fd=-1, own_pidns_fd=-1, mntns_fd=-1)\n"
"\n"
"Start a confined command; returns (pid, pidfd, step, index, errno).\n"
"\n"
"candidates: paths to exec in turn (bytes); argv, env (b'NAME=value'): bytes;\n"
"stdin (-1: /dev/null), stdout, stderr: fds the child gets as 0-2; limits:\n"
"(resource, soft, hard) triples; cgroup_fd: cgroup.procs open for writing, or\n"
"-1; netns_fd: a network namespace to enter, or -1; landlock_fd: a Landlock\n"
"ruleset the child restricts itself to, or -1; pidns_fd, own_pidns_fd,\n"
"mntns_fd: a PID namespace for the child to be born in, the caller's own (to\n"
"return to after the clone) and the mount namespace the child enters, or -1\n"
"(all three or none). step is 0 when the\n"
"command was exec'd; otherwise the child failed at that step (index: which\n"
"limit or fd) and exited 126, or 127 (not found). OSError: clone failed.");

static PyObject *
spawn(PyObject *module, PyObject *args)
{
    PyObject *candidates_obj, *argv_obj, *env_obj, *limits_obj;
    const char *cwd;
    int stdin_fd, stdout_fd, stderr_fd, cgroup_fd, netns_fd, landlock_fd = -1;
    int pidns_fd = -1, own_pidns_fd = -1, mntns_fd = -1;
    if (!PyArg_ParseTuple(args, "OOOyiiiOii|iiii:spawn", &candidates_obj, &argv_obj, &env_obj,
                          &cwd, &stdin_fd, &stdout_fd, &stderr_fd, &limits_obj, &cgroup_fd,
                          &netns_fd, &landlock_fd, &pidns_fd, &own_pidns_fd, &mntns_fd))
        return NULL;
    if ((pidns_fd >= 0) != (own_pidns_fd >= 0) || (pidns_fd >= 0) != (mntns_fd >= 0)) {
        PyErr_SetString(PyExc_ValueError, "pidns_fd, own_pidns_fd and mntns_fd go together");
        return NULL;
    }

    spawn_request req;
    memset(&req, 0, sizeof(req));
    req.cwd = cwd;
    req.fds[0] = stdin_fd;
    req.fds[1] = stdout_fd;
    req.fds[2] = stderr_fd;
    req.cgroup_fd = cgroup_fd;
    req.netns_fd = netns_fd;
    req.landlock_fd = landlock_fd;
    req.mntns_fd = mntns_fd;

    PyObject *limits = PySequence_Fast(limits_obj, "limits must be a sequence");
    if (limits == NULL)
        return NULL;
    Py_ssize_t nlimits = PySequence_Fast_GET_SIZE(limits);
    if (nlimits > MAX_LIMITS) {
        Py_DECREF(limits);
        return PyErr_Format(PyExc_ValueError, "at most %d limits", MAX_LIMITS);
    }
    for (Py_ssize_t i = 0; i < nlimits; i++) {
        int resource_id;
        unsigned long long soft, hard;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(limits, i), "iKK", &resource_id, &soft,
                              &hard)) {
            Py_DECREF(limits);
            return NULL;
        }
        req.limit_resource[i] = resource_id;
        req.limit_value[i].rlim_cur = (rlim_t)soft;
        req.limit_value[i].rlim_max = (rlim_t)hard;
    }
    req.nlimits = (int)nlimits;
    Py_DECREF(limits);

    Py_ssize_t argc = 0;
    char **candidates = byte_array(candidates_obj, "candidates", 0, NULL);
    char **argv = candidates ? byte_array(argv_obj, "argv", 0, &argc) : NULL;
    char **sh_argv = argv ? byte_array(argv_obj, "argv", 1, NULL) : NULL;
    char **envp = sh_argv ? byte_array(env_obj, "env", 0, NULL) : NULL;
    char *stack = envp ? PyMem_Malloc(CHILD_STACK_BYTES) : NULL;
    PyObject *result = NULL;
    if (stack == NULL) {
        if (envp != NULL)
            PyErr_NoMemory();
        goto done;
    }
    if (argc == 0) {
        PyErr_SetString(PyExc_ValueError, "argv must not be empty");
        goto done;
    }
    /* {"/bin/sh", <path>, argv[1:]...}: slot 0 is free, slot 1 held argv[0]. */
    sh_argv[0] = "/bin/sh";
    req.candidates = candidates;
    req.argv = argv;
    req.sh_argv = sh_argv;
    req.envp = envp;

    int pidfd = -1, saved_errno = 0, restore_errno = 0;
    pid_t pid = -1;
    sigset_t all, old;
    sigfillset(&all);
    Py_BEGIN_ALLOW_THREADS
    /* No signal may run a parent handler in the child before it reset them. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* A PID namespace is entered by the parent: setns(CLONE_NEWPID) sets where
       this thread's next child is born (the thread itself stays where it is),
       and only this thread's. It is set back right after the clone, or the
       thread could not start threads any more. */
    if (pidns_fd >= 0 && setns(pidns_fd, CLONE_NEWPID) != 0) {
        saved_errno = errno;
    } else {
        /* The stack grows down on every architecture this is built for. */
        pid = clone(child_main, stack + CHILD_STACK_BYTES,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &req, &pidfd);
        saved_errno = errno;
        if (pidns_fd >= 0 && setns(own_pidns_fd, CLONE_NEWPID) != 0)
            restore_errno = errno;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    Py_END_ALLOW_THREADS
    if (restore_errno != 0) {
        /* Cannot happen to a process that could enter the namespace; never
           leave a command running that the caller does not know of. */
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(pidfd);
        }
        errno = restore_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    if (pid < 0) {
        errno = saved_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = Py_BuildValue("(iiiii)", (int)pid, pidfd, req.step, req.index, req.error);

done:
    PyMem_Free(stack);
    PyMem_Free(envp);
    PyMem_Free(sh_argv);
    PyMem_Free(argv);
    PyMem_Free(candidates);
    return result;
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, spawn_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "skvm.runtime._spawn",
    "Start sandboxed commands from the VM process with one clone(CLONE_VM | CLONE_VFORK).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__spawn(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "STEP_NONE", STEP_NONE) < 0 ||
        PyModule_AddIntConstant(module, "STEP_SIGNALS", STEP_SIGNALS) < 0 ||
        PyModule_AddIntConstant(module, "STEP_SESSION", STEP_SESSION) < 0 ||
        PyModule_AddIntConstant(module, "STEP_NETNS", STEP_NETNS) < 0 ||
        PyModule_AddIntConstant(module, "STEP_CGROUP", STEP_CGROUP) < 0 ||
        PyModule_AddIntConstant(module, "STEP_LIMIT", STEP_LIMIT) < 0 ||
        PyModule_AddIntConstant(module, "STEP_CWD", STEP_CWD) < 0 ||
        PyModule_AddIntConstant(module, "STEP_STDIO", STEP_STDIO) < 0 ||
        PyModule_AddIntConstant(module, "STEP_EXEC", STEP_EXEC) < 0 ||
        PyModule_AddIntConstant(module, "STEP_LANDLOCK", STEP_LANDLOCK) < 0 ||
        PyModule_AddIntConstant(module, "STEP_PROCNS", STEP_PROCNS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
