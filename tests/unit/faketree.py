"""Build fake /proc and /sys trees for the unit tests of the readers."""
import os


def write(root, path, text):
    """Write ``text`` at the absolute kernel ``path`` under ``root``; return the real path."""
    full = os.path.join(str(root), path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as handle:
        handle.write(text)
    return full
