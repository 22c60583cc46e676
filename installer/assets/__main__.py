import sys

from installer.assets.generate import main

sys.exit(main())
