#!/usr/bin/env bash
# Builds what the Dockerfile builds, without a container engine, into OUT_DIR:
#   bash scripts/build-bundle.sh OUT_DIR
# OUT_DIR then holds the final stage's working directory (/app in the image):
# dist/ (the bundle: no node_modules). Run it with
#   node OUT_DIR/dist/cli.js --help
#
# It does not imitate the Dockerfile, it replays it: every stage gets its own
# folder standing in for the image's filesystem, and FROM/ARG/WORKDIR/ENV/
# COPY/RUN are carried out in order (RUN with this machine's Node 24 in place
# of the base image's). So the image and this bundle cannot drift apart: an
# instruction this script does not understand stops it rather than being
# skipped. Metadata (USER, EXPOSE, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT, CMD,
# LABEL) does not change files and is only checked for being well-formed by
# test/deploy/bundle.test.ts.
#
# The context is the repository; .dockerignore must be an allowlist ("*" then
# "!path" lines), and a COPY of anything it does not allow is an error here
# just as the file would be missing in a real build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/build-bundle.sh OUT_DIR}"
dockerfile="${TURNOUT_DOCKERFILE:-$root/Dockerfile}"
context="$root"

die() { echo "build-bundle: $*" >&2; exit 1; }

if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then die "$out exists and is not empty"; fi
# shellcheck source=scripts/node24.sh
source "$root/scripts/node24.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/turnout-bundle.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- .dockerignore allowlist ----------------------------------------------------
allowed=()
if [ -f "$context/.dockerignore" ]; then
  first=""
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"; line="${line#"${line%%[![:space:]]*}"}"; line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] && continue
    if [ -z "$first" ]; then
      first="$line"
      [ "$first" = "*" ] || die ".dockerignore must start with '*' (an allowlist); found '$first'"
      continue
    fi
    [ "${line:0:1}" = "!" ] || die ".dockerignore: only '!path' lines may follow '*'; found '$line'"
    line="${line:1}"; allowed+=("${line%/}")
  done <"$context/.dockerignore"
fi

context_allows() { # path relative to the context
  local p="${1#./}" a
  p="${p%/}"
  [ -f "$context/.dockerignore" ] || return 0
  for a in "${allowed[@]}"; do
    if [ "$p" = "$a" ] || [ "${p#"$a"/}" != "$p" ]; then return 0; fi
  done
  return 1
}

# --- logical instructions: continuations joined, comments dropped ----------
instructions=()
current=""
while IFS= read -r line || [ -n "$line" ]; do
  if [ -z "$current" ] && [[ "$line" =~ ^[[:space:]]*(#|$) ]]; then continue; fi
  if [ -n "$current" ] && [[ "$line" =~ ^[[:space:]]*# ]]; then continue; fi
  if [[ "$line" =~ \\[[:space:]]*$ ]]; then
    current+="${line%\\*} "
    continue
  fi
  current+="$line"
  instructions+=("$current")
  current=""
done <"$dockerfile"
[ -z "$current" ] || die "Dockerfile ends inside a line continuation"

# --- state -------------------------------------------------------------------
declare -A args=()       # ARG values (global before the first FROM)
declare -A stage_dir=()  # stage name or index -> folder standing in for its /
stage_count=0
stage=""                 # current stage folder
cwd="/"                  # current WORKDIR inside the stage
declare -a stage_env=()  # ENV of the current stage, as NAME=value

expand() { # ${NAME} and $NAME from ARG
  local s="$1" name
  while [[ "$s" =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]] || [[ "$s" =~ \$([A-Za-z_][A-Za-z0-9_]*) ]]; do
    name="${BASH_REMATCH[1]}"
    [ -n "${args[$name]+x}" ] || die "\$$name is not a declared ARG"
    s="${s/"${BASH_REMATCH[0]}"/${args[$name]}}"
  done
  printf '%s' "$s"
}

in_stage() { # absolute path inside the stage -> host path
  local p="$1"
  [ "${p:0:1}" = "/" ] || p="${cwd%/}/$p"
  printf '%s%s' "$stage" "$p"
}

copy_one() { # host source, host destination, destination-is-a-directory
  local src="$1" dest="$2" into_dir="$3"
  if [ -d "$src" ]; then
    mkdir -p "$dest"
    cp -a "$src/." "$dest/"
  elif [ -f "$src" ]; then
    if [ "$into_dir" = 1 ] || [ -d "$dest" ]; then
      mkdir -p "$dest"; cp -a "$src" "$dest/"
    else
      mkdir -p "$(dirname "$dest")"; cp -a "$src" "$dest"
    fi
  else
    die "COPY source $src does not exist"
  fi
}

# --- replay --------------------------------------------------------------------
for ins in "${instructions[@]}"; do
  read -r -a words <<<"$ins"
  op="${words[0]^^}"
  rest="${ins#*[[:space:]]}"
  case "$op" in
    ARG)
      for w in "${words[@]:1}"; do
        if [[ "$w" == *=* ]]; then args["${w%%=*}"]="${w#*=}"; else args["$w"]="${args[$w]:-}"; fi
      done ;;
    FROM)
      image="$(expand "${words[1]}")"
      [ -z "${stage_dir[$image]+x}" ] || die "FROM an earlier stage ($image) is not supported"
      # Every base is node:24-slim's stand-in: an empty filesystem run with
      # this machine's Node 24. Any other base image cannot be replayed.
      [[ "$image" == node:24* ]] || die "base image $image is not a node:24 image"
      stage="$work/stage-$stage_count"; mkdir -p "$stage"
      stage_dir["$stage_count"]="$stage"
      if [ "${#words[@]}" -ge 4 ] && [ "${words[2]^^}" = "AS" ]; then stage_dir["${words[3]}"]="$stage"; fi
      stage_count=$((stage_count + 1))
      cwd="/"; stage_env=() ;;
    WORKDIR)
      [ -n "$stage" ] || die "WORKDIR before FROM"
      p="${words[1]}"; [ "${p:0:1}" = "/" ] || p="${cwd%/}/$p"
      cwd="$p"; mkdir -p "$stage$cwd" ;;
    ENV)
      [ -n "$stage" ] || die "ENV before FROM"
      for w in "${words[@]:1}"; do
        [[ "$w" == *=* ]] || die "ENV must be NAME=value: $ins"
        stage_env+=("$w")
      done ;;
    COPY)
      [ -n "$stage" ] || die "COPY before FROM"
      from=""; paths=()
      for w in "${words[@]:1}"; do
        case "$w" in
          --from=*) from="${w#--from=}" ;;
          --chown=*|--chmod=*|--link) ;;  # ownership and layering do not change the files
          --*) die "COPY flag $w is not supported" ;;
          \[*) die "COPY in JSON form is not supported: $ins" ;;
          *) paths+=("$w") ;;
        esac
      done
      [ "${#paths[@]}" -ge 2 ] || die "COPY needs a source and a destination: $ins"
      dest="${paths[-1]}"; unset 'paths[-1]'
      into_dir=0
      if [ "${#paths[@]}" -gt 1 ] || [ "${dest: -1}" = "/" ] || [ "$dest" = "." ]; then into_dir=1; fi
      host_dest="$(in_stage "$dest")"
      for src in "${paths[@]}"; do
        [[ "$src" == *[\*\?\[]* ]] && die "COPY globs are not supported: $src"
        if [ -n "$from" ]; then
          [ -n "${stage_dir[$from]+x}" ] || die "COPY --from=$from: no such stage"
          [ "${src:0:1}" = "/" ] || die "COPY --from=$from needs an absolute source path: $src"
          copy_one "${stage_dir[$from]}$src" "$host_dest" "$into_dir"
        else
          context_allows "$src" || die "COPY $src: excluded by .dockerignore"
          copy_one "$context/${src#./}" "$host_dest" "$into_dir"
        fi
      done ;;
    RUN)
      [ -n "$stage" ] || die "RUN before FROM"
      cmd="$rest"
      while [[ "$cmd" =~ ^--[a-z]+=[^[:space:]]*[[:space:]]+(.*)$ ]]; do cmd="${BASH_REMATCH[1]}"; done
      [ "${cmd:0:1}" != "[" ] || die "RUN in JSON form is not supported: $ins"
      echo "build-bundle: [stage $((stage_count - 1)) ${cwd}] $cmd" >&2
      (cd "$stage$cwd" && env ${stage_env[@]+"${stage_env[@]}"} sh -c "$cmd" >&2) || die "RUN failed: $cmd"
      ;;
    USER|EXPOSE|STOPSIGNAL|HEALTHCHECK|ENTRYPOINT|CMD|LABEL) ;;
    *) die "instruction $op is not supported by this replay; extend scripts/build-bundle.sh or avoid it" ;;
  esac
done

[ -n "$stage" ] || die "no FROM in $dockerfile"
final="$stage$cwd"
mkdir -p "$out"
cp -a "$final/." "$out/"
echo "build-bundle: built $(du -sh "$out" | cut -f1) into $out" >&2
