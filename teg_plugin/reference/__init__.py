"""teg_plugin.reference"""
