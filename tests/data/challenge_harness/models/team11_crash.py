import os
import signal

from models.common import Plain


class CrashNet(Plain):
    """Dies in its constructor as an entry killed by the kernel would (SIGKILL)."""

    def __init__(self):
        super().__init__()
        os.kill(os.getpid(), signal.SIGKILL)
