/* customize_accel: deciding whether the libguestfs appliance may use KVM. /dev/kvm existing is
 * not enough: on nested "PVM" hosts it opens, creates VMs and runs small real- and long-mode
 * programs, yet qemu hangs as soon as a Linux kernel starts. So the probe boots a real kernel
 * for a moment and waits for its banner on the serial console; a working KVM prints it in well
 * under a second. The verdict is remembered per host boot, since it cannot change before a
 * reboot. No libguestfs here. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
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
