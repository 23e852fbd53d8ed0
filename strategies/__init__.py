"""Search strategies over a space, guided by TEG scores (installed as ``teg_plugin.strategies``)."""
