/* customize_accel: the appliance's qemu seen from outside, as a process. Two jobs:
 * - deciding whether the libguestfs appliance may use KVM. /dev/kvm existing is not enough: on
 *   nested "PVM" hosts it opens, creates VMs and runs small real- and long-mode programs, yet
 *   qemu hangs as soon as a Linux kernel starts. So the probe boots a real kernel for a moment
 *   and waits for its banner on the serial console; a working KVM prints it in well under a
 *   second. The verdict is remembered per host boot, since it cannot change before a reboot.
 * - the watchdog thread of a run: libguestfs calls block until the appliance answers, and an
 *   appliance whose qemu paused on ENOSPC never does. The thread samples qemu's CPU time, the
 *   disk file's size and its file system's free space, and kills qemu on a verdict of
 *   cust_watch_judge() or a stop signal; the blocked call then fails. It cannot ask libguestfs
 *   (the handle's lock is held by the blocked call), so it kills by pid, through a pidfd so a
 *   reused pid is never hit.
 * No libguestfs here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "customize.h"
#include "customize_int.h"
#include "fsutil.h"
#include "log.h"

extern char **environ;

#define CUST_KVM_PROBE_TIMEOUT_MS 3000
#define CUST_KVM_BANNER "Linux version"

static long cust_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void cust_why(char *why, size_t len, const char *msg)
{
	if (why && len)
		snprintf(why, len, "%s", msg);
}

int cust_accel_probe_kvm(const char *qemu, const char *kernel, int timeout_ms, bool *ret_ok,
			 char *ret_why, size_t why_len, struct phx_err *err)
{
	char *argv[] = {(char *)qemu,
			"-accel",
			"kvm",
			"-machine",
			"pc",
			"-cpu",
			"max",
			"-m",
			"128",
			"-nodefaults",
			"-display",
			"none",
			"-no-reboot",
			"-serial",
			"stdio",
			"-monitor",
			"none",
			"-kernel",
			(char *)kernel,
			"-append",
			"console=ttyS0 panic=-1",
			NULL};
	posix_spawn_file_actions_t fa;
	int pipefd[2], status, rc;
	char seen[4096];
	size_t seen_len = 0;
	bool ok = false;
	const char *why = "no kernel banner within the timeout (KVM present but guests hang)";
	long deadline = cust_now_ms() + timeout_ms;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return phx_err_set_errno(err, PHX_E_RUNTIME, errno, "kvm probe: pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, qemu, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return phx_err_set_errno(err, PHX_E_RUNTIME, rc, "kvm probe: start '%s'", qemu);
	}
	for (;;) {
		long left = deadline - cust_now_ms();
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		ssize_t got;

		if (left <= 0)
			break;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		/* Keep the tail of the output so a banner split across reads is still seen. */
		if (seen_len > sizeof(seen) / 2) {
			memmove(seen, seen + seen_len - 64, 64);
			seen_len = 64;
		}
		got = read(pipefd[0], seen + seen_len, sizeof(seen) - 1 - seen_len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			why = "qemu exited before the kernel printed its banner";
			break;
		}
		seen_len += (size_t)got;
		seen[seen_len] = '\0';
		if (memmem(seen, seen_len, CUST_KVM_BANNER, strlen(CUST_KVM_BANNER))) {
			ok = true;
			why = "kernel banner seen";
			break;
		}
	}
	close(pipefd[0]);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	cust_why(ret_why, why_len, why);
	*ret_ok = ok;
	return 0;
}

/* The kernel supermin would build the appliance from: SUPERMIN_KERNEL, else the newest
 * /boot/vmlinuz-*. Caller frees. NULL when there is none. */
static char *cust_probe_kernel(void)
{
	const char *env = getenv("SUPERMIN_KERNEL");
	glob_t gl;
	char *k = NULL;

	if (env && *env)
		return strdup(env);
	if (glob("/boot/vmlinuz-*", 0, NULL, &gl) != 0)
		return NULL;
	for (size_t i = gl.gl_pathc; i-- > 0;) {
		if (access(gl.gl_pathv[i], R_OK) == 0) {
			k = strdup(gl.gl_pathv[i]);
			break;
		}
	}
	globfree(&gl);
	return k;
}

