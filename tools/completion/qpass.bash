# bash completion for qpass: commands, their options, profile files (*.json) and the
# names of the profiles in $QPASS_CONFDIR or @CONFDIR@, VM names (the runtime directory,
# $QPASS_RUNDIR or /run/qpass), display devices' PCI addresses for bind (under
# --sysroot or $QPASS_SYSROOT).
_qpass_profiles()
{
	local d=${QPASS_CONFDIR:-@CONFDIR@} f
	for f in "$d"/*.json; do
		[[ -f $f ]] || continue
		f=${f##*/}
		echo "${f%.json}"
	done
}

_qpass_vms()
{
	local d=${QPASS_RUNDIR:-/run/qpass} n
	for n in "$d"/*/; do
		n=${n%/}
		n=${n##*/}
		[[ $n == journal || $n == devices || $n == leases || $n == '*' ]] || echo "$n"
	done
}

_qpass_gpus()
{
	local root=${1:-${QPASS_SYSROOT:-}}/sys/bus/pci/devices d
	for d in "$root"/*; do
		[[ -r $d/class && $(<"$d/class") == 0x03* ]] && echo "${d##*/}"
	done
}

_qpass()
{
	local cur=${COMP_WORDS[COMP_CWORD]} cmd="" sysroot="" i
	local commands="list check plan up down status pin qmp bind unbind restore help"
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--sysroot) ((i++)); sysroot=${COMP_WORDS[i]} ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ ${COMP_WORDS[COMP_CWORD - 1]} == --sysroot ]]; then
		COMPREPLY=($(compgen -d -- "$cur"))
		return
	fi
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$commands --sysroot --help --version" -- "$cur"))
		return
	fi
	local opts="--help"
	case $cmd in
	list) opts="--all --json --help" ;;
	check) opts="--json --device --help" ;;
	plan | status) opts="--json --help" ;;
	down) opts="--force --timeout --help" ;;
	up) opts="--stop-timeout --help" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $cmd in
	check | plan | up)
		COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -S / -- "$cur")
			$(compgen -W "$(_qpass_profiles)" -- "$cur")) ;;
	help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
	down | status | pin | qmp) COMPREPLY=($(compgen -W "$(_qpass_vms)" -- "$cur")) ;;
	restore) COMPREPLY=($(compgen -W "$(_qpass_vms) manual" -- "$cur")) ;;
	bind | unbind) COMPREPLY=($(compgen -W "$(_qpass_gpus "$sysroot")" -- "$cur")) ;;
	esac
}
complete -F _qpass qpass
