#!/usr/bin/env bash
# System packages the tests need: redis-server (the shared-slot tests), valgrind, pkg-config,
# openssl (test certificates), exim4-daemon-light (the real MTA of the mail-relay tests), and
# chromium with chromium-driver (the Flask page driven in a headless browser by Selenium).
# `make demo` needs none of them; the test targets run this script (make deps).
# Installs them with apt-get when missing and we are root; otherwise says what is missing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v openssl >/dev/null || missing+=(openssl)
# pam_breakglass.so links libpam; its tests run pamtester (under pam_wrapper) and a real sshd.
[ -e /usr/include/security/pam_modules.h ] || missing+=(libpam0g-dev)
command -v pamtester >/dev/null || missing+=(pamtester)
ls /usr/lib/*/libpam_wrapper.so >/dev/null 2>&1 || missing+=(libpam-wrapper)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
# The login page's browser test.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# exim is optional: where it cannot be installed its tests skip and say so.
optional=()
[ -x /usr/sbin/exim ] || command -v exim >/dev/null || optional+=(exim4-daemon-light)
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    echo "installing ${optional[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${optional[@]}" >/dev/null ||
      echo "warning: could not install ${optional[*]}: the exim tests will skip" >&2
  fi
elif [ ${#missing[@]} -gt 0 ]; then
  echo "missing system packages: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
  exit 1
else
  echo "note: ${optional[*]} is not installed: the exim tests will skip" >&2
fi
