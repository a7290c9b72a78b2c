/* cust_bench_driver: the customize module's side of bench_customize (and a handy manual test
 * tool): installs the given local .debs into DISK in place, enables qemu-guest-agent, and runs
 * the always-on hygiene (which truncates /etc/machine-id). Prints one key=value line.
 * Usage: cust_bench_driver [-v] [-s STATE_DIR] DISK DEB... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "customize.h"
#include "log.h"

int main(int argc, char **argv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep;
	struct cust_plan *plan;
	const char *svc[] = {"qemu-guest-agent"};
	int verbose = 0, c;

	while ((c = getopt(argc, argv, "vs:")) != -1) {
		if (c == 'v')
			verbose++;
		else if (c == 's')
			opts.state_dir = optarg;
		else
			return 2;
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: %s [-v] [-s STATE_DIR] DISK DEB...\n", argv[0]);
		return 2;
	}
	log_setup(verbose, false);
	plan = cust_plan_new(&err);
	if (!plan ||
	    cust_plan_add_local_packages(plan, (const char *const *)argv + optind + 1,
					 (size_t)(argc - optind - 1), &err) < 0 ||
	    cust_plan_add_services(plan, svc, 1, &err) < 0 ||
	    cust_run(plan, argv[optind], &opts, &rep, &err) < 0) {
		fprintf(stderr, "cust_bench_driver: %s\n", err.msg);
		cust_plan_free(plan);
		return 1;
	}
	printf("seconds=%.2f launch=%.2f accel=%s distro=%s version=%s root=%s peak_rss_kib=%ld\n",
	       rep.total_seconds, rep.launch_seconds, rep.accel, rep.distro, rep.version,
	       rep.root_device, rep.peak_rss_kib);
	cust_report_release(&rep);
	cust_plan_free(plan);
	return 0;
}
