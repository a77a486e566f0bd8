#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter that actually runs.
# Order: python3.13/python3.12/python3 on PATH (pyenv shims fail unless a
# version is selected, so every candidate is executed, not just looked up),
# then the newest suitable version that `pyenv versions --bare` lists.
set -u
ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for name in python3.12 python3.13 python3; do
    if command -v "$name" >/dev/null 2>&1 && ok "$name"; then
        "$name" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root 2>/dev/null)
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+(\.[0-9]+)?$' | sort -t. -k1,1nr -k2,2nr -k3,3nr); do
        exe="$root/versions/$v/bin/python3"
        if [ -x "$exe" ] && ok "$exe"; then
            echo "$exe"
            exit 0
        fi
    done
fi
echo "error: no Python >= 3.12 found (looked for python3.13, python3.12, python3 on PATH and in 'pyenv versions'); install one, e.g. 'pyenv install 3.12'" >&2
exit 1
