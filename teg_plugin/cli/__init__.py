"""The ``teg-nas`` command line."""


def main(argv: list[str] | None = None) -> int:
    from teg_plugin.cli._main import main as _main

    return _main(argv)
