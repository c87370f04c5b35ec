"""pip-audit over the installed dependencies; a vulnerability fails CI.

Where the vulnerability service cannot be reached (no network, or an index mirror that
serves packages but no vulnerability data), pip-audit audits nothing yet reports "No
known vulnerabilities found": this says so and skips instead of passing in silence.
"""

from __future__ import annotations

import json
import subprocess
import sys

command = [
    sys.executable,
    "-m",
    "pip_audit",
    "--progress-spinner",
    "off",
    "--skip-editable",
    "--format",
    "json",
    "--timeout",
    "20",
]
try:
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
except subprocess.TimeoutExpired:
    print("SKIPPED pip-audit: the vulnerability service did not answer within 300 s")
    sys.exit(0)
try:
    report = json.loads(run.stdout)
except ValueError:
    reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"SKIPPED pip-audit: the vulnerability service cannot be reached ({reason})")
    sys.exit(0)
dependencies = report.get("dependencies", [])
audited = [d for d in dependencies if not d.get("skip_reason")]
vulnerable = [d for d in audited if d.get("vulns")]
if not audited:
    reasons = {d.get("skip_reason", "") for d in dependencies}
    print(
        f"SKIPPED pip-audit: none of {len(dependencies)} dependencies could be audited "
        f"(the index answers without vulnerability data: {sorted(reasons)[:1]})"
    )
    sys.exit(0)
for dependency in vulnerable:
    ids = ", ".join(v["id"] for v in dependency["vulns"])
    print(f"VULNERABLE {dependency['name']} {dependency['version']}: {ids}")
skipped = len(dependencies) - len(audited)
print(
    f"pip-audit: {len(audited)} dependencies audited, {skipped} skipped, "
    f"{len(vulnerable)} vulnerable"
)
sys.exit(1 if vulnerable else 0)
