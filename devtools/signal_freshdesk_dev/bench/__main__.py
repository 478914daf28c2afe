"""python -m signal_freshdesk_dev.bench [--quick] [--only PART ...] [--out PATH]"""

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
