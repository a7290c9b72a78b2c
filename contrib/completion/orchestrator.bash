# bash completion for orchestrator (Phoenix Orchestrator); installed as
# share/bash-completion/completions/orchestrator. Options are listed here, and
# tests/integration/test_completion.py fails when they differ from `orchestrator --help`.
# Template names and VMIDs come from the config (--config, or the default search path) through
# `orchestrator --check --output json`: offline, no secret read, and no jq needed because that
# document is printed with a fixed layout (two spaces per level, one member a line).

_orchestrator_options="--provision-template --rebuild --validate --all --allow-disk-removal --check --list-templates
--prune --destroy --remove-template --packages --diff --publish --capture --as --recover --config --dry-run --output --jobs --wait-lock
--metrics-file --insecure --quiet --verbose --version --help -a -c -C -j -q -v -V -h"

# _orchestrator_config_ids PROGRAM SECTION FIELD [--config FILE]: prints FIELD (name or vmid)
# of every entry of SECTION (templates or vms) in the config, one a line.
_orchestrator_config_ids()
{
	local prog=$1 section=$2 field=$3 line in=0
	shift 3
	while IFS= read -r line; do
		case $line in
		"  \"$section\": ["*) in=1 ;;
		"  \""*) in=0 ;;
		"      \"$field\": "*)
			[ "$in" = 1 ] || continue
			line=${line#*: }
			line=${line%,}
			line=${line#\"}
			line=${line%\"}
			[ "$line" = 0 ] || printf '%s\n' "$line"
			;;
		esac
	done < <("$prog" --check --output json "$@" 2>/dev/null)
}

_orchestrator()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local prog=${COMP_WORDS[0]} i w provision=0 diff=0 config=()

	if [ "$prev" = "=" ] && [ "$COMP_CWORD" -ge 2 ]; then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	# the config and the command this line names so far
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--config | -C)
			if [ "${COMP_WORDS[i+1]}" = "=" ]; then
				config=(--config "${COMP_WORDS[i+2]}")
			else
				config=(--config "${COMP_WORDS[i+1]}")
			fi
			;;
		--provision-template) provision=1 ;;
		--diff | --publish) diff=1 ;;
		esac
	done
	# a path as typed (./orchestrator) when it runs, else the one on PATH
	prog=${prog/#\~/$HOME}
	[ "${prog#*/}" != "$prog" ] && [ -x "$prog" ] || prog=orchestrator
	[ ${#config[@]} -eq 0 ] || config[1]=${config[1]/#\~/$HOME}

	case $prev in
	--config | -C | --metrics-file)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--output)
		mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur")
		return
		;;
	--destroy)
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" vms vmid \
			"${config[@]}")" -- "$cur")
		return
		;;
	--packages)
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" templates \
			name "${config[@]}")" -- "$cur")
		return
		;;
	--remove-template)
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" templates \
			name "${config[@]}") $(_orchestrator_config_ids "$prog" templates vmid \
			"${config[@]}")" -- "$cur")
		return
		;;
	--publish | --capture)
		# versions and VMs are named on the server, not in the config
		COMPREPLY=()
		return
		;;
	--as)
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" templates \
			name "${config[@]}")" -- "$cur")
		return
		;;
	--jobs | -j | --wait-lock)
		COMPREPLY=()
		return
		;;
	esac
	if [ "${cur#-}" != "$cur" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_orchestrator_options" -- "$cur")
	elif [ "$diff" = 1 ]; then
		# versions are named on the server (--list-templates), not in the config
		COMPREPLY=()
	elif [ "$provision" = 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" templates \
			name "${config[@]}")" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -W "$(_orchestrator_config_ids "$prog" vms vmid \
			"${config[@]}")" -- "$cur")
	fi
}

complete -F _orchestrator orchestrator
