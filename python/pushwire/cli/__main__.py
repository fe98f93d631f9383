"""``python -m pushwire.cli``: the same as the ``pushwire`` command."""

from . import main

main()
