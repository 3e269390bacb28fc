"""Benchmarks: each prints its figure beside a peer's measured in the same run.

Run them as modules (`python -m bench.smtp_receive.run`); importing this
package turns on MAILSTACK_LOOPBACK_ONLY for the benchmark and every server it
starts, so nothing is ever sent outside loopback.
"""

import os

os.environ["MAILSTACK_LOOPBACK_ONLY"] = "1"
