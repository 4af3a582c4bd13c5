#!/usr/bin/env bash
# Checks deploy/aws/ without contacting AWS:
#   - cfn-lint: no errors and no warnings;
#   - checkov: no failed check (skips are named in the template, each with
#     its reason);
#   - deploy/tests/test_template.py: the security-group chain, and UserData
#     against the settings the shop reads (examples/shop/src/config.rs).
# The tools, pinned in deploy/requirements.txt, are installed from PyPI into
# .services/deploy-venv the first time (and again when the pins change).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.services/deploy-venv
if ! cmp -s deploy/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "deploy/check.sh: python3 is needed" >&2; exit 1; }
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements.txt
  cp deploy/requirements.txt "$venv/requirements.txt"
fi

echo "cfn-lint:"
"$venv/bin/cfn-lint" deploy/aws/*.yaml
echo "  no errors, no warnings"
# --skip-download: no call to the vendor's platform (offline, no API key).
"$venv/bin/checkov" --directory deploy/aws --framework cloudformation \
  --quiet --compact --skip-download
"$venv/bin/python" deploy/tests/test_template.py