static void cust_boot_id(char *out, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	out[0] = '\0';
	if (!f)
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

int cust_accel_decide(enum cust_accel want, const char *qemu, const char *state_dir, bool *ret_kvm,
		      struct phx_err *err)
{
	char boot_id[64], why[128] = "", *kernel = NULL, *cache = NULL, *key = NULL;
	struct buf old = BUF_INIT;
	bool ok = false;
	int fd;
	long t0;

	if (want != CUST_ACCEL_AUTO) {
		*ret_kvm = want == CUST_ACCEL_KVM;
		log_debug("customize: accelerator %s as requested", *ret_kvm ? "kvm" : "tcg");
		return 0;
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		log_debug("customize: /dev/kvm: %s: using tcg", strerror(errno));
		*ret_kvm = false;
		return 0;
	}
	close(fd);
	kernel = cust_probe_kernel();
	if (!kernel) {
		/* Nothing to boot: trust /dev/kvm as libguestfs itself would. */
		log_debug("customize: no kernel in /boot to probe KVM with: trusting /dev/kvm");
		*ret_kvm = true;
		return 0;
	}
	cust_boot_id(boot_id, sizeof(boot_id));
	if (asprintf(&key, "%s %s %s", boot_id, qemu, kernel) < 0) {
		key = NULL;
		goto nomem;
	}
	if (state_dir && boot_id[0]) {
		if (asprintf(&cache, "%s/kvm-probe", state_dir) < 0) {
			cache = NULL;
			goto nomem;
		}
		buf_init(&old, 4096);
		if (fs_read_file(cache, &old, NULL) == 0) {
			const char *s = buf_str(&old);
			size_t klen = strlen(key);

			if (!strncmp(s, key, klen) && s[klen] == '\n') {
				*ret_kvm = !strncmp(s + klen + 1, "kvm", 3);
				log_debug("customize: KVM verdict for this boot from '%s': %s",
					  cache, *ret_kvm ? "kvm works" : "kvm broken, using tcg");
				goto out;
			}
		}
	}
	t0 = cust_now_ms();
	if (cust_accel_probe_kvm(qemu, kernel, CUST_KVM_PROBE_TIMEOUT_MS, &ok, why, sizeof(why),
				 err) < 0) {
		free(kernel);
		free(key);
		free(cache);
		buf_release(&old);
		return -1;
	}
	log_debug("customize: KVM probe (boot '%s' under '%s'): %s after %ld ms: using %s", kernel,
		  qemu, why, cust_now_ms() - t0, ok ? "kvm" : "tcg");
	*ret_kvm = ok;
	if (cache) {
		struct buf line = BUF_INIT;
		struct phx_err werr = PHX_ERR_INIT;

		/* The cache only saves time: failing to write it is not an error. */
		if (fs_mkdir_p(state_dir, 0755, &werr) < 0 ||
		    buf_printf(&line, &werr, "%s\n%s\n", key, ok ? "kvm" : "tcg") < 0 ||
		    fs_write_atomic(cache, line.data, line.len, 0644, &werr) < 0)
			log_debug("customize: cannot remember the KVM verdict: %s", werr.msg);
		buf_release(&line);
	}
out:
	free(kernel);
	free(key);
	free(cache);
	buf_release(&old);
	return 0;
nomem:
	free(kernel);
	free(key);
	free(cache);
	buf_release(&old);
	return phx_err_set(err, PHX_E_NOMEM, "out of memory");
}

/* --- the watchdog --- */

/* How often the thread wakes: a stop signal is acted on within this. */
#define CUST_WATCH_TICK_MS 250
/* How often it samples the appliance (and, before the pid is known, looks for it). */
#define CUST_WATCH_SAMPLE_S 1.0

struct cust_watch {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	bool stop, disarmed;
	int pid, pidfd; /* the appliance's qemu: 0 / -1 until known */
	enum phx_err_code code;
	char msg[1024];
	/* the thread's own */
	char *disk, *dir; /* owned */
	double full_s, stall_s;
	struct cust_space space;
	struct cust_watch_state st;
};

static int cust_pidfd_open(int pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Reads /proc/<pid>/stat: the parent pid and the CPU seconds (user + system). */
static int cust_proc_stat(int pid, int *ret_ppid, double *ret_cpu_s)
{
	char path[64], text[1024], *p;
	unsigned long ut, stm;
	int ppid;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* the command name may hold spaces and parentheses: fields follow the last ')' */
	p = strrchr(text, ')');
	if (!p || sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid, &ut,
			 &stm) != 3)
		return -1;
	*ret_ppid = ppid;
	*ret_cpu_s = (double)(ut + stm) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

/* True when pid is a child of this process whose command line names the disk: libguestfs's
 * qemu (its recovery process is a fork of us and names no disk). */
static bool cust_is_appliance(int pid, const char *disk)
{
	char path[64], *cmd;
	double cpu;
	int ppid;
	size_t n, cap = 64 * 1024;
	bool found = false;
	FILE *f;

	if (cust_proc_stat(pid, &ppid, &cpu) < 0 || ppid != getpid())
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "re");
	cmd = f ? malloc(cap) : NULL;
	if (f && cmd) {
		n = fread(cmd, 1, cap, f);
		found = memmem(cmd, n, disk, strlen(disk)) != NULL;
	}
	free(cmd);
	if (f)
		fclose(f);
	return found;
}

/* Looks for the appliance among this process's children while libguestfs is still launching
 * it (guestfs_get_pid answers only afterwards). 0 when not (yet) there. */
static int cust_find_appliance(const char *disk)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (cust_is_appliance((int)pid, disk))
			found = (int)pid;
	}
	closedir(d);
	return found;
}

