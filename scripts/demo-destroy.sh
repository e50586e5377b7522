#!/usr/bin/env bash
# make demo-destroy: graceful teardown of the demo stack (ACPI shutdown, then undefine).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"
stack=${DEMO_STACK:-demo}
pulumi stack select "$stack"
pulumi destroy --yes
pulumi stack rm --yes "$stack"
