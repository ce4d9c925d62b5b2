"""Archive actors, one module per subject; imported here so Dramatiq's autodiscovery finds them."""

from archive.chain_tasks import *  # noqa: F403
from archive.closure_tasks import *  # noqa: F403
from archive.gdpr_tasks import *  # noqa: F403
from archive.storage_tasks import *  # noqa: F403
