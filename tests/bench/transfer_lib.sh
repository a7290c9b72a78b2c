# transfer_lib.sh: what bench_download and bench_upload share (sourced, not run by `make
# bench`): timing, the statistics of interleaved runs and the table rows. A row compares our
# run with a reference run of the same round: the runs alternate, so a burst of load from
# elsewhere on a shared machine hits both, and the ratio is the median of the per-round
# ratios; each figure is shown as median and the spread (min-max) of its runs.

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
		"/proc/$1/stat"
}

# CPU seconds the whole machine has been busy so far, every core: user, nice, system, irq,
# softirq and steal from /proc/stat (the kernel's loopback work is softirq, charged to
# whichever process it interrupts or to none).
machine_busy() {
	awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' \
		/proc/stat
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR % 2) printf "%.3f", a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
span() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }

# Per-round ratios of two space-separated lists of the same length, one a line.
ratios() { paste <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{ printf "%.4f\n", $1 / $2 }'; }

tx_header() {
	printf '\n%-36s %-20s %-34s %-20s %-17s %-6s %s\n' "case ($1)" "ours s (min-max)" \
		"reference" "ref s (min-max)" "ratio (min-max)" goal verdict
}

# tx_row CASE REF_LABEL "OURS_SECONDS..." "REF_SECONDS..." GOAL ("-": reported, no goal).
# Prints one row and sets TX_RATIO and TX_VERDICT (PASS, MISS or -).
tx_row() {
	local label=$1 ref=$2 ours=$3 refs=$4 goal=$5 r rs
	# shellcheck disable=SC2086
	mapfile -t rr < <(ratios "$ours" "$refs")
	r=$(median "${rr[@]}")
	rs=$(span "${rr[@]}")
	TX_RATIO=$r
	if [ "$goal" = - ]; then
		TX_VERDICT=-
	elif awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r <= g) }'; then
		TX_VERDICT=PASS
	else
		TX_VERDICT=MISS
	fi
	# shellcheck disable=SC2086
	printf '%-36s %-20s %-34s %-20s %-17s %-6s %s\n' "$label" \
		"$(median $ours) ($(span $ours))" "$ref" "$(median $refs) ($(span $refs))" \
		"$(printf '%.2f' "$r") ($rs)" "$([ "$goal" = - ] && echo none || echo "<= $goal")" "$TX_VERDICT"
}
