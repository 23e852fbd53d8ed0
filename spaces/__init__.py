"""Search spaces: what can be built (installed as ``teg_plugin.spaces``)."""