/* Records the appliance and its pidfd (-1 without pidfd support; taken over); mu held. The
 * pidfd pins the process: a kill through it can only reach this qemu, even after libguestfs
 * reaped it and the pid was reused. */
static void cust_watch_adopt(struct cust_watch *w, int pid, int pidfd)
{
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pid = pid;
	w->pidfd = pidfd;
}

static void cust_watch_kill(struct cust_watch *w)
{
#ifdef SYS_pidfd_send_signal
	if (w->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
		return;
	}
#endif
	/* No pidfd (kernel < 5.3): the pid is only still ours while it is our child naming
	 * the disk; libguestfs reaps it only in the call we are interrupting or in close. */
	if (w->pid > 0 && cust_is_appliance(w->pid, w->disk))
		kill(w->pid, SIGKILL);
}

/* pid: the appliance, or 0 when unknown or gone. */
static void cust_watch_sample(struct cust_watch *w, int pid, struct cust_watch_sample *s)
{
	struct statvfs vfs;
	struct stat st;
	int ppid;

	s->t = clk_now();
	s->cpu_s = -1;
	if (pid > 0 && cust_proc_stat(pid, &ppid, &s->cpu_s) < 0)
		s->cpu_s = -1;
	s->alloc = stat(w->disk, &st) == 0 ? (unsigned long long)st.st_blocks * 512ULL : 0;
	s->avail = statvfs(w->dir, &vfs) == 0
			   ? (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize
			   : ~0ULL; /* unknown: never "full" */
}

/* Composes the verdict's error; mu held. */
static void cust_watch_verdict_msg(struct cust_watch *w, enum cust_watch_verdict v,
				   const struct cust_watch_sample *s, double idle)
{
	unsigned long long grown =
		s->alloc > w->space.alloc_bytes ? s->alloc - w->space.alloc_bytes : 0;
	unsigned long long need = w->space.need_bytes, free_mib = s->avail / CUST_MIB;
	char more[160];

	if (v == CUST_WATCH_FULL) {
		if (grown < need)
			snprintf(more, sizeof(more), "it needs about %llu MiB more",
				 (need - grown + CUST_MIB - 1) / CUST_MIB);
		else
			snprintf(more, sizeof(more), "it needs more than the %llu MiB estimated",
				 (need + CUST_MIB - 1) / CUST_MIB);
		w->code = PHX_E_IO;
		snprintf(
			w->msg, sizeof(w->msg),
			"the file system of '%s' is full (%llu MiB free) and the appliance made no "
			"progress for %.0f s: stopped it; the image grew by %llu MiB and %s (free "
			"space there or point PHX_CACHE_DIR at a larger file system)",
			w->dir, free_mib, idle, grown / CUST_MIB, more);
	} else {
		w->code = PHX_E_TIMEOUT;
		snprintf(w->msg, sizeof(w->msg),
			 "the appliance made no progress for %.0f s (it used no CPU and the image "
			 "did not grow; the file system of '%s' has %llu MiB free): stopped it "
			 "(PHX_CUSTOMIZE_STALL_S sets this limit)",
			 idle, w->dir, free_mib);
	}
}

static void *cust_watch_main(void *arg)
{
	struct cust_watch *w = arg;
	double next_sample = 0;
	bool killed = false;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec until;
		int pid = w->pid;
		bool fired = w->code != PHX_E_NONE;

		pthread_mutex_unlock(&w->mu);
		if (!fired && clk_signal()) {
			pthread_mutex_lock(&w->mu);
			w->code = PHX_E_INTERRUPTED;
			snprintf(w->msg, sizeof(w->msg),
				 "stopped by signal %d: the appliance was killed", clk_signal());
			pthread_mutex_unlock(&w->mu);
			fired = true;
		}
		if (clk_now() >= next_sample) {
			next_sample = clk_now() + CUST_WATCH_SAMPLE_S;
			if (pid <= 0) {
				int found = cust_find_appliance(w->disk), fd = -1;

				/* checked again once pinned: it may have gone in between */
				if (found > 0) {
					fd = cust_pidfd_open(found);
					if (!cust_is_appliance(found, w->disk)) {
						if (fd >= 0)
							close(fd);
						found = 0;
					}
				}
				if (found > 0) {
					pthread_mutex_lock(&w->mu);
					if (w->pid <= 0)
						cust_watch_adopt(w, found, fd);
					else if (fd >= 0)
						close(fd);
					pid = w->pid;
					pthread_mutex_unlock(&w->mu);
					log_debug(
						"customize: watchdog: found the appliance, pid %d",
						pid);
				}
			}
			if (!fired) {
				struct cust_watch_sample s;
				enum cust_watch_verdict v;
				double idle;

				/* a pidfd turns readable once the process has exited: nothing
				 * left to judge (and the pid may be someone else's soon) */
				pthread_mutex_lock(&w->mu);
				if (w->pidfd >= 0 &&
				    poll(&(struct pollfd){.fd = w->pidfd, .events = POLLIN}, 1, 0) >
					    0)
					pid = 0;
				pthread_mutex_unlock(&w->mu);
				cust_watch_sample(w, pid, &s);
				v = cust_watch_judge(&w->st, &s, w->full_s, w->stall_s, &idle);
				if (v != CUST_WATCH_OK) {
					pthread_mutex_lock(&w->mu);
					cust_watch_verdict_msg(w, v, &s, idle);
					pthread_mutex_unlock(&w->mu);
					fired = true;
				}
			}
		}
		pthread_mutex_lock(&w->mu);
		if (fired && !killed && !w->disarmed && w->pid > 0) {
			log_debug("customize: watchdog: killing the appliance (pid %d): %s", w->pid,
				  w->msg);
			cust_watch_kill(w);
			killed = true;
		}
		if (w->stop)
			break;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += CUST_WATCH_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &until);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int cust_watch_start(const struct cust_watch_cfg *cfg, struct cust_watch **ret, struct phx_err *err)
{
	struct cust_watch *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	sigset_t stop, old;
	int rc;

	if (!w)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	w->pidfd = -1;
	w->disk = strdup(cfg->disk);
	w->dir = strdup(cfg->dir);
	w->full_s = cfg->full_s;
	w->stall_s = cfg->stall_s;
	w->space = *cfg->space;
	if (!w->disk || !w->dir) {
		free(w->disk);
		free(w->dir);
		free(w);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Stop signals go to the other threads: main's handler runs there as before, and the
	 * blocked libguestfs call retries its poll after EINTR anyway. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	rc = pthread_create(&w->thread, NULL, cust_watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w->disk);
		free(w->dir);
		free(w);
		return phx_err_set_errno(err, PHX_E_RUNTIME, rc, "start the appliance watchdog");
	}
	*ret = w;
	return 0;
}

void cust_watch_set_pid(struct cust_watch *w, int pid)
{
	pthread_mutex_lock(&w->mu);
	if (pid > 0 && pid != w->pid)
		cust_watch_adopt(w, pid, cust_pidfd_open(pid));
	pthread_cond_signal(&w->cv); /* a pending kill happens now */
	pthread_mutex_unlock(&w->mu);
}

void cust_watch_disarm(struct cust_watch *w)
{
	pthread_mutex_lock(&w->mu);
	w->disarmed = true;
	pthread_mutex_unlock(&w->mu);
}

bool cust_watch_fired(struct cust_watch *w, struct phx_err *err)
{
	bool fired;

	if (!w)
		return false;
	pthread_mutex_lock(&w->mu);
	fired = w->code != PHX_E_NONE;
	if (fired)
		phx_err_set(err, w->code, "%s", w->msg);
	pthread_mutex_unlock(&w->mu);
	return fired;
}

void cust_watch_free(struct cust_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	if (w->pidfd >= 0)
		close(w->pidfd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->disk);
	free(w->dir);
	free(w);
}
