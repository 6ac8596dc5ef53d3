#!/usr/bin/env bash
# The project's test command: lint, format check and the whole test suite.
#   bin/run-tests.sh            everything (what CI runs)
#   bin/run-tests.sh --quick    the quick tier: the tests not marked slow (every module, no long
#                               training runs, no browser; docs/testing.md)
# Extra arguments go to pytest (e.g. bin/run-tests.sh -k towers).
#
# Besides .venv (bin/setup-venv.sh) the tests need system packages: Chromium at
# /usr/bin/chromium (the dashboard's browser test), a C++ compiler (the compiled LSTM op),
# espeak-ng (speech with known words and word boundaries, for the transcriber's tests), and
# flite, festival with its English, Italian, Czech and Finnish voices and fortunes-min (the
# corpus kit's engines and text).
# Where they are missing they are installed with apt-get when this runs as root or with
# password-less sudo; otherwise it stops before the tests and says what to install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tier=()
if [ "${1:-}" = "--quick" ]; then
  shift
  tier=(-m "not slow")
fi

missing_packages() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v "${CXX:-g++}" >/dev/null 2>&1 || missing+=(g++)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v flite >/dev/null 2>&1 || missing+=(flite)
  command -v text2wave >/dev/null 2>&1 || missing+=(festival)
  [ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
  [ -d /usr/share/festival/voices/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
  [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
  local voice package
  for voice in italian/pc_diphone:festvox-itapc16k italian/lp_diphone:festvox-italp16k \
    czech/czech_machac:festvox-czech-machac czech/czech_ph:festvox-czech-ph \
    czech/czech_dita:festvox-czech-dita czech/czech_krb:festvox-czech-krb \
    finnish/hy_fi_mv_diphone:festvox-suopuhe-mv finnish/suo_fi_lj_diphone:festvox-suopuhe-lj; do
    package="${voice#*:}"
    [ -d "/usr/share/festival/voices/${voice%%:*}" ] || missing+=("$package")
  done
  [ -f /usr/share/games/fortunes/fortunes ] || missing+=(fortunes-min)
  echo "${missing[*]:-}"
}

missing="$(missing_packages)"
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
    echo "Installing $missing for the tests (apt-get; once) ..."
    log="$(mktemp -t deepspeech-apt.XXXXXX)"
    # shellcheck disable=SC2086  # $missing and $sudo are word lists
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >"$log" 2>&1; then
      echo "warning: apt-get could not install $missing (see $log)" >&2
    fi
    missing="$(missing_packages)"
  fi
fi
if [ -n "$missing" ]; then
  echo "error: the tests need these system packages: $missing (Chromium at /usr/bin/chromium" \
    "for the dashboard's browser test, a C++ compiler for the compiled LSTM op; espeak-ng," \
    "flite, festival, its voices (festvox-*) and fortunes-min for generated speech). On" \
    "Debian/Ubuntu: sudo apt-get install $missing; then run bin/run-tests.sh again." >&2
  exit 1
fi

bash bin/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "${tier[@]}" "$@"
